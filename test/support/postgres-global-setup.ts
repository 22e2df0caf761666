import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { freePort } from './moto-global-setup';

/**
 * Starts ONE throwaway PostgreSQL cluster for the whole jest run (initdb -A trust + pg_ctl, as the
 * `postgres` user when jest runs as root) on 127.0.0.1 and a free port, and publishes its URL as
 * PG_TEST_URL. The cluster has ssl=on with a server certificate (IP 127.0.0.1, DNS localhost) signed by
 * a throwaway CA made with `openssl` here; the CA's PEM file is published as PG_TEST_TLS_CA, so tests
 * can connect with TLS verified against it (plain connections keep working: ssl=on does not require
 * TLS). Nothing is skipped when the server is missing: the run fails with how to install it.
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

/**
 * A throwaway CA and a server certificate it signs (P-256 keys, valid 2 days, subjectAltName IP 127.0.0.1
 * and DNS localhost) in `dir`: ca.crt, server.crt, server.key (owned by `postgres`, mode 0600, as the
 * server requires). Fails with how to install openssl when it is missing.
 */
function makeTestCertificates(dir: string, owner: [uid: number, gid: number] | undefined): void {
  fs.mkdirSync(dir);
  const openssl = (args: string[]): void => {
    const res = spawnSync('openssl', args, { encoding: 'utf8', cwd: dir });
    if (res.error && (res.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('openssl not found: install it with `apt-get install -y openssl` (.ci/run does); the TLS tests need it');
    }
    if (res.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (exit ${res.status}): ${res.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=cdk-batch-platform test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext']);
  fs.chmodSync(path.join(dir, 'server.key'), 0o600);
  if (owner) for (const f of ['', 'server.crt', 'server.key']) fs.chownSync(path.join(dir, f), ...owner);
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
  // the server's files belong to the user it runs as
  let owner: [uid: number, gid: number] | undefined;
  if (asPostgres) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) throw new Error('running as root but there is no `postgres` user to run the PostgreSQL server as');
    owner = [Number(id.stdout.trim()), Number(gid.stdout.trim())];
    for (const p of [dir, sockets]) fs.chownSync(p, ...owner);
  }
  const port = await freePort();
  const tls = path.join(dir, 'tls');
  try {
    makeTestCertificates(tls, owner);
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
      '-c ssl=on',
      `-c ssl_cert_file=${path.join(tls, 'server.crt')}`,
      `-c ssl_key_file=${path.join(tls, 'server.key')}`,
    ].join(' ');
    pgRun(cluster, 'pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  } catch (err) {
    const logFile = path.join(dir, 'server.log');
    const serverLog = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : '';
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start the test PostgreSQL cluster: ${(err as Error).message}\n${serverLog}`);
  }
  process.env.PG_TEST_URL = `postgres://postgres@127.0.0.1:${port}/postgres`;
  process.env.PG_TEST_TLS_CA = path.join(tls, 'ca.crt');
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
