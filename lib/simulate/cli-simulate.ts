import { Command, InvalidArgumentError } from 'commander';
import { CliContext } from '../client/cli/context';
import { InvalidRequestError } from '../client/errors';
import { DEFAULT_PARAMETERS, PARAMETER_SOURCES } from './parameters';
import { SIMULATED_ROUTES, SimulatedRoute, sweep } from './simulate';

/** Per-thread rate of the worker measured by `npm run bench` (per-chunk worker process, Node start-up included). */
export const MEASURED_RECORDS_PER_SECOND = 216_000;

interface SimulateOptions {
  records: number;
  bytesPerRecord: number;
  rate: number;
  chunkRecords: number[];
  concurrency: number[];
  routes: SimulatedRoute[];
  threads: number;
  jobVcpus: number;
  jobMemory: number;
  maxVcpus: number;
  seed: number;
}

function positive(integer: boolean): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`expected a ${integer ? 'whole ' : ''}number > 0, got "${value}"`);
    }
    return n;
  };
}

function list(value: string): number[] {
  return value.split(',').map((v) => positive(true)(v.trim()));
}

function routes(value: string): SimulatedRoute[] {
  const out = value.split(',').map((v) => v.trim().toUpperCase());
  const bad = out.filter((r) => !(SIMULATED_ROUTES as readonly string[]).includes(r));
  if (bad.length) throw new InvalidArgumentError(`unknown route ${bad.join(', ')}; allowed: ${SIMULATED_ROUTES.join(', ')}`);
  return out as SimulatedRoute[];
}

const minutes = (s: number): string => `${(s / 60).toFixed(1)} min`;

/** `batchctl simulate`: wall time, vCPU-hours and cost of a chunked run on AWS across settings. */
export function register(program: Command, ctx?: CliContext): void {
  program
    .command('simulate')
    .description('simulate a chunked run on AWS (discrete events: start-up, Spot interruptions, Lambda cold starts, quotas) across chunk sizes, concurrencies and routes')
    .option('--records <n>', 'records in the input', positive(true), 60_000_000)
    .option('--bytes-per-record <n>', 'mean bytes per record', positive(false), 155)
    .option('--rate <n>', `records per second of one worker thread (default: measured, ${MEASURED_RECORDS_PER_SECOND})`, positive(false), MEASURED_RECORDS_PER_SECOND)
    .option('--chunk-records <list>', 'chunk sizes to try', list, [250_000, 500_000, 1_000_000, 2_000_000, 5_000_000])
    .option('--concurrency <list>', 'Map MaxConcurrency values to try', list, [10, 50, 100, 250])
    .option('--routes <list>', `routes to try (${SIMULATED_ROUTES.join(', ')})`, routes, [...SIMULATED_ROUTES])
    .option('--threads <n>', 'worker threads per chunk job', positive(true), 1)
    .option('--job-vcpus <n>', 'Batch job vCPUs', positive(false), 4)
    .option('--job-memory <MiB>', 'Batch job memory', positive(true), 8192)
    .option('--max-vcpus <n>', 'compute environment maximum vCPUs', positive(true), 256)
    .option('--seed <n>', 'seed of the random draws', positive(true), 1)
    .action((opts: SimulateOptions, cmd: Command) => {
      if (opts.threads > opts.jobVcpus) throw new InvalidRequestError(`simulate: --threads (${opts.threads}) cannot exceed --job-vcpus (${opts.jobVcpus})`);
      const rows = sweep(
        {
          records: opts.records,
          bytesPerRecord: opts.bytesPerRecord,
          recordsPerSecondPerThread: opts.rate,
          threadsPerJob: opts.threads,
          jobVcpus: opts.jobVcpus,
          jobMemoryMiB: opts.jobMemory,
          maxvCpus: opts.maxVcpus,
          seed: opts.seed,
        },
        { chunkRecords: opts.chunkRecords, concurrency: opts.concurrency, routes: opts.routes },
      ).sort((a, b) => a.wallSeconds - b.wallSeconds);
      const report = { parameters: DEFAULT_PARAMETERS, sources: PARAMETER_SOURCES, rows };
      const lines = (): string[] => [
        `${opts.records.toLocaleString('en-US')} records, ${opts.rate.toLocaleString('en-US')} records/s per thread, ${opts.threads} thread(s) per job (parameters and sources: docs/simulation.md)`,
        `${'route'.padEnd(14)} ${'chunk'.padStart(9)} ${'conc'.padStart(5)} ${'chunks'.padStart(6)} ${'slots'.padStart(5)} ${'wall'.padStart(10)} ${'vCPU-h'.padStart(8)} ${'cost'.padStart(9)}  marks`,
        ...rows.map(
          (r) =>
            `${r.scenario.route.padEnd(14)} ${String(r.scenario.chunkRecords).padStart(9)} ${String(r.scenario.concurrency).padStart(5)} ${String(r.chunks).padStart(6)} ${String(r.slots).padStart(5)} ${minutes(r.wallSeconds).padStart(10)} ${r.vcpuHours.toFixed(2).padStart(8)} ${`$${r.cost.total.toFixed(3)}`.padStart(9)}  ${r.marks.join(', ')}`,
        ),
      ];
      if (ctx) ctx.print(cmd, report, lines);
      else process.stdout.write(`${lines().join('\n')}\n`);
    });
}
