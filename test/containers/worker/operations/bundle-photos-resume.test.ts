import { S3Client } from '@aws-sdk/client-s3';
import type { BundleCheckpoint, BundleManifest } from '../../../../containers/worker/src/operations/bundle-photos';
import { OutputStore, startOutputStore } from '../support/output-store';
import { PhotoServer, startPhotoServer } from '../support/photo-server';
import { createBucket, exists, getBuffer, getJsonObject, motoS3, put, uniqueBucket } from '../support/s3';
import { runWorkerProcess } from '../support/worker-process';
import { unzipTest, zipEntries } from '../support/zip';

/**
 * A Spot interruption as the container sees it: SIGTERM to the worker process in the middle of a
 * bundle, then the retried attempt. The entrypoint runs as `npm run worker` does; the archive goes to
 * a second S3-compatible endpoint.
 */
const IN = uniqueBucket('photos-resume-in');
const OUT = 'photos-resume-out';
let s3: S3Client;
let store: OutputStore;
let out: S3Client;
let photos: PhotoServer;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, IN);
  store = await startOutputStore();
  await store.createBucket(OUT);
  out = store.client();
  photos = await startPhotoServer();
});
afterAll(async () => {
  await photos.close();
  out.destroy();
  await store.close();
  s3.destroy();
});

const env = (outKey: string) => ({
  JOB_ID: 'photos-resume',
  OPERATION: 'bundle-photos',
  // The photo host is on 127.0.0.1: the operator switch that allows private hosts.
  PHOTOS_ALLOW_PRIVATE_HOSTS: 'true',
  OPERATION_CONFIG: JSON.stringify({ backoffMs: 10, partSizeMb: 5, concurrency: 3 }),
  INPUT_S3_BUCKET: IN,
  INPUT_S3_KEY: 'jobs/r/inputs.json',
  OUTPUT_S3_BUCKET: OUT,
  OUTPUT_S3_KEY: outKey,
  MAX_REJECT_RATIO: '0.1',
  ...store.env(),
});

test('SIGTERM mid-bundle saves a checkpoint and leaves no upload open; the retry resumes and writes the same archive', async () => {
  const files = Array.from({ length: 60 }, (_, i) => ({
    url: `${photos.base}/ok/r${String(i).padStart(2, '0')}.jpg?size=${1_000_000 + i * 17_000}`,
    name: `r${String(i).padStart(2, '0')}.jpg`,
  }));
  files.splice(7, 0, { url: `${photos.base}/missing/gone.jpg`, name: 'gone.jpg' });
  await put(s3, IN, 'jobs/r/inputs.json', JSON.stringify({ files }));

  // GIVEN a worker that gets SIGTERM when the photo host has served 30 requests
  let workerPid = 0;
  let requests = 0;
  photos.onRequest = () => {
    if (++requests === 30 && workerPid) process.kill(workerPid, 'SIGTERM');
  };
  const first = await runWorkerProcess(env('bundles/resumed.zip'), {
    onLine: (line) => {
      if (line.includes('"message":"processing"')) workerPid = (JSON.parse(line) as { pid: number }).pid;
    },
  });
  photos.onRequest = undefined;

  // THEN it exits as interrupted, with a checkpoint, no archive and no open multipart upload
  expect(first.code).toBe(143);
  expect(store.openUploads(OUT)).toEqual([]);
  expect(await exists(out, OUT, 'bundles/resumed.zip')).toBe(false);
  const cp = await getJsonObject<BundleCheckpoint>(out, OUT, 'bundles/resumed.zip.checkpoint.json');
  expect(cp.next).toBeGreaterThan(0);
  expect(cp.next).toBeLessThan(files.length);
  expect(cp.parts.length).toBeGreaterThan(0);
  const firstHits = new Map(photos.hits);

  // WHEN the job is retried
  const second = await runWorkerProcess(env('bundles/resumed.zip'));
  expect(second.code).toBe(0);
  expect(second.logs.find((l) => l.message === 'resuming bundle')).toMatchObject({ next: cp.next });
  const hitsAfterResume = new Map(photos.hits);

  // AND, for comparison, an uninterrupted run
  const whole = await runWorkerProcess(env('bundles/whole.zip'));
  expect(whole.code).toBe(0);

  // THEN the resumed archive and manifest equal the uninterrupted run's
  const resumedZip = await getBuffer(out, OUT, 'bundles/resumed.zip');
  const wholeZip = await getBuffer(out, OUT, 'bundles/whole.zip');
  expect(resumedZip.equals(wholeZip)).toBe(true);
  expect(zipEntries(resumedZip).map((e) => e.name)).toEqual(files.filter((f) => f.name !== 'gone.jpg').map((f) => f.name));
  const check = unzipTest(resumedZip);
  if (check) expect(check).toMatchObject({ ok: true });
  const resumedManifest = await getJsonObject<BundleManifest>(out, OUT, 'bundles/resumed.zip.manifest.json');
  const wholeManifest = await getJsonObject<BundleManifest>(out, OUT, 'bundles/whole.zip.manifest.json');
  expect({ ...resumedManifest, archive: null }).toEqual({ ...wholeManifest, archive: null });
  expect(resumedManifest.failures).toEqual([{ name: 'gone.jpg', url: files[7].url, error: 'HTTP 404', attempts: 1 }]);

  // AND the photos the first attempt had put in the archive were not downloaded again
  const already = files.slice(0, cp.next).filter((f) => f.name !== 'gone.jpg');
  for (const f of already) {
    const p = new URL(f.url).pathname;
    expect([f.name, hitsAfterResume.get(p)]).toEqual([f.name, firstHits.get(p)]);
  }
  const downloadedTwice = files.filter((f) => (hitsAfterResume.get(new URL(f.url).pathname) ?? 0) > 1);
  // At most the read-ahead window (2 x concurrency) of the first attempt is fetched again.
  expect(downloadedTwice.length).toBeLessThanOrEqual(2 * 3);

  // AND nothing of the interruption remains
  expect(store.openUploads(OUT)).toEqual([]);
  expect((await store.keys(OUT, 'bundles/resumed.zip')).sort()).toEqual(['bundles/resumed.zip', 'bundles/resumed.zip.manifest.json']);
});
