import { S3Client } from '@aws-sdk/client-s3';
import { ChunkSpec, processChunk } from '../../../../containers/worker/src/engine';
import { transformRecords } from '../../../../containers/worker/src/operations/transform-records';
import { createBucket, getBuffer, getJsonObject, motoS3, put, uniqueBucket } from '../support/s3';

/** transform-records against moto_server: values it does not change come out as they went in. */
const BUCKET = uniqueBucket('worker-transform');
let s3: S3Client;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, BUCKET);
});
afterAll(() => s3.destroy());

const deps = () => ({ s3In: s3, s3Out: s3 });
const spec = (key: string, outKey: string, operationConfig: unknown, extra: Partial<ChunkSpec> = {}): ChunkSpec => ({
  jobId: 'test',
  operation: 'transform-records',
  operationConfig,
  input: { bucket: BUCKET, key },
  output: { bucket: BUCKET, key: outKey },
  maxRejectRatio: 0.9,
  ...extra,
});

async function transform(name: string, body: string, config: unknown): Promise<{ lines: string[]; rejects: { offset: number; reason: string }[] }> {
  await put(s3, BUCKET, `in/${name}`, body);
  const r = await processChunk(spec(`in/${name}`, `out/${name}.out`, config), deps());
  expect(r.status).toBe('succeeded');
  const text = (await getBuffer(s3, BUCKET, `out/${name}.out`)).toString();
  const rejects = (await getBuffer(s3, BUCKET, `out/${name}.out.rejects.jsonl`)).toString();
  return {
    lines: text.split('\n').filter((l) => l.length > 0),
    rejects: rejects.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l)),
  };
}

test('JSON numbers it does not touch keep their exact text (integers beyond 2^53, trailing zeros, exponents)', async () => {
  const line = '{"id":12345678901234567890,"price":1.50,"tiny":1e-400,"huge":1e400,"neg":-0,"nested":{"n":[9007199254740993,0.1000000000000000055511151231257827]}}';
  const { lines } = await transform('big.jsonl', line + '\n', { set: { checked: true } });
  expect(lines).toEqual([line.slice(0, -1) + ',"checked":true}']);
});

test('CSV fields stay the text they were: zip codes keep leading zeros, long digit strings stay whole', async () => {
  const { lines } = await transform('zips.csv', 'zip,account,amount,note\n02134,12345678901234567890,007.50,\n', { drop: ['note'] });
  expect(lines).toEqual(['{"zip":"02134","account":"12345678901234567890","amount":"007.50"}']);
});

test('declared types convert fields exactly; a value that does not convert is a reject naming the field', async () => {
  const body = 'zip,account,amount,ok\n02134,12345678901234567890,007.50,true\n0x1F,1,2,maybe\n';
  const { lines, rejects } = await transform('typed.csv', body, {
    types: { zip: 'string', account: 'integer', amount: 'number', ok: 'boolean' },
  });
  expect(lines).toEqual(['{"zip":"02134","account":12345678901234567890,"amount":7.50,"ok":true}']);
  expect(rejects).toEqual([{ offset: body.indexOf('0x1F'), reason: 'field ok: "maybe" is not a boolean (true or false)', raw: '0x1F,1,2,maybe' }]);
});

test('integer type refuses fractions and exponents; number type accepts them', async () => {
  const { lines, rejects } = await transform('ints.jsonl', '{"n":"12.0"}\n{"n":1.5}\n{"n":"1e3"}\n{"n":"-0042"}\n', { types: { n: 'integer' } });
  expect(lines).toEqual(['{"n":12}', '{"n":-42}']);
  expect(rejects.map((r) => r.reason)).toEqual(['field n: "1.5" is not an integer', 'field n: "1e3" is not an integer']);
  const asNumber = await transform('nums.jsonl', '{"n":"12.0"}\n{"n":1.5}\n{"n":"1e3"}\n{"n":"-0042"}\n{"n":"abc"}\n', { types: { n: 'number' } });
  expect(asNumber.lines).toEqual(['{"n":12.0}', '{"n":1.5}', '{"n":1e3}', '{"n":-42}']);
  expect(asNumber.rejects.map((r) => r.reason)).toEqual(['field n: "abc" is not a number']);
});

test('renaming a field to __proto__ keeps it as an own field, and no prototype changes', async () => {
  const { lines } = await transform('proto.jsonl', '{"a":{"polluted":true},"b":2}\n', { rename: { a: '__proto__' } });
  expect(lines).toEqual(['{"b":2,"__proto__":{"polluted":true}}']);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

test('a __proto__ field in the input is kept, and can be renamed away', async () => {
  const body = '{"__proto__":{"x":1},"b":2}\n';
  expect((await transform('proto-in.jsonl', body, {})).lines).toEqual(['{"__proto__":{"x":1},"b":2}']);
  expect((await transform('proto-rename.jsonl', body, JSON.parse('{"rename":{"__proto__":"p"}}'))).lines).toEqual(['{"b":2,"p":{"x":1}}']);
});

test('require checks own fields only: "constructor" and "toString" are missing unless the record has them', async () => {
  const { lines, rejects } = await transform('req.jsonl', '{"id":1}\n{"id":2,"constructor":"c","toString":"t"}\n{"id":3,"constructor":null,"toString":"t"}\n', {
    require: ['constructor', 'toString'],
  });
  expect(lines).toEqual(['{"id":2,"constructor":"c","toString":"t"}']);
  expect(rejects.map((r) => [r.offset, r.reason])).toEqual([
    [0, 'missing required field constructor'],
    [51, 'missing required field constructor'],
  ]);
});

test('set and drop of names such as __proto__ and constructor act on own fields', async () => {
  const { lines } = await transform('set.jsonl', '{"constructor":1,"x":2}\n', { set: JSON.parse('{"__proto__":{"p":1},"y":3}'), drop: ['constructor'] });
  const out = JSON.parse(lines[0]);
  expect(Object.keys(out)).toEqual(['x', '__proto__', 'y']);
  expect(out['__proto__']).toEqual({ p: 1 });
});

test('OPERATION_CONFIG is validated by the operation schema with a clear error', () => {
  expect(() => transformRecords.parseConfig([1, 2])).toThrow(/^transform-records config: \(root\): .*expected object/);
  expect(() => transformRecords.parseConfig({ rename: { a: '' } })).toThrow(/transform-records config: rename\.a: field names must not be empty/);
  expect(() => transformRecords.parseConfig({ types: { a: 'date' } })).toThrow(/transform-records config: types\.a: /);
  expect(() => transformRecords.parseConfig({ renames: {} })).toThrow(/transform-records config: .*renames/);
});

test('a config that is not an object fails the chunk before any input is read', async () => {
  await expect(processChunk(spec('in/none.jsonl', 'out/none.jsonl', [1, 2]), deps())).rejects.toThrow(/transform-records config/);
  await expect(processChunk({ ...spec('in/none.jsonl', 'out/none.json', [1, 2]), operation: 'aggregate-defects' }, deps())).rejects.toThrow(
    /^aggregate-defects config: \(root\)/,
  );
});

test('the summary counts accepted and rejected records', async () => {
  await transform('sum.jsonl', '{"id":1}\n{"x":1}\n', { require: ['id'] });
  expect(await getJsonObject(s3, BUCKET, 'out/sum.jsonl.out.summary.json')).toEqual({ operation: 'transform-records', records: 1, rejected: 1 });
});
