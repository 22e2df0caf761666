import * as http from 'http';

/**
 * A real HTTP proxy in front of moto that answers the first `rejectFirst` requests whose path matches
 * with 429 TooManyRequestsException (what Batch returns above ~50 SubmitJob/s), then forwards.
 */
export interface ThrottleProxy {
  readonly endpoint: string;
  readonly rejected: () => number;
  readonly forwarded: () => number;
  close(): Promise<void>;
}

export async function startThrottleProxy(target: string, pathPattern: RegExp, rejectFirst: number): Promise<ThrottleProxy> {
  const upstream = new URL(target);
  let rejected = 0;
  let forwarded = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (pathPattern.test(req.url ?? '') && rejected < rejectFirst) {
        rejected++;
        res.writeHead(429, { 'content-type': 'application/json', 'x-amzn-errortype': 'TooManyRequestsException', 'x-amzn-requestid': `throttled-${rejected}` });
        res.end(JSON.stringify({ message: 'Too Many Requests' }));
        return;
      }
      if (pathPattern.test(req.url ?? '')) forwarded++;
      const fwd = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
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
    rejected: () => rejected,
    forwarded: () => forwarded,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
