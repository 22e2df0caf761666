/**
 * Validates the chunked-run simulation against the local runner (`npm run bench`): two small calibration
 * runs give the per-chunk start-up, the per-record rate and the run overhead; the simulator then predicts
 * a larger run with other chunk counts and waves, which is measured in the same session. Reports the
 * ratio simulated / measured wall time; never asserted (timings belong in benchmarks, not tests).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeSampleFile } from '../containers/worker/src/sample-data';
import { LocalRunResult, runLocal } from '../lib/local/run-local';
import { DEFAULT_PARAMETERS } from '../lib/simulate/parameters';
import { simulateRun } from '../lib/simulate/simulate';

const WORKERS = 2;

async function run(dir: string, name: string, records: number, chunkRecords: number): Promise<LocalRunResult> {
  const input = path.join(dir, `${name}.jsonl`);
  await writeSampleFile(input, { count: records, seed: 7 });
  const r = await runLocal({
    input,
    operation: 'aggregate-defects',
    output: path.join(dir, `${name}.result.json`),
    chunkRecords,
    workers: WORKERS,
    lambdaMaxRecords: 0, // every chunk in a worker process: the Batch route
    stateDir: path.join(dir, `${name}-state`),
  });
  if (r.status !== 'SUCCEEDED') throw new Error(`${name} ended ${r.status}`);
  return r;
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simulate-bench-'));
  try {
    // Calibration: the same 300K records in chunks of 100K and of 50K.
    const a = await run(dir, 'calibrate-100k', 300_000, 100_000);
    const b = await run(dir, 'calibrate-50k', 300_000, 50_000);
    const dA = mean(a.chunkTimings.map((c) => c.durationMs)) / 1000;
    const dB = mean(b.chunkTimings.map((c) => c.durationMs)) / 1000;
    const rA = mean(a.chunkTimings.map((c) => c.records));
    const rB = mean(b.chunkTimings.map((c) => c.records));
    const perRecord = (dA - dB) / (rA - rB);
    const startup = Math.max(0, dA - perRecord * rA);
    // Run overhead (validate, plan, aggregate) beyond the chunks, as a + b x chunks.
    const busy = (r: LocalRunResult): number => r.chunkTimings.reduce((s, c) => s + c.durationMs, 0) / 1000 / WORKERS;
    const oA = a.phases.executionMs / 1000 - busy(a);
    const oB = b.phases.executionMs / 1000 - busy(b);
    const perChunkOverhead = Math.max(0, (oB - oA) / (b.chunkCount - a.chunkCount));
    const runOverhead = Math.max(0, oA - perChunkOverhead * a.chunkCount);

    // Prediction: 1.2M records in 12 chunks of 100K (6 waves on 2 workers), and 1.2M in 8 of 150K.
    const rows: string[] = [];
    for (const [records, chunkRecords] of [[1_200_000, 100_000], [1_200_000, 150_000]] as const) {
      const measured = await run(dir, `predict-${chunkRecords}`, records, chunkRecords);
      const fixed = { min: startup, max: startup };
      const sim = simulateRun(
        { records, bytesPerRecord: 150, chunkRecords, concurrency: WORKERS, route: 'EC2_ON_DEMAND', recordsPerSecondPerThread: 1 / perRecord, jobVcpus: 1, maxvCpus: WORKERS },
        { ...DEFAULT_PARAMETERS, ec2ColdStartSeconds: fixed, ec2WarmStartSeconds: fixed, spotInterruptionsPerHour: 0, s3MbPerSecondPerConnection: 1e6, planSeconds: runOverhead, aggregateSecondsPerChunk: perChunkOverhead },
      );
      const measuredS = measured.phases.executionMs / 1000;
      rows.push(`| ${records.toLocaleString('en-US')} records, ${measured.chunkCount} chunks of ${chunkRecords.toLocaleString('en-US')}, ${WORKERS} workers | ${sim.wallSeconds.toFixed(2)} s | ${measuredS.toFixed(2)} s | **${(sim.wallSeconds / measuredS).toFixed(2)}** |`);
    }
    const out = [
      `Calibration (300K records, chunks of 100K and 50K, ${WORKERS} workers): start-up ${startup.toFixed(2)} s per chunk (pool processes are reused, so this is dispatch, not Node start-up),`,
      `${Math.round(1 / perRecord).toLocaleString('en-US')} records/s per process, run overhead ${runOverhead.toFixed(2)} s + ${perChunkOverhead.toFixed(3)} s per chunk.`,
      '',
      '| predicted run | simulated | measured (workflow execution) | simulated / measured (goal 0.8-1.2) |',
      '| --- | --- | --- | --- |',
      ...rows,
    ].join('\n');
    process.stdout.write(`${out}\n`);
    const notes = process.argv.indexOf('--write-notes');
    if (notes > 0) fs.writeFileSync(process.argv[notes + 1], `${out}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
