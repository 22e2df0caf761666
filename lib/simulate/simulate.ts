import { estimateJobCost } from '../cost/estimate';
import { PRICE_TABLE } from '../cost/prices';
import { DEFAULT_PARAMETERS, Range, SimulationParameters } from './parameters';

/** Where the chunks of a run execute. */
export type SimulatedRoute = 'LAMBDA' | 'EC2_SPOT' | 'EC2_ON_DEMAND' | 'FARGATE' | 'FARGATE_SPOT';
export const SIMULATED_ROUTES: readonly SimulatedRoute[] = ['LAMBDA', 'EC2_SPOT', 'EC2_ON_DEMAND', 'FARGATE', 'FARGATE_SPOT'];

export interface RunScenario {
  readonly records: number;
  /** Mean bytes per record of the input (the seed's road defects: ~155 B as JSON lines). */
  readonly bytesPerRecord: number;
  readonly chunkRecords: number;
  /** The Distributed Map's MaxConcurrency. */
  readonly concurrency: number;
  readonly route: SimulatedRoute;
  /** Records one worker thread processes per second (measure it locally: `npm run bench`). */
  readonly recordsPerSecondPerThread: number;
  /** Worker threads a chunk job uses (the worker is single-threaded today: 1). @default 1 */
  readonly threadsPerJob?: number;
  /** Batch job size. @default 4 vCPU / 8192 MiB */
  readonly jobVcpus?: number;
  readonly jobMemoryMiB?: number;
  /** Compute environment maximum (the stage's maxvCpus). @default 256 */
  readonly maxvCpus?: number;
  /** Seed of the random draws (start-up times, interruptions): same seed, same result. @default 1 */
  readonly seed?: number;
}

export interface SimulationResult {
  readonly scenario: RunScenario;
  readonly chunks: number;
  /** Chunks running at once at most (the smallest of MaxConcurrency, the Map and Lambda quotas, maxvCpus / job vCPUs). */
  readonly slots: number;
  readonly wallSeconds: number;
  /** Billed compute: vCPU-hours of Batch jobs (start-up included, as EC2 and Fargate bill it), or of Lambda at 1 vCPU per 1,769 MB. */
  readonly vcpuHours: number;
  readonly interruptions: number;
  readonly coldStarts: number;
  readonly invocations: number;
  readonly cost: { readonly compute: number; readonly stepFunctions: number; readonly s3: number; readonly lambdaRequests: number; readonly total: number };
}

/** mulberry32: a small seeded generator, so a scenario always gives the same numbers. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const draw = (r: () => number, range: Range): number => range.min + (range.max - range.min) * r();

function check(field: string, value: number, min: number, integer = false): void {
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new Error(`${field} (${value}) must be ${integer ? 'a whole number' : 'a number'} >= ${min}`);
  }
}

/**
 * Simulates one chunked run event by event: chunks start as slots free up (a min-heap of slot-free
 * times), each pays its start-up (cold for a new instance, Lambda environment or every Fargate task;
 * warm when a Batch instance is reused), processes at the slower of CPU and S3 read, and on Spot may be
 * interrupted (a Poisson process per instance-hour) and resume from its checkpoint after a new cold
 * start. Lambda chunks longer than the timeout continue in a further (warm) invocation, as the chunk
 * function checkpoints and raises ChunkInterrupted.
 */
export function simulateRun(scenario: RunScenario, params: SimulationParameters = DEFAULT_PARAMETERS): SimulationResult {
  check('records', scenario.records, 1, true);
  check('chunkRecords', scenario.chunkRecords, 1, true);
  check('concurrency', scenario.concurrency, 1, true);
  check('bytesPerRecord', scenario.bytesPerRecord, 1);
  check('recordsPerSecondPerThread', scenario.recordsPerSecondPerThread, 1);
  const lambda = scenario.route === 'LAMBDA';
  const fargate = scenario.route.startsWith('FARGATE');
  const spot = scenario.route.endsWith('SPOT');
  const jobVcpus = lambda ? params.lambdaMemoryMb / 1769 : scenario.jobVcpus ?? 4;
  const jobMemoryMiB = scenario.jobMemoryMiB ?? 8192;
  const threads = Math.min(scenario.threadsPerJob ?? 1, Math.max(1, Math.floor(jobVcpus)));
  const maxvCpus = scenario.maxvCpus ?? 256;
  const random = rng(scenario.seed ?? 1);

  const chunks = Math.ceil(scenario.records / scenario.chunkRecords);
  const quota = lambda ? params.lambdaConcurrency : Math.max(1, Math.floor(maxvCpus / jobVcpus));
  const slots = Math.min(scenario.concurrency, params.mapMaxConcurrency, quota, chunks);

  // Each slot: when it is free next, and whether it has warm capacity (instance or Lambda environment).
  const slotFree = new Array<number>(slots).fill(params.planSeconds);
  const slotWarm = new Array<boolean>(slots).fill(false);
  let billedSeconds = 0;
  let interruptions = 0;
  let coldStarts = 0;
  let invocations = 0;
  let end = params.planSeconds;
  const interruptRate = spot ? params.spotInterruptionsPerHour / 3600 : 0;

  for (let i = 0; i < chunks; i++) {
    const records = Math.min(scenario.chunkRecords, scenario.records - i * scenario.chunkRecords);
    // The slot that frees first takes the next chunk (the Map starts items in order as slots free).
    let s = 0;
    for (let k = 1; k < slots; k++) if (slotFree[k] < slotFree[s]) s = k;
    let t = slotFree[s];
    const cpu = records / (scenario.recordsPerSecondPerThread * threads);
    const io = (records * scenario.bytesPerRecord) / (params.s3MbPerSecondPerConnection * 1e6);
    let remaining = Math.max(cpu, io);
    let warm = slotWarm[s];
    while (remaining > 0) {
      const startup = lambda
        ? warm ? 0 : draw(random, params.lambdaColdStartSeconds)
        : fargate ? draw(random, params.fargateStartSeconds)
          : draw(random, warm ? params.ec2WarmStartSeconds : params.ec2ColdStartSeconds);
      if (!warm || fargate) coldStarts += 1;
      invocations += 1;
      let run = lambda ? Math.min(remaining, params.lambdaTimeoutSeconds) : remaining;
      // Exponential time to the next interruption; an interrupted chunk resumes from its checkpoint.
      const untilInterrupt = interruptRate > 0 ? -Math.log(1 - random()) / interruptRate : Infinity;
      let interrupted = false;
      if (untilInterrupt < run) {
        run = untilInterrupt;
        interrupted = true;
        interruptions += 1;
      }
      t += startup + run;
      billedSeconds += startup + run;
      remaining -= run;
      // After an interruption the capacity is gone (cold again); a Lambda continuation finds its environment warm.
      warm = !interrupted && !fargate;
    }
    slotFree[s] = t;
    slotWarm[s] = !fargate;
    end = Math.max(end, t);
  }
  const wallSeconds = end + params.aggregateSecondsPerChunk * chunks;

  const vcpuHours = (billedSeconds * jobVcpus) / 3600;
  let compute: number;
  if (lambda) {
    compute = billedSeconds * (params.lambdaMemoryMb / 1024) * PRICE_TABLE.lambda.gbSecondX86;
  } else {
    const kind = fargate ? (spot ? 'FARGATE_SPOT' : 'FARGATE') : spot ? 'EC2_SPOT' : 'EC2_ON_DEMAND';
    // Price the billed seconds of all jobs as one long job: per-second billing is linear above the Fargate minimum.
    compute = estimateJobCost({ vcpus: jobVcpus, memoryMiB: jobMemoryMiB, seconds: Math.max(billedSeconds, 60) }).find((c) => c.capacity === kind)!.cost;
  }
  const transitions = params.transitionsPerRun + params.transitionsPerChunk * chunks;
  const stepFunctions = (transitions / 1000) * PRICE_TABLE.stepFunctions.transitionThousand;
  // Per chunk: one ranged GET of the input, plus the planner's boundary read; PUTs for result, summary, done marker.
  const s3 = ((2 * chunks) / 1000) * PRICE_TABLE.s3.getThousand + ((3 * chunks + 4) / 1000) * PRICE_TABLE.s3.putThousand;
  const lambdaRequests = lambda ? (invocations / 1e6) * PRICE_TABLE.lambda.requestMillion : 0;
  const total = compute + stepFunctions + s3 + lambdaRequests;
  return {
    scenario,
    chunks,
    slots,
    wallSeconds,
    vcpuHours,
    interruptions,
    coldStarts,
    invocations,
    cost: { compute, stepFunctions, s3, lambdaRequests, total },
  };
}

export interface SweepRow extends SimulationResult {
  /** The fastest, the cheapest, and the best (the cheapest within 10 % of the fastest wall time). */
  readonly marks: readonly ('fastest' | 'cheapest' | 'best')[];
}

/** Simulates every combination and marks the fastest, the cheapest and the best setting. */
export function sweep(
  base: Omit<RunScenario, 'chunkRecords' | 'concurrency' | 'route'>,
  grid: { chunkRecords: readonly number[]; concurrency: readonly number[]; routes: readonly SimulatedRoute[] },
  params: SimulationParameters = DEFAULT_PARAMETERS,
): SweepRow[] {
  const results: SimulationResult[] = [];
  for (const route of grid.routes) {
    for (const chunkRecords of grid.chunkRecords) {
      for (const concurrency of grid.concurrency) results.push(simulateRun({ ...base, route, chunkRecords, concurrency }, params));
    }
  }
  const fastest = Math.min(...results.map((r) => r.wallSeconds));
  const cheapest = Math.min(...results.map((r) => r.cost.total));
  const withinFast = results.filter((r) => r.wallSeconds <= fastest * 1.1);
  const best = withinFast.reduce((a, b) => (b.cost.total < a.cost.total ? b : a));
  return results.map((r) => ({
    ...r,
    marks: [
      ...(r.wallSeconds === fastest ? ['fastest' as const] : []),
      ...(r.cost.total === cheapest ? ['cheapest' as const] : []),
      ...(r === best ? ['best' as const] : []),
    ],
  }));
}
