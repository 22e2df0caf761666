import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { bundledS3rver, EmbeddedS3, linkLocalInput, linkObject, startEmbeddedS3 } from '../../../lib/local/embedded-s3';

/** The local runner's S3: s3rver in a child process, the input linked into its store instead of copied. */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'embedded-s3-test-'));
const storeDir = path.join(tmp, 'store');
const file = path.join(tmp, 'input.jsonl');
let server: EmbeddedS3;
let s3: S3Client;

beforeAll(async () => {
  // 3 MB of distinct lines, so every range is different.
  fs.writeFileSync(file, Array.from({ length: 60_000 }, (_, i) => `{"i":${i},"pad":"${'x'.repeat(i % 40)}"}`).join('\n'));
  server = await startEmbeddedS3(storeDir, 'b');
  s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  await server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function get(key: string, range?: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: 'b', Key: key, Range: range }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

test('the server runs in a process of its own', () => {
  expect(server.process.pid).toBeDefined();
  expect(server.process.pid).not.toBe(process.pid);
});

test('a linked file is served whole and by byte ranges, with the bytes of the file, without a copy', async () => {
  const link = linkObject(storeDir, 'b', 'inputs/r1/input.jsonl', file);
  const bytes = fs.readFileSync(file);
  expect((await get('inputs/r1/input.jsonl')).equals(bytes)).toBe(true);
  for (const [start, end] of [
    [0, 99],
    [0, 65_535],
    [1_000_003, 1_500_000],
    [bytes.length - 10, bytes.length - 1],
  ]) {
    expect((await get('inputs/r1/input.jsonl', `bytes=${start}-${end}`)).equals(bytes.subarray(start, end + 1))).toBe(true);
  }
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'b', Key: 'inputs/r1/input.jsonl' }));
  expect(head.ContentLength).toBe(bytes.length);
  expect(head.ETag).toBe(JSON.stringify(link.etag));
  // Same file system: a hard link, i.e. the same inode, no second copy of the bytes.
  const stored = fs
    .readdirSync(path.join(storeDir, 'b', 'inputs', 'r1'))
    .map((f) => path.join(storeDir, 'b', 'inputs', 'r1', f))
    .find((f) => f.endsWith('._S3rver_object'))!;
  expect(fs.statSync(stored).ino).toBe(fs.statSync(file).ino);
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'b', Prefix: 'inputs/' }));
  expect(listed.Contents?.map((c) => c.Key)).toEqual(['inputs/r1/input.jsonl']);

  link.remove();
  await expect(get('inputs/r1/input.jsonl')).rejects.toThrow(/NoSuchKey|does not exist/);
  expect(fs.readFileSync(file).equals(bytes)).toBe(true);
});

test('the ETag stays the same for the unchanged file and changes when the file is rewritten', async () => {
  const a = linkObject(storeDir, 'b', 'inputs/r2/input.jsonl', file);
  const again = linkObject(storeDir, 'b', 'inputs/r2/input.jsonl', file);
  expect(again.etag).toBe(a.etag);
  const copy = path.join(tmp, 'changed.jsonl');
  fs.copyFileSync(file, copy);
  const before = linkObject(storeDir, 'b', 'inputs/r3/changed.jsonl', copy).etag;
  const fd = fs.openSync(copy, 'r+');
  fs.writeSync(fd, 'Z', 2_000_000);
  fs.closeSync(fd);
  fs.utimesSync(copy, new Date(), new Date(Date.now() + 5_000));
  const after = linkObject(storeDir, 'b', 'inputs/r3/changed.jsonl', copy);
  expect(after.etag).not.toBe(before);
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'b', Key: 'inputs/r3/changed.jsonl' }));
  expect(head.ETag).toBe(JSON.stringify(after.etag));
});

test('close stops the process and frees the port', async () => {
  const other = await startEmbeddedS3(path.join(tmp, 'store2'), 'b');
  const port = Number(new URL(other.endpoint).port);
  await other.close();
  expect(other.process.exitCode !== null || other.process.signalCode !== null).toBe(true);
  const refused = await new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
  expect(refused).toBe(true);
});

test('starts on the port it is given (the runner picks it to start the workers first), and fails clearly when it is taken', async () => {
  const port = Number(new URL(server.endpoint).port);
  await expect(startEmbeddedS3(path.join(tmp, 'store3'), 'b', port)).rejects.toThrow(/embedded S3 exited with code 1 before listening: [\s\S]*EADDRINUSE/);
  const free = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
  const other = await startEmbeddedS3(path.join(tmp, 'store4'), 'b', free);
  try {
    expect(other.endpoint).toBe(`http://127.0.0.1:${free}`);
  } finally {
    await other.close();
  }
});

test('linkLocalInput lays the file out as <root>/<bucket>/<key> (the same inode) and removes only the link', () => {
  const root = path.join(tmp, 'local-input');
  const linked = linkLocalInput(root, 'b', 'inputs/run-1/input.jsonl', file);
  expect(linked.path).toBe(path.join(root, 'b', 'inputs/run-1/input.jsonl'));
  expect(fs.statSync(linked.path).ino).toBe(fs.statSync(file).ino);
  linked.remove();
  expect(fs.existsSync(linked.path)).toBe(false);
  expect(fs.existsSync(file)).toBe(true);
});

test('linkLocalInput refuses a key or bucket that would leave the root', () => {
  const root = path.join(tmp, 'local-input');
  expect(() => linkLocalInput(root, 'b', '../../escape.jsonl', file)).toThrow(/does not map to a file under/);
  expect(() => linkLocalInput(root, '..', 'x.jsonl', file)).toThrow(/does not map to a file under/);
  expect(fs.existsSync(path.join(tmp, 'escape.jsonl'))).toBe(false);
});

describe('the server from bundledS3rver (one file in the source cache, with a code cache)', () => {
  const cache = { directory: path.join(tmp, 'source-cache') };

  test('is built once, serves what the runner needs, and leaves a code cache that the next start keeps', async () => {
    const first = await bundledS3rver(cache);
    expect(first.hit).toBe(false);
    expect(fs.existsSync(first.file)).toBe(true);
    expect(path.dirname(first.codeCache)).toBe(cache.directory);
    expect(fs.existsSync(first.codeCache)).toBe(false);

    const store = path.join(tmp, 'store-bundled');
    const bundled = await startEmbeddedS3(store, 'b', 0, first);
    const client = new S3Client({ endpoint: bundled.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    try {
      // The bundle is what the server process runs, not s3rver's modules.
      expect(bundled.process.spawnargs).toContain(first.file);
      const link = linkObject(store, 'b', 'inputs/r9/input.jsonl', file);
      const bytes = fs.readFileSync(file);
      const range = await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'inputs/r9/input.jsonl', Range: 'bytes=1000003-1500000' }));
      expect(Buffer.from(await range.Body!.transformToByteArray()).equals(bytes.subarray(1_000_003, 1_500_001))).toBe(true);
      expect((await client.send(new HeadObjectCommand({ Bucket: 'b', Key: 'inputs/r9/input.jsonl' }))).ETag).toBe(JSON.stringify(link.etag));
      await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'runs/r9/done/0', Body: '{"ok":true}' }));
      expect(await (await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'runs/r9/done/0' }))).Body!.transformToString()).toBe('{"ok":true}');
      await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'runs/r9/done/1', Body: '{}' }));
      await client.send(new DeleteObjectCommand({ Bucket: 'b', Key: 'runs/r9/done/1' }));
      const listed = await client.send(new ListObjectsV2Command({ Bucket: 'b', Prefix: 'runs/r9/' }));
      expect(listed.Contents?.map((c) => c.Key)).toEqual(['runs/r9/done/0']);
    } finally {
      client.destroy();
      await bundled.close();
    }
    // Written when the server process exited.
    const written = fs.statSync(first.codeCache);
    expect(written.size).toBeGreaterThan(0);

    const second = await bundledS3rver(cache);
    expect(second).toEqual({ ...first, hit: true });
    const again = await startEmbeddedS3(path.join(tmp, 'store-bundled-2'), 'b', 0, second);
    await again.close();
    // Accepted, so not written again.
    expect(fs.statSync(second.codeCache).ino).toBe(written.ino);
  }, 60_000);
});
