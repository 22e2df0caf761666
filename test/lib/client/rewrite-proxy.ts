import * as http from 'http';

/**
 * A real HTTP proxy in front of moto that passes every request through and lets a test rewrite the
 * JSON body of DescribeJobs responses. moto's no-Docker Batch finishes every job SUCCEEDED at once;
 * this is how a test sees a job RUNNING (wait timeout, cancel) or FAILED through the real SDK.
 */
export interface RewriteProxy {
  readonly endpoint: string;
  /** Status every DescribeJobs response reports from now on (undefined: moto's own). */
  setStatus(status: string | undefined, reason?: string): void;
  close(): Promise<void>;
}

export async function startRewriteProxy(target: string): Promise<RewriteProxy> {
  const upstream = new URL(target);
  let forced: { status: string; reason?: string } | undefined;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rewrite = forced && /^\/v1\/describejobs/.test(req.url ?? '');
      const headers = { ...req.headers };
      if (rewrite) delete headers['accept-encoding'];
      const fwd = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (up) => {
        if (!rewrite) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        const body: Buffer[] = [];
        up.on('data', (c: Buffer) => body.push(c));
        up.on('end', () => {
          const doc = JSON.parse(Buffer.concat(body).toString('utf8')) as { jobs?: Record<string, unknown>[] };
          for (const job of doc.jobs ?? []) {
            job.status = forced!.status;
            if (forced!.reason) job.statusReason = forced!.reason;
          }
          const out = Buffer.from(JSON.stringify(doc));
          res.writeHead(up.statusCode ?? 200, { ...up.headers, 'content-length': String(out.length) });
          res.end(out);
        });
      });
      fwd.on('error', (err) => {
        res.writeHead(502);
        res.end(String(err));
      });
      fwd.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    setStatus: (status, reason) => {
      forced = status === undefined ? undefined : { status, reason };
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
