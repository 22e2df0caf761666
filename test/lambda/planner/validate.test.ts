import { DEFAULT_LAMBDA_MAX_RECORDS, validateRunRequest } from '../../../lambda/validate-input/validate';

const OPS = { operations: ['aggregate-defects', 'transform-records'] };
const base = { runId: 'r1', bucket: 'b', key: 'in.jsonl', operation: 'aggregate-defects' };

describe('validateRunRequest', () => {
  test('normalizes a valid request with defaults', () => {
    expect(validateRunRequest(base, OPS)).toEqual({
      ...base,
      operationConfig: '{}',
      lambdaMaxRecords: DEFAULT_LAMBDA_MAX_RECORDS,
      identity: { customerId: 'none', tenantId: 'none', batchId: 'none', deployment: 'none', snapshotId: 'none' },
    });
  });

  test('turns an operationConfig object into JSON text', () => {
    expect(validateRunRequest({ ...base, operationConfig: { drop: ['a'] } }, OPS).operationConfig).toBe('{"drop":["a"]}');
  });

  test('rejects an unknown operation and names the known ones', () => {
    expect(() => validateRunRequest({ ...base, operation: 'nope' }, OPS)).toThrow(
      'invalid run input: operation ("nope") is unknown; allowed: aggregate-defects, transform-records',
    );
  });

  test.each([0, -5, 1.5, '100'])('rejects chunkRecords %p', (value) => {
    expect(() => validateRunRequest({ ...base, chunkRecords: value }, OPS)).toThrow(/chunkRecords \(.*\) must be a whole number >= 1/);
  });

  test('rejects a non-positive chunkBytes', () => {
    expect(() => validateRunRequest({ ...base, chunkBytes: 0 }, OPS)).toThrow(/chunkBytes \(0\) must be a whole number >= 1/);
  });

  test('needs exactly one of key and prefix', () => {
    expect(() => validateRunRequest({ ...base, prefix: 'p/' }, OPS)).toThrow(/give exactly one of key and prefix/);
    const { key: _key, ...noKey } = base;
    expect(() => validateRunRequest(noKey, OPS)).toThrow(/give exactly one of key and prefix/);
  });

  test('lists every problem in one message', () => {
    expect(() => validateRunRequest({ runId: 'r', operation: 'x', chunkRecords: 0 }, OPS)).toThrow(
      /bucket is required; give exactly one of key and prefix; operation \("x"\) is unknown.*; chunkRecords \(0\)/,
    );
  });

  test('rejects a run id that cannot name an S3 prefix and a Batch job', () => {
    expect(() => validateRunRequest({ ...base, runId: '../etc' }, OPS)).toThrow(/runId \("..\/etc"\) is invalid/);
  });

  test('defaults the run id to the sanitized execution name', () => {
    const { runId: _r, ...noRun } = base;
    expect(validateRunRequest(noRun, { ...OPS, defaultRunId: 'exec:2026/11 26' }).runId).toBe('exec-2026-11-26');
  });

  test('rejects operationConfig text that is not JSON', () => {
    expect(() => validateRunRequest({ ...base, operationConfig: '{oops' }, OPS)).toThrow(/operationConfig is not valid JSON/);
  });

  test('rejects input that is not an object', () => {
    expect(() => validateRunRequest([1], OPS)).toThrow('run input must be a JSON object, got [1]');
  });

  it('takes the seed input document fields as the run identity', () => {
    const doc = { ...base, customerId: 'cust-42', tenantId: 'tenant-a', batchId: 'b-2026-11-28', deployment: 'prod', snapshotId: 'snap:7' };
    expect(validateRunRequest(doc, OPS).identity).toEqual({
      customerId: 'cust-42',
      tenantId: 'tenant-a',
      batchId: 'b-2026-11-28',
      deployment: 'prod',
      snapshotId: 'snap:7',
    });
  });

  it('names the field, the value and what is allowed for a bad identifying field', () => {
    expect(() => validateRunRequest({ ...base, customerId: 'a b', tenantId: 7 }, OPS)).toThrow(
      /customerId \("a b"\) is not allowed; allowed: 1-128 characters of A-Z a-z 0-9 \. _ : \/ = \+ @ -.*; tenantId must be a string, got 7/,
    );
  });
});
