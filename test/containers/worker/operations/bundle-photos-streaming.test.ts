import { S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'crypto';
import { ChunkSpec, processChunk } from '../../../../containers/worker/src/engine';
import type { BundleManifest } from '../../../../containers/worker/src/operations/bundle-photos';
import { OutputStore, startFaultyProxy, startOutputStore } from '../support/output-store';
import { photoSha256, PhotoServer, refusedUrl, startPhotoServer } from '../support/photo-server';
import { createBucket, exists, getBuffer, getJsonObject, motoS3, put, uniqueBucket } from '../support/s3';
import { unzipTest, zipEntries, zipEntryData } from '../support/zip';

/**
 * bundle-photos against real servers: photos from a local HTTP server, input in moto, the archive in a
 * second S3-compatible endpoint (its own moto_server and credentials), open multipart uploads checked
 * with the aws CLI.
 */
/** The photo host is a local server on 127.0.0.1: the operator switch that allows private hosts (see bundle-photos-ssrf.test.ts). */
process.env.PHOTOS_ALLOW_PRIVATE_HOSTS = 'true';
const IN = uniqueBucket('photos-stream-in');
const OUT = 'photos-stream-out';
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

const spec = (inputKey: string, outKey: string, config: Record<string, unknown>, maxRejectRatio = 0.1): ChunkSpec => ({
  jobId: 'photos-stream',
  operation: 'bundle-photos',
  operationConfig: { backoffMs: 10, ...config },
  input: { bucket: IN, key: inputKey },
  output: { bucket: OUT, key: outKey },
  maxRejectRatio,
});

/** 1,000,000..3,000,000 bytes, spread deterministically. */
const sizeOf = (i: number) => 1_000_000 + ((i * 7919 * 1009) % 2_000_001);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every entry's bytes hash to what the photo host served and to the manifest's sha256, once each. */
function expectArchiveMatches(zip: Buffer, manifest: BundleManifest, expected: { name: string; size: number }[]): void {
  const entries = zipEntries(zip);
  expect(entries.map((e) => [e.name, e.size])).toEqual(expected.map((e) => [e.name, e.size]));
  expect(manifest.entries.map((e) => [e.name, e.size])).toEqual(expected.map((e) => [e.name, e.size]));
  entries.forEach((e, i) => {
    const digest = sha(zipEntryData(zip, e));
    expect([e.name, digest]).toEqual([e.name, photoSha256(e.name, e.size)]);
    expect(manifest.entries[i].sha256).toBe(digest);
  });
  const check = unzipTest(zip);
  if (check) expect(check).toMatchObject({ ok: true });
}

describe('bundle-photos streaming', () => {
  test('300 photos of 1-3 MB plus broken sources: each good photo once with its sha256, failures listed, nothing left open', async () => {
    const good = Array.from({ length: 300 }, (_, i) => ({ name: `p${String(i).padStart(3, '0')}.jpg`, size: sizeOf(i) }));
    const files = good.map((g) => ({ url: `${photos.base}/ok/${g.name}?size=${g.size}`, name: g.name }));
    const bad = [
      { url: `${photos.base}/chunked/huge.jpg?size=400000000`, name: 'huge.jpg' },
      { url: `${photos.base}/missing/m.jpg`, name: 'm.jpg' },
      { url: `${photos.base}/broken/b.jpg`, name: 'b.jpg' },
      { url: `${photos.base}/stall/st.jpg`, name: 'st.jpg' },
      { url: await refusedUrl('r.jpg'), name: 'r.jpg' },
    ];
    const extra = [
      { url: `${photos.base}/gzip/gz.jpg?size=1500000`, name: 'gz.jpg', size: 1_500_000 },
      { url: `${photos.base}/chunked/ch.jpg?size=2500000`, name: 'ch.jpg', size: 2_500_000 },
      { url: `${photos.base}/slow/sl.jpg`, name: 'sl.jpg', size: 20_000 },
    ];
    // Bad sources interleaved with good ones: order in the archive is input order whatever finishes first.
    const list = [...files.slice(0, 100), ...bad, ...files.slice(100, 200), ...extra.map(({ url, name }) => ({ url, name })), ...files.slice(200)];
    await put(s3, IN, 'jobs/s1/inputs.json', JSON.stringify({ files: list }));

    const r = await processChunk(
      spec('jobs/s1/inputs.json', 'bundles/s1.zip', { maxFileBytes: 3_100_000, timeoutMs: 1500, retries: 1 }),
      { s3In: s3, s3Out: out },
    );
    expect(r).toMatchObject({ status: 'succeeded', records: 303, rejected: 5 });

    const zip = await getBuffer(out, OUT, 'bundles/s1.zip');
    const manifest = await getJsonObject<BundleManifest>(out, OUT, 'bundles/s1.zip.manifest.json');
    const expected = [...good.slice(0, 200), ...extra.map(({ name, size }) => ({ name, size })), ...good.slice(200)];
    expectArchiveMatches(zip, manifest, expected);
    expect(manifest).toMatchObject({ files: 308, succeeded: 303, failed: 5, archive: { bucket: OUT, key: 'bundles/s1.zip' } });
    const failures = Object.fromEntries(manifest.failures.map((f) => [f.name, f]));
    expect(failures['huge.jpg']).toMatchObject({ attempts: 1, error: expect.stringMatching(/more than maxFileBytes 3100000 bytes received/) });
    expect(failures['m.jpg']).toMatchObject({ attempts: 1, error: 'HTTP 404' });
    expect(failures['b.jpg']).toMatchObject({ attempts: 2, error: 'HTTP 500' });
    expect(failures['st.jpg']).toMatchObject({ attempts: 2, error: 'no bytes for 1500 ms (timeoutMs)' });
    expect(failures['r.jpg'].error).toMatch(/ECONNREFUSED/);
    // The 400 MB response was cut off, not read to its end.
    expect(photos.sent.get('/chunked/huge.jpg')!).toBeLessThan(50_000_000);

    expect(store.openUploads(OUT)).toEqual([]);
    expect(await store.keys(OUT, 'bundles/s1.zip.')).toEqual(['bundles/s1.zip.manifest.json']);
  });

  test('maxFileBytes counts the bytes received: no Content-Length, an oversized one and a gzip bomb are cut off; gzip is decoded', async () => {
    const MiB = 1024 * 1024;
    const list = [
      { url: `${photos.base}/chunked/big.jpg?size=400000000`, name: 'big.jpg' },
      { url: `${photos.base}/ok/long.jpg?size=${2 * MiB}`, name: 'long.jpg' },
      { url: `${photos.base}/gzip/bomb.jpg?size=${50 * MiB}&zeros=1`, name: 'bomb.jpg' },
      { url: `${photos.base}/gzip/small.jpg?size=300000`, name: 'small.jpg' },
      { url: `${photos.base}/chunked/fits.jpg?size=${MiB}`, name: 'fits.jpg' },
    ];
    await put(s3, IN, 'jobs/s2/inputs.json', JSON.stringify({ files: list, concurrency: 2 }));
    const r = await processChunk(spec('jobs/s2/inputs.json', 'bundles/s2.zip', { maxFileBytes: MiB }, 1), { s3In: s3, s3Out: out });
    expect(r.status).toBe('succeeded');
    const zip = await getBuffer(out, OUT, 'bundles/s2.zip');
    const manifest = await getJsonObject<BundleManifest>(out, OUT, 'bundles/s2.zip.manifest.json');
    expectArchiveMatches(zip, manifest, [
      { name: 'small.jpg', size: 300000 },
      { name: 'fits.jpg', size: MiB },
    ]);
    expect(manifest.failures.map((f) => [f.name, f.error])).toEqual([
      ['big.jpg', `more than maxFileBytes ${MiB} bytes received; download cut off`],
      ['long.jpg', `Content-Length ${2 * MiB} is more than maxFileBytes ${MiB}`],
      ['bomb.jpg', `more than maxFileBytes ${MiB} bytes received; download cut off`],
    ]);
    expect(photos.sent.get('/chunked/big.jpg')!).toBeLessThan(50_000_000);
  });

  test('refuses URLs that are not http(s) as failures of those photos, naming the URL', async () => {
    const list = [
      { url: 'file:///etc/passwd', name: 'x' },
      { url: 'not a url', name: 'y' },
      { url: `${photos.base}/ok/z.jpg?size=1000`, name: 'z.jpg' },
    ];
    await put(s3, IN, 'jobs/s3/inputs.json', JSON.stringify({ files: list }));
    const r = await processChunk(spec('jobs/s3/inputs.json', 'bundles/s3.zip', {}, 0.9), { s3In: s3, s3Out: out });
    expect(r.status).toBe('succeeded');
    const manifest = await getJsonObject<BundleManifest>(out, OUT, 'bundles/s3.zip.manifest.json');
    expect(manifest.failures).toEqual([
      { name: 'x', url: 'file:///etc/passwd', attempts: 1, error: 'file:///etc/passwd refused: only http:// and https:// URLs are fetched (not file:)' },
      { name: 'y', url: 'not a url', attempts: 1, error: '"not a url" is not a valid URL' },
    ]);
    expect(zipEntries(await getBuffer(out, OUT, 'bundles/s3.zip')).map((e) => e.name)).toEqual(['z.jpg']);
  });

  const twentyPhotos = (prefix: string) =>
    Array.from({ length: 20 }, (_, i) => ({ url: `${photos.base}/ok/${prefix}${i}.jpg?size=1000000`, name: `${prefix}${i}.jpg` }));

  test('a store failing while parts are staged: the run fails and leaves no upload, no staged part, no archive', async () => {
    let staged = 0;
    const proxy = await startFaultyProxy(store.endpoint, (req) => {
      if (req.method !== 'PUT' || !req.url?.includes('.parts%2F') && !req.url?.includes('.parts/')) return false;
      return ++staged > 2;
    });
    const via = store.client(proxy.endpoint);
    try {
      await put(s3, IN, 'jobs/s4/inputs.json', JSON.stringify({ files: twentyPhotos('f') }));
      await expect(processChunk(spec('jobs/s4/inputs.json', 'bundles/s4.zip', { partSizeMb: 5 }), { s3In: s3, s3Out: via })).rejects.toThrow(
        /injected|InternalError/,
      );
      expect(proxy.failed()).toBeGreaterThan(0);
      expect(store.openUploads(OUT)).toEqual([]);
      expect(await store.keys(OUT, 'bundles/s4.zip')).toEqual([]);
    } finally {
      via.destroy();
      await proxy.close();
    }
  });

  test('a store failing while the archive is assembled: the multipart upload is aborted', async () => {
    const proxy = await startFaultyProxy(store.endpoint, (req) => req.method === 'PUT' && 'x-amz-copy-source' in req.headers);
    const via = store.client(proxy.endpoint);
    try {
      await put(s3, IN, 'jobs/s5/inputs.json', JSON.stringify({ files: twentyPhotos('g') }));
      await expect(processChunk(spec('jobs/s5/inputs.json', 'bundles/s5.zip', { partSizeMb: 5 }), { s3In: s3, s3Out: via })).rejects.toThrow(
        /injected|InternalError/,
      );
      expect(proxy.failed()).toBeGreaterThan(0);
      expect(store.openUploads(OUT)).toEqual([]);
      expect(await store.keys(OUT, 'bundles/s5.zip')).toEqual([]);
    } finally {
      via.destroy();
      await proxy.close();
    }
  });

  test('a corrupt checkpoint is ignored and the bundle starts over', async () => {
    const list = twentyPhotos('c').slice(0, 3);
    await put(s3, IN, 'jobs/s6/inputs.json', JSON.stringify({ files: list }));
    await put(out, OUT, 'bundles/s6.zip.checkpoint.json', '{"version":1,"oper');
    const r = await processChunk(spec('jobs/s6/inputs.json', 'bundles/s6.zip', {}), { s3In: s3, s3Out: out });
    expect(r.status).toBe('succeeded');
    expect(zipEntries(await getBuffer(out, OUT, 'bundles/s6.zip')).map((e) => e.name)).toEqual(['c0.jpg', 'c1.jpg', 'c2.jpg']);
    expect(await exists(out, OUT, 'bundles/s6.zip.checkpoint.json')).toBe(false);
  });
});
