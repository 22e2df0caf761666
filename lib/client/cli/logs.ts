import { Command } from 'commander';
import { CliContext, intArg } from './context';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('logs')
    .description("print the job's CloudWatch log events (--json: one JSON object per line)")
    .argument('<jobId>')
    .option('-f, --follow', 'keep printing until the job has finished')
    .option('--limit <n>', 'at most this many events in total', intArg(1))
    .option('--poll <seconds>', 'polling interval while following', intArg(1), 2)
    .action(async (jobId: string, opts: { follow?: boolean; limit?: number; poll: number }, cmd: Command) => {
      const client = await ctx.client(cmd);
      const json = ctx.isJson(cmd);
      for await (const e of client.logs(jobId, { follow: opts.follow, limit: opts.limit, pollMs: opts.poll * 1000 })) {
        if (json) ctx.io.stdout.write(`${JSON.stringify(e)}\n`);
        else ctx.io.stdout.write(`${e.timestamp === undefined ? '-' : new Date(e.timestamp).toISOString()} ${e.message.replace(/\n$/, '')}\n`);
      }
    });
}
