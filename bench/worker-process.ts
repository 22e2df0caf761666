/**
 * The worker as a whole process, the way the container runs it: src/main.ts bundled by esbuild with the
 * Dockerfile's flags, `node worker.js` with the environment contract, reading from moto_server's S3
 * on loopback and writing its result there. Compared in the same run, alternating, median of R rounds:
 *  - the parse-only floor: read the file, split lines, JSON.parse each line, nothing else;
 *  - the minimal hand-written loop (bench/baseline.ts): the floor plus the aggregation;
 *  - the bundled worker process with WORKER_THREADS=1 and =2 (start-up, S3, checkpoints, output included);
 *  - DuckDB (@duckdb/node-api) with 1 and 2 threads: read_json on the local file, per-segment severity
 *    counts and depth count/sum/max GROUP BY segmentId (no days, no heatmap, no rejects, no offsets).
 * Peak RSS of the worker process at N and 4N records (fresh processes, /usr/bin/time).
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import { createReadStream, linkSync, mkdirSync, readFileSync, rmSync, statSync } from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { baselineAggregate } from './baseline';

const ROOT = path.resolve(__dirname, '..');
const ENV_AWS = { AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_REGION: 'us-east-1' };

export const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' / ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The Dockerfile's build stage, on this machine (target node20: the Node that runs here): the entry's
 * bundle, and for the worker's own entry also the scan threads' bundle next to it (scan-thread.js).
 */
export function bundleWorker(outDir: string, entry = path.join(ROOT, 'containers/worker/src/main.ts'), name = 'worker.js'): string {
  mkdirSync(outDir, { recursive: true });
  const build = (from: string, file: string) => {
    const r = spawnSync(
      path.join(ROOT, 'node_modules/.bin/esbuild'),
      [
        from,
        '--bundle', '--platform=node', '--target=node20', '--format=cjs',
        '--external:sharp', '--external:tesseract.js',
        '--minify-syntax', '--sourcemap', '--legal-comments=none', `--outfile=${file}`, '--log-level=warning',
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`esbuild failed: ${r.stderr}`);
  };
  const out = path.join(outDir, name);
  build(entry, out);
  if (entry === path.join(ROOT, 'containers/worker/src/main.ts')) {
    build(path.join(ROOT, 'containers/worker/src/engine/scan-thread.ts'), path.join(outDir, 'scan-thread.js'));
  }
  return out;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export async function startMoto(): Promise<{ proc: ChildProcess; endpoint: string }> {
  const port = await freePort();
  const proc = spawn('moto_server', ['-p', String(port)], { stdio: 'ignore', detached: true });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(endpoint)).status > 0) return { proc, endpoint };
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error('moto_server did not start');
}

/** The parse-only floor: read, split lines, JSON.parse each line; nothing else. */
export async function parseFloor(file: string): Promise<number> {
  let n = 0;
  let carry: Buffer | undefined;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    const buf: Buffer = carry ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    let pos = 0;
    for (;;) {
      const nl = buf.indexOf(10, pos);
      if (nl === -1) break;
      if (nl > pos) {
        JSON.parse(buf.toString('utf8', pos, nl));
        n++;
      }
      pos = nl + 1;
    }
    carry = pos < buf.length ? buf.subarray(pos) : undefined;
  }
  if (carry && carry.length > 0) {
    JSON.parse(carry.toString('utf8'));
    n++;
  }
  return n;
}

interface ProcessRun {
  ms: number;
  maxRssMb: number;
  summary: { records: number; rejected: number; threads: number; status: string };
}

/** One bundled worker process as a Batch container runs it, spawn to exit, under /usr/bin/time. */
export interface TimedProcess {
  ms: number;
  maxRssMb: number;
  /** User + system CPU of the process and all its threads. */
  cpuMs: number;
  stdout: string;
}

/**
 * Runs the bundled worker once with the job's environment (the contract's variables on top of the
 * bench's S3 endpoint and credentials) and returns its wall time, peak RSS and CPU time.
 */
export function runTimedWorker(bundle: string, endpoint: string, jobEnv: Record<string, string>): TimedProcess {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'MAXRSS=%M CPU=%U %S', process.execPath, bundle], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: { PATH: process.env.PATH, ...ENV_AWS, NODE_NO_WARNINGS: '1', AWS_ENDPOINT_URL: endpoint, S3_FORCE_PATH_STYLE: 'true', ...jobEnv },
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`worker process (${jobEnv.OPERATION}) exited ${r.status}: ${r.stderr.slice(-2000)}`);
  const m = /MAXRSS=(\d+) CPU=([\d.]+) ([\d.]+)/.exec(r.stderr);
  if (!m) throw new Error(`no RSS or CPU time from /usr/bin/time: ${r.stderr.slice(-500)}`);
  return { ms, maxRssMb: Number(m[1]) / 1024, cpuMs: (Number(m[2]) + Number(m[3])) * 1000, stdout: r.stdout };
}

/** One bundled aggregate-defects worker process, from spawn to exit, with its peak RSS. */
export function runWorkerProcess(
  bundle: string,
  endpoint: string,
  bucket: string,
  key: string,
  threads: number,
  outKey: string,
  env: Record<string, string> = {},
): ProcessRun {
  const { ms, maxRssMb, stdout } = runTimedWorker(bundle, endpoint, {
    ...env,
    JOB_ID: 'bench',
    OPERATION: 'aggregate-defects',
    INPUT_S3_BUCKET: bucket,
    INPUT_S3_KEY: key,
    OUTPUT_S3_BUCKET: bucket,
    OUTPUT_S3_KEY: outKey,
    WORKER_THREADS: String(threads),
  });
  const line = stdout.split('\n').find((l) => l.includes('"message":"summary"'));
  if (!line) throw new Error('no summary line from the worker process');
  return { ms, maxRssMb, summary: JSON.parse(line) };
}

export async function upload(endpoint: string, bucket: string, key: string, file: string): Promise<void> {
  const env = { ...process.env, ...ENV_AWS, AWS_ENDPOINT_URL: endpoint };
  spawnSync('aws', ['s3', 'mb', `s3://${bucket}`], { env, stdio: 'ignore' });
  const r = spawnSync('aws', ['s3', 'cp', file, `s3://${bucket}/${key}`, '--quiet'], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`upload failed: ${r.stderr}`);
}

export function downloadText(endpoint: string, bucket: string, key: string): string {
  const env = { ...process.env, ...ENV_AWS, AWS_ENDPOINT_URL: endpoint };
  const r = spawnSync('aws', ['s3', 'cp', `s3://${bucket}/${key}`, '-'], { env, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`download failed: ${r.stderr}`);
  return r.stdout;
}

const DUCK_SQL = (file: string) => `
  SELECT segmentId, count(*) AS n,
         count(*) FILTER (WHERE severity = 'low') AS low, count(*) FILTER (WHERE severity = 'medium') AS medium,
         count(*) FILTER (WHERE severity = 'high') AS high, count(*) FILTER (WHERE severity = 'critical') AS critical,
         count(depthMm) AS depth_count, sum(round(depthMm * 1000)::BIGINT) AS depth_sum_um, max(depthMm) AS depth_max
  FROM read_json('${file.replace(/'/g, "''")}', format = 'newline_delimited',
       columns = {segmentId: 'VARCHAR', severity: 'VARCHAR', lat: 'DOUBLE', lon: 'DOUBLE', detectedAt: 'VARCHAR', depthMm: 'DOUBLE'})
  GROUP BY segmentId`;

/** DuckDB with `threads` threads, fresh instance; returns records counted and ms. */
export async function duckdb(file: string, threads: number): Promise<{ ms: number; records: number; segments: number }> {
  const t0 = process.hrtime.bigint();
  const instance = await DuckDBInstance.create(':memory:', { threads: String(threads) });
  const conn = await instance.connect();
  const reader = await conn.runAndReadAll(DUCK_SQL(file));
  const rows = reader.getRowObjects();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  conn.closeSync();
  instance.closeSync();
  return { ms, records: rows.reduce((n, r) => n + Number(r.n), 0), segments: rows.length };
}

export interface ProcessBenchOptions {
  file: string;
  /** A file with 4x the records, for the RSS comparison. */
  bigFile: string;
  records: number;
  rounds: number;
  outDir: string;
}

export async function processBench(o: ProcessBenchOptions): Promise<[string, string][]> {
  const loadBefore = load();
  const bundle = bundleWorker(path.join(o.outDir, 'worker-bundle'));
  const moto = await startMoto();
  try {
    const bucket = 'bench';
    await upload(moto.endpoint, bucket, 'in/2m.jsonl', o.file);
    // The same file laid out for the worker's local-file input (WORKER_LOCAL_INPUT_ROOT=<root>: s3://bench/in/2m.jsonl
    // is read from <root>/bench/in/2m.jsonl), so the worker can also read where DuckDB reads, with no S3 server
    // taking CPU from the 2 cores.
    const localRoot = path.join(o.outDir, 'local-input');
    mkdirSync(path.join(localRoot, bucket, 'in'), { recursive: true });
    const localFile = path.join(localRoot, bucket, 'in', '2m.jsonl');
    rmSync(localFile, { force: true });
    linkSync(o.file, localFile);
    const localEnv = { WORKER_LOCAL_INPUT_ROOT: localRoot };
    const ms: Record<string, number[]> = { floor: [], loop: [], w1: [], w2: [], l1: [], l2: [], duck1: [], duck2: [] };
    let rss1 = 0;
    let rss2t = 0;
    let docs: string[] = [];
    const who = ['floor', 'loop', 'w1', 'w2', 'l1', 'l2', 'duck1', 'duck2'];
    for (let round = 0; round < o.rounds; round++) {
      for (let k = 0; k < who.length; k++) {
        const w = who[(round + k) % who.length];
        const t0 = process.hrtime.bigint();
        if (w === 'floor') {
          const n = await parseFloor(o.file);
          if (n !== o.records) throw new Error(`floor read ${n} records`);
        } else if (w === 'loop') {
          await baselineAggregate(createReadStream(o.file, { highWaterMark: 1 << 20 }));
        } else if (w === 'w1' || w === 'w2' || w === 'l1' || w === 'l2') {
          const threads = w.endsWith('1') ? 1 : 2;
          const r = runWorkerProcess(bundle, moto.endpoint, bucket, 'in/2m.jsonl', threads, `out/${w}.json`, w.startsWith('l') ? localEnv : {});
          if (r.summary.records !== o.records || r.summary.threads !== threads) throw new Error(`worker ${w}: ${JSON.stringify(r.summary)}`);
          if (w === 'w1') rss1 = Math.max(rss1, r.maxRssMb);
          else rss2t = Math.max(rss2t, r.maxRssMb);
          ms[w].push(r.ms);
          continue;
        } else {
          const r = await duckdb(o.file, w === 'duck1' ? 1 : 2);
          if (r.records !== o.records) throw new Error(`duckdb counted ${r.records}`);
          ms[w].push(r.ms);
          continue;
        }
        ms[w].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      console.error(`process round ${round + 1}: ${who.map((w) => `${w} ${Math.round(ms[w][ms[w].length - 1])} ms`).join(', ')}; load ${load()}`);
    }
    docs = ['out/w1.json', 'out/w2.json', 'out/l1.json', 'out/l2.json'].map((k) => downloadText(moto.endpoint, bucket, k));
    if (docs.some((d) => d !== docs[0])) throw new Error('1 and 2 threads, from S3 and from the local file, wrote different results');

    // peak RSS at N and 4N records, one thread, fresh processes
    await upload(moto.endpoint, bucket, 'in/big.jsonl', o.bigFile);
    const big = runWorkerProcess(bundle, moto.endpoint, bucket, 'in/big.jsonl', 1, 'out/big.json');
    const big2 = runWorkerProcess(bundle, moto.endpoint, bucket, 'in/big.jsonl', 2, 'out/big2.json');

    const m = Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, median(v)]));
    const rate = (t: number) => `${Math.round(t).toLocaleString('en-US')} ms (${Math.round((o.records * 1000) / t).toLocaleString('en-US')} records/s)`;
    const fmtRss = (a: number, b: number) => `${a.toFixed(0)} MB / ${b.toFixed(0)} MB (${b >= a ? '+' : ''}${((b / a - 1) * 100).toFixed(1)} %)`;
    return [
      ['load average (1/5/15 min) before / after the process section', `${loadBefore} -> ${load()}`],
      [`parse-only floor (read, split, JSON.parse), median of ${o.rounds}`, rate(m.floor)],
      [`minimal loop (floor + aggregation), median of ${o.rounds}`, rate(m.loop)],
      [`bundled worker process from moto S3, 1 thread, median of ${o.rounds}`, rate(m.w1)],
      [`bundled worker process from moto S3, 2 threads, median of ${o.rounds}`, rate(m.w2)],
      [`DuckDB 1 thread / 2 threads, median of ${o.rounds}`, `${rate(m.duck1)} / ${rate(m.duck2)}`],
      ['**worker process (1 thread) / parse-only floor** (target >= 0.8)', `**${(m.floor / m.w1).toFixed(2)}**`],
      ['worker process (1 thread) / minimal loop', `${(m.loop / m.w1).toFixed(2)}`],
      ['worker process 2 threads / 1 thread', `${(m.w1 / m.w2).toFixed(2)}`],
      ['**worker process (2 threads) / DuckDB (2 threads)** (target >= 0.35)', `**${(m.duck2 / m.w2).toFixed(2)}**`],
      ['worker process (1 thread) / DuckDB (1 thread)', `${(m.duck1 / m.w1).toFixed(2)}`],
      [`bundled worker process from the local file (WORKER_LOCAL_INPUT_ROOT), 1 / 2 threads, median of ${o.rounds}`, `${rate(m.l1)} / ${rate(m.l2)}`],
      ['**worker process (2 threads) / DuckDB (2 threads), both reading the local file**', `**${(m.duck2 / m.l2).toFixed(2)}**`],
      ['worker process from the local file: 2 threads / 1 thread', `${(m.l1 / m.l2).toFixed(2)}`],
      ['worker process (1 thread) from the local file / parse-only floor', `${(m.floor / m.l1).toFixed(2)}`],
      [`**peak RSS of the worker process, 1 thread, ${o.records / 1e6}M / ${(o.records * 4) / 1e6}M records** (target < 200 MB, flat)`, `**${fmtRss(rss1, big.maxRssMb)}**`],
      [`peak RSS of the worker process, 2 threads, ${o.records / 1e6}M / ${(o.records * 4) / 1e6}M records`, fmtRss(rss2t, big2.maxRssMb)],
      ['input object', `${(statSync(o.file).size / 1e6).toFixed(0)} MB; result documents of 1 and 2 threads, from S3 and from the local file, byte-identical: true`],
      ['bundle', `${(readFileSync(bundle).length / 1e6).toFixed(1)} MB (esbuild, Dockerfile flags, source map in a separate file)`],
    ];
  } finally {
    process.kill(-moto.proc.pid!, 'SIGTERM');
  }
}
