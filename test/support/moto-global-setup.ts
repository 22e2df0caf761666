import { spawn, spawnSync } from 'child_process';
import * as net from 'net';

/**
 * Starts ONE moto_server for the whole jest run on 127.0.0.1 and a free port, switches Batch to
 * no-Docker mode (jobs go straight to SUCCEEDED) and publishes the endpoint as MOTO_ENDPOINT.
 * Suites reset it with `resetMoto()` (test/support/moto.ts).
 */
/** A free TCP port on 127.0.0.1 (the PostgreSQL setup uses it too). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(endpoint: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      if (res.status < 500) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`moto_server did not start at ${endpoint} within ${timeoutMs} ms: ${String(lastError)}`);
}

export default async function globalSetup(): Promise<void> {
  if (process.env.MOTO_ENDPOINT) return; // an already running server was given (e.g. by .ci/run)
  const which = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' });
  if (which.status !== 0) {
    throw new Error('moto_server is not installed: install it with `pip install "moto[server]"` (see docs/testing.md)');
  }
  const port = await freePort();
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: false,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitUntilUp(endpoint, 30000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  const cfg = await fetch(`${endpoint}/moto-api/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ batch: { use_docker: false } }),
  });
  if (!cfg.ok) throw new Error(`could not configure moto Batch: HTTP ${cfg.status}`);
  process.env.MOTO_ENDPOINT = endpoint;
  (globalThis as { __MOTO__?: typeof child }).__MOTO__ = child;
}
