/**
 * bundle-photos benchmark (`npm run bench:photos`, part of `npm run bench`).
 *
 * Photos come from a local HTTP server in this process (bodies sliced from one random buffer, so serving
 * costs no CPU beyond the socket); the archive goes to a moto_server started here on a free port. Every
 * measured run is a fresh child process (bench/photos-child.ts), so its peak RSS and time are its own.
 *
 * 1. Memory (issue 11): peak RSS of bundle-photos with the same 900 MiB cut two ways, 300 x 3 MiB and
 *    30 x 30 MiB. Goal: within 10 % of each other and under 300 MB (memory independent of photo size).
 *    Floor: a child that loads the same modules and does nothing.
 * 2. Throughput (issue 12): a bundle of 100 x 3 MiB against a plain download of the same files with
 *    5 connections to /dev/null (curl-like, node:http), in the same run. Goal: bundle / plain >= 0.8.
 *    Twice: over loopback as fast as it goes (CPU-bound: it measures our per-byte costs), and with the
 *    server pacing each response at PACED_MIB_S MiB/s, as a remote photo host would (network-bound: it
 *    measures whether the pipeline keeps 5 downloads busy). The bundle writes its archive to two
 *    stores: moto_server (end to end with a real S3 implementation, which on this machine is bound by
 *    moto's Python per-byte work) and a discarding S3 endpoint (the /dev/null of S3: accepts PutObject,
 *    UploadPartCopy and the multipart calls and keeps nothing), which is the like-for-like comparison
 *    with the plain download to /dev/null: it measures our download, hash, spool, ZIP and part path.
 */
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ChildProcess, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

const MiB = 1024 * 1024;
const PACED_MIB_S = 8;
const CONNECTIONS = 5;

interface ChildResult {
  status: string;
  records: number;
  bytes: number;
  ms: number;
  maxRssMb: number;
}

/** Async: the photo host lives in this process, so its event loop must keep serving while a child runs. */
function child(env: NodeJS.ProcessEnv, ...args: string[]): Promise<ChildResult> {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'photos-child.ts'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) return reject(new Error(`photos child ${args.join(' ')} exited ${code}: ${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult);
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function startMoto(): Promise<{ proc: ChildProcess; endpoint: string }> {
  const port = await freePort();
  const proc = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).status < 500) return { proc, endpoint };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  proc.kill('SIGKILL');
  throw new Error('moto_server did not start within 30 s');
}

/** GET /<name>?size=N: N bytes (Content-Length) from one random buffer; &paced=1 at PACED_MIB_S per response. */
async function startPhotoHost(maxSize: number): Promise<{ base: string; close(): Promise<void> }> {
  const data = randomBytes(maxSize);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const size = Number(url.searchParams.get('size'));
    const body = data.subarray(0, size);
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': size });
    if (!url.searchParams.get('paced')) return void res.end(body);
    // 64 KiB slices on a schedule: PACED_MIB_S per response, whatever the client could take.
    const slice = 64 * 1024;
    const start = Date.now();
    let sent = 0;
    const tick = () => {
      if (res.destroyed) return;
      const due = Math.min(size, ((Date.now() - start) / 1000) * PACED_MIB_S * MiB + slice);
      while (sent < due) {
        const n = Math.min(slice, size - sent);
        res.write(body.subarray(sent, sent + n));
        sent += n;
      }
      if (sent >= size) res.end();
      else setTimeout(tick, 10);
    };
    tick();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    base: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/**
 * An S3 endpoint that accepts the calls bundle-photos makes on its output store and keeps nothing:
 * PutObject, DeleteObject(s), ListObjectsV2 (empty), GetObject (NoSuchKey), multipart create / copy part /
 * upload part / complete / abort. Path-style requests only.
 */
async function startDiscardS3(): Promise<{ endpoint: string; received: () => number; close(): Promise<void> }> {
  let received = 0;
  let n = 0;
  const xml = (res: http.ServerResponse, status: number, body: string) =>
    res.writeHead(status, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?>${body}`);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const [, bucket, ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    req.on('data', (c: Buffer) => (received += c.length));
    req.on('end', () => {
      const etag = `"${(++n).toString(16).padStart(32, '0')}"`;
      if (req.method === 'PUT' && req.headers['x-amz-copy-source']) {
        return xml(res, 200, `<CopyPartResult><ETag>${etag}</ETag><LastModified>2026-01-01T00:00:00.000Z</LastModified></CopyPartResult>`);
      }
      if (req.method === 'PUT') return void res.writeHead(200, { etag }).end();
      if (req.method === 'POST' && q.has('delete')) return xml(res, 200, '<DeleteResult></DeleteResult>');
      if (req.method === 'POST' && q.has('uploads')) {
        return xml(res, 200, `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><UploadId>u${n}</UploadId></InitiateMultipartUploadResult>`);
      }
      if (req.method === 'POST' && q.has('uploadId')) {
        return xml(res, 200, `<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><ETag>${etag}</ETag></CompleteMultipartUploadResult>`);
      }
      if (req.method === 'GET' && q.get('list-type') === '2') {
        return xml(res, 200, `<ListBucketResult><Name>${bucket}</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`);
      }
      if (req.method === 'DELETE') return void res.writeHead(204).end();
      if (req.method === 'HEAD') return void res.writeHead(404).end();
      return xml(res, 404, `<Error><Code>NoSuchKey</Code><Message>discarded</Message><Key>${key}</Key></Error>`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    received: () => received,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

async function main(): Promise<void> {
  const host = await startPhotoHost(30 * MiB);
  const moto = await startMoto();
  const discard = await startDiscardS3();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'photos-bench-'));
  const s3 = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  // The photo host is on loopback: the operator switch, as for any local run.
  const env = { PHOTOS_ALLOW_PRIVATE_HOSTS: 'true', AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_REGION: 'us-east-1' };
  const list = (tag: string, count: number, size: number, paced = false) =>
    JSON.stringify({
      files: Array.from({ length: count }, (_, i) => ({ url: `${host.base}/${tag}${i}.jpg?size=${size}${paced ? '&paced=1' : ''}`, name: `${tag}${i}.jpg` })),
    });
  const input = async (key: string, body: string) => {
    await s3.send(new PutObjectCommand({ Bucket: 'bench', Key: key, Body: body }));
    writeFileSync(path.join(tmp, key.replace(/\//g, '_')), body);
    return path.join(tmp, key.replace(/\//g, '_'));
  };
  const t0 = Date.now();
  try {
    await s3.send(new CreateBucketCommand({ Bucket: 'bench' }));
    await input('in/small.json', list('s', 300, 3 * MiB));
    await input('in/large.json', list('l', 30, 30 * MiB));
    const fastList = await input('in/fast.json', list('f', 100, 3 * MiB));
    const pacedList = await input('in/paced.json', list('p', 100, 3 * MiB, true));

    const check = (name: string, r: ChildResult, n: number, bytes: number) => {
      if (r.status !== 'succeeded' || r.records !== n || r.bytes !== bytes) throw new Error(`${name} run: ${JSON.stringify(r)}`);
      return r;
    };
    const idle = await child(env, 'idle');
    const small = check('300 x 3 MiB', await child(env, 'bundle', moto.endpoint, 'in/small.json', moto.endpoint, 'out/small.zip'), 300, 900 * MiB);
    const large = check('30 x 30 MiB', await child(env, 'bundle', moto.endpoint, 'in/large.json', moto.endpoint, 'out/large.zip'), 30, 900 * MiB);
    const plainFast = check('plain loopback', await child(env, 'plain', fastList, String(CONNECTIONS)), 100, 300 * MiB);
    const bundleFast = check('bundle loopback', await child(env, 'bundle', moto.endpoint, 'in/fast.json', discard.endpoint, 'out/fast.zip'), 100, 300 * MiB);
    if (discard.received() < 300 * MiB) throw new Error(`the discarding endpoint received ${discard.received()} bytes, less than the archive`);
    const bundleFastMoto = check('bundle loopback moto', await child(env, 'bundle', moto.endpoint, 'in/fast.json', moto.endpoint, 'out/fast.zip'), 100, 300 * MiB);
    const plainPaced = check('plain paced', await child(env, 'plain', pacedList, String(CONNECTIONS)), 100, 300 * MiB);
    const bundlePaced = check('bundle paced', await child(env, 'bundle', moto.endpoint, 'in/paced.json', discard.endpoint, 'out/paced.zip'), 100, 300 * MiB);
    const bundlePacedMoto = check('bundle paced moto', await child(env, 'bundle', moto.endpoint, 'in/paced.json', moto.endpoint, 'out/paced.zip'), 100, 300 * MiB);

    const rssRatio = large.maxRssMb / small.maxRssMb;
    const rssMet = Math.abs(rssRatio - 1) <= 0.1 && Math.max(small.maxRssMb, large.maxRssMb) < 300;
    const mibs = (r: ChildResult) => r.bytes / MiB / (r.ms / 1000);
    const fastRatio = mibs(bundleFast) / mibs(plainFast);
    const pacedRatio = mibs(bundlePaced) / mibs(plainPaced);
    const rows: [string, string][] = [
      ['machine', `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version} (shared with other jobs)`],
      ['load average (1, 5, 15 min) at the end', os.loadavg().map((l) => l.toFixed(2)).join(', ')],
      ['peak RSS, idle child (modules loaded, no work)', `${idle.maxRssMb.toFixed(0)} MB`],
      ['peak RSS, bundle 300 x 3 MiB (900 MiB)', `${small.maxRssMb.toFixed(0)} MB (${(small.ms / 1000).toFixed(1)} s)`],
      ['peak RSS, bundle 30 x 30 MiB (900 MiB)', `${large.maxRssMb.toFixed(0)} MB (${(large.ms / 1000).toFixed(1)} s)`],
      ['RSS ratio 30 x 30 MiB / 300 x 3 MiB (goal within 10 %, both < 300 MB)', `**${rssRatio.toFixed(3)}** (${rssMet ? 'met' : 'NOT met'})`],
      ['plain download, 100 x 3 MiB, 5 connections, loopback', `${mibs(plainFast).toFixed(0)} MiB/s (${(plainFast.ms / 1000).toFixed(1)} s)`],
      ['bundle, same files, loopback, archive to the discarding S3 endpoint', `${mibs(bundleFast).toFixed(0)} MiB/s (${(bundleFast.ms / 1000).toFixed(1)} s)`],
      ['bundle / plain, loopback (CPU-bound)', `**${fastRatio.toFixed(2)}**`],
      ['bundle, same files, loopback, archive to moto_server', `${mibs(bundleFastMoto).toFixed(0)} MiB/s (${(bundleFastMoto.ms / 1000).toFixed(1)} s; / plain ${(mibs(bundleFastMoto) / mibs(plainFast)).toFixed(2)})`],
      [`plain download, paced ${PACED_MIB_S} MiB/s per response`, `${mibs(plainPaced).toFixed(1)} MiB/s (${(plainPaced.ms / 1000).toFixed(1)} s)`],
      [`bundle, paced, archive to the discarding S3 endpoint`, `${mibs(bundlePaced).toFixed(1)} MiB/s (${(bundlePaced.ms / 1000).toFixed(1)} s)`],
      ['bundle / plain, paced (network-bound; goal >= 0.8)', `**${pacedRatio.toFixed(2)}** (${pacedRatio >= 0.8 ? 'met' : 'NOT met'})`],
      ['bundle, paced, archive to moto_server', `${mibs(bundlePacedMoto).toFixed(1)} MiB/s (${(bundlePacedMoto.ms / 1000).toFixed(1)} s; / plain ${(mibs(bundlePacedMoto) / mibs(plainPaced)).toFixed(2)})`],
      ['bench wall time', `${((Date.now() - t0) / 1000).toFixed(0)} s`],
    ];
    console.log(['| measure | value |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n'));
  } finally {
    s3.destroy();
    await host.close();
    await discard.close();
    moto.proc.kill('SIGTERM');
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
