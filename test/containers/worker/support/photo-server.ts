import { createCipheriv, createHash } from 'crypto';
import * as http from 'http';
import { gzipSync } from 'zlib';

/**
 * Deterministic "photo" bytes for a name: AES-128-CTR keystream keyed by the name, so any size is
 * cheap to make and a byte range can be produced without the bytes before it.
 */
function keystream(name: string): (n: number) => Buffer {
  const key = createHash('sha256').update(name).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

export function photoBytes(name: string, size: number): Buffer {
  return keystream(name)(size);
}

/** sha256 (hex) of photoBytes(name, size), computed in 1 MiB steps without holding the bytes. */
export function photoSha256(name: string, size: number): string {
  const next = keystream(name);
  const hash = createHash('sha256');
  for (let left = size; left > 0; left -= 1 << 20) hash.update(next(Math.min(left, 1 << 20)));
  return hash.digest('hex');
}

export interface PhotoServer {
  base: string;
  /** Requests per path. */
  hits: Map<string, number>;
  /** Body bytes written per path (all requests), to show a download was cut off. */
  sent: Map<string, number>;
  /** Called on every request with its path, before answering. */
  onRequest?: (path: string) => void;
  close(): Promise<void>;
}

/**
 * A local photo host on 127.0.0.1 and a free port:
 *   /ok/<name>?size=N          -> N bytes with Content-Length
 *   /chunked/<name>?size=N     -> N bytes, chunked (no Content-Length), streamed as the client reads
 *   /gzip/<name>?size=N        -> N bytes gzip-encoded, chunked; &zeros=1 sends zeros (a "gzip bomb")
 *   /stall/<name>              -> headers and 1 KB, then nothing until the client gives up
 *   /slow/<name>               -> 20 KB after 400 ms
 *   /flaky/<name>              -> HTTP 503 twice, then 30 KB
 *   /missing/<name>            -> HTTP 404
 *   /broken/<name>             -> HTTP 500 always
 */
export async function startPhotoServer(): Promise<PhotoServer> {
  const hits = new Map<string, number>();
  const sent = new Map<string, number>();
  const count = (p: string, n: number) => sent.set(p, (sent.get(p) ?? 0) + n);
  const handle: PhotoServer = {
    base: '',
    hits,
    sent,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname;
    const n = (hits.get(p) ?? 0) + 1;
    hits.set(p, n);
    handle.onRequest?.(p);
    const [, kind, name] = p.split('/');
    const size = Number(url.searchParams.get('size') ?? 10_000);
    const sendBytes = (bytes: number) => {
      const body = photoBytes(name, bytes);
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
      count(p, body.length);
      res.end(body);
    };
    if (kind === 'ok') return sendBytes(size);
    if (kind === 'chunked') {
      // Generated as the client reads (backpressure), never held whole: 400 MB cost nothing.
      const next = keystream(name);
      let left = size;
      let closed = false;
      res.on('close', () => {
        closed = true;
      });
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      const pump = () => {
        while (!closed && left > 0) {
          const chunk = next(Math.min(left, 64 * 1024));
          left -= chunk.length;
          count(p, chunk.length);
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        if (!closed) res.end();
      };
      pump();
      return;
    }
    if (kind === 'gzip') {
      const raw = url.searchParams.get('zeros') ? Buffer.alloc(size) : photoBytes(name, size);
      const body = gzipSync(raw);
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-encoding': 'gzip' });
      count(p, body.length);
      res.end(body);
      return;
    }
    if (kind === 'stall') {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': 1_000_000 });
      res.write(Buffer.alloc(1024));
      return;
    }
    if (kind === 'slow') {
      setTimeout(() => sendBytes(20_000), 400);
      return;
    }
    if (kind === 'flaky') {
      if (n <= 2) {
        res.writeHead(503).end('busy');
        return;
      }
      return sendBytes(30_000);
    }
    if (kind === 'missing') {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(500).end('boom');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address() as { port: number };
  handle.base = `http://127.0.0.1:${addr.port}`;
  handle.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      // fetch keeps idle keep-alive connections open; they would hold the test worker.
      server.closeAllConnections();
    });
  return handle;
}

/** A URL on loopback where nothing listens (connection refused). */
export async function refusedUrl(name: string): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}/${name}`;
}
