import { Command } from 'commander';
import { CliContext } from './context';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('cancel')
    .description('cancel a queued job or stop a running one (TerminateJob); a finished job exits 6')
    .argument('<jobId>')
    .option('--reason <text>', 'recorded as the status reason', 'cancelled with batchctl')
    .action(async (jobId: string, opts: { reason: string }, cmd: Command) => {
      const info = await (await ctx.client(cmd)).cancel(jobId, opts.reason);
      ctx.print(cmd, info, () => [`cancel requested for job ${info.jobId} (now ${info.status})`]);
    });
}
