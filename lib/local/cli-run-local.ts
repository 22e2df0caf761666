import * as path from 'path';
import { Command, InvalidArgumentError } from 'commander';
import type { RunSummary } from '../../lambda/aggregate/aggregate';
import { CliContext, intArg } from '../client/cli/context';
import { InvalidRequestError, JobFailedError } from '../client/errors';
import { createProgressReporter, formatRate } from './progress-reporter';
import { loadRunner } from './load-runner';
import type { LocalRunResult } from './run-local';

interface RunLocalOptions {
  input: string;
  operation: string;
  output: string;
  chunkRecords?: number;
  workers?: number;
  runId?: string;
  operationConfig?: string;
  lambdaMaxRecords?: number;
  toleratedFailurePercentage?: number;
  stateDir?: string;
  retry?: boolean;
}

function percentArg(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 100) throw new InvalidArgumentError(`expected a number from 0 to 100, got "${value}"`);
  return n;
}

/** The human summary printed after a local run. */
export function summaryLines(r: LocalRunResult): string[] {
  const s = r.summary as RunSummary;
  const lines = [
    `run ${r.runId}: ${r.status}`,
    `  chunks: ${s.chunks?.succeeded ?? 0}/${s.chunks?.total ?? 0} succeeded` +
      ` (this invocation: ${r.invocations.batch} in worker processes, ${r.invocations.lambda} in-process)`,
    `  records: ${(s.records ?? 0).toLocaleString('en-US')}, rejected: ${(s.rejected ?? 0).toLocaleString('en-US')}`,
    `  time: ${(r.durationMs / 1000).toFixed(1)} s, ${formatRate(s.records ?? 0, r.durationMs)}`,
  ];
  for (const f of s.failedChunks ?? []) lines.push(`  failed chunk ${f.index} [${f.startByte}, ${f.endByte}): ${f.error}: ${f.cause ?? ''}`);
  const error = (r.summary as { error?: string; cause?: string }).error;
  if (error) lines.push(`  error: ${error}: ${(r.summary as { cause?: string }).cause ?? ''}`);
  lines.push(r.outputPath ? `  result: ${r.outputPath}` : '  result: none written');
  return lines;
}

/** `batchctl run-local`: the chunked workflow on this machine (see lib/local/run-local.ts). */
export function register(program: Command, ctx?: CliContext): void {
  program
    .command('run-local')
    .description('run the chunked processing workflow locally: same state machine, real handlers, worker processes, embedded S3')
    .requiredOption('--input <file>', 'input file (.jsonl/.ndjson/.json/.csv, optionally .gz)')
    .requiredOption('--operation <name>', 'record operation (e.g. aggregate-defects, transform-records)')
    .requiredOption('--output <file>', 'where the result goes')
    .option('--chunk-records <n>', 'target records per chunk (default: one chunk per worker, in rounds of chunks of at most 256 MiB)', intArg(1))
    .option('--workers <n>', 'chunks processed at once (default: number of CPUs)', intArg(1))
    .option('--run-id <id>', 'continue the run with this id (finished chunks are skipped)')
    .option('--operation-config <json>', 'OPERATION_CONFIG for the operation')
    .option('--lambda-max-records <n>', 'chunks up to this size run in-process, larger ones in worker processes (default 100000)', intArg(0))
    .option('--tolerated-failure-percentage <p>', 'failed chunks (percent) that still give a PARTIAL result (default 0)', percentArg)
    .option('--state-dir <dir>', 'data directory of the embedded S3 server (keep it to continue a run)')
    .option('--retry', 'retry the finished run --run-id on --input as it is now: rerun only failed chunks and chunks whose bytes changed')
    .action(async (opts: RunLocalOptions, cmd: Command) => {
      const stderr = ctx?.io.stderr ?? process.stderr;
      let result: LocalRunResult;
      const controller = new AbortController();
      const onSigint = (): void => controller.abort();
      process.once('SIGINT', onSigint);
      const { LocalRunInputError, runLocal } = await loadRunner();
      try {
        result = await runLocal({
          ...opts,
          input: path.resolve(opts.input),
          output: path.resolve(opts.output),
          reporter: createProgressReporter(stderr, ctx?.io.isTTY ?? Boolean(process.stderr.isTTY)),
          // Where `batchctl runs status` can read the run while it goes.
          onStarted: ({ endpoint, bucket, runId }) =>
            stderr.write(`run-local: run ${runId}, S3 ${endpoint} (AWS_ENDPOINT_URL_S3=${endpoint} batchctl runs --runs-bucket ${bucket} status ${runId})\n`),
          signal: controller.signal,
        });
      } catch (err) {
        if (err instanceof LocalRunInputError) throw new InvalidRequestError(`run-local: ${err.message}`);
        throw err;
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
      const lines = summaryLines(result);
      if (ctx) ctx.print(cmd, result.summary, () => lines);
      else for (const line of lines) process.stdout.write(`${line}\n`);
      if (result.status !== 'SUCCEEDED') throw new JobFailedError(result.runId, `local run ended ${result.status}`, undefined);
    });
}
