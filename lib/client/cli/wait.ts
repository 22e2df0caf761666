import { SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { BatchJobClient, JobInfo } from '../batch-job-client';
import { CliContext, intArg } from './context';

const STEPS = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING', 'SUCCEEDED'];

/**
 * Waits for a job: a progress bar on a terminal (statuses, or children of an array job), one plain
 * line per status change otherwise, so logs of CI runs stay readable.
 */
export async function waitWithProgress(
  ctx: CliContext,
  cmd: Command,
  client: BatchJobClient,
  jobId: string,
  options: { timeoutSeconds?: number; pollSeconds?: number },
): Promise<JobInfo> {
  const json = ctx.isJson(cmd);
  const useBar = ctx.io.isTTY && !json;
  const bar = useBar ? new SingleBar({ format: ' {bar} {status} | {value}/{total} | {duration}s', stream: process.stderr, hideCursor: true }) : undefined;
  let last: string | undefined;
  let started = false;
  const onProgress = (info: JobInfo) => {
    const total = info.array?.size ?? STEPS.length;
    const value = info.array ? info.array.succeeded + info.array.failed : STEPS.indexOf(info.status) + 1;
    if (bar) {
      if (!started) bar.start(total, 0, { status: info.status });
      started = true;
      bar.update(Math.max(0, value), { status: info.status });
    } else if (!json && info.status !== last) {
      ctx.io.stderr.write(`${new Date().toISOString()} ${info.jobId} ${info.status}${info.array ? ` ${value}/${total}` : ''}\n`);
    }
    last = info.status;
  };
  try {
    const info = await client.wait(jobId, {
      timeoutMs: (options.timeoutSeconds ?? 3600) * 1000,
      pollMs: (options.pollSeconds ?? 2) * 1000,
      onProgress,
      signal: ctx.io.signal,
    });
    bar?.stop();
    ctx.print(cmd, info, () => [`job ${info.jobId} SUCCEEDED`]);
    return info;
  } catch (err) {
    bar?.stop();
    throw err;
  }
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('wait')
    .description('poll until the job SUCCEEDED (exit 0), FAILED (exit 1) or the timeout passes (exit 4); Ctrl-C exits 130')
    .argument('<jobId>')
    .option('--timeout <seconds>', 'give up after this long', intArg(1), 3600)
    .option('--poll <seconds>', 'first polling interval (grows with jitter up to 30 s)', intArg(1), 2)
    .action(async (jobId: string, opts: { timeout: number; poll: number }, cmd: Command) => {
      const client = await ctx.client(cmd);
      await waitWithProgress(ctx, cmd, client, jobId, { timeoutSeconds: opts.timeout, pollSeconds: opts.poll });
    });
}
