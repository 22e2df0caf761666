import * as http from 'http';
import { ConfigError, parseConfig } from './config';
import type { Logger } from './log';
import { runWorker } from './run';

/**
 * Local mode outside Batch: `GET /healthz` and `POST /process` (a JSON body with the environment
 * contract's fields; S3 endpoints and credentials still come from the process environment; with
 * `?document=omit` the answer has no result document).
 * SIGTERM stops accepting requests, interrupts running chunks (they save checkpoints) and exits.
 */
export interface ServeHandle {
  server: http.Server;
  port: number;
  /** Stops accepting, interrupts running work, resolves once everything has finished. */
  shutdown(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error(`request body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function serve(port: number, log: Logger, host = '0.0.0.0'): Promise<ServeHandle> {
  const controller = new AbortController();
  const running = new Set<Promise<unknown>>();

  const server = http.createServer((req, res) => {
    const [url, queryText] = (req.url ?? '/').split('?', 2);
    if (req.method === 'GET' && url === '/healthz') {
      send(res, controller.signal.aborted ? 503 : 200, { status: controller.signal.aborted ? 'stopping' : 'ok' });
      return;
    }
    if (req.method === 'POST' && url === '/process') {
      // `?document=omit`: the answer leaves out the result document (it is in S3 at output.key), which
      // the local runner's pool never reads; a large aggregate's is most of the answer.
      const document = new URLSearchParams(queryText ?? '').get('document') ?? 'include';
      if (document !== 'include' && document !== 'omit') {
        send(res, 400, { error: `query parameter document=${JSON.stringify(document)} is not allowed; use document=include (the default) or document=omit` });
        return;
      }
      const work = (async () => {
        let body: Record<string, unknown>;
        try {
          const parsed = JSON.parse(await readBody(req)) as unknown;
          if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('body must be a JSON object');
          body = parsed as Record<string, unknown>;
        } catch (err) {
          send(res, 400, { error: (err as Error).message });
          return;
        }
        try {
          const config = parseConfig(body);
          const result = await runWorker(config, log, controller.signal);
          const status = result.status === 'succeeded' ? 200 : result.status === 'interrupted' ? 503 : 422;
          send(res, status, document === 'omit' ? { ...result, document: undefined } : result);
        } catch (err) {
          if (err instanceof ConfigError) send(res, 400, { error: err.message, variable: err.variable });
          else {
            log.error('process failed', { error: (err as Error).message });
            send(res, 500, { error: (err as Error).message });
          }
        }
      })();
      running.add(work);
      void work.finally(() => running.delete(work));
      return;
    }
    send(res, 404, { error: `no route ${req.method} ${url}; use GET /healthz or POST /process` });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      const bound = typeof addr === 'object' && addr ? addr.port : port;
      log.info('serving', { port: bound, pid: process.pid, routes: ['GET /healthz', 'POST /process'] });
      resolve({
        server,
        port: bound,
        async shutdown() {
          controller.abort();
          const closed = new Promise<void>((r) => server.close(() => r()));
          await Promise.allSettled([...running]);
          server.closeIdleConnections();
          await closed;
        },
      });
    });
  });
}
