import * as http from 'http';
import { BatchClient } from '@aws-sdk/client-batch';
import { GetObjectTaggingCommand } from '@aws-sdk/client-s3';
import { BatchJobClient, InvalidRequestError, requestHash, validateSubmitRequest } from '../../../../lib/client';
import { motoClientConfig, motoEndpoint } from '../../../support/moto';
import { createMotoBatch } from '../moto-batch';

function refusedFields(request: Record<string, unknown>): string[] {
  try {
    validateSubmitRequest(request);
    return [];
  } catch (err) {
    if (!(err instanceof InvalidRequestError)) throw err;
    return err.errors.map((e) => e.field).sort();
  }
}

const base = { operation: 'aggregate-defects' };

describe('input keys are confined to the tenant prefix, in normal form', () => {
  test.each([
    ['tenants/acme/defects.jsonl', 'acme', []],
    ['tenants/acme/2026/11/defects.jsonl.gz', 'acme', []],
    ['datasets/defects.jsonl', undefined, []],
    ['tenants/acme-other/defects.jsonl', 'acme', ['inputKey']],
    ['tenants/acme/../other/defects.jsonl', 'acme', ['inputKey']],
    ['tenants/acme/./defects.jsonl', 'acme', ['inputKey']],
    ['tenants/acme//defects.jsonl', 'acme', ['inputKey']],
    ['tenants/acme/', 'acme', ['inputKey']],
    ['/tenants/acme/defects.jsonl', 'acme', ['inputKey']],
    ['tenants\\acme\\defects.jsonl', 'acme', ['inputKey']],
    ['tenants/acme/d\u00e9fects.jsonl', 'acme', ['inputKey']],
    ['tenants/acme/defects.jsonl', undefined, ['inputKey']],
    ['jobs/0123/inputs.json', undefined, ['inputKey']],
    ['arn:aws:s3:::other/defects.jsonl', undefined, ['inputKey']],
  ])('%j for tenant %j', (inputKey, tenantId, expected) => {
    expect(refusedFields({ ...base, inputKey, tenantId })).toEqual(expected);
  });
});

describe('environment: declared names with matching values only', () => {
  test.each([
    [{ LOG_LEVEL: 'debug', MAX_REJECT_RATIO: '0.05', INPUT_FORMAT: 'csv.gz', MAX_RECORD_BYTES: '2097152' }, []],
    [{ INPUT_FORMAT: 'csvXgz' }, ['environment.INPUT_FORMAT']],
    [{ MAX_REJECT_RATIO: '1.5' }, ['environment.MAX_REJECT_RATIO']],
    [{ MAX_RECORD_BYTES: '999999999999' }, ['environment.MAX_RECORD_BYTES']],
    [{ node_options: '--inspect' }, ['environment.node_options']],
    [{ AWS_ENDPOINT_URL_S3: 'http://evil' }, ['environment.AWS_ENDPOINT_URL_S3']],
    [{ MY_ENDPOINT_OVERRIDE: 'x' }, ['environment.MY_ENDPOINT_OVERRIDE']],
    [{ MANIFEST_S3_KEY: 'x' }, ['environment.MANIFEST_S3_KEY']],
  ])('%j', (environment, expected) => {
    expect(refusedFields({ ...base, input: {}, environment })).toEqual(expected);
  });

  test('bundle-photos declares fewer names than the record operations', () => {
    expect(refusedFields({ operation: 'bundle-photos', input: {}, environment: { INPUT_FORMAT: 'csv' } })).toEqual(['environment.INPUT_FORMAT']);
  });
});

test('a refused value is shown cut to a bounded size with control characters escaped', () => {
  const err = (() => {
    try {
      validateSubmitRequest({ ...base, input: {}, callbackUrl: `https://x.example/${'a'.repeat(5_000_000)}\r\n` });
    } catch (e) {
      return e as InvalidRequestError;
    }
    throw new Error('not refused');
  })();
  const e = err.errors.find((x) => x.field === 'callbackUrl')!;
  expect(String(e.value).length).toBeLessThan(200);
  expect(e.message.length).toBeLessThan(600);
  expect(e.message).toMatch(/allowed: an https:\/\/ URL/);
  expect(e.message).not.toMatch(/[\r\n]/);
});

test('ids: ASCII only, tenant ids without /', () => {
  expect(refusedFields({ ...base, input: {}, tenantId: 'acme', userId: 'arn:aws:sts::1:assumed-role/r/s' })).toEqual([]);
  expect(refusedFields({ ...base, input: {}, tenantId: 'acme/other' })).toEqual(['tenantId']);
  expect(refusedFields({ ...base, input: {}, tenantId: 'acm\u0435' })).toEqual(['tenantId']); // Cyrillic e
  expect(refusedFields({ ...base, input: {}, userId: 'us\u0435r' })).toEqual(['userId']);
});

test('the request hash ignores key order and the token, and sees every other field', () => {
  const a = validateSubmitRequest({ operation: 'transform-records', input: { x: 1, y: 2 }, operationConfig: { drop: ['a'], rename: { b: 'c' } }, clientToken: 't1' });
  const b = validateSubmitRequest({ clientToken: 't2', operationConfig: { rename: { b: 'c' }, drop: ['a'] }, input: { y: 2, x: 1 }, operation: 'transform-records' });
  const c = validateSubmitRequest({ operation: 'transform-records', input: { x: 1, y: 3 }, operationConfig: { drop: ['a'], rename: { b: 'c' } }, clientToken: 't1' });
  expect(requestHash(a)).toBe(requestHash(b));
  expect(requestHash(a)).not.toBe(requestHash(c));
});

/** A real HTTP proxy in front of moto that forwards everything but drops the connection on SubmitJob (the answer is lost). */
async function startLosingProxy(target: string): Promise<{ endpoint: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (/\/v1\/submitjob/i.test(req.url ?? '')) {
        req.socket.destroy();
        return;
      }
      const fwd = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      fwd.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('when SubmitJob fails without an answer, the staged input is kept but re-tagged to expire within a day', async () => {
  const m = await createMotoBatch('policy-unknown');
  const proxy = await startLosingProxy(motoEndpoint());
  try {
    const batch = new BatchClient({ ...motoClientConfig(), endpoint: proxy.endpoint, maxAttempts: 1 });
    const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: { batch, s3: m.s3, logs: m.logs }, fairShare: false, maxRetries: 0 });
    await expect(client.submit({ operation: 'aggregate-defects', input: { n: 1 }, jobId: 'lost-answer', retentionDays: 30 })).rejects.toThrow();
    const tags = await m.s3.send(new GetObjectTaggingCommand({ Bucket: m.bucket, Key: 'jobs/lost-answer/inputs.json' }));
    expect(Object.fromEntries(tags.TagSet!.map((t) => [t.Key, t.Value]))).toEqual({ 'retention-days': '1', 'job-id': 'lost-answer' });
  } finally {
    await proxy.close();
  }
}, 60_000);
