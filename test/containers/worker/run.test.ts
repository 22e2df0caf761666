import * as http from 'http';
import { S3Client } from '@aws-sdk/client-s3';
import { parseConfig } from '../../../containers/worker/src/config';
import { silentLogger } from '../../../containers/worker/src/log';
import { exitCodeFor, runWorker } from '../../../containers/worker/src/run';
import { sampleBuffer } from '../../../containers/worker/src/sample-data';
import { motoEnv } from '../../support/moto';
import { createBucket, motoS3, put, uniqueBucket } from './support/s3';

const BUCKET = uniqueBucket('worker-run');
let s3: S3Client;
const savedEnv = { ...process.env };

beforeAll(async () => {
  // runWorker builds its clients from the environment, as in the container
  Object.assign(process.env, motoEnv());
  s3 = motoS3();
  await createBucket(s3, BUCKET);
});
afterAll(() => {
  process.env = savedEnv;
  s3.destroy();
});

test('never calls CALLBACK_URL itself: the completion path calls it once per job, signed', async () => {
  await put(s3, BUCKET, 'in/c.jsonl', sampleBuffer({ count: 100, seed: 8 }));
  const received: unknown[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  const write = process.stdout.write;
  try {
    process.stdout.write = (() => true) as typeof process.stdout.write; // the EMF line
    const result = await runWorker(
      parseConfig({
        JOB_ID: 'cb-1',
        OPERATION: 'aggregate-defects',
        INPUT_S3_BUCKET: BUCKET,
        INPUT_S3_KEY: 'in/c.jsonl',
        OUTPUT_S3_BUCKET: BUCKET,
        OUTPUT_S3_KEY: 'out/c.json',
        TENANT_ID: 'acme',
        USER_ID: 'u7',
        CALLBACK_URL: `http://127.0.0.1:${port}/done`,
      }),
      silentLogger,
    );
    expect(exitCodeFor(result)).toBe(0);
  } finally {
    process.stdout.write = write;
    server.closeAllConnections();
    server.close();
  }
  expect(received).toEqual([]);
});
