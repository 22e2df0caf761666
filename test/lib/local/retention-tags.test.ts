import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeSampleFile } from '../../../containers/worker/src/sample-data';
import { LOCAL_BUCKET, runLocal } from '../../../lib/local/run-local';
import { STAGES } from '../../../lib/stacks/stage-config';
import { motoClientConfig } from '../../support/moto';
import { objectTags } from '../../support/object-tags';

/**
 * Expiry end to end: the chunked workflow through the local runner (synthesized state machine, real
 * planner/chunk/aggregate handlers in-process, real worker processes for the Batch route, the S3 states
 * of the state machine) against moto; then every object the run left is listed with its tags.
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retention-tags-'));
let s3: S3Client;
let tags: Record<string, Record<string, string>>;
let result: Awaited<ReturnType<typeof runLocal>>;

beforeAll(async () => {
  s3 = new S3Client(motoClientConfig());
  await s3.send(new CreateBucketCommand({ Bucket: LOCAL_BUCKET })).catch((err: { name?: string }) => {
    if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
  });
  const input = path.join(tmp, 'defects.jsonl');
  await writeSampleFile(input, { count: 12_000, seed: 5, format: 'jsonl' });
  const cfg = motoClientConfig();
  result = await runLocal({
    input,
    operation: 'aggregate-defects',
    output: path.join(tmp, 'result.json'),
    runId: `tags-${Date.now()}`,
    // Two ~5000-record chunks on worker processes (Batch route), the ~2000 remainder in-process (Lambda route).
    chunkRecords: 5_000,
    lambdaMaxRecords: 3_000,
    workers: 2,
    s3: { endpoint: cfg.endpoint, accessKeyId: cfg.credentials.accessKeyId, secretAccessKey: cfg.credentials.secretAccessKey, region: cfg.region },
  });
  tags = await objectTags(s3, LOCAL_BUCKET, `runs/${result.runId}/`);
}, 300_000);

afterAll(() => {
  s3?.destroy();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the run succeeds on both routes', () => {
  expect(result.status).toBe('SUCCEEDED');
  expect(result.invocations.batch).toBeGreaterThanOrEqual(1);
  expect(result.invocations.lambda).toBeGreaterThanOrEqual(1);
});

test('it wrote the manifest, plan, chunk results, done-markers, result and summary', () => {
  const keys = Object.keys(tags).map((k) => k.slice(`runs/${result.runId}/`.length));
  expect(keys).toEqual(expect.arrayContaining(['manifest.jsonl', 'plan.json']));
  expect(keys.some((k) => /^result\.json/.test(k))).toBe(true);
  expect(keys.some((k) => /summary/.test(k))).toBe(true);
  expect(keys.filter((k) => /done/.test(k)).length).toBe(result.chunkCount);
  expect(keys.length).toBeGreaterThanOrEqual(3 + 2 * result.chunkCount);
});

test('every object of the run carries the stage retention tag (dev: 7 days)', () => {
  const expected = String(STAGES.dev.retentionDays);
  expect(expected).toBe('7');
  const untagged = Object.entries(tags).filter(([, t]) => t['retention-days'] !== expected);
  expect(untagged).toEqual([]);
});
