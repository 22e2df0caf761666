import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { freePort } from './moto-global-setup';

/**
 * Starts ONE throwaway PostgreSQL cluster for the whole jest run (initdb -A trust + pg_ctl, as the
 * `postgres` user when jest runs as root) on 127.0.0.1 and a free port, and publishes its URL as
 * PG_TEST_URL. Nothing is skipped when the server is missing: the run fails with how to install it.
 * `stopPostgres()` (globalTeardown) stops the cluster and removes its directory.
 */
export const DEFAULT_PG_BIN = '/usr/lib/postgresql/15/bin';

interface RunningCluster {
  dir: string;
  bin: string;
  asPostgres: boolean;
}

/** Runs a PostgreSQL binary, as the `postgres` user when we are root (initdb refuses to run as root). */
function pgRun(cluster: Pick<RunningCluster, 'bin' | 'asPostgres'>, tool: string, args: string[]): void {
  const exe = path.join(cluster.bin, tool);
  const [cmd, argv] = cluster.asPostgres ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
  const res = spawnSync(cmd, argv, { encoding: 'utf8', cwd: '/' });
  if (res.status !== 0) {
    throw new Error(`${tool} ${args.join(' ')} failed (exit ${res.status}): ${res.error?.message ?? ''}${res.stderr}${res.stdout}`);
  }
}

export async function startPostgres(): Promise<void> {
  if (process.env.PG_TEST_URL) return; // an already running server was given
  const bin = process.env.PG_BIN ?? DEFAULT_PG_BIN;
  if (!fs.existsSync(path.join(bin, 'initdb')) || !fs.existsSync(path.join(bin, 'pg_ctl'))) {
    throw new Error(
      `PostgreSQL server binaries not found in ${bin} (initdb, pg_ctl): install them with ` +
        '`apt-get install -y postgresql-15` (.ci/run does) or point PG_BIN at another bin directory',
    );
  }
  const asPostgres = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbp-pg-'));
  const cluster: RunningCluster = { dir, bin, asPostgres };
  const data = path.join(dir, 'data');
  const sockets = path.join(dir, 'sockets');
  fs.mkdirSync(sockets);
  if (asPostgres) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) throw new Error('running as root but there is no `postgres` user to run the PostgreSQL server as');
    for (const p of [dir, sockets]) fs.chownSync(p, Number(id.stdout.trim()), Number(gid.stdout.trim()));
  }
  const port = await freePort();
  try {
    pgRun(cluster, 'initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
    // fsync off: a throwaway cluster trades durability for test speed.
    const opts = [
      `-p ${port}`,
      '-c listen_addresses=127.0.0.1',
      `-c unix_socket_directories=${sockets}`,
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=50',
    ].join(' ');
    pgRun(cluster, 'pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  } catch (err) {
    const logFile = path.join(dir, 'server.log');
    const serverLog = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : '';
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start the test PostgreSQL cluster: ${(err as Error).message}\n${serverLog}`);
  }
  process.env.PG_TEST_URL = `postgres://postgres@127.0.0.1:${port}/postgres`;
  (globalThis as { __POSTGRES__?: RunningCluster }).__POSTGRES__ = cluster;
}

export async function stopPostgres(): Promise<void> {
  const cluster = (globalThis as { __POSTGRES__?: RunningCluster }).__POSTGRES__;
  if (!cluster) return;
  try {
    pgRun(cluster, 'pg_ctl', ['-D', path.join(cluster.dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  } finally {
    fs.rmSync(cluster.dir, { recursive: true, force: true });
  }
}
