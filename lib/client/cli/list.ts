import { Command, InvalidArgumentError } from 'commander';
import { ALL_STATUSES } from '../batch-job-client';
import { CliContext, formatDate, intArg } from './context';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('list')
    .description('list jobs of the queue')
    .option('--status <status>', `one of ${ALL_STATUSES.join(', ')} (default: all)`, (v: string) => {
      const s = v.toUpperCase();
      if (!(ALL_STATUSES as readonly string[]).includes(s)) throw new InvalidArgumentError(`expected one of ${ALL_STATUSES.join(', ')}`);
      return s;
    })
    .option('--limit <n>', 'at most this many jobs', intArg(1), 100)
    .action(async (opts: { status?: (typeof ALL_STATUSES)[number]; limit: number }, cmd: Command) => {
      const jobs = await (await ctx.client(cmd)).list({ status: opts.status, limit: opts.limit });
      ctx.print(cmd, jobs, () => [
        `${'JOB ID'.padEnd(34)} ${'STATUS'.padEnd(10)} ${'CREATED'.padEnd(24)} BATCH JOB ID`,
        ...jobs.map((j) => `${(j.jobId ?? j.jobName).padEnd(34)} ${j.status.padEnd(10)} ${formatDate(j.createdAt).padEnd(24)} ${j.batchJobId}`),
      ]);
    });
}
