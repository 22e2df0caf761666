import * as fs from 'fs';
import { Command, InvalidArgumentError } from 'commander';
import { InvalidRequestError } from '../errors';
import { SubmitRequestInput } from '../schema';
import { CliContext, intArg } from './context';
import { waitWithProgress } from './wait';

interface SubmitOptions {
  operation: string;
  input?: string;
  inputJson?: string;
  inputKey?: string;
  tenant?: string;
  user?: string;
  callbackUrl?: string;
  retentionDays?: number;
  shareIdentifier?: string;
  priority?: number;
  operationConfig?: string;
  clientToken?: string;
  jobId?: string;
  timeoutSeconds?: number;
  vcpus?: number;
  memory?: number;
  env: string[];
  wait?: boolean;
  timeout: number;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  return n;
}

function collectEnv(value: string, previous: string[]): string[] {
  if (!/^[^=]+=/.test(value)) throw new InvalidArgumentError(`expected NAME=VALUE, got "${value}"`);
  return [...previous, value];
}

/** Reads an input file (or stdin for "-"); a file that cannot be read is a usage error naming the flag and path. */
function readInput(flag: string, file: string | 0): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new InvalidRequestError(`cannot read ${flag}`, [{ field: flag, message: `${file === 0 ? 'stdin' : file}: ${why}`, value: file === 0 ? '-' : file }]);
  }
}

function parseJson(flag: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidRequestError(`${flag} is not valid JSON`, [{ field: flag, message: (err as Error).message }]);
  }
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('submit')
    .description('stage the input in S3 and submit a job; prints the job id')
    .requiredOption('--operation <name>', 'worker operation, e.g. aggregate-defects')
    .option('--input <file>', 'JSON file staged as jobs/{jobId}/inputs.json ("-" reads stdin)')
    .option('--input-json <json>', 'inline JSON input')
    .option('--input-key <key>', 'an object already in the input bucket (nothing is staged)')
    .option('--tenant <id>', 'tenant id (TENANT_ID, tag tenant-id)')
    .option('--user <id>', 'user id (USER_ID, tag user-id)')
    .option('--callback-url <url>', 'webhook the worker calls on completion')
    .option('--retention-days <n>', 'retention-days tag of the staged objects (default 30)', intArg(1))
    .option('--share-identifier <id>', 'fair-share identifier (required on fair-share queues)')
    .option('--priority <n>', 'scheduling priority override (fair-share queues)', intArg(0))
    .option('--operation-config <json>', 'OPERATION_CONFIG as JSON, or @file')
    .option('--client-token <token>', 'idempotency token: the same token never creates a second job')
    .option('--job-id <id>', 'choose the platform job id')
    .option('--timeout-seconds <n>', 'attempt timeout (>= 60)', intArg(60))
    .option('--vcpus <n>', "vCPUs of this job, within the operation's declared sizing (Fargate: 0.25, 0.5, 1, 2, 4, 8, 16)", positiveNumber)
    .option('--memory <MiB>', "memory of this job in MiB, within the operation's declared sizing", intArg(1))
    .option('--env <NAME=VALUE>', 'extra container environment (repeatable)', collectEnv, [])
    .option('--wait', 'wait for the job to finish (exit 1 if it fails, 4 on timeout)')
    .option('--timeout <seconds>', 'with --wait: give up after this long', intArg(1), 3600)
    .action(async (opts: SubmitOptions, cmd: Command) => {
      const sources = [opts.input, opts.inputJson, opts.inputKey].filter((s) => s !== undefined).length;
      if (sources !== 1) {
        throw new InvalidRequestError('invalid submit request', [{ field: 'input', message: 'give exactly one of --input, --input-json, --input-key' }]);
      }
      const request: SubmitRequestInput = {
        operation: opts.operation,
        tenantId: opts.tenant,
        userId: opts.user,
        callbackUrl: opts.callbackUrl,
        retentionDays: opts.retentionDays,
        shareIdentifier: opts.shareIdentifier,
        schedulingPriority: opts.priority,
        clientToken: opts.clientToken,
        jobId: opts.jobId,
        timeoutSeconds: opts.timeoutSeconds,
        vcpus: opts.vcpus,
        memoryMiB: opts.memory,
      };
      if (opts.inputKey) request.inputKey = opts.inputKey;
      else if (opts.inputJson !== undefined) request.input = parseJson('--input-json', opts.inputJson);
      else request.input = parseJson('--input', readInput('--input', opts.input === '-' ? 0 : opts.input!));
      if (opts.operationConfig) {
        const text = opts.operationConfig.startsWith('@') ? readInput('--operation-config', opts.operationConfig.slice(1)) : opts.operationConfig;
        request.operationConfig = parseJson('--operation-config', text) as Record<string, unknown>;
      }
      if (opts.env.length) request.environment = Object.fromEntries(opts.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      const client = await ctx.client(cmd, { needsJobDefinition: true });
      const job = await client.submit(request);
      ctx.print(cmd, job, () => [
        `${job.created ? 'submitted' : 'already submitted'} job ${job.jobId}`,
        `  batch job id  ${job.batchJobId}`,
        `  job name      ${job.jobName}`,
        `  input         s3://${job.input.bucket}/${job.input.key}`,
        `  output        s3://${job.output.bucket}/${job.output.key}`,
      ]);
      if (opts.wait) await waitWithProgress(ctx, cmd, client, job.jobId, { timeoutSeconds: opts.timeout });
    });
}
