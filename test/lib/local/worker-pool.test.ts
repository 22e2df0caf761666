import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { writeSampleFile } from '../../../containers/worker/src/sample-data';
import { EmbeddedS3, linkLocalInput, linkObject, startEmbeddedS3 } from '../../../lib/local/embedded-s3';
import { bundleWorker, poolEnvironment } from '../../../lib/local/run-local';
import { WorkerPool } from '../../../lib/local/worker-pool';

/**
 * The pool's workers reading the input in place (WORKER_LOCAL_INPUT_ROOT, as the runner sets it): the
 * same chunk gives the same result document as read from the S3 server, and it is really read from the
 * file (the object is not in the S3 store when the in-place chunk runs).
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-pool-test-'));
const storeDir = path.join(tmp, 'store');
const input = path.join(tmp, 'defects.jsonl');
const KEY = 'inputs/run-1/defects.jsonl';
let server: EmbeddedS3;
let s3: S3Client;
let workerJs: string;

beforeAll(async () => {
  await writeSampleFile(input, { count: 50_000, seed: 3 });
  server = await startEmbeddedS3(storeDir, 'local-runs');
  s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  workerJs = (await bundleWorker({ directory: path.join(tmp, 'cache') })).file;
}, 300_000);

afterAll(async () => {
  s3?.destroy();
  await server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function runChunk(localInputRoot: string | undefined, outKey: string): Promise<{ status: number; doc: unknown }> {
  const env = poolEnvironment({ processEnv: process.env, endpoint: server.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, localInputRoot });
  const pool = new WorkerPool({ workerJs, size: 1, env });
  try {
    const contract: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) if (v !== undefined) contract[k] = v;
    Object.assign(contract, {
      JOB_ID: `pool-test-${outKey.replace(/\W/g, '-')}`,
      OPERATION: 'aggregate-defects',
      INPUT_S3_BUCKET: 'local-runs',
      INPUT_S3_KEY: KEY,
      // A chunk in the middle of the object: ranged reads, the chunk rule at both ends.
      CHUNK_START_BYTE: '1000000',
      CHUNK_END_BYTE: '4000000',
      OUTPUT_S3_BUCKET: 'local-runs',
      OUTPUT_S3_KEY: outKey,
    });
    const outcome = await pool.run(contract);
    if (outcome.httpStatus !== 200) return { status: outcome.httpStatus, doc: outcome.body };
    const res = await s3.send(new GetObjectCommand({ Bucket: 'local-runs', Key: outKey }));
    return { status: 200, doc: JSON.parse(await res.Body!.transformToString()) };
  } finally {
    await pool.close();
  }
}

test('a chunk read in place gives the same result as read from the S3 server, and does not need the object in S3', async () => {
  const root = path.join(tmp, 'local-input');
  const inPlace = linkLocalInput(root, 'local-runs', KEY, input);
  // Not in the S3 store: only the local file can serve this chunk.
  const local = await runChunk(root, 'out/local.json');
  inPlace.remove();
  expect(local.status).toBe(200);

  // Without the local root the same chunk fails (no object) ...
  expect((await runChunk(undefined, 'out/missing.json')).status).not.toBe(200);
  // ... and with the object in the S3 store it gives the same document.
  const stored = linkObject(storeDir, 'local-runs', KEY, input);
  const fromS3 = await runChunk(undefined, 'out/s3.json');
  stored.remove();
  expect(fromS3.status).toBe(200);
  expect(local.doc).toEqual(fromS3.doc);
  expect((local.doc as { records: number }).records).toBeGreaterThan(10_000);
}, 300_000);
