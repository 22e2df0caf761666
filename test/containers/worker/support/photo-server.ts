import * as http from 'http';
import { prng } from '../../../../containers/worker/src/sample-data';

/** Deterministic "photo" bytes for a name. */
export function photoBytes(name: string, size: number): Buffer {
  const rnd = prng([...name].reduce((a, c) => a * 31 + c.charCodeAt(0), 7) >>> 0);
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buf[i] = Math.floor(rnd() * 256);
  return buf;
}

/**
 * A local photo host on 127.0.0.1 and a free port:
 *   /ok/<name>?size=N   -> N bytes
 *   /slow/<name>         -> 20 KB after 400 ms
 *   /flaky/<name>        -> HTTP 503 twice, then 30 KB
 *   /missing/<name>      -> HTTP 404
 *   /broken/<name>       -> HTTP 500 always
 */
export async function startPhotoServer(): Promise<{ base: string; hits: Map<string, number>; close(): Promise<void> }> {
  const hits = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const n = (hits.get(url.pathname) ?? 0) + 1;
    hits.set(url.pathname, n);
    const [, kind, name] = url.pathname.split('/');
    const sendBytes = (size: number) => {
      const body = photoBytes(name, size);
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
      res.end(body);
    };
    if (kind === 'ok') return sendBytes(Number(url.searchParams.get('size') ?? 10_000));
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
  return {
    base: `http://127.0.0.1:${addr.port}`,
    hits,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        // fetch keeps idle keep-alive connections open; they would hold the test worker.
        server.closeAllConnections();
      }),
  };
}
