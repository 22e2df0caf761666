import { S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'child_process';
import { defectRecords, sampleBuffer } from '../../../containers/worker/src/sample-data';
import { startPhotoServer } from './support/photo-server';
import { referenceAggregate } from './support/reference';
import { createBucket, exists, getBuffer, getJsonObject, motoS3, put, uniqueBucket } from './support/s3';
import { startS3rver } from './support/s3rver';
import { REPO_ROOT, runWorkerProcess, summaryOf, WORKER_COMMAND } from './support/worker-process';
import { motoEnv } from '../../support/moto';
import { zipEntries, unzipTest } from './support/zip';

/**
 * The worker entrypoint as a child process, exactly as `npm run worker` runs it. Each start costs about
 * a second (tsx), so only what needs a real process is here; edge cases are in engine/*.test.ts.
 */
const BUCKET = uniqueBucket('worker-main');
let s3: S3Client;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, BUCKET);
});
afterAll(() => s3.destroy());

const contract = (extra: Record<string, string>): Record<string, string> => ({
  JOB_ID: 'job-main',
  INPUT_S3_BUCKET: BUCKET,
  OUTPUT_S3_BUCKET: BUCKET,
  ...extra,
});

test('aggregate-defects through the entrypoint writes the result and logs a summary and EMF metrics', async () => {
  await put(s3, BUCKET, 'in/d.jsonl', sampleBuffer({ count: 20_000, seed: 21 }));
  const run = await runWorkerProcess(
    contract({ OPERATION: 'aggregate-defects', INPUT_S3_KEY: 'in/d.jsonl', OUTPUT_S3_KEY: 'out/d.json', TENANT_ID: 't1' }),
  );
  expect(run.code).toBe(0);
  expect(await getJsonObject(s3, BUCKET, 'out/d.json')).toEqual(referenceAggregate(defectRecords({ count: 20_000, seed: 21 })));
  expect(summaryOf(run)).toMatchObject({ jobId: 'job-main', status: 'succeeded', records: 20_000, rejected: 0 });
  expect(summaryOf(run)).toEqual(expect.objectContaining({ bytes: expect.any(Number), durationMs: expect.any(Number), recordsPerSecond: expect.any(Number) }));
  const emf = run.logs.find((l) => '_aws' in l) as Record<string, any>;
  expect(emf._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'CdkBatchPlatform/Worker', Dimensions: [['Operation'], ['Operation', 'TenantId']] });
  expect(emf._aws.CloudWatchMetrics[0].Metrics).toContainEqual({ Name: 'DurationMs', Unit: 'Milliseconds' });
  expect(typeof emf.DurationMs).toBe('number');
  expect(emf).toMatchObject({ Operation: 'aggregate-defects', TenantId: 't1', Records: 20_000, RejectedRecords: 0 });
});

test('transform-records through the entrypoint processes the manifest entry of its array index', async () => {
  const body = '{"id":1,"x":"a"}\n{"id":2,"x":"b"}\n{"id":3,"x":"c"}\n';
  await put(s3, BUCKET, 'in/t.jsonl', body);
  const second = body.indexOf('{"id":2');
  await put(
    s3,
    BUCKET,
    'runs/r1/manifest.jsonl',
    [
      { index: 0, bucket: BUCKET, key: 'in/t.jsonl', startByte: 0, endByte: second, estimatedRecords: 1, route: 'lambda' },
      { index: 1, bucket: BUCKET, key: 'in/t.jsonl', startByte: second, endByte: body.length, estimatedRecords: 2, route: 'batch' },
    ]
      .map((l) => JSON.stringify(l))
      .join('\n'),
  );
  const run = await runWorkerProcess({
    JOB_ID: 'job-array',
    OPERATION: 'transform-records',
    OPERATION_CONFIG: JSON.stringify({ rename: { x: 'letter' }, set: { ok: true } }),
    MANIFEST_S3_KEY: 'runs/r1/manifest.jsonl',
    AWS_BATCH_JOB_ARRAY_INDEX: '1',
    OUTPUT_S3_BUCKET: BUCKET,
    OUTPUT_S3_KEY: 'runs/r1/chunks/{index}.jsonl',
  });
  expect(run.code).toBe(0);
  expect((await getBuffer(s3, BUCKET, 'runs/r1/chunks/1.jsonl')).toString()).toBe(
    '{"id":2,"letter":"b","ok":true}\n{"id":3,"letter":"c","ok":true}\n',
  );
});

test('bundle-photos through the entrypoint streams a multipart ZIP to another S3-compatible endpoint', async () => {
  const photos = await startPhotoServer();
  const other = await startS3rver(['r2-photos']);
  try {
    const files = [
      { url: `${photos.base}/ok/big1.jpg?size=${6 * 1024 * 1024}`, name: 'big1.jpg' },
      { url: `${photos.base}/flaky/f.jpg`, name: 'f.jpg' },
      { url: `${photos.base}/ok/big2.jpg?size=${5 * 1024 * 1024}`, name: 'big2.jpg' },
      { url: `${photos.base}/missing/m.jpg`, name: 'm.jpg' },
    ];
    await put(s3, BUCKET, 'jobs/ph/inputs.json', JSON.stringify({ files, concurrency: 2 }));
    const run = await runWorkerProcess(
      contract({
        OPERATION: 'bundle-photos',
        // The photo host is on 127.0.0.1: the operator switch that allows private hosts.
        PHOTOS_ALLOW_PRIVATE_HOSTS: 'true',
        OPERATION_CONFIG: '{"backoffMs":10}',
        INPUT_S3_KEY: 'jobs/ph/inputs.json',
        OUTPUT_S3_BUCKET: 'r2-photos',
        OUTPUT_S3_KEY: 'bundles/ph.zip',
        OUTPUT_S3_ENDPOINT: other.endpoint,
        OUTPUT_S3_REGION: 'auto',
        OUTPUT_S3_ACCESS_KEY_ID: 'S3RVER',
        OUTPUT_S3_SECRET_ACCESS_KEY: 'S3RVER',
        OUTPUT_S3_FORCE_PATH_STYLE: 'true',
        MAX_REJECT_RATIO: '0.5',
      }),
    );
    expect(run.stderr).not.toMatch(/worker: /);
    expect(run.code).toBe(0);
    const r2 = new S3Client({
      endpoint: other.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const zip = await getBuffer(r2, 'r2-photos', 'bundles/ph.zip');
    expect(zipEntries(zip).map((e) => [e.name, e.size])).toEqual([
      ['big1.jpg', 6 * 1024 * 1024],
      ['f.jpg', 30000],
      ['big2.jpg', 5 * 1024 * 1024],
    ]);
    const check = unzipTest(zip);
    if (check) expect(check).toMatchObject({ ok: true });
    const manifest = await getJsonObject(r2, 'r2-photos', 'bundles/ph.zip.manifest.json');
    expect(manifest).toMatchObject({ succeeded: 3, failed: 1, failures: [{ name: 'm.jpg', error: 'HTTP 404' }] });
    expect(await exists(s3, BUCKET, 'bundles/ph.zip')).toBe(false);
    r2.destroy();
  } finally {
    await photos.close();
    await other.close();
  }
});

test('a missing environment variable exits 2 naming it', async () => {
  const run = await runWorkerProcess(contract({ OPERATION: 'aggregate-defects', OUTPUT_S3_KEY: 'out/x.json' }));
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/INPUT_S3_KEY: is required but not set/);
});

test('a reject ratio above MAX_REJECT_RATIO exits 1 with a clear message', async () => {
  await put(s3, BUCKET, 'in/bad.jsonl', '{"segmentId":"a"}\n' + sampleBuffer({ count: 50, seed: 1 }).toString());
  const run = await runWorkerProcess(
    contract({ OPERATION: 'aggregate-defects', INPUT_S3_KEY: 'in/bad.jsonl', OUTPUT_S3_KEY: 'out/bad.json', MAX_REJECT_RATIO: '0.001' }),
  );
  expect(run.code).toBe(1);
  expect(run.stderr).toMatch(/1 of 51 records rejected \(1\.96%\), more than MAX_REJECT_RATIO 0\.001/);
  expect(await exists(s3, BUCKET, 'out/bad.json')).toBe(false);
});

test('SIGTERM at a random moment saves a checkpoint, and reruns resume to the uninterrupted result', async () => {
  const count = 400_000;
  await put(s3, BUCKET, 'in/big.jsonl', sampleBuffer({ count, seed: 33 }));
  const env = contract({ OPERATION: 'aggregate-defects', INPUT_S3_KEY: 'in/big.jsonl', OUTPUT_S3_KEY: 'out/big.json' });
  const first = await runWorkerProcess(env, { sigtermAfterMs: Math.floor(Math.random() * 300) });
  expect(first.code).toBe(143);
  expect(summaryOf(first)).toMatchObject({ status: 'interrupted' });
  expect(await exists(s3, BUCKET, 'out/big.json.checkpoint.json')).toBe(true);
  expect(await exists(s3, BUCKET, 'out/big.json')).toBe(false);

  const second = await runWorkerProcess(env, { sigtermAfterMs: 200 + Math.floor(Math.random() * 300) });
  expect(second.logs.some((l) => l.message === 'resuming from checkpoint')).toBe(true);
  if (summaryOf(second)?.status !== 'succeeded') {
    const third = await runWorkerProcess(env);
    expect(third.code).toBe(0);
  }
  expect(await getJsonObject(s3, BUCKET, 'out/big.json')).toEqual(referenceAggregate(defectRecords({ count, seed: 33 })));
  expect(await exists(s3, BUCKET, 'out/big.json.checkpoint.json')).toBe(false);
});

test('SIGTERM to the `npm run worker` process reaches the worker: it checkpoints and exits 143, and nothing keeps running', async () => {
  await put(s3, BUCKET, 'in/npm.jsonl', sampleBuffer({ count: 400_000, seed: 34 }));
  const child = spawn('npm', ['run', '--silent', 'worker'], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH!,
      HOME: process.env.HOME ?? '/tmp',
      ...motoEnv(),
      ...contract({ OPERATION: 'aggregate-defects', INPUT_S3_KEY: 'in/npm.jsonl', OUTPUT_S3_KEY: 'out/npm.json' }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let workerPid = 0;
  const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    const m = /"message":"processing".*?"pid":(\d+)/.exec(stdout);
    if (m && !workerPid) {
      workerPid = Number(m[1]);
      // the npm process, not the worker: as a terminal's Ctrl-C handler or a process supervisor would
      setTimeout(() => child.kill('SIGTERM'), 100);
    }
  });
  const code = await closed;
  expect(workerPid).toBeGreaterThan(0);
  expect(stdout).toMatch(/"message":"SIGTERM received; stopping at the next record boundary and saving a checkpoint"/);
  expect(stdout).toMatch(/"status":"interrupted"/);
  expect(code).toBe(143);
  expect(() => process.kill(workerPid, 0)).toThrow(/ESRCH/);
  expect(await exists(s3, BUCKET, 'out/npm.json.checkpoint.json')).toBe(true);
});

test('day keys do not depend on the machine time zone (worker under TZ=America/Los_Angeles)', async () => {
  const lines = [
    '{"segmentId":"a","severity":"low","lat":1,"lon":2,"detectedAt":"2024-05-01T20:00:00"}',
    '{"segmentId":"a","severity":"low","lat":1,"lon":2,"detectedAt":"2024-05-01T20:00:00Z"}',
    '{"segmentId":"a","severity":"low","lat":1,"lon":2,"detectedAt":"2024-05-01T20:00:00-07:00"}',
  ];
  await put(s3, BUCKET, 'in/tz.jsonl', lines.join('\n'));
  const env = { OPERATION: 'aggregate-defects', INPUT_S3_KEY: 'in/tz.jsonl', TZ: 'America/Los_Angeles', MAX_REJECT_RATIO: '0.5' };
  const strict = await runWorkerProcess(contract({ ...env, OUTPUT_S3_KEY: 'out/tz-strict.json' }));
  expect(strict.code).toBe(0);
  expect(await getJsonObject(s3, BUCKET, 'out/tz-strict.json')).toMatchObject({ records: 2, rejected: 1, days: { '2024-05-01': 1, '2024-05-02': 1 } });
  const rejects = (await getBuffer(s3, BUCKET, 'out/tz-strict.json.rejects.jsonl')).toString();
  expect(JSON.parse(rejects).reason).toMatch(/detectedAt has no UTC offset/);
  const utc = await runWorkerProcess(contract({ ...env, OUTPUT_S3_KEY: 'out/tz-utc.json', OPERATION_CONFIG: '{"defaultUtcOffset":"Z"}' }));
  expect(utc.code).toBe(0);
  expect(await getJsonObject(s3, BUCKET, 'out/tz-utc.json')).toMatchObject({ records: 3, rejected: 0, days: { '2024-05-01': 2, '2024-05-02': 1 } });
});

test('OPERATION_CONFIG that the operation schema refuses exits 2 naming it', async () => {
  const run = await runWorkerProcess(contract({ OPERATION: 'aggregate-defects', INPUT_S3_KEY: 'in/x.jsonl', OUTPUT_S3_KEY: 'out/x.json', OPERATION_CONFIG: '[1,2]' }));
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/worker: invalid environment: OPERATION_CONFIG: aggregate-defects config: \(root\): .*expected object/);
});

test('--serve answers GET /healthz and POST /process and shuts down on SIGTERM', async () => {
  await put(s3, BUCKET, 'in/serve.csv', sampleBuffer({ count: 500, seed: 4, format: 'csv' }));
  const [cmd, ...args] = WORKER_COMMAND;
  const child = spawn(cmd, [...args, '--serve', '--port', '0'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...motoEnv(), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let workerPid = 0;
  const port = await new Promise<number>((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`exited ${code}`)));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /"message":"serving","port":(\d+),"pid":(\d+)/.exec(stdout);
      if (m) {
        workerPid = Number(m[2]);
        resolve(Number(m[1]));
      }
    });
  });
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  try {
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    const res = await fetch(`http://127.0.0.1:${port}/process`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(
        contract({ OPERATION: 'aggregate-defects', INPUT_S3_KEY: 'in/serve.csv', OUTPUT_S3_KEY: 'out/serve.json' }),
      ),
    });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as Record<string, unknown>;
    expect(answer).toMatchObject({ status: 'succeeded', records: 500 });
    const reference = referenceAggregate(defectRecords({ count: 500, seed: 4, format: 'csv' }));
    expect(await getJsonObject(s3, BUCKET, 'out/serve.json')).toEqual(reference);
    // The answer carries the result document, unless asked to leave it out (the local runner's pool does).
    expect(answer.document).toEqual(reference);
    const brief = await fetch(`http://127.0.0.1:${port}/process?document=omit`, {
      method: 'POST',
      body: JSON.stringify(contract({ OPERATION: 'aggregate-defects', INPUT_S3_KEY: 'in/serve.csv', OUTPUT_S3_KEY: 'out/serve-brief.json' })),
    });
    expect(brief.status).toBe(200);
    const briefAnswer = (await brief.json()) as Record<string, unknown>;
    expect(briefAnswer).toMatchObject({ status: 'succeeded', records: 500, output: { bucket: BUCKET, key: 'out/serve-brief.json' } });
    expect(briefAnswer).not.toHaveProperty('document');
    expect(await getJsonObject(s3, BUCKET, 'out/serve-brief.json')).toEqual(reference);
    const badQuery = await fetch(`http://127.0.0.1:${port}/process?document=none`, {
      method: 'POST',
      body: JSON.stringify(contract({ OPERATION: 'aggregate-defects', INPUT_S3_KEY: 'in/serve.csv', OUTPUT_S3_KEY: 'out/serve-bad.json' })),
    });
    expect(badQuery.status).toBe(400);
    expect(await badQuery.json()).toEqual({ error: 'query parameter document="none" is not allowed; use document=include (the default) or document=omit' });

    const bad = await fetch(`http://127.0.0.1:${port}/process`, { method: 'POST', body: JSON.stringify({ JOB_ID: 'x' }) });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ variable: 'OPERATION' });
  } finally {
    // the server process itself (see support/worker-process.ts on why not the whole group)
    process.kill(workerPid || child.pid!, 'SIGTERM');
  }
  expect(await exited).toBe(0);
  expect(stdout).toMatch(/SIGTERM received; shutting down/);
});
