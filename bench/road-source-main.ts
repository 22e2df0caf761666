/**
 * The source side of `bench:road`, run as its own process from an esbuild bundle made with the worker
 * image's flags (bundleWorker), so the code measured is the code the road-metrics job runs: the
 * database source (processQuery) and `aggregate-defects`, with no TypeScript loader in between.
 * Argument: the connection URL and the table. Prints one JSON line (SourceRun of road-bench.ts).
 */
import * as fs from 'fs';
import { Client } from 'pg';
import { processQuery } from '../containers/worker/src/engine/postgres';
import { DEFAULT_DEFECTS_QUERY } from '../containers/worker/src/road-metrics/job';

export const BENCH_PERIOD = { from: new Date('2023-11-01T00:00:00Z'), to: new Date('2023-11-02T00:00:00Z') };

/** CPU time (user + system) of a process in ms, from /proc (the server backend runs on this machine). */
export function procCpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 1/100 s
}

async function main(url: string, table: string): Promise<void> {
  const db = new Client({ connectionString: url });
  await db.connect();
  const backend = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
  const server0 = procCpuMs(backend);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const run = await processQuery('aggregate-defects', db, { ...DEFAULT_DEFECTS_QUERY, table }, BENCH_PERIOD);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const serverMs = procCpuMs(backend) - server0;
  await db.end();
  process.stdout.write(
    JSON.stringify({
      ms,
      records: run.records,
      rejected: run.rejected,
      maxRssMb: process.resourceUsage().maxRSS / 1024,
      workerUs: (cpu.user + cpu.system) / run.records,
      serverUs: (serverMs * 1000) / run.records,
    }) + '\n',
  );
}

if (require.main === module) {
  main(process.argv[2], process.argv[3]).catch((err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
}
