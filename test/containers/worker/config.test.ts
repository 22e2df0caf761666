import { ConfigError, parseConfig } from '../../../containers/worker/src/config';

const base = {
  JOB_ID: 'j',
  OPERATION: 'aggregate-defects',
  INPUT_S3_BUCKET: 'in',
  INPUT_S3_KEY: 'a.jsonl',
  OUTPUT_S3_BUCKET: 'out',
  OUTPUT_S3_KEY: 'r.json',
};

function errorOf(env: Record<string, string | undefined>): ConfigError {
  try {
    parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('no ConfigError');
}

describe('worker environment contract', () => {
  test.each(['JOB_ID', 'OPERATION', 'INPUT_S3_BUCKET', 'INPUT_S3_KEY', 'OUTPUT_S3_BUCKET', 'OUTPUT_S3_KEY'])(
    'a missing %s is an error naming it',
    (name) => {
      const err = errorOf({ ...base, [name]: undefined });
      expect(err.variable).toBe(name);
      expect(err.message).toBe(`${name}: is required but not set`);
    },
  );

  test('an unknown operation lists the known ones', () => {
    expect(errorOf({ ...base, OPERATION: 'sum' }).message).toMatch(/OPERATION: must be one of aggregate-defects, transform-records, bundle-photos/);
  });

  test('OPERATION_CONFIG must be JSON', () => {
    expect(errorOf({ ...base, OPERATION_CONFIG: '{nope' }).variable).toBe('OPERATION_CONFIG');
  });

  test('a byte range needs both bounds in order', () => {
    expect(errorOf({ ...base, CHUNK_START_BYTE: '10' }).variable).toBe('CHUNK_END_BYTE');
    expect(errorOf({ ...base, CHUNK_START_BYTE: '10', CHUNK_END_BYTE: '5' }).variable).toBe('CHUNK_END_BYTE');
    expect(errorOf({ ...base, CHUNK_START_BYTE: '-1', CHUNK_END_BYTE: '5' }).variable).toBe('CHUNK_START_BYTE');
    expect(parseConfig({ ...base, CHUNK_START_BYTE: '10', CHUNK_END_BYTE: '20' }).chunk).toEqual({ kind: 'range', startByte: 10, endByte: 20 });
  });

  test('a manifest chunk needs the array index and an {index} in the output key', () => {
    const manifest = { ...base, INPUT_S3_BUCKET: undefined, INPUT_S3_KEY: undefined, MANIFEST_S3_KEY: 'runs/1/manifest.jsonl' };
    expect(errorOf(manifest).variable).toBe('AWS_BATCH_JOB_ARRAY_INDEX');
    expect(errorOf({ ...manifest, AWS_BATCH_JOB_ARRAY_INDEX: '3' }).variable).toBe('OUTPUT_S3_KEY');
    expect(parseConfig({ ...manifest, AWS_BATCH_JOB_ARRAY_INDEX: '3', OUTPUT_S3_KEY: 'runs/1/chunks/{index}.json' }).chunk).toEqual({
      kind: 'manifest',
      bucket: 'out',
      key: 'runs/1/manifest.jsonl',
      index: 3,
    });
  });

  test('MAX_REJECT_RATIO must lie in [0, 1]', () => {
    expect(errorOf({ ...base, MAX_REJECT_RATIO: '1.5' }).variable).toBe('MAX_REJECT_RATIO');
    expect(parseConfig({ ...base, MAX_REJECT_RATIO: '0.05' }).maxRejectRatio).toBe(0.05);
  });

  test('POST /process bodies may carry numbers and objects', () => {
    const cfg = parseConfig({ ...base, CHUNK_START_BYTE: 0, CHUNK_END_BYTE: 100, OPERATION_CONFIG: { a: 1 } });
    expect(cfg.chunk).toEqual({ kind: 'range', startByte: 0, endByte: 100 });
    expect(cfg.operationConfig).toEqual({ a: 1 });
  });
});
