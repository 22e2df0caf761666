import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { Command } from 'commander';
import { resolveClientConfig } from '../config';
import { InvalidRequestError } from '../errors';
import { RunNotSucceededError, RunsClient, RunStatus, watchRun } from '../runs';
import { CliContext, GlobalOptions, intArg } from './context';

interface RunsOptions {
  readonly runsBucket?: string;
  readonly stateMachine?: string;
}

interface WatchFlags {
  readonly watch?: boolean;
  readonly interval: number;
  readonly timeout?: number;
}

/**
 * Builds the runs client like every batchctl command builds its settings: flags, then environment
 * (BATCH_RUNS_BUCKET, BATCH_STATE_MACHINE_ARN), then the outputs of the `--stack`s: StateMachineArn of
 * the workflow stack (`ChunkedProcessing-<stage>`), and the runs bucket from a RunsBucketName output or,
 * failing that, the output bucket (the platform stack's OutputBucketName: `addPlatformStacks` gives the
 * workflow the platform's output bucket; the workflow stack cannot output it itself, an output of an
 * import being cfn-lint W6001). S3 and Step Functions endpoints follow the SDK's variables.
 */
async function runsClient(ctx: CliContext, cmd: Command): Promise<RunsClient> {
  const g = cmd.optsWithGlobals<GlobalOptions & RunsOptions>();
  const env = ctx.io.env;
  const config = await resolveClientConfig({
    flags: { runsBucket: g.runsBucket, stateMachineArn: g.stateMachine, outputBucket: g.outputBucket, region: g.region },
    env,
    stackName: g.stack,
    cloudFormation: ctx.io.cloudFormation,
  });
  const runsBucket = config.runsBucket ?? config.outputBucket;
  if (!runsBucket) {
    throw new InvalidRequestError('missing configuration', [
      {
        field: 'runsBucket',
        message:
          'give --runs-bucket, set BATCH_RUNS_BUCKET, or use --stack BatchPlatform-<stage> (its OutputBucketName is the work bucket that holds runs/); local-runs for a run-local bucket',
      },
    ]);
  }
  const stateMachineArn = config.stateMachineArn;
  if (stateMachineArn !== undefined && !/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$/.test(stateMachineArn)) {
    throw new InvalidRequestError('invalid state machine', [
      { field: 'stateMachine', value: stateMachineArn, message: 'must be a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>)' },
    ]);
  }
  const region = config.region;
  const s3 =
    ctx.io.runsClients?.s3 ??
    new S3Client({
      region,
      endpoint: env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL,
      forcePathStyle: env.S3_FORCE_PATH_STYLE === 'true',
    });
  const sfn = stateMachineArn
    ? (ctx.io.runsClients?.sfn ?? new SFNClient({ region, endpoint: env.AWS_ENDPOINT_URL_SFN ?? env.AWS_ENDPOINT_URL }))
    : undefined;
  return new RunsClient({ s3, runsBucket, sfn, stateMachineArn });
}

const pct = (s: RunStatus): string => `${Math.floor(s.progress * 1000) / 10}%`;
const num = (n: number): string => n.toLocaleString('en-US');
const eta = (s: RunStatus): string => (s.etaSeconds === null ? '?' : `${s.etaSeconds}s`);

/** The human lines of one run's status. */
export function describeRun(s: RunStatus): string[] {
  return [
    `run ${s.runId}  ${s.state}  ${pct(s)}${s.attempt > 0 ? `  (retry ${s.attempt})` : ''}`,
    `  operation   ${s.operation ?? '-'}`,
    `  started     ${s.startedAt ?? '-'}`,
    `  chunks      ${s.chunks.done} done, ${s.chunks.failed} failed, ${s.chunks.pending} pending of ${s.chunks.total}`,
    `  records     ${num(s.records.done)} of ~${num(s.records.estimated)}`,
    `  rate        ${s.recordsPerSecond === null ? '-' : `${num(s.recordsPerSecond)} rec/s`}`,
    `  ETA         ${eta(s)}`,
    ...(s.identity ? [`  identity    ${Object.entries(s.identity).map(([k, v]) => `${k}=${v}`).join(' ')}`] : []),
    ...(s.execution ? [`  execution   ${s.execution.name} ${s.execution.status}`] : []),
  ];
}

function runLine(s: RunStatus): string {
  return (
    `${s.runId.padEnd(32)} ${s.state.padEnd(10)} ${(s.startedAt ?? '-').padEnd(24)} ` +
    `${`${s.chunks.done}/${s.chunks.failed}/${s.chunks.pending}`.padEnd(14)} ${num(s.records.done)}`
  );
}

function listLines(runs: RunStatus[]): string[] {
  return [`${'RUN ID'.padEnd(32)} ${'STATUS'.padEnd(10)} ${'STARTED'.padEnd(24)} ${'DONE/FAIL/PEND'.padEnd(14)} RECORDS`, ...runs.map(runLine)];
}

function watchFlags(c: Command): Command {
  return c
    .option('--watch', 'read again every --interval until the run finished (exit 0 SUCCEEDED, 1 otherwise)')
    .option('--interval <seconds>', 'time between two reads with --watch', intArg(1), 5)
    .option('--timeout <seconds>', 'give up watching after this long (exit 4)', intArg(1));
}

/** Follows a run to its end, printing each read; throws RunNotSucceededError unless it SUCCEEDED. */
async function follow(ctx: CliContext, cmd: Command, client: RunsClient, runId: string, w: WatchFlags): Promise<void> {
  const json = ctx.isJson(cmd);
  const last = await watchRun(runId, () => client.status(runId), {
    intervalMs: w.interval * 1000,
    timeoutMs: w.timeout === undefined ? undefined : w.timeout * 1000,
    signal: ctx.io.signal,
    onStatus: (s) => {
      if (json) ctx.io.stdout.write(`${JSON.stringify(s)}\n`);
      else ctx.io.stdout.write(`${new Date().toISOString()} ${s.runId} ${s.state} ${pct(s)} chunks ${s.chunks.done}/${s.chunks.total} (${s.chunks.failed} failed), ${num(s.records.done)} records, ETA ${eta(s)}\n`);
    },
  });
  if (last.state !== 'SUCCEEDED') throw new RunNotSucceededError(runId, last.state);
}

/** `batchctl runs list | status <runId> | retry <runId>`: runs of the chunked processing workflow. */
export function register(program: Command, ctx: CliContext): void {
  const runs = program
    .command('runs')
    .description('runs of the chunked processing workflow: progress from S3 (runs/) and Step Functions, and retry of failed chunks')
    .option('--runs-bucket <name>', 'bucket holding runs/ (BATCH_RUNS_BUCKET, or from --stack: RunsBucketName, else OutputBucketName)')
    .option('--state-machine <arn>', 'the workflow state machine (BATCH_STATE_MACHINE_ARN, or StateMachineArn of --stack); without it, status comes from S3 alone')
    .addHelpText('after', '\nWith --stack (before or after `runs`, repeatable): --stack BatchPlatform-<stage> gives the runs bucket (OutputBucketName), --stack ChunkedProcessing-<stage> the state machine (StateMachineArn).');

  watchFlags(
    runs
      .command('list')
      .description('recent runs, newest first: id, status, start, chunks done/failed/pending, records')
      .option('--limit <n>', 'at most this many runs', intArg(1), 20),
  ).action(async (opts: WatchFlags & { limit: number }, cmd: Command) => {
    const client = await runsClient(ctx, cmd);
    const json = ctx.isJson(cmd);
    for (;;) {
      const list = await client.list({ limit: opts.limit });
      if (json) ctx.io.stdout.write(`${JSON.stringify(list)}\n`);
      else for (const line of listLines(list)) ctx.io.stdout.write(`${line}\n`);
      if (!opts.watch || list.every((r) => r.state !== 'RUNNING') || ctx.io.signal?.aborted) return;
      await new Promise((r) => setTimeout(r, opts.interval * 1000));
    }
  });

  watchFlags(runs.command('status').description('one run: chunks done/failed/pending, records, records/s, ETA').argument('<runId>')).action(
    async (runId: string, opts: WatchFlags, cmd: Command) => {
      const client = await runsClient(ctx, cmd);
      if (opts.watch) return follow(ctx, cmd, client, runId, opts);
      const s = await client.status(runId);
      ctx.print(cmd, s, () => describeRun(s));
    },
  );

  watchFlags(
    runs
      .command('retry')
      .description('rerun only the failed chunks of a finished (PARTIAL/FAILED) run, on its input as it is now, into the same result')
      .argument('<runId>'),
  ).action(async (runId: string, opts: WatchFlags, cmd: Command) => {
    const client = await runsClient(ctx, cmd);
    const started = await client.retry(runId);
    ctx.print(cmd, { runId, executionArn: started.executionArn, executionName: started.executionName }, () => [
      `run ${runId}: retry started as execution ${started.executionName}`,
      `  ${started.executionArn}`,
    ]);
    if (opts.watch) await follow(ctx, cmd, client, runId, opts);
  });
}
