import { BatchClient, DescribeJobsCommand, RegisterJobDefinitionCommand } from '@aws-sdk/client-batch';
import { CreateTableCommand, DynamoDBClient, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectTaggingCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { execFileSync } from 'child_process';
import { createOcr } from '../../../lambda/ocr-api/create';
import { OcrApiDeps } from '../../../lambda/ocr-api/shared';
import { startOcr } from '../../../lambda/ocr-api/start';
import { getOcr } from '../../../lambda/ocr-api/status';
import { characterErrorRate } from '../../../containers/worker/src/ocr/sample-images';
import { BatchJobClient } from '../../../lib/client';
import { runBatchJob } from '../../../lib/local/run-batch-job';
import { motoClientConfig, motoEnv } from '../../support/moto';
import { createMotoBatch, MotoBatch } from '../../lib/client/moto-batch';

/**
 * The OCR API end to end, locally and with the real parts: the POST /ocr, POST /ocr/{id}/start and
 * GET /ocr/{id} handlers called with API Gateway events; S3 (a real HTTP PUT to the presigned URL),
 * DynamoDB (job records) and Batch in moto_server; the job routed by the SDK to the Fargate queue and the
 * OCR job definition; Batch's part played by the local job runner, which starts the real worker running
 * `ocr` (tesseract.js) with the job's environment.
 */
jest.setTimeout(300_000);

const ACCOUNT = '123456789012';
const TENANT = `${ACCOUNT}:role:ocr-app`;
const OTHER = `arn:aws:sts::${ACCOUNT}:assumed-role/other-app/s1`;
const CALLER = `arn:aws:sts::${ACCOUNT}:assumed-role/ocr-app/session-1`;
const LINES = ['Invoice 48213 paid in full', 'Harbour street delivery 2026', 'Quarterly report approved'];
/** The accuracy test's bound (test/containers/worker/operations/ocr.test.ts): 3 % character error rate. */
const MAX_CER = 0.03;

let ec2: MotoBatch;
let fargate: MotoBatch;
let ocrDefinitionArn: string;
let secrets: SecretsManagerClient;
let deps: OcrApiDeps;

/** An image with known text, drawn by ImageMagick in DejaVu Sans (a renderer other than the accuracy set's librsvg). */
function textImage(lines: readonly string[]): Buffer {
  const args = ['-size', '1000x260', 'xc:white', '-font', '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '-pointsize', '34', '-fill', 'black'];
  lines.forEach((l, i) => args.push('-annotate', `+40+${70 + i * 70}`, l));
  return execFileSync('convert', [...args, 'png:-'], { maxBuffer: 16 * 1024 * 1024 });
}

function event(method: string, path: string, opts: { body?: unknown; id?: string; caller?: string; origin?: string } = {}): APIGatewayProxyEvent {
  return {
    httpMethod: method,
    path,
    resource: opts.id ? path.replace(opts.id, '{id}') : path,
    body: opts.body === undefined ? null : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
    headers: opts.origin ? { Origin: opts.origin } : {},
    pathParameters: opts.id ? { id: opts.id } : null,
    requestContext: { identity: { userArn: opts.caller ?? CALLER } },
  } as unknown as APIGatewayProxyEvent;
}

const body = (res: APIGatewayProxyResult) => JSON.parse(res.body) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Prints a request and its response for docs/workloads/ocr-api.md. */
function show(request: string, res: APIGatewayProxyResult): void {
  const b = body(res);
  const shown = typeof b.upload?.url === 'string' ? { ...b, upload: { ...b.upload, url: `${b.upload.url.slice(0, 80)}...` } } : b;
  console.log(`${request}\n-> ${res.statusCode} ${JSON.stringify(shown, null, 2)}`);
}

beforeAll(async () => {
  ec2 = await createMotoBatch('ocr-api-ec2');
  fargate = await createMotoBatch('ocr-api-fargate');
  secrets = new SecretsManagerClient(motoClientConfig());
  // What the platform stack's OcrJob is: Fargate, 2 vCPU / 4 GiB, the `ocr` image target.
  ocrDefinitionArn = (
    await fargate.batch.send(
      new RegisterJobDefinitionCommand({
        jobDefinitionName: `ocr-job-${Date.now().toString(36)}`,
        type: 'container',
        platformCapabilities: ['FARGATE'],
        containerProperties: { image: 'worker:ocr', resourceRequirements: [{ type: 'VCPU', value: '2' }, { type: 'MEMORY', value: '4096' }] },
      }),
    )
  ).jobDefinitionArn!;
  const ddbClient = new DynamoDBClient({ ...motoClientConfig(), maxAttempts: 1 });
  const table = `ocr-jobs-${Date.now().toString(36)}`;
  await ddbClient.send(
    new CreateTableCommand({ TableName: table, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }] }),
  );
  await ddbClient.send(new UpdateTimeToLiveCommand({ TableName: table, TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true } }));
  // The default target is the EC2 queue; `ocr` declares FARGATE:ocr, so the SDK's routing must send it to the Fargate route.
  const client = new BatchJobClient({
    jobQueue: ec2.jobQueueArn,
    jobDefinition: ec2.jobDefinitionArn,
    routes: { 'FARGATE:ocr': { jobQueue: fargate.jobQueueArn, jobDefinition: ocrDefinitionArn } },
    inputBucket: ec2.bucket,
    clients: { batch: ec2.batch as BatchClient, s3: ec2.s3, logs: ec2.logs },
    fairShare: false,
    jobNamePrefix: 'ocr',
  });
  deps = {
    client,
    s3: ec2.s3,
    ddb: DynamoDBDocumentClient.from(ddbClient),
    table,
    inputBucket: ec2.bucket,
    outputBucket: ec2.bucket,
    maxUploadBytes: 5 * 1024 * 1024,
    uploadExpiresSeconds: 300,
    retentionDays: 7,
    maxInlineTextBytes: 256 * 1024,
  };
});

test('POST /ocr (upload) -> PUT to the presigned URL -> start -> Fargate route -> worker runs ocr -> GET /ocr/{id} returns the text', async () => {
  const png = textImage(LINES);

  const created = await createOcr(event('POST', '/ocr', { body: { upload: { contentType: 'image/png', contentLength: png.length } } }), deps);
  show(`POST /ocr {"upload":{"contentType":"image/png","contentLength":${png.length}}}`, created);
  expect(created.statusCode).toBe(201);
  const c = body(created);
  expect(c).toMatchObject({ status: 'AWAITING_UPLOAD', links: { self: `/ocr/${c.id}`, start: `/ocr/${c.id}/start` } });
  const url = new URL(c.upload.url);
  expect(decodeURIComponent(url.pathname)).toBe(`/${ec2.bucket}/tenants/${TENANT}/ocr-uploads/${c.id}.png`);
  // Type, size and retention tag are signed: S3 refuses a PUT that differs.
  expect(url.searchParams.get('X-Amz-SignedHeaders')!.split(';')).toEqual(expect.arrayContaining(['content-type', 'content-length', 'x-amz-tagging']));
  expect(Number(url.searchParams.get('X-Amz-Expires'))).toBe(300);

  // Not done yet: status only, no result.
  const early = await getOcr(event('GET', `/ocr/${c.id}`, { id: c.id }), deps);
  show(`GET /ocr/${c.id} (before the upload)`, early);
  expect(early.statusCode).toBe(200);
  expect(body(early)).toMatchObject({ id: c.id, status: 'AWAITING_UPLOAD' });
  expect(body(early).result).toBeUndefined();
  const tooSoon = await startOcr(event('POST', `/ocr/${c.id}/start`, { id: c.id }), deps);
  expect(tooSoon.statusCode).toBe(409);
  expect(body(tooSoon).message).toMatch(/upload has not arrived/);

  // The client uploads with a plain HTTP PUT and the headers the API returned.
  const put = await fetch(c.upload.url, { method: 'PUT', headers: c.upload.headers, body: png });
  expect(put.status).toBe(200);
  const tags = await ec2.s3.send(new GetObjectTaggingCommand({ Bucket: ec2.bucket, Key: `tenants/${TENANT}/ocr-uploads/${c.id}.png` }));
  expect(tags.TagSet).toEqual([{ Key: 'retention-days', Value: '7' }]);

  const started = await startOcr(event('POST', `/ocr/${c.id}/start`, { id: c.id }), deps);
  show(`POST /ocr/${c.id}/start`, started);
  expect(started.statusCode).toBe(202);
  const again = await startOcr(event('POST', `/ocr/${c.id}/start`, { id: c.id }), deps);
  expect({ code: again.statusCode, status: body(again).status }).toEqual({ code: 200, status: 'SUBMITTED' });

  // Routing: one job, in the Fargate queue, with the OCR job definition.
  const record = (await deps.ddb.send(new GetCommand({ TableName: deps.table, Key: { id: c.id } }))).Item!;
  const job = (await ec2.batch.send(new DescribeJobsCommand({ jobs: [record.batchJobId] }))).jobs![0];
  expect({ queue: job.jobQueue, definition: job.jobDefinition }).toEqual({ queue: fargate.jobQueueArn, definition: ocrDefinitionArn });

  // Submitted, not run yet (moto's Batch already calls the job SUCCEEDED): status only, never a success without the text.
  const pending = body(await getOcr(event('GET', `/ocr/${c.id}`, { id: c.id }), deps));
  expect(pending.status).not.toBe('SUCCEEDED');
  expect(pending.result).toBeUndefined();

  // Batch would start the container now: the local runner runs the worker with the job's environment.
  const run = await runBatchJob({ batch: ec2.batch, secrets, batchJobId: record.batchJobId, hostEnvironment: motoEnv() as Record<string, string> });
  expect({ exitCode: run.exitCode, stderr: run.exitCode === 0 ? '' : run.stderr }).toEqual({ exitCode: 0, stderr: '' });
  // The worker's EMF line, which the dashboard's pages-per-minute and confidence widgets read.
  const emf = run.stdout.split('\n').filter((l) => l.includes('"OcrPages"')).map((l) => JSON.parse(l));
  expect(emf).toEqual([expect.objectContaining({ Operation: 'ocr', OcrPages: 1 })]);

  const done = await getOcr(event('GET', `/ocr/${c.id}`, { id: c.id }), deps);
  show(`GET /ocr/${c.id} (done)`, done);
  expect(done.statusCode).toBe(200);
  const d = body(done);
  expect(d).toMatchObject({ id: c.id, status: 'SUCCEEDED', result: { pages: 1 } });
  const cer = characterErrorRate(d.result.text, LINES.join('\n'));
  console.log(`OCR API end to end: CER ${(cer * 100).toFixed(2)} %, mean confidence ${d.result.meanConfidence}`);
  expect(cer).toBeLessThan(MAX_CER);
  expect(d.result.perPage).toEqual([expect.objectContaining({ page: 1, text: expect.any(String), meanConfidence: expect.any(Number) })]);
  expect(characterErrorRate(d.result.perPage[0].text, LINES.join('\n'))).toBeLessThan(MAX_CER);
  expect(d.result.meanConfidence).toBeGreaterThan(50);
});

test('POST /ocr with a key in the caller\'s prefix submits at once; the text comes back inline or, above the cap, as a link', async () => {
  const key = `tenants/${TENANT}/scans/receipt.png`;
  await ec2.s3.send(new PutObjectCommand({ Bucket: ec2.bucket, Key: key, Body: textImage(['Museum garden 73105']), ContentType: 'image/png' }));
  const created = await createOcr(event('POST', '/ocr', { body: { key } }), deps);
  show(`POST /ocr {"key":"${key}"}`, created);
  expect(created.statusCode).toBe(202);
  const { id } = body(created);
  const record = (await deps.ddb.send(new GetCommand({ TableName: deps.table, Key: { id } }))).Item!;
  const run = await runBatchJob({ batch: ec2.batch, secrets, batchJobId: record.batchJobId, hostEnvironment: motoEnv() as Record<string, string> });
  expect(run.exitCode).toBe(0);

  const inline = body(await getOcr(event('GET', `/ocr/${id}`, { id }), deps));
  expect(characterErrorRate(inline.result.text, 'Museum garden 73105')).toBeLessThan(MAX_CER);
  const small = await getOcr(event('GET', `/ocr/${id}`, { id }), { ...deps, maxInlineTextBytes: 10 });
  show(`GET /ocr/${id} (text above the inline cap)`, small);
  const linked = body(small);
  expect(linked).toMatchObject({ status: 'SUCCEEDED', result: { textTruncated: true, pages: 1 } });
  expect(linked.result.text).toBeUndefined();
  const text = await (await fetch(linked.result.textUrl)).text();
  expect(text).toBe(inline.result.text);
});

describe('bad input', () => {
  test('a content type the operation cannot read is refused, naming the field, the value and what is allowed', async () => {
    const res = await createOcr(event('POST', '/ocr', { body: { upload: { contentType: 'application/pdf', contentLength: 100 } } }), deps);
    show('POST /ocr {"upload":{"contentType":"application/pdf","contentLength":100}}', res);
    expect(res.statusCode).toBe(400);
    expect(body(res).errors).toEqual([expect.objectContaining({ field: 'upload.contentType', value: 'application/pdf', message: expect.stringContaining('image/png, image/jpeg, image/tiff') })]);
  });

  test('an upload above the size limit, a missing size, neither or both forms are refused', async () => {
    const big = await createOcr(event('POST', '/ocr', { body: { upload: { contentType: 'image/png', contentLength: 6 * 1024 * 1024 } } }), deps);
    expect(body(big).errors).toEqual([expect.objectContaining({ field: 'upload.contentLength', message: `contentLength must be at most ${5 * 1024 * 1024} bytes` })]);
    const noSize = await createOcr(event('POST', '/ocr', { body: { upload: { contentType: 'image/png' } } }), deps);
    expect(body(noSize).errors).toEqual([expect.objectContaining({ field: 'upload.contentLength' })]);
    const neither = await createOcr(event('POST', '/ocr', { body: {} }), deps);
    const both = await createOcr(event('POST', '/ocr', { body: { key: 'tenants/x/a.png', upload: { contentType: 'image/png', contentLength: 10 } } }), deps);
    for (const r of [neither, both]) {
      expect(r.statusCode).toBe(400);
      expect(body(r).errors[0].message).toMatch(/either upload .* or key/);
    }
    const extra = await createOcr(event('POST', '/ocr', { body: { key: `tenants/${TENANT}/a.png`, tenantId: 'someone-else' } }), deps);
    expect(body(extra).errors).toEqual([expect.objectContaining({ field: '(body)', message: expect.stringContaining('tenantId') })]);
    const notJson = await createOcr(event('POST', '/ocr', { body: '{oops' }), deps);
    expect(body(notJson).errors).toEqual([{ field: '(body)', message: 'the body must be a JSON object' }]);
  });

  test("a key outside the caller's prefix (another tenant's, the platform's own, a path trick) is refused without looking at it", async () => {
    for (const key of ['tenants/other-tenant/scan.png', 'jobs/abc/inputs.json', `tenants/${TENANT}/../other/scan.png`, 's3://bucket/scan.png']) {
      const res = await createOcr(event('POST', '/ocr', { body: { key } }), deps);
      if (key.startsWith('tenants/other')) show(`POST /ocr {"key":"${key}"}`, res);
      expect(res.statusCode).toBe(400);
      expect(body(res).errors).toEqual([expect.objectContaining({ field: 'key', value: key, message: expect.stringContaining(`tenants/${TENANT}/`) })]);
    }
  });

  test('a key in the caller\'s prefix that names no object is a 400 naming it', async () => {
    const key = `tenants/${TENANT}/scans/missing.png`;
    const res = await createOcr(event('POST', '/ocr', { body: { key } }), deps);
    expect(res.statusCode).toBe(400);
    expect(body(res).errors).toEqual([expect.objectContaining({ field: 'key', value: key, message: expect.stringContaining('no object') })]);
  });

  test("an unknown id, a malformed id and another tenant's request are all 404", async () => {
    const unknown = await getOcr(event('GET', '/ocr/0e3c1d52-7d6f-4d0e-9f3e-2f8a51d0c000', { id: '0e3c1d52-7d6f-4d0e-9f3e-2f8a51d0c000' }), deps);
    show('GET /ocr/0e3c1d52-7d6f-4d0e-9f3e-2f8a51d0c000', unknown);
    expect(unknown.statusCode).toBe(404);
    expect((await getOcr(event('GET', '/ocr/__proto__', { id: '__proto__' }), deps)).statusCode).toBe(404);
    const mine = body(await createOcr(event('POST', '/ocr', { body: { upload: { contentType: 'image/jpeg', contentLength: 1000 } } }), deps));
    expect((await getOcr(event('GET', `/ocr/${mine.id}`, { id: mine.id, caller: OTHER }), deps)).statusCode).toBe(404);
    expect((await startOcr(event('POST', `/ocr/${mine.id}/start`, { id: mine.id, caller: OTHER }), deps)).statusCode).toBe(404);
  });

  test('an upload of another size than the URL was signed for is not started', async () => {
    const c = body(await createOcr(event('POST', '/ocr', { body: { upload: { contentType: 'image/png', contentLength: 1000 } } }), deps));
    // Written directly (moto does not check presigned signatures the way S3 does): 10 bytes instead of 1000.
    await ec2.s3.send(new PutObjectCommand({ Bucket: ec2.bucket, Key: `tenants/${TENANT}/ocr-uploads/${c.id}.png`, Body: Buffer.alloc(10), ContentType: 'image/png' }));
    const res = await startOcr(event('POST', `/ocr/${c.id}/start`, { id: c.id }), deps);
    expect(res.statusCode).toBe(409);
    expect(body(res).message).toMatch(/10 bytes\) is not what the URL was signed for \(image\/png, 1000 bytes\)/);
    expect(body(await getOcr(event('GET', `/ocr/${c.id}`, { id: c.id }), deps)).status).toBe('AWAITING_UPLOAD');
  });

  test('a request without a caller identity is refused', async () => {
    const e = event('POST', '/ocr', { body: { upload: { contentType: 'image/png', contentLength: 10 } } });
    (e.requestContext as { identity: object }).identity = {};
    expect((await createOcr(e, deps)).statusCode).toBe(403);
  });
});
