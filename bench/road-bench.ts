/**
 * `npm run bench:road` (issue 14): rows per second from PostgreSQL through the worker's database source
 * and `aggregate-defects` (processQuery, as the road-metrics job runs it), next to a bare
 * `COPY (same SELECT) TO STDOUT` read of the same rows by psql into /dev/null, in the same run on a
 * throwaway cluster (started the way jest's globalSetup starts one); and the peak RSS of the source at
 * 1M vs 4M rows (each in its own process, so the peaks do not mix). Prints ratios and the load average.
 * ROAD_BENCH_ROWS=250000,1000000 overrides the sizes.
 */
import { spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { Client } from 'pg';
import { processQuery } from '../containers/worker/src/engine/postgres';
import { DEFAULT_DEFECTS_QUERY } from '../containers/worker/src/road-metrics/job';
import { DEFAULT_PG_BIN, startPostgres, stopPostgres } from '../test/support/postgres-global-setup';

const FROM = '2023-11-01T00:00:00Z';
const TO = '2023-11-02T00:00:00Z';

async function child(url: string, table: string): Promise<void> {
  const db = new Client({ connectionString: url });
  await db.connect();
  const t0 = process.hrtime.bigint();
  const run = await processQuery('aggregate-defects', db, { ...DEFAULT_DEFECTS_QUERY, table }, { from: new Date(FROM), to: new Date(TO) });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await db.end();
  process.stdout.write(JSON.stringify({ ms, records: run.records, rejected: run.rejected, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

function measureSource(url: string, table: string): { ms: number; records: number; rejected: number; maxRssMb: number } {
  const res = spawnSync(process.execPath, [...process.execArgv, __filename, 'child', url, table], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (res.status !== 0) throw new Error(`source run failed: ${res.stderr}`);
  return JSON.parse(res.stdout.trim().split('\n').pop()!);
}

function measureCopy(url: string, table: string): number {
  const c = DEFAULT_DEFECTS_QUERY as { columns: Record<string, string> };
  const cols = ['id', ...Object.values(c.columns).filter((v, i, a) => a.indexOf(v) === i)].join(', ');
  const sql = `COPY (SELECT ${cols} FROM ${table} WHERE detected_at >= '${FROM}' AND detected_at < '${TO}') TO STDOUT`;
  const t0 = process.hrtime.bigint();
  const res = spawnSync(path.join(process.env.PG_BIN ?? DEFAULT_PG_BIN, 'psql'), [url, '-X', '-q', '-c', sql, '-o', '/dev/null'], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (res.status !== 0) throw new Error(`psql COPY failed: ${res.stderr}`);
  return ms;
}

async function main(): Promise<void> {
  const sizes = (process.env.ROAD_BENCH_ROWS ?? '1000000,4000000').split(',').map(Number);
  await startPostgres();
  const url = process.env.PG_TEST_URL!;
  const db = new Client({ connectionString: url });
  await db.connect();
  const rows: string[] = [];
  const figures: { n: number; ratio: number; rss: number }[] = [];
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
      const copyMs = Math.min(measureCopy(url, table), measureCopy(url, table));
      const a = measureSource(url, table);
      const b = measureSource(url, table);
      const src = a.ms <= b.ms ? a : b;
      if (src.records !== n || src.rejected !== 0) throw new Error(`source read ${src.records} records, ${src.rejected} rejected; expected ${n}`);
      const ratio = copyMs / src.ms;
      const rss = Math.max(a.maxRssMb, b.maxRssMb);
      figures.push({ n, ratio, rss });
      rows.push(
        `| ${n.toLocaleString('en-US')} | ${Math.round(n / (copyMs / 1000)).toLocaleString('en-US')} | ${Math.round(n / (src.ms / 1000)).toLocaleString('en-US')} | ${ratio.toFixed(2)} | ${rss.toFixed(0)} MB |`,
      );
      await db.query(`DROP TABLE ${table}`);
    }
  } finally {
    await db.end();
    await stopPostgres();
  }
  const out = [
    '| rows | bare COPY TO STDOUT (rows/s) | source + aggregate-defects (rows/s) | ratio (goal >= 0.7) | peak RSS of the source process |',
    '|---:|---:|---:|---:|---:|',
    ...rows,
  ];
  if (figures.length >= 2) {
    const first = figures[0];
    const last = figures[figures.length - 1];
    out.push('', `peak RSS ${last.n.toLocaleString('en-US')} / ${first.n.toLocaleString('en-US')} rows: ${(last.rss / first.rss).toFixed(2)} (flat = about 1)`);
  }
  out.push(`machine: ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at the end`);
  process.stdout.write(out.join('\n') + '\n');
}

if (process.argv[2] === 'child') {
  child(process.argv[3], process.argv[4]).catch((err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
} else {
  main().catch((err: Error) => {
    process.stderr.write(`bench:road: ${err.message}\n`);
    process.exit(1);
  });
}
