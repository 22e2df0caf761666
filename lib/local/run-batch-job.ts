import { spawn } from 'child_process';
import { BatchClient, DescribeJobDefinitionsCommand, DescribeJobsCommand, KeyValuePair } from '@aws-sdk/client-batch';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as path from 'path';
import { PACKAGE_ROOT } from '../common/node-function';

/**
 * Runs ONE submitted Batch job locally, the way Batch would start its container: the job definition's
 * environment, its Secrets Manager secrets resolved into variables (as ECS does at task start), the
 * job's own container overrides on top, and the AWS_BATCH_* variables; then the worker entrypoint as
 * a child process. Used by the workload end-to-end tests and `npm run e2e:photo-bundles` against a
 * Batch API stand-in (moto), whose jobs never run by themselves.
 */
export interface RunBatchJobOptions {
  readonly batch: BatchClient;
  readonly secrets: SecretsManagerClient;
  /** Batch's job id (SubmittedJob.batchJobId). */
  readonly batchJobId: string;
  /** Variables of the machine the container would not have (endpoints of the local servers, credentials). */
  readonly hostEnvironment?: Record<string, string>;
  /** @default the worker entrypoint (containers/worker/src/main.ts) through tsx */
  readonly command?: readonly string[];
}

/** What a "Batch Job State Change" event of the finished job carries (what the notifiers read). */
export interface LocalJobOutcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly event: {
    readonly 'detail-type': 'Batch Job State Change';
    readonly source: 'aws.batch';
    readonly detail: { jobId: string; jobName: string; jobQueue: string; status: 'SUCCEEDED' | 'FAILED'; statusReason?: string; container: { exitCode: number } };
  };
}

const WORKER_COMMAND = ['node', '--import', 'tsx', path.join('containers', 'worker', 'src', 'main.ts')];

/** Resolves a job-definition secret `valueFrom`: `<secret arn>` or `<secret arn>:<json key>:<stage>:<version>`. */
async function resolveSecret(client: SecretsManagerClient, valueFrom: string): Promise<string> {
  const m = /^(arn:[^:]+:secretsmanager:[^:]+:\d+:secret:[^:]+)(?::([^:]*):([^:]*):([^:]*))?$/.exec(valueFrom);
  if (!m) throw new Error(`secret valueFrom ${valueFrom} is not a Secrets Manager ARN (SSM parameters are not supported locally)`);
  const res = await client.send(new GetSecretValueCommand({ SecretId: m[1], VersionStage: m[3] || undefined, VersionId: m[4] || undefined }));
  const text = res.SecretString ?? '';
  if (!m[2]) return text;
  const value = (JSON.parse(text) as Record<string, unknown>)[m[2]];
  if (typeof value !== 'string') throw new Error(`secret ${m[1]} has no string key ${m[2]}`);
  return value;
}

const toEnv = (pairs: readonly KeyValuePair[] | undefined) => Object.fromEntries((pairs ?? []).map((p) => [p.name!, p.value ?? '']));

export async function runBatchJob(options: RunBatchJobOptions): Promise<LocalJobOutcome> {
  const job = (await options.batch.send(new DescribeJobsCommand({ jobs: [options.batchJobId] }))).jobs?.[0];
  if (!job) throw new Error(`job ${options.batchJobId} not found`);
  const def = (await options.batch.send(new DescribeJobDefinitionsCommand({ jobDefinitions: [job.jobDefinition!] }))).jobDefinitions?.[0];
  if (!def) throw new Error(`job definition ${job.jobDefinition} not found`);
  const secrets: Record<string, string> = {};
  for (const s of def.containerProperties?.secrets ?? []) secrets[s.name!] = await resolveSecret(options.secrets, s.valueFrom!);
  const queueName = job.jobQueue!.split('/').pop()!;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    ...options.hostEnvironment,
    ...toEnv(def.containerProperties?.environment),
    ...secrets,
    ...toEnv(job.container?.environment),
    AWS_BATCH_JOB_ID: job.jobId!,
    AWS_BATCH_JQ_NAME: queueName,
    AWS_BATCH_JOB_ATTEMPT: '1',
  };
  const [cmd, ...args] = options.command ?? WORKER_COMMAND;
  const child = spawn(cmd, args, { cwd: PACKAGE_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-16_000)));
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
  const status = exitCode === 0 ? 'SUCCEEDED' : 'FAILED';
  return {
    exitCode,
    stdout,
    stderr,
    event: {
      'detail-type': 'Batch Job State Change',
      source: 'aws.batch',
      detail: {
        jobId: job.jobId!,
        jobName: job.jobName!,
        jobQueue: job.jobQueue!,
        status,
        ...(exitCode === 0 ? {} : { statusReason: `Essential container in task exited (code ${exitCode})` }),
        container: { exitCode },
      },
    },
  };
}
