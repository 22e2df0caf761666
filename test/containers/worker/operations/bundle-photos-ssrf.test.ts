import { S3Client } from '@aws-sdk/client-s3';
import * as http from 'http';
import { InvalidRequestError, validateSubmitRequest } from '../../../../lib/client';
import { ChunkSpec, processChunk } from '../../../../containers/worker/src/engine';
import type { BundleManifest } from '../../../../containers/worker/src/operations/bundle-photos';
import { addressRefusal, hostPolicyFromEnv, PUBLIC_ONLY } from '../../../../containers/worker/src/operations/photos/url-guard';
import { PhotoServer, startPhotoServer } from '../support/photo-server';
import { createBucket, exists, getBuffer, getJsonObject, motoS3, put, uniqueBucket } from '../support/s3';
import { zipEntries } from '../support/zip';

/**
 * Photo URLs are untrusted: bundle-photos refuses (as that photo's failure, naming the URL and why)
 * anything but http(s) to public hosts, checks the address it connects to, and checks every redirect
 * again. Real servers: the photo host on 127.0.0.1 and a redirector on 127.0.0.2 (both loopback, so the
 * operator switch PHOTOS_ALLOW_PRIVATE_HOSTS decides what may be reached).
 */
const IN = uniqueBucket('photos-ssrf-in');
const OUT = uniqueBucket('photos-ssrf-out');
let s3: S3Client;
let photos: PhotoServer;
let redirector: { base: string; hits: number; close(): Promise<void> };

/** 127.0.0.2: /to?u=<url> answers 302 to <url>; /loop answers 302 to itself. */
async function startRedirector() {
  const handle = { base: '', hits: 0, close: async () => undefined as void };
  const server = http.createServer((req, res) => {
    handle.hits++;
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
    if (url.pathname === '/photo') return void res.writeHead(200, { 'content-length': 3 }).end('abc');
    res.writeHead(302, { location: url.searchParams.get('u') ?? '/' }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.2', () => r()));
  handle.base = `http://127.0.0.2:${(server.address() as { port: number }).port}`;
  handle.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return handle;
}

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, IN);
  await createBucket(s3, OUT);
  photos = await startPhotoServer();
  redirector = await startRedirector();
});
afterAll(async () => {
  delete process.env.PHOTOS_ALLOW_PRIVATE_HOSTS;
  await photos.close();
  await redirector.close();
  s3.destroy();
});

async function bundle(name: string, files: { url: string; name: string }[], allowPrivate?: string) {
  if (allowPrivate === undefined) delete process.env.PHOTOS_ALLOW_PRIVATE_HOSTS;
  else process.env.PHOTOS_ALLOW_PRIVATE_HOSTS = allowPrivate;
  await put(s3, IN, `jobs/${name}/inputs.json`, JSON.stringify({ files }));
  const spec: ChunkSpec = {
    jobId: name,
    operation: 'bundle-photos',
    operationConfig: { backoffMs: 10, retries: 2 },
    input: { bucket: IN, key: `jobs/${name}/inputs.json` },
    output: { bucket: OUT, key: `jobs/${name}/photos.zip` },
    maxRejectRatio: 1,
  };
  const result = await processChunk(spec, { s3In: s3, s3Out: s3 });
  const manifest = await getJsonObject<BundleManifest>(s3, OUT, `jobs/${name}/photos.zip.manifest.json`);
  const failures = Object.fromEntries(manifest.failures.map((f) => [f.name, f]));
  return { result, manifest, failures };
}

test('by default refuses loopback hosts, by address or by a name resolving to one, without connecting', async () => {
  const port = new URL(photos.base).port;
  const { manifest, failures } = await bundle('default', [
    { url: `${photos.base}/ok/a.jpg?size=100`, name: 'a' },
    { url: `http://localhost:${port}/ok/b.jpg?size=100`, name: 'b' },
    { url: `http://[::1]:${port}/ok/c.jpg`, name: 'c' },
    { url: `http://[::ffff:127.0.0.1]:${port}/ok/d.jpg`, name: 'd' },
  ]);
  expect(manifest).toMatchObject({ succeeded: 0, failed: 4 });
  expect(failures.a).toEqual({
    name: 'a',
    url: `${photos.base}/ok/a.jpg?size=100`,
    attempts: 1,
    error:
      `${photos.base}/ok/a.jpg?size=100 refused: host 127.0.0.1 is a loopback address; photo URLs must name public hosts ` +
      '(an operator may allow private hosts with PHOTOS_ALLOW_PRIVATE_HOSTS=true)',
  });
  expect(failures.b.error).toMatch(new RegExp(`^http://localhost:${port}/ok/b\\.jpg\\?size=100 refused: host localhost resolves to (127\\.0\\.0\\.1|::1), which is a loopback address`));
  expect(failures.c.error).toMatch(/host ::1 is a loopback address/);
  expect(failures.d.error).toMatch(/is a loopback address/);
  expect(photos.hits.size).toBe(0);
});

test('with the operator switch PHOTOS_ALLOW_PRIVATE_HOSTS=true, loopback hosts are fetched', async () => {
  const { manifest } = await bundle('allowed', [{ url: `${photos.base}/ok/a.jpg?size=100`, name: 'a.jpg' }], 'true');
  expect(manifest).toMatchObject({ succeeded: 1, failed: 0 });
  expect(zipEntries(await getBuffer(s3, OUT, 'jobs/allowed/photos.zip')).map((e) => [e.name, e.size])).toEqual([['a.jpg', 100]]);
});

test('each redirect is checked again: a hop to an address outside the allowed networks is refused and never reached', async () => {
  const before = photos.hits.get('/ok/r.jpg') ?? 0;
  const target = `${photos.base}/ok/r.jpg?size=100`;
  const { manifest, failures } = await bundle(
    'redirect-loopback',
    [
      { url: `${redirector.base}/to?u=${encodeURIComponent(target)}`, name: 'r' },
      { url: `${redirector.base}/to?u=${encodeURIComponent('/photo')}`, name: 'same-host.jpg' },
    ],
    '127.0.0.2/32',
  );
  expect(failures.r).toMatchObject({ attempts: 1, error: expect.stringMatching(new RegExp(`^${target.replace(/[.?]/g, '\\$&')} refused: host 127\\.0\\.0\\.1 is a loopback address`)) });
  expect(photos.hits.get('/ok/r.jpg') ?? 0).toBe(before);
  expect(manifest.entries.map((e) => [e.name, e.size])).toEqual([['same-host.jpg', 3]]);
});

test('a redirect to the instance metadata address, link-local or unspecified addresses is refused even with private hosts allowed', async () => {
  const to = (u: string) => `${redirector.base}/to?u=${encodeURIComponent(u)}`;
  const { manifest, failures } = await bundle(
    'redirect-metadata',
    [
      { url: to('http://169.254.169.254/latest/meta-data/iam/security-credentials/'), name: 'imds' },
      { url: to('http://[fe80::1]/x.jpg'), name: 'fe80' },
      { url: to(`http://0.0.0.0:${new URL(photos.base).port}/ok/z.jpg`), name: 'zero' },
      { url: to('http://224.0.0.1/x.jpg'), name: 'mcast' },
      { url: to('ftp://example.com/x.jpg'), name: 'ftp' },
    ],
    'true',
  );
  expect(manifest).toMatchObject({ succeeded: 0, failed: 5 });
  expect(failures.imds).toMatchObject({
    attempts: 1,
    error:
      'http://169.254.169.254/latest/meta-data/iam/security-credentials/ refused: host 169.254.169.254 is a link-local ' +
      '(includes the instance metadata address) address; photo URLs must name public hosts',
  });
  expect(failures.fe80.error).toMatch(/host fe80::1 is a link-local/);
  expect(failures.zero.error).toMatch(/host 0\.0\.0\.0 is an unspecified address/);
  expect(failures.mcast.error).toMatch(/host 224\.0\.0\.1 is a multicast address/);
  expect(failures.ftp.error).toBe('ftp://example.com/x.jpg refused: only http:// and https:// URLs are fetched (not ftp:)');
});

test('redirects are capped: a redirect loop fails that photo after 5 hops, without retries', async () => {
  const hitsBefore = redirector.hits;
  const { failures } = await bundle('loop', [{ url: `${redirector.base}/loop`, name: 'loop' }], 'true');
  expect(failures.loop).toMatchObject({ attempts: 1, error: 'more than 5 redirects (last to /loop)' });
  expect(redirector.hits - hitsBefore).toBe(6);
});

test('an invalid PHOTOS_ALLOW_PRIVATE_HOSTS fails the job naming the variable, before anything is fetched', async () => {
  await expect(bundle('bad-switch', [{ url: `${photos.base}/ok/x.jpg`, name: 'x' }], 'yes')).rejects.toThrow(
    /PHOTOS_ALLOW_PRIVATE_HOSTS: "yes" is not a network; allowed: true, false, or networks in CIDR notation/,
  );
  expect(await exists(s3, OUT, 'jobs/bad-switch/photos.zip')).toBe(false);
  expect(photos.hits.has('/ok/x.jpg')).toBe(false);
});

describe('address classification', () => {
  test.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['169.254.169.254', 'link-local (includes the instance metadata address)'],
    ['fe80::1', 'link-local (includes the instance metadata address)'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['fc00::1', 'private (unique local)'],
    ['fd12:3456::1', 'private (unique local)'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['8.8.8.8', undefined],
    ['172.32.0.1', undefined],
    ['2606:4700:4700::1111', undefined],
  ])('%s: %s', (address, why) => {
    expect(addressRefusal(address, PUBLIC_ONLY)).toBe(why);
  });

  test('the switch allows private and loopback addresses, a network list only those inside it, never link-local', () => {
    const all = hostPolicyFromEnv({ PHOTOS_ALLOW_PRIVATE_HOSTS: 'true' });
    expect(['127.0.0.1', '10.1.2.3', 'fd00::1'].map((a) => addressRefusal(a, all))).toEqual([undefined, undefined, undefined]);
    expect(addressRefusal('169.254.169.254', all)).toMatch(/^link-local/);
    const some = hostPolicyFromEnv({ PHOTOS_ALLOW_PRIVATE_HOSTS: '10.20.0.0/16, fd00::/8' });
    expect(['10.20.3.4', '10.21.0.1', 'fd00::5', '127.0.0.1'].map((a) => addressRefusal(a, some))).toEqual([undefined, 'private', undefined, 'loopback']);
    expect(hostPolicyFromEnv({ PHOTOS_ALLOW_PRIVATE_HOSTS: 'false' })).toEqual(PUBLIC_ONLY);
    expect(hostPolicyFromEnv({})).toEqual(PUBLIC_ONLY);
  });
});

test('a submission can never set PHOTOS_ALLOW_PRIVATE_HOSTS', () => {
  let error: unknown;
  try {
    validateSubmitRequest({ operation: 'bundle-photos', environment: { PHOTOS_ALLOW_PRIVATE_HOSTS: 'true' } });
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(InvalidRequestError);
  expect((error as InvalidRequestError).errors.map((e) => e.field)).toContain('environment.PHOTOS_ALLOW_PRIVATE_HOSTS');
});
