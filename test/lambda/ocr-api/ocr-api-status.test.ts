import { BatchClient } from '@aws-sdk/client-batch';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createOcr } from '../../../lambda/ocr-api/create';
import { OcrApiDeps, OcrResultDocument } from '../../../lambda/ocr-api/shared';
import { startOcr } from '../../../lambda/ocr-api/start';
import { getOcr } from '../../../lambda/ocr-api/status';
import { BatchJobClient } from '../../../lib/client';
import { motoClientConfig, motoEndpoint } from '../../support/moto';
import { createMotoBatch, MotoBatch } from '../../lib/client/moto-batch';
import { RewriteProxy, startRewriteProxy } from '../../lib/client/rewrite-proxy';

/**
 * GET /ocr/{id} (and POST /ocr/{id}/start) on every path but the happy one, with the real handlers against
 * moto_server (S3, DynamoDB, Batch). moto's no-Docker Batch ends every job SUCCEEDED at once, so a real HTTP
 * proxy in front of it rewrites DescribeJobs to the status a test needs (RUNNING, FAILED with a reason);
 * the worker's result document is written to S3 the way the worker writes it (no worker run needed: these
 * paths are about what the API says, not about OCR).
 */
jest.setTimeout(60_000);

const ACCOUNT = '123456789012';
const TENANT = `${ACCOUNT}:role:ocr-status`;
const CALLER = `arn:aws:sts::${ACCOUNT}:assumed-role/ocr-status/session-1`;
const T0 = new Date('2026-11-28T12:00:00.000Z');

let m: MotoBatch;
let proxy: RewriteProxy;
let deps: OcrApiDeps;

function event(method: string, path: string, opts: { body?: unknown; id?: string } = {}): APIGatewayProxyEvent {
  return {
    httpMethod: method,
    path,
    resource: opts.id ? path.replace(opts.id, '{id}') : path,
    body: opts.body === undefined ? null : JSON.stringify(opts.body),
    headers: {},
    pathParameters: opts.id ? { id: opts.id } : null,
    requestContext: { identity: { userArn: CALLER } },
  } as unknown as APIGatewayProxyEvent;
}

const body = (res: APIGatewayProxyResult) => JSON.parse(res.body) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const at = (seconds: number) => () => new Date(T0.getTime() + seconds * 1000);
const get = (id: string, d: OcrApiDeps = deps) => getOcr(event('GET', `/ocr/${id}`, { id }), d);
const start = (id: string, d: OcrApiDeps = deps) => startOcr(event('POST', `/ocr/${id}/start`, { id }), d);
const record = async (id: string) => (await deps.ddb.send(new GetCommand({ TableName: deps.table, Key: { id }, ConsistentRead: true }))).Item!;

/** What the worker's `ocr` writes last (containers/worker/src/operations/ocr.ts), for a job id. */
async function putResult(jobId: string, text: string): Promise<void> {
  const doc: OcrResultDocument = { pages: 1, meanConfidence: 91, words: text.split(' ').length, text, textKey: `jobs/${jobId}/output/result.txt`, perPage: [{ page: 1, text, meanConfidence: 91 }] };
  await m.s3.send(new PutObjectCommand({ Bucket: m.bucket, Key: `jobs/${jobId}/output/result.json`, Body: JSON.stringify(doc), ContentType: 'application/json' }));
}

/** A request submitted at once (key form), its job in moto; returns the request id and the platform job id. */
async function submitted(name: string): Promise<{ id: string; jobId: string }> {
  proxy.setStatus(undefined);
  const key = `tenants/${TENANT}/scans/${name}.png`;
  await m.s3.send(new PutObjectCommand({ Bucket: m.bucket, Key: key, Body: Buffer.from('not decoded in these tests'), ContentType: 'image/png' }));
  const res = await createOcr(event('POST', '/ocr', { body: { key } }), deps);
  expect(res.statusCode).toBe(202);
  const { id } = body(res);
  return { id, jobId: (await record(id)).jobId };
}

beforeAll(async () => {
  m = await createMotoBatch('ocr-status');
  proxy = await startRewriteProxy(motoEndpoint());
  const ddbClient = new DynamoDBClient({ ...motoClientConfig(), maxAttempts: 1 });
  const table = `ocr-status-${Date.now().toString(36)}`;
  await ddbClient.send(
    new CreateTableCommand({ TableName: table, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }] }),
  );
  const batch = new BatchClient({ ...motoClientConfig(), endpoint: proxy.endpoint, maxAttempts: 1 });
  deps = {
    client: new BatchJobClient({
      jobQueue: m.jobQueueArn,
      jobDefinition: m.jobDefinitionArn,
      routes: { 'FARGATE:ocr': { jobQueue: m.jobQueueArn, jobDefinition: m.jobDefinitionArn } },
      inputBucket: m.bucket,
      clients: { batch, s3: m.s3, logs: m.logs },
      fairShare: false,
      jobNamePrefix: 'ocr',
    }),
    s3: m.s3,
    ddb: DynamoDBDocumentClient.from(ddbClient),
    table,
    inputBucket: m.bucket,
    outputBucket: m.bucket,
    maxUploadBytes: 5 * 1024 * 1024,
    uploadExpiresSeconds: 300,
    retentionDays: 7,
    maxInlineTextBytes: 256 * 1024,
    now: at(0),
  };
});

afterAll(async () => {
  await proxy?.close();
});

describe('a job that FAILED', () => {
  test('answers FAILED with the reason and no text, even with a result an earlier attempt left behind', async () => {
    const { id, jobId } = await submitted('retried');
    // Attempt 1 wrote its result, then died; Batch retries the job.
    await putResult(jobId, 'Stale text from attempt one');

    proxy.setStatus('RUNNING');
    const running = body(await get(id));
    expect(running).toMatchObject({ id, status: 'RUNNING' });
    expect(running.result).toBeUndefined();

    const reason = 'Essential container in task exited (attempt 2: OutOfMemoryError)';
    proxy.setStatus('FAILED', reason);
    const failed = await get(id);
    expect(failed.statusCode).toBe(200);
    const f = body(failed);
    expect(f).toEqual({ id, createdAt: expect.any(String), updatedAt: expect.any(String), status: 'FAILED', statusReason: reason });
    expect(failed.body).not.toContain('Stale text');
    expect(await record(id)).toMatchObject({ state: 'FAILED', statusReason: reason });

    // FAILED is final: even when Batch (moto's own answer) calls the job SUCCEEDED, the result stays unreported.
    proxy.setStatus(undefined);
    const later = await get(id);
    expect(body(later)).toMatchObject({ status: 'FAILED', statusReason: reason });
    expect(later.body).not.toContain('Stale text');
  });

  test('without a reason from Batch, the first and every later answer give the same recorded reason', async () => {
    const { id } = await submitted('no-reason');
    proxy.setStatus('FAILED');
    // moto's own job carries no reason for a job it never failed; the handler must not answer undefined once and a text later.
    const first = body(await get(id));
    const second = body(await get(id));
    expect(first.status).toBe('FAILED');
    expect(typeof first.statusReason).toBe('string');
    expect(second.statusReason).toBe(first.statusReason);
    expect((await record(id)).statusReason).toBe(first.statusReason);
  });
});

describe('a job Batch calls SUCCEEDED', () => {
  test('without its result is RESULT_MISSING (never SUCCEEDED without text), then SUCCEEDED once the result is there', async () => {
    const { id, jobId } = await submitted('late-result');
    proxy.setStatus('SUCCEEDED');
    const missing = body(await get(id));
    expect(missing).toMatchObject({ status: 'RESULT_MISSING', message: expect.stringContaining(`jobs/${jobId}/output/result.json`) });
    expect(missing.result).toBeUndefined();
    expect((await record(id)).state).toBe('SUBMITTED');

    await putResult(jobId, 'Harbour street 12');
    expect(body(await get(id))).toMatchObject({ status: 'SUCCEEDED', result: { text: 'Harbour street 12', pages: 1 } });
    expect((await record(id)).state).toBe('SUCCEEDED');
  });

  test('whose result the lifecycle deleted is 410 EXPIRED with no text', async () => {
    const { id, jobId } = await submitted('deleted-result');
    await putResult(jobId, 'Quarterly report');
    proxy.setStatus('SUCCEEDED');
    expect(body(await get(id)).status).toBe('SUCCEEDED');
    await m.s3.send(new DeleteObjectCommand({ Bucket: m.bucket, Key: `jobs/${jobId}/output/result.json` }));
    const gone = await get(id);
    expect(gone.statusCode).toBe(410);
    expect(body(gone)).toMatchObject({ id, status: 'EXPIRED', message: expect.stringContaining('retention-days') });
    expect(body(gone).result).toBeUndefined();
  });

  test('a request past its retention is 410 EXPIRED even while DynamoDB and S3 have not deleted it yet', async () => {
    const { id, jobId } = await submitted('past-retention');
    await putResult(jobId, 'Museum garden');
    proxy.setStatus('SUCCEEDED');
    expect(body(await get(id, { ...deps, now: at(7 * 86400 - 1) })).status).toBe('SUCCEEDED');
    const expired = await get(id, { ...deps, now: at(7 * 86400) });
    expect(expired.statusCode).toBe(410);
    expect(body(expired)).toMatchObject({ status: 'EXPIRED', message: 'the request expired at 2026-12-05T12:00:00.000Z (retention-days 7); submit the image again' });
    expect(expired.body).not.toContain('Museum garden');
  });
});

describe('an upload request that was never started', () => {
  const created = async (contentLength = 1000) => {
    const res = await createOcr(event('POST', '/ocr', { body: { upload: { contentType: 'image/png', contentLength } } }), deps);
    expect(res.statusCode).toBe(201);
    const c = body(res);
    expect(c.upload.expiresAt).toBe('2026-11-28T12:05:00.000Z');
    return c.id as string;
  };

  test('is AWAITING_UPLOAD with the URL expiry until then, and 410 UPLOAD_EXPIRED (GET and start) after it, submitting nothing', async () => {
    const id = await created();
    const waiting = await get(id, { ...deps, now: at(299) });
    expect(body(waiting)).toMatchObject({ status: 'AWAITING_UPLOAD', uploadExpiresAt: '2026-11-28T12:05:00.000Z', links: { start: `/ocr/${id}/start` } });

    const expired = await get(id, { ...deps, now: at(300) });
    expect(expired.statusCode).toBe(410);
    expect(body(expired)).toMatchObject({
      status: 'UPLOAD_EXPIRED',
      message: 'the upload URL expired at 2026-11-28T12:05:00.000Z and nothing was uploaded: POST /ocr again for a new request and URL',
    });
    expect(body(expired).links).toBeUndefined();

    const started = await start(id, { ...deps, now: at(300) });
    expect(started.statusCode).toBe(410);
    expect(body(started)).toMatchObject({ id, status: 'UPLOAD_EXPIRED' });
    expect(await record(id)).toMatchObject({ state: 'AWAITING_UPLOAD' });
    expect((await record(id)).jobId).toBeUndefined();
  });

  test('whose upload arrived is UPLOADED (start it), also after the URL expired, and start then submits', async () => {
    const id = await created(10);
    await m.s3.send(new PutObjectCommand({ Bucket: m.bucket, Key: `tenants/${TENANT}/ocr-uploads/${id}.png`, Body: Buffer.alloc(10), ContentType: 'image/png' }));
    const later = { ...deps, now: at(3600) };
    expect(body(await get(id, later))).toMatchObject({ status: 'UPLOADED', links: { start: `/ocr/${id}/start` } });
    expect((await start(id, later)).statusCode).toBe(202);
    expect((await record(id)).state).toBe('SUBMITTED');
  });

  test('whose upload is not what was signed says so, before and after the URL expired', async () => {
    const id = await created(1000);
    await m.s3.send(new PutObjectCommand({ Bucket: m.bucket, Key: `tenants/${TENANT}/ocr-uploads/${id}.png`, Body: Buffer.alloc(10), ContentType: 'image/png' }));
    const mismatch = 'the uploaded object (image/png, 10 bytes) is not what the URL was signed for (image/png, 1000 bytes)';
    const before = await get(id, { ...deps, now: at(10) });
    expect({ code: before.statusCode, ...body(before) }).toMatchObject({ code: 200, status: 'AWAITING_UPLOAD', message: expect.stringContaining(mismatch) });
    const after = await get(id, { ...deps, now: at(301) });
    expect({ code: after.statusCode, ...body(after) }).toMatchObject({ code: 410, status: 'UPLOAD_EXPIRED', message: expect.stringContaining(mismatch) });
    expect((await start(id, { ...deps, now: at(301) })).statusCode).toBe(409);
  });
});
