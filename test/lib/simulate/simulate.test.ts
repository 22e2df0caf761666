import { CommanderError } from 'commander';
import { CliContext } from '../../../lib/client/cli/context';
import { buildProgram } from '../../../lib/client/cli/program';
import { DEFAULT_PARAMETERS, PARAMETER_SOURCES, SimulationParameters } from '../../../lib/simulate/parameters';
import * as simulateCommand from '../../../lib/simulate/cli-simulate';
import { RunScenario, simulateRun, sweep } from '../../../lib/simulate/simulate';

/** Fixed draws (min = max) and no interruptions: the schedule can be worked out by hand. */
const FIXED: SimulationParameters = {
  ...DEFAULT_PARAMETERS,
  ec2ColdStartSeconds: { min: 100, max: 100 },
  ec2WarmStartSeconds: { min: 10, max: 10 },
  fargateStartSeconds: { min: 40, max: 40 },
  lambdaColdStartSeconds: { min: 1, max: 1 },
  spotInterruptionsPerHour: 0,
  planSeconds: 2,
  aggregateSecondsPerChunk: 0.5,
  s3MbPerSecondPerConnection: 1e9,
};

const BASE: RunScenario = {
  records: 1_000_000,
  bytesPerRecord: 150,
  chunkRecords: 100_000,
  concurrency: 4,
  route: 'EC2_ON_DEMAND',
  recordsPerSecondPerThread: 10_000,
  jobVcpus: 4,
  jobMemoryMiB: 8192,
};

describe('simulateRun', () => {
  test('EC2: the first wave launches instances (cold), later chunks reuse them (warm)', () => {
    // 10 chunks of 10 s on 4 slots: waves of 4, 4, 2. Slot 0 and 1 run 3 chunks: 100 + 10 + 10 + 10 + 10 + 10.
    const r = simulateRun(BASE, FIXED);
    expect(r.chunks).toBe(10);
    expect(r.slots).toBe(4);
    expect(r.coldStarts).toBe(4);
    expect(r.wallSeconds).toBeCloseTo(2 + (100 + 10) + (10 + 10) + (10 + 10) + 10 * 0.5, 6);
    // Billed: 4 cold starts x 100 s + 6 warm x 10 s + 10 chunks x 10 s, at 4 vCPUs.
    expect(r.vcpuHours).toBeCloseTo(((4 * 100 + 6 * 10 + 10 * 10) * 4) / 3600, 9);
  });

  test('Fargate: every task pays its start-up', () => {
    const r = simulateRun({ ...BASE, route: 'FARGATE' }, FIXED);
    expect(r.coldStarts).toBe(10);
    expect(r.wallSeconds).toBeCloseTo(2 + 3 * (40 + 10) + 5, 6);
  });

  test('Lambda: one cold start per execution environment, and chunks past the timeout continue in a new invocation', () => {
    const r = simulateRun({ ...BASE, route: 'LAMBDA' }, FIXED);
    expect(r.coldStarts).toBe(4);
    expect(r.invocations).toBe(10);
    const long = simulateRun({ ...BASE, route: 'LAMBDA', chunkRecords: 10_000_000, records: 10_000_000 }, { ...FIXED, lambdaTimeoutSeconds: 300 });
    // 1,000 s of work with a 300 s timeout: 4 invocations, one cold start.
    expect(long.invocations).toBe(4);
    expect(long.coldStarts).toBe(1);
    expect(long.wallSeconds).toBeCloseTo(2 + 1 + 1000 + 0.5, 6);
  });

  test('slots are the smallest of MaxConcurrency, maxvCpus / job vCPUs, the Lambda quota and the chunk count', () => {
    expect(simulateRun({ ...BASE, concurrency: 100, maxvCpus: 16 }, FIXED).slots).toBe(4);
    expect(simulateRun({ ...BASE, concurrency: 100, route: 'LAMBDA' }, { ...FIXED, lambdaConcurrency: 3 }).slots).toBe(3);
    expect(simulateRun({ ...BASE, concurrency: 100, maxvCpus: 1024 }, FIXED).slots).toBe(10);
  });

  test('more worker threads per job shorten the CPU part, S3 throughput bounds it from below', () => {
    const one = simulateRun(BASE, FIXED);
    const four = simulateRun({ ...BASE, threadsPerJob: 4 }, FIXED);
    expect(four.wallSeconds).toBeLessThan(one.wallSeconds);
    const slowS3 = simulateRun({ ...BASE, threadsPerJob: 4 }, { ...FIXED, s3MbPerSecondPerConnection: 1 });
    // 100,000 x 150 B at 1 MB/s = 15 s per chunk, slower than 2.5 s of CPU.
    expect(slowS3.wallSeconds).toBeCloseTo(2 + (100 + 15) + (10 + 15) + (10 + 15) + 5, 6);
  });

  test('Spot interruptions cost a new cold start and add billed time; On-Demand has none', () => {
    const stormy = { ...FIXED, spotInterruptionsPerHour: 200 };
    const spot = simulateRun({ ...BASE, route: 'EC2_SPOT', seed: 7 }, stormy);
    const onDemand = simulateRun({ ...BASE, route: 'EC2_ON_DEMAND', seed: 7 }, stormy);
    expect(onDemand.interruptions).toBe(0);
    expect(spot.interruptions).toBeGreaterThan(0);
    expect(spot.coldStarts).toBe(4 + spot.interruptions);
    expect(spot.vcpuHours).toBeGreaterThan(onDemand.vcpuHours);
  });

  test('the same seed gives the same result; another seed draws other start-up times', () => {
    const a = simulateRun({ ...BASE, seed: 3 });
    expect(simulateRun({ ...BASE, seed: 3 })).toEqual(a);
    expect(simulateRun({ ...BASE, seed: 4 }).wallSeconds).not.toBe(a.wallSeconds);
  });

  test('costs: Spot is cheaper than On-Demand for the same schedule; Step Functions bills per transition', () => {
    const od = simulateRun(BASE, FIXED);
    const spot = simulateRun({ ...BASE, route: 'EC2_SPOT' }, FIXED);
    expect(spot.cost.compute).toBeCloseTo(od.cost.compute * 0.35, 9);
    expect(od.cost.stepFunctions).toBeCloseTo(((FIXED.transitionsPerRun + 10 * FIXED.transitionsPerChunk) / 1000) * 0.025, 12);
  });

  test('bad scenarios are refused with the field and the value', () => {
    expect(() => simulateRun({ ...BASE, chunkRecords: 0 })).toThrow('chunkRecords (0) must be a whole number >= 1');
    expect(() => simulateRun({ ...BASE, recordsPerSecondPerThread: NaN })).toThrow('recordsPerSecondPerThread (NaN)');
  });
});

describe('sweep', () => {
  test('marks the fastest, the cheapest and the best setting', () => {
    const rows = sweep(
      { records: 2_000_000, bytesPerRecord: 150, recordsPerSecondPerThread: 10_000, jobVcpus: 4 },
      { chunkRecords: [100_000, 500_000], concurrency: [2, 20], routes: ['EC2_SPOT', 'FARGATE'] },
      FIXED,
    );
    expect(rows).toHaveLength(8);
    const fastest = Math.min(...rows.map((r) => r.wallSeconds));
    const cheapest = Math.min(...rows.map((r) => r.cost.total));
    for (const r of rows.filter((x) => x.marks.includes('fastest'))) expect(r.wallSeconds).toBe(fastest);
    for (const r of rows.filter((x) => x.marks.includes('cheapest'))) expect(r.cost.total).toBe(cheapest);
    const best = rows.filter((r) => r.marks.includes('best'));
    expect(best).toHaveLength(1);
    expect(best[0].wallSeconds).toBeLessThanOrEqual(fastest * 1.1);
    expect(rows.filter((r) => r.wallSeconds <= fastest * 1.1).every((r) => r.cost.total >= best[0].cost.total)).toBe(true);
  });
});

describe('batchctl simulate', () => {
  async function batchctl(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const ctx = new CliContext({ stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: process.env, isTTY: false });
    let code = 0;
    try {
      await buildProgram(ctx, [simulateCommand]).parseAsync(argv, { from: 'user' });
    } catch (err) {
      code = err instanceof CommanderError ? 2 : ctx.fail(err, argv.includes('--json'));
    }
    return { code, stdout, stderr };
  }

  test('prints one row per setting, sorted by wall time, with the marks', async () => {
    const r = await batchctl(['simulate', '--records', '60000000', '--chunk-records', '500000,2000000', '--concurrency', '50', '--routes', 'EC2_SPOT,LAMBDA']);
    expect(r.code).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => /^(EC2_SPOT|LAMBDA) /.test(l));
    expect(rows).toHaveLength(4);
    expect(r.stdout).toMatch(/fastest/);
    expect(r.stdout).toMatch(/best/);
  });

  test('--json gives the rows with the parameters and their sources', async () => {
    const r = await batchctl(['--json', 'simulate', '--chunk-records', '1000000', '--concurrency', '10', '--routes', 'fargate_spot']);
    const report = JSON.parse(r.stdout);
    expect(report.rows).toHaveLength(1);
    expect(report.rows[0]).toMatchObject({ chunks: 60, slots: 10, scenario: { route: 'FARGATE_SPOT' } });
    expect(Object.keys(report.sources).sort()).toEqual(Object.keys(PARAMETER_SOURCES).sort());
  });

  test('usage errors exit 2', async () => {
    expect((await batchctl(['simulate', '--routes', 'EC3'])).code).toBe(2);
    expect((await batchctl(['simulate', '--chunk-records', '10,0'])).code).toBe(2);
    const threads = await batchctl(['simulate', '--threads', '8', '--job-vcpus', '4']);
    expect(threads.code).toBe(2);
    expect(threads.stderr).toContain('--threads (8) cannot exceed --job-vcpus (4)');
  });
});
