/**
 * A local S3 server for the benchmark's S3 path, in its own process so it does not share the
 * measured process's event loop. Prints {"port":N} once listening; stops on SIGTERM.
 */
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver') as new (o: Record<string, unknown>) => { run(): Promise<{ port: number }>; close(): Promise<void> };

async function main(): Promise<void> {
  const directory = mkdtempSync(path.join(process.argv[2] ?? tmpdir(), 's3rver-bench-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: 'bench' }] });
  const { port } = await server.run();
  process.stdout.write(JSON.stringify({ port }) + '\n');
  // Remove the data first: close() waits for the client's keep-alive sockets, and the parent does not wait.
  process.once('SIGTERM', () => {
    rmSync(directory, { recursive: true, force: true });
    process.exit(0);
  });
}

void main();
