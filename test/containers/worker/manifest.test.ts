import { S3Client } from '@aws-sdk/client-s3';
import { readManifestEntry } from '../../../containers/worker/src/manifest';
import { createBucket, motoS3, put, uniqueBucket } from './support/s3';

/** Manifest errors name the object, the line and the layer (against moto_server). */
const BUCKET = uniqueBucket('worker-manifest');
let s3: S3Client;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, BUCKET);
});
afterAll(() => s3.destroy());

test('reads the entry of the given index', async () => {
  await put(s3, BUCKET, 'runs/ok/manifest.jsonl', '{"index":0,"bucket":"b","key":"k","startByte":0,"endByte":5}\n{"index":1,"bucket":"b","key":"k","startByte":5,"endByte":9}\n');
  expect(await readManifestEntry(s3, BUCKET, 'runs/ok/manifest.jsonl', 1)).toMatchObject({ index: 1, startByte: 5, endByte: 9 });
});

test('a line that is not JSON names the manifest, the line and JSON', async () => {
  await put(s3, BUCKET, 'runs/bad/manifest.jsonl', '{"index":0,"bucket":"b","key":"k","startByte":0,"endByte":5}\n{"index":1,"bucket":\n');
  await expect(readManifestEntry(s3, BUCKET, 'runs/bad/manifest.jsonl', 1)).rejects.toThrow(
    new RegExp(`^manifest s3://${BUCKET}/runs/bad/manifest\\.jsonl line 2: JSON: .*; a manifest is JSON lines as the planner writes them`),
  );
});

test('a missing manifest names the object and the variables to check', async () => {
  await expect(readManifestEntry(s3, BUCKET, 'runs/none/manifest.jsonl', 0)).rejects.toThrow(
    `manifest s3://${BUCKET}/runs/none/manifest.jsonl does not exist; check MANIFEST_S3_BUCKET/MANIFEST_S3_KEY`,
  );
});
