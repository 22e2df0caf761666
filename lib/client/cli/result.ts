import * as fs from 'fs';
import { Command } from 'commander';
import { CliContext } from './context';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('result')
    .description("download and print the job's output document and its rejects summary")
    .argument('<jobId>')
    .option('--out <file>', 'write the output document to a file instead of stdout')
    .action(async (jobId: string, opts: { out?: string }, cmd: Command) => {
      const res = await (await ctx.client(cmd)).result(jobId);
      if (opts.out) fs.writeFileSync(opts.out, `${JSON.stringify(res.result, null, 2)}\n`);
      ctx.print(cmd, res, () => [
        ...(opts.out ? [`wrote ${opts.out}`] : JSON.stringify(res.result, null, 2).split('\n')),
        `rejects: ${res.rejects.count} (s3://${res.rejects.location.bucket}/${res.rejects.location.key})`,
        ...res.rejects.sample.map((r) => `  ${JSON.stringify(r)}`),
      ]);
    });
}
