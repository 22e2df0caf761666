/**
 * `npm start`: the main job of this repository on one machine. Generates a seeded 1M-record
 * road-defect sample (the worker's generator), runs the chunked workflow on it with run-local, renders
 * the road-metrics dashboard of the run (the renderer `batchctl report` uses) and prints where both are. No AWS account, Docker or Python needed.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeSampleFile } from '../../containers/worker/src/sample-data';
import { summaryLines } from './cli-run-local';
import { writeRunDashboard } from './dashboard';
import { createProgressReporter } from './progress-reporter';
import { runLocal } from './run-local';

const RECORDS = 1_000_000;
const SEED = 2024;

async function main(): Promise<number> {
  const dir = path.join(os.tmpdir(), 'cdk-batch-platform-start');
  fs.mkdirSync(dir, { recursive: true });
  const input = path.join(dir, `road-defects-${RECORDS}.jsonl`);
  if (!fs.existsSync(input)) {
    process.stderr.write(`generating ${RECORDS.toLocaleString('en-US')} road-defect records (seed ${SEED}) into ${input}\n`);
    await writeSampleFile(input, { count: RECORDS, seed: SEED, format: 'jsonl' });
  }
  const output = path.join(dir, 'result.json');
  const result = await runLocal({
    input,
    operation: 'aggregate-defects',
    output,
    chunkRecords: 250_000,
    stateDir: path.join(dir, 'state'),
    reporter: createProgressReporter(),
  });
  for (const line of summaryLines(result)) process.stdout.write(`${line}\n`);
  if (result.outputPath) process.stdout.write(`\nResult: ${result.outputPath}\n`);
  if (result.status !== 'SUCCEEDED') return 1;
  const dashboard = writeRunDashboard(result, path.join(dir, 'dashboard.html'));
  process.stdout.write(`Dashboard: ${dashboard} (open it in a browser; it needs no network)\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`npm start: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
