import { Command } from 'commander';
import { JobInfo } from '../batch-job-client';
import { CliContext, formatDate } from './context';

export function describeJob(info: JobInfo): string[] {
  const loc = (l?: { bucket: string; key: string }) => (l ? `s3://${l.bucket}/${l.key}` : '-');
  return [
    `job ${info.jobId}  ${info.status}${info.statusReason ? `  (${info.statusReason})` : ''}`,
    `  batch job id  ${info.batchJobId}`,
    `  job name      ${info.jobName}`,
    `  operation     ${info.operation ?? '-'}`,
    `  tenant        ${info.tenantId ?? '-'}`,
    `  created       ${formatDate(info.createdAt)}`,
    `  started       ${formatDate(info.startedAt)}`,
    `  stopped       ${formatDate(info.stoppedAt)}`,
    `  attempts      ${info.attempts}${info.exitCode === undefined ? '' : `  exit code ${info.exitCode}`}`,
    `  input         ${loc(info.input)}`,
    `  output        ${loc(info.output)}`,
    `  log stream    ${info.logStreamName ?? '-'}`,
  ];
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description('show the state of a job (platform job id or Batch job id)')
    .argument('<jobId>')
    .action(async (jobId: string, _opts: unknown, cmd: Command) => {
      const info = await (await ctx.client(cmd)).status(jobId);
      ctx.print(cmd, info, () => describeJob(info));
    });
}
