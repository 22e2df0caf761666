/**
 * `npm run bench:road` (issue 14): rows per second from PostgreSQL through the worker's database source
 * and `aggregate-defects` (processQuery, as the road-metrics job runs it), next to a bare read of the
 * very COPY statement the source sends (`copyStatement`: same SELECT, same rows, same session settings)
 * by psql into /dev/null, and by node (the source's own CopyOutReader, every byte read, nothing parsed), in the same run
 * on a throwaway cluster (started the way jest's globalSetup starts one); and the peak RSS of the source
 * at 1M vs 4M rows (each run in its own process, so the peaks do not mix). Prints the ratios with the
 * load average at each size, and the CPU time per row of the source process (process.cpuUsage) and of its
 * server backend (/proc/<pid>/stat), which are steadier than wall time on a loaded machine.
 * ROAD_BENCH_ROWS=250000,1000000 overrides the sizes.
 *
 * What each side's time holds: psql's is the whole psql process (start, connect, the three session
 * statements, the COPY into /dev/null, exit), so it carries every fixed cost of a read; the source's is
 * `processQuery` alone in a process already started and connected (the source side runs from an
 * esbuild bundle made with the worker image's flags, bench/road-source-main.ts, as the job runs it) (BEGIN, the session settings, the
 * LIMIT 0 describe, the COPY scanned and aggregated, COMMIT): no process start, module load, connection,
 * TLS (the local cluster is reached in the clear), migration, results write or write-back. Node's bare
 * read times the CopyOutReader alone. The source's time also holds its JIT warm-up (a fresh process per
 * run, as the job runs), which psql does not have.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Client } from 'pg';
import { CopyOutReader } from '../containers/worker/src/engine/pg-copy';
import { copyStatement } from '../containers/worker/src/engine/postgres';
import { DEFAULT_DEFECTS_QUERY } from '../containers/worker/src/road-metrics/job';
import { BENCH_PERIOD } from './road-source-main';
import { bundleWorker } from './worker-process';
import { DEFAULT_PG_BIN, startPostgres, stopPostgres } from '../test/support/postgres-global-setup';

const FROM = BENCH_PERIOD.from.toISOString();

interface SourceRun {
  ms: number;
  records: number;
  rejected: number;
  maxRssMb: number;
  /** CPU time per row of the source process and of its server backend, in microseconds. */
  workerUs: number;
  serverUs: number;
}

/** The source side in its own process, from the bundle (so each run's peak RSS is its own). */
function measureSource(bundle: string, url: string, table: string): SourceRun {
  const res = spawnSync(process.execPath, [bundle, url, table], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (res.status !== 0) throw new Error(`source run failed: ${res.stderr}`);
  return JSON.parse(res.stdout.trim().split('\n').pop()!);
}

const period = BENCH_PERIOD;

/** The source's own COPY statement, read by psql into /dev/null (the same session settings first). */
function measureCopy(url: string, table: string): number {
  const copy = copyStatement({ ...DEFAULT_DEFECTS_QUERY, table }, period);
  const set = copy.settings.map(([name, value]) => `set_config('${name}', '${value}', false)`).join(', ');
  const args = [url, '-X', '-q', '-o', '/dev/null', '-c', "SET TimeZone = 'UTC'", '-c', "SET DateStyle = 'ISO, MDY'", '-c', `SELECT ${set}`, '-c', copy.text];
  const t0 = process.hrtime.bigint();
  const res = spawnSync(path.join(process.env.PG_BIN ?? DEFAULT_PG_BIN, 'psql'), args, { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (res.status !== 0) throw new Error(`psql COPY failed: ${res.stderr}`);
  return ms;
}

/** The same COPY read by node through the source's CopyOutReader, every byte, nothing parsed. */
async function measureNodeCopy(db: Client, table: string): Promise<{ ms: number; bytes: number }> {
  const copy = copyStatement({ ...DEFAULT_DEFECTS_QUERY, table }, period);
  await db.query("SET TimeZone = 'UTC'");
  await db.query("SET DateStyle = 'ISO, MDY'");
  await db.query('SELECT set_config($1, $2, false), set_config($3, $4, false)', copy.settings.flat());
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  const reader = new CopyOutReader(copy.text, (_buf, s, e) => {
    bytes += e - s;
  });
  void db.query(reader);
  await reader.done;
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes };
}

const load = () => os.loadavg()[0].toFixed(1);

async function main(): Promise<void> {
  const sizes = (process.env.ROAD_BENCH_ROWS ?? '1000000,4000000').split(',').map(Number);
  const bundle = bundleWorker(fs.mkdtempSync(path.join(os.tmpdir(), 'road-bench-')), path.join(__dirname, 'road-source-main.ts'), 'road-source.js');
  await startPostgres();
  const url = process.env.PG_TEST_URL!;
  const db = new Client({ connectionString: url });
  await db.connect();
  const rows: string[] = [];
  const figures: { n: number; ratio: number; nodeRatio: number; rss: number; workerUs: number; serverUs: number; load: string }[] = [];
  try {
    for (const n of sizes) {
      const table = `road_defects_${n}`;
      await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, segment_id text, severity text, lat double precision,
        lon double precision, detected_at timestamptz NOT NULL, depth_mm numeric(8,3))`);
      await db.query(
        `INSERT INTO ${table} SELECT g, 'seg-' || lpad((g % 2500)::text, 4, '0'), (ARRAY['low','medium','high','critical'])[1 + (g / 7) % 4],
           47.30 + ((g * 7919) % 1000) / 1000.0 * 0.2, 8.50 + ((g * 104729) % 1000) / 1000.0 * 0.3,
           timestamptz '${FROM}' + ((g * 31) % 86400) * interval '1 second', CASE WHEN g % 10 = 0 THEN NULL ELSE (g % 500) / 10.0 END
         FROM generate_series(1::bigint, $1::bigint) g`,
        [n],
      );
      await db.query(`CREATE INDEX ON ${table} (detected_at)`);
      await db.query(`VACUUM ANALYZE ${table}`);
      measureCopy(url, table); // warm the cache for both
      // interleaved, best of two each, so that a burst of load on the shared machine hits both sides
      const copy1 = measureCopy(url, table);
      const a = measureSource(bundle, url, table);
      const node1 = await measureNodeCopy(db, table);
      const copy2 = measureCopy(url, table);
      const b = measureSource(bundle, url, table);
      const node2 = await measureNodeCopy(db, table);
      const copyMs = Math.min(copy1, copy2);
      const nodeMs = Math.min(node1.ms, node2.ms);
      const src = a.ms <= b.ms ? a : b;
      if (src.records !== n || src.rejected !== 0) throw new Error(`source read ${src.records} records, ${src.rejected} rejected; expected ${n}`);
      const ratio = copyMs / src.ms;
      const rss = Math.max(a.maxRssMb, b.maxRssMb);
      const cpuOf = a.workerUs <= b.workerUs ? a : b;
      figures.push({ n, ratio, nodeRatio: nodeMs / src.ms, rss, workerUs: cpuOf.workerUs, serverUs: cpuOf.serverUs, load: load() });
      const rate = (ms: number) => Math.round(n / (ms / 1000)).toLocaleString('en-US');
      rows.push(
        `| ${n.toLocaleString('en-US')} | ${rate(copyMs)} | ${rate(nodeMs)} | ${rate(src.ms)} | ${ratio.toFixed(2)} | ${(nodeMs / src.ms).toFixed(2)} | ${rss.toFixed(0)} MB | ${cpuOf.workerUs.toFixed(2)} | ${cpuOf.serverUs.toFixed(2)} | ${load()} |`,
      );
      process.stderr.write(`bench:road: ${n} rows done (ratio ${ratio.toFixed(2)}, load ${load()})\n`);
      await db.query(`DROP TABLE ${table}`);
    }
  } finally {
    await db.end();
    await stopPostgres();
  }
  const out = [
    '| rows | bare COPY, psql (rows/s) | bare COPY, node (rows/s) | source + aggregate-defects (rows/s) | ratio to psql (goal >= 0.7) | ratio to node | peak RSS of the source process | source CPU (us/row) | server backend CPU (us/row) | load (1 min) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ];
  out.push('');
  for (const f of figures) {
    out.push(`source / bare COPY (psql) at ${f.n.toLocaleString('en-US')} rows: ${f.ratio.toFixed(2)} (goal >= 0.7; load ${f.load})`);
    out.push(`source / bare COPY (node) at ${f.n.toLocaleString('en-US')} rows: ${f.nodeRatio.toFixed(2)}`);
    out.push(`CPU per row at ${f.n.toLocaleString('en-US')} rows: source ${f.workerUs.toFixed(2)} us, server backend ${f.serverUs.toFixed(2)} us`);
  }
  if (figures.length >= 2) {
    const first = figures[0];
    const last = figures[figures.length - 1];
    out.push(`peak RSS ${last.n.toLocaleString('en-US')} / ${first.n.toLocaleString('en-US')} rows: ${(last.rss / first.rss).toFixed(2)} (goal: flat, about 1)`);
  }
  out.push(`machine: ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at the end`);
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((err: Error) => {
  process.stderr.write(`bench:road: ${err.message}\n`);
  process.exit(1);
});
