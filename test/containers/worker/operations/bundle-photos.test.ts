import { S3Client } from '@aws-sdk/client-s3';
import { crc32 } from 'zlib';
import { ChunkSpec, processChunk } from '../../../../containers/worker/src/engine';
import type { BundleManifest } from '../../../../containers/worker/src/operations/bundle-photos';
import { photoBytes, startPhotoServer } from '../support/photo-server';
import { createBucket, exists, getBuffer, getJsonObject, motoS3, put, uniqueBucket } from '../support/s3';
import { unzipTest, zipEntries } from '../support/zip';

/** The photo host is a local server on 127.0.0.1: the operator switch that allows private hosts (see bundle-photos-ssrf.test.ts). */
process.env.PHOTOS_ALLOW_PRIVATE_HOSTS = 'true';
const IN = uniqueBucket('worker-photos-in');
const OUT = uniqueBucket('worker-photos-out');
let s3: S3Client;
let photos: Awaited<ReturnType<typeof startPhotoServer>>;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, IN);
  await createBucket(s3, OUT);
  photos = await startPhotoServer();
});
afterAll(async () => {
  await photos.close();
  s3.destroy();
});

const spec = (inputKey: string, outKey: string, extra: Partial<ChunkSpec> = {}): ChunkSpec => ({
  jobId: 'photos',
  operation: 'bundle-photos',
  operationConfig: { backoffMs: 10, retries: 3 },
  input: { bucket: IN, key: inputKey },
  output: { bucket: OUT, key: outKey },
  ...extra,
});

describe('bundle-photos', () => {
  const files = () => [
    { url: `${photos.base}/ok/a.jpg?size=150000`, name: 'a.jpg' },
    { url: `${photos.base}/slow/b.jpg`, name: 'b.jpg' },
    { url: `${photos.base}/flaky/c.jpg`, name: 'c.jpg' },
    { url: `${photos.base}/missing/d.jpg`, name: 'd.jpg' },
    { url: `${photos.base}/ok/e.jpg?size=1`, name: '../../etc/e.jpg' },
    { url: `${photos.base}/ok/f.jpg?size=5000`, name: 'a.jpg' },
  ];

  test('bundles the files into a valid ZIP in input order, retrying failures, with a manifest of sizes and failures', async () => {
    await put(s3, IN, 'jobs/p1/inputs.json', JSON.stringify({ files: files(), concurrency: 3 }));
    const r = await processChunk(spec('jobs/p1/inputs.json', 'jobs/p1/photos.zip', { maxRejectRatio: 0.5 }), {
      s3In: s3,
      s3Out: s3,
    });
    expect(r.status).toBe('succeeded');
    const zip = await getBuffer(s3, OUT, 'jobs/p1/photos.zip');
    const entries = zipEntries(zip);
    expect(entries.map((e) => [e.name, e.size])).toEqual([
      ['a.jpg', 150000],
      ['b.jpg', 20000],
      ['c.jpg', 30000],
      ['etc/e.jpg', 1],
      ['a (2).jpg', 5000],
    ]);
    expect(entries[2].crc).toBe(crc32(photoBytes('c.jpg', 30000)));
    const check = unzipTest(zip);
    if (check) expect(check).toMatchObject({ ok: true });

    const manifest = await getJsonObject<BundleManifest>(s3, OUT, 'jobs/p1/photos.zip.manifest.json');
    expect(manifest).toMatchObject({ files: 6, succeeded: 5, failed: 1, bytes: 205001 });
    expect(manifest.failures).toEqual([{ name: 'd.jpg', url: `${photos.base}/missing/d.jpg`, error: 'HTTP 404', attempts: 1 }]);
    expect(manifest.entries.find((e) => e.name === 'c.jpg')).toMatchObject({ size: 30000, attempts: 3 });
  });

  test('gives up on a file after the configured retries and records the attempts', async () => {
    const list = [
      { url: `${photos.base}/broken/x.jpg`, name: 'x.jpg' },
      { url: `${photos.base}/ok/y.jpg`, name: 'y.jpg' },
    ];
    await put(s3, IN, 'jobs/p2/inputs.json', JSON.stringify({ files: list }));
    const r = await processChunk(spec('jobs/p2/inputs.json', 'jobs/p2/photos.zip', { maxRejectRatio: 0.5 }), { s3In: s3, s3Out: s3 });
    expect(r.status).toBe('succeeded');
    const manifest = await getJsonObject<BundleManifest>(s3, OUT, 'jobs/p2/photos.zip.manifest.json');
    expect(manifest.failures).toEqual([{ name: 'x.jpg', url: list[0].url, error: 'HTTP 500', attempts: 4 }]);
    expect(photos.hits.get('/broken/x.jpg')).toBe(4);
  });

  test('fails without an archive, but with the manifest, when failures pass MAX_REJECT_RATIO', async () => {
    await put(s3, IN, 'jobs/p3/inputs.json', JSON.stringify({ files: files() }));
    const r = await processChunk(spec('jobs/p3/inputs.json', 'jobs/p3/photos.zip'), { s3In: s3, s3Out: s3 });
    expect(r.status).toBe('failed');
    expect(r.message).toMatch(/1 of 6 files failed/);
    expect(await exists(s3, OUT, 'jobs/p3/photos.zip')).toBe(false);
    expect((await getJsonObject<BundleManifest>(s3, OUT, 'jobs/p3/photos.zip.manifest.json')).archive).toBeNull();
  });

  test('the same file list gives a byte-identical archive', async () => {
    const list = [1, 2, 3].map((i) => ({ url: `${photos.base}/ok/same${i}.jpg?size=${i * 7000}`, name: `same${i}.jpg` }));
    await put(s3, IN, 'jobs/p4/inputs.json', JSON.stringify({ files: list, concurrency: 2 }));
    await processChunk(spec('jobs/p4/inputs.json', 'jobs/p4/one.zip'), { s3In: s3, s3Out: s3 });
    await processChunk(spec('jobs/p4/inputs.json', 'jobs/p4/two.zip'), { s3In: s3, s3Out: s3 });
    expect((await getBuffer(s3, OUT, 'jobs/p4/one.zip')).equals(await getBuffer(s3, OUT, 'jobs/p4/two.zip'))).toBe(true);
  });

  test('an interrupted bundle aborts its upload and leaves no archive', async () => {
    const list = [{ url: `${photos.base}/slow/late.jpg`, name: 'late.jpg' }];
    await put(s3, IN, 'jobs/p5/inputs.json', JSON.stringify({ files: list }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const r = await processChunk(spec('jobs/p5/inputs.json', 'jobs/p5/photos.zip'), { s3In: s3, s3Out: s3, signal: controller.signal });
    expect(r.status).toBe('interrupted');
    expect(await exists(s3, OUT, 'jobs/p5/photos.zip')).toBe(false);
  });
});
