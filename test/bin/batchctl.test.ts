import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { BatchClient } from '@aws-sdk/client-batch';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { BatchJobClientOptions, EXIT_CODES, stackOutputsToConfig } from '../../lib/client';
import { runCli } from '../../lib/client/cli';
import { motoClientConfig, motoEndpoint, motoEnv } from '../support/moto';
import { createMotoBatch, MotoBatch } from '../lib/client/moto-batch';
import { RewriteProxy, startRewriteProxy } from '../lib/client/rewrite-proxy';

const execFileAsync = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
let m: MotoBatch;

class Capture {
  public text = '';
  public isTTY = false;
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

/** Runs batchctl in-process against moto; returns exit code and output. */
async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  extra: { clientOptions?: Partial<BatchJobClientOptions>; signal?: AbortSignal } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(args, {
    stdout,
    stderr,
    isTTY: false,
    env: { BATCH_JOB_QUEUE: m.jobQueue, BATCH_JOB_DEFINITION: m.jobDefinition, BATCH_INPUT_BUCKET: m.bucket, ...env },
    clientOptions: { clients: { batch: m.batch, s3: m.s3, logs: m.logs }, fairShare: false, ...extra.clientOptions },
    cloudFormation: new CloudFormationClient(motoClientConfig()),
    signal: extra.signal,
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

beforeAll(async () => {
  m = await createMotoBatch('cli');
});

describe('batchctl in-process', () => {
  test('submit --json prints the submitted job', async () => {
    const res = await cli(['submit', '--operation', 'aggregate-defects', '--input-json', '[{"segmentId":"a"}]', '--tenant', 't1', '--json']);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ created: true, jobName: expect.stringMatching(/^job-/), input: { bucket: m.bucket } });
  });

  test('submit --wait waits for SUCCEEDED and prints plain progress lines off a terminal', async () => {
    const res = await cli(['submit', '--operation', 'aggregate-defects', '--input-json', '{}', '--wait']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^submitted job \w+/);
    expect(res.stdout).toMatch(/SUCCEEDED/);
    expect(res.stderr).toMatch(/Z \w+ SUCCEEDED\n/);
  });

  test('status, wait, result, cancel and list work on a submitted job', async () => {
    const job = JSON.parse((await cli(['submit', '--operation', 'aggregate-defects', '--input-json', '{}', '--json'])).stdout);
    const status = await cli(['status', job.jobId, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ jobId: job.jobId, status: 'SUCCEEDED' });
    expect((await cli(['wait', job.jobId, '--poll', '1'])).code).toBe(0);
    await m.s3.send(new PutObjectCommand({ Bucket: m.bucket, Key: job.output.key, Body: '{"records":2}' }));
    const result = await cli(['result', job.jobId, '--json']);
    expect(JSON.parse(result.stdout)).toMatchObject({ result: { records: 2 }, rejects: { count: 0 } });
    const list = await cli(['list', '--status', 'succeeded', '--json']);
    expect(JSON.parse(list.stdout).map((j: { jobId: string }) => j.jobId)).toContain(job.jobId);
  });

  test('a job that does not exist exits 3', async () => {
    const res = await cli(['status', 'missing-job', '--json']);
    expect(res.code).toBe(3);
    expect(JSON.parse(res.stderr).error.code).toBe('JOB_NOT_FOUND');
  });

  test('a validation error exits 2 and names every field', async () => {
    const res = await cli(['submit', '--operation', 'Bad', '--input-json', '{}', '--callback-url', 'x', '--json']);
    expect(res.code).toBe(2);
    expect(JSON.parse(res.stderr).error.errors.map((e: { field: string }) => e.field).sort()).toEqual(['callbackUrl', 'operation']);
  });

  test('missing configuration exits 2 and says where to set it', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await runCli(['list'], { stdout, stderr, env: {}, isTTY: false });
    expect(code).toBe(2);
    expect(stderr.text).toMatch(/jobQueue: give --queue, set BATCH_JOB_QUEUE, or use --stack/);
  });

  test('a bad option value is a usage error (exit 2)', async () => {
    expect((await cli(['wait', 'x', '--timeout', 'soon'])).code).toBe(2);
  });

  test('--stack reads the queue, job definition and buckets from the outputs of a deployed stack', async () => {
    const stackName = `cli-stack-${Date.now().toString(36)}`;
    const cfn = new CloudFormationClient(motoClientConfig());
    const outputs = {
      JobQueueArn: m.jobQueueArn,
      JobDefinitionArn: m.jobDefinitionArn,
      InputBucketName: m.bucket,
      OutputBucketName: m.bucket,
      SubmitApiUrl: 'https://example.execute-api.us-east-1.amazonaws.com/v1/',
      NotificationTopicArn: 'arn:aws:sns:us-east-1:123456789012:topic',
    };
    await cfn.send(
      new CreateStackCommand({
        StackName: stackName,
        TemplateBody: JSON.stringify({
          Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
          Outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { Value: v }])),
        }),
      }),
    );
    const res = await cli(['--stack', stackName, 'submit', '--operation', 'aggregate-defects', '--input-json', '{}', '--json'], {
      BATCH_JOB_QUEUE: '',
      BATCH_JOB_DEFINITION: '',
      BATCH_INPUT_BUCKET: '',
    });
    expect(res.stderr).toBe('');
    const job = JSON.parse(res.stdout);
    expect(job.input.bucket).toBe(m.bucket);
    const info = await cli(['--stack', stackName, 'status', job.jobId, '--json'], { BATCH_JOB_QUEUE: '', BATCH_INPUT_BUCKET: '' });
    expect(JSON.parse(info.stdout).jobDefinition).toBe(m.jobDefinitionArn);
  });

  test('stack outputs map to client settings by OutputKey', () => {
    expect(
      stackOutputsToConfig([
        { OutputKey: 'JobQueueArn', OutputValue: 'q' },
        { OutputKey: 'SubmitApiUrl', OutputValue: 'u' },
        { OutputKey: 'Unrelated', OutputValue: 'x' },
      ]),
    ).toEqual({ jobQueue: 'q', submitApiUrl: 'u' });
  });
});

describe('exit codes (docs/submitting.md "Exit codes"), one row at a time against moto', () => {
  let proxy: RewriteProxy;
  /** Client options whose Batch calls go through a proxy that reports every job in `status`. */
  const seenAs = (status: string, reason?: string): { clientOptions: Partial<BatchJobClientOptions> } => {
    proxy.setStatus(status, reason);
    const batch = new BatchClient({ ...motoClientConfig(), endpoint: proxy.endpoint, maxAttempts: 1 });
    return { clientOptions: { clients: { batch, s3: m.s3, logs: m.logs } } };
  };
  const submitted = async (): Promise<{ jobId: string; batchJobId: string }> =>
    JSON.parse((await cli(['submit', '--operation', 'aggregate-defects', '--input-json', '{}', '--json'])).stdout);
  const jsonError = (stderr: string) => JSON.parse(stderr.trim().split('\n').pop()!).error;

  beforeAll(async () => {
    proxy = await startRewriteProxy(motoEndpoint());
  });
  afterAll(async () => {
    await proxy.close();
  });

  test('the documented table matches the code', () => {
    expect(EXIT_CODES).toEqual({ OK: 0, JOB_FAILED: 1, USAGE: 2, NOT_FOUND: 3, TIMEOUT: 4, INFRASTRUCTURE: 5, CONFLICT: 6, QUOTA: 7, INTERRUPTED: 130 });
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'submitting.md'), 'utf8');
    for (const [name, code] of Object.entries(EXIT_CODES)) expect(doc).toMatch(new RegExp(`\\|\\s*${code}\\s*\\|\\s*\`${name}\``));
  });

  test('0: success', async () => {
    const job = await submitted();
    expect((await cli(['wait', job.jobId, '--poll', '1'])).code).toBe(0);
  });

  test('1: the job ended FAILED (wait, submit --wait)', async () => {
    const job = await submitted();
    const res = await cli(['wait', job.jobId, '--json'], {}, seenAs('FAILED', 'Essential container in task exited'));
    expect(res.code).toBe(1);
    expect(jsonError(res.stderr)).toMatchObject({ code: 'JOB_FAILED', message: expect.stringMatching(/Essential container in task exited/) });
  });

  test('2: usage errors, with --json too', async () => {
    const unknown = await cli(['status', 'x', '--no-such-flag', '--json']);
    expect(unknown.code).toBe(2);
    expect(jsonError(unknown.stderr)).toEqual({ code: 'USAGE', message: expect.stringMatching(/unknown option '--no-such-flag'/) });
    const missingArg = await cli(['cancel', '--json']);
    expect(missingArg.code).toBe(2);
    expect(jsonError(missingArg.stderr).message).toMatch(/missing required argument 'jobId'/);
    const plain = await cli(['list', '--limit', 'many']);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/expected a whole number >= 1, got "many"/);
  });

  test('2: a missing input file names the flag and the path, not a raw ENOENT', async () => {
    const missing = path.join(os.tmpdir(), 'batchctl-no-such-input.json');
    const res = await cli(['submit', '--operation', 'aggregate-defects', '--input', missing, '--json']);
    expect(res.code).toBe(2);
    expect(jsonError(res.stderr)).toMatchObject({
      code: 'INVALID_REQUEST',
      errors: [{ field: '--input', message: `${missing}: no such file`, value: missing }],
    });
    const plain = await cli(['submit', '--operation', 'aggregate-defects', '--input', missing]);
    expect(plain.stderr).toBe(`batchctl: cannot read --input: --input: ${missing}: no such file\n`);
  });

  test('3: a job of another queue is not found (--queue other status <id>), by platform and Batch id', async () => {
    const job = await submitted();
    const other = await createMotoBatch('cliother');
    for (const id of [job.jobId, job.batchJobId]) {
      const res = await cli(['--queue', other.jobQueue, 'status', id, '--json']);
      expect(res.code).toBe(3);
      expect(res.stdout).toBe('');
      expect(jsonError(res.stderr).code).toBe('JOB_NOT_FOUND');
    }
  });

  test('3: result of a SUCCEEDED job that wrote no output says so', async () => {
    const job = await submitted();
    const res = await cli(['result', job.jobId]);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/SUCCEEDED but s3:\/\/\S+\/result\.json does not exist: the operation wrote no output there/);
    expect(res.stderr).not.toMatch(/wait/);
  });

  test('4: wait --timeout on a job that stays RUNNING', async () => {
    const job = await submitted();
    const res = await cli(['wait', job.jobId, '--timeout', '1', '--poll', '1', '--json'], {}, seenAs('RUNNING'));
    expect(res.code).toBe(4);
    expect(jsonError(res.stderr)).toMatchObject({ code: 'WAIT_TIMEOUT', message: expect.stringMatching(/still RUNNING/) });
  });

  test('5: a missing bucket, with the AWS request id and a hint', async () => {
    const res = await cli(['submit', '--operation', 'aggregate-defects', '--input-json', '{}', '--input-bucket', 'no-such-bucket-cli', '--json']);
    expect(res.code).toBe(5);
    expect(jsonError(res.stderr)).toMatchObject({
      code: 'AWS_ERROR',
      awsCode: 'NoSuchBucket',
      operation: 'PutObject',
      requestId: expect.stringMatching(/\S/),
      hint: expect.stringMatching(/no-such-bucket-cli does not exist/),
    });
    const plain = await cli(['submit', '--operation', 'aggregate-defects', '--input-json', '{}', '--input-bucket', 'no-such-bucket-cli']);
    expect(plain.stderr).toMatch(/\n  hint: the bucket no-such-bucket-cli does not exist.*\n  AWS request id: \S+\n$/);
  });

  test('5: an unreachable endpoint, with a hint', async () => {
    const dead = { ...motoClientConfig(), endpoint: 'http://127.0.0.1:9', maxAttempts: 1 };
    const clients = { batch: new BatchClient(dead), s3: new S3Client(dead), logs: m.logs };
    const res = await cli(['list', '--json'], {}, { clientOptions: { clients, retryStrategy: new ConfiguredRetryStrategy(2, 1) } });
    expect(res.code).toBe(5);
    expect(jsonError(res.stderr)).toMatchObject({ code: 'AWS_ERROR', hint: expect.stringMatching(/could not reach the AWS endpoint/) });
  });

  test('6: cancel of a finished job is a clear "already finished"; cancel of a running one works', async () => {
    const job = await submitted();
    const res = await cli(['cancel', job.jobId]);
    expect(res.code).toBe(6);
    expect(res.stderr).toMatch(/already finished \(SUCCEEDED\); nothing to cancel/);
    expect(res.stdout).toBe('');
    const running = await cli(['cancel', job.jobId, '--reason', 'test', '--json'], {}, seenAs('RUNNING'));
    expect(running.code).toBe(0);
    expect(JSON.parse(running.stdout).jobId).toBe(job.jobId);
  });

  test('6: result of a job that has not finished', async () => {
    const job = await submitted();
    const res = await cli(['result', job.jobId, '--json'], {}, seenAs('RUNNABLE'));
    expect(res.code).toBe(6);
    expect(jsonError(res.stderr).code).toBe('RESULT_NOT_READY');
  });

  test('130: interrupted while waiting', async () => {
    const job = await submitted();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1500);
    const res = await cli(['wait', job.jobId, '--poll', '1', '--json'], {}, { ...seenAs('RUNNING'), signal: controller.signal });
    expect(res.code).toBe(130);
    expect(jsonError(res.stderr)).toMatchObject({ code: 'WAIT_ABORTED', message: expect.stringMatching(/last seen RUNNING/) });
  });
});

describe('--limit is a total on every command', () => {
  test('list --limit 3 and logs --limit 3 print at most 3', async () => {
    for (let i = 0; i < 4; i++) await cli(['submit', '--operation', 'aggregate-defects', '--input-json', '{}']);
    const list = await cli(['list', '--limit', '3', '--json']);
    expect(JSON.parse(list.stdout)).toHaveLength(3);
    const job = JSON.parse((await cli(['submit', '--operation', 'aggregate-defects', '--input-json', '{}', '--json'])).stdout);
    const info = JSON.parse((await cli(['status', job.jobId, '--json'])).stdout);
    const { CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } = await import('@aws-sdk/client-cloudwatch-logs');
    await m.logs.send(new CreateLogGroupCommand({ logGroupName: m.logGroup })).catch(() => undefined);
    await m.logs.send(new CreateLogStreamCommand({ logGroupName: m.logGroup, logStreamName: info.logStreamName }));
    const now = Date.now();
    const logEvents = Array.from({ length: 8 }, (_, i) => ({ timestamp: now + i, message: `line ${i}` }));
    await m.logs.send(new PutLogEventsCommand({ logGroupName: m.logGroup, logStreamName: info.logStreamName, logEvents }));
    const logs = await cli(['logs', job.jobId, '--limit', '3', '--json']);
    expect(logs.stdout.trim().split('\n').map((l) => JSON.parse(l).message)).toEqual(['line 0', 'line 1', 'line 2']);
  });
});

const jsonError = (stderr: string) => JSON.parse(stderr.split('\n').find((l) => l.startsWith('{"error"'))!).error;

describe('batchctl as a process (npx tsx bin/batchctl.ts)', () => {
  const run = (args: string[]) =>
    execFileAsync('npx', ['tsx', 'bin/batchctl.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...motoEnv(), BATCH_JOB_QUEUE: m.jobQueue, BATCH_JOB_DEFINITION: m.jobDefinition, BATCH_INPUT_BUCKET: m.bucket },
    }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  test('submit --json then status --json against moto', async () => {
    const submitted = await run(['submit', '--operation', 'aggregate-defects', '--input-json', '{"a":1}', '--client-token', 'proc-1', '--json']);
    expect(submitted.code).toBe(0);
    const job = JSON.parse(submitted.stdout);
    const status = await run(['status', job.jobId, '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ jobId: job.jobId, status: 'SUCCEEDED', operation: 'aggregate-defects' });
  });

  test('no credentials anywhere: exit 5 with a hint how to provide them', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'batchctl-home-'));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      AWS_CONFIG_FILE: path.join(home, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: motoEndpoint(),
      BATCH_JOB_QUEUE: m.jobQueue,
      BATCH_INPUT_BUCKET: m.bucket,
    };
    const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
    const res = await execFileAsync(tsx, ['bin/batchctl.ts', 'list', '--json'], { cwd: ROOT, env }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(res.code).toBe(5);
    expect(jsonError(res.stderr)).toMatchObject({ code: 'AWS_ERROR', hint: expect.stringMatching(/no AWS credentials found: set AWS_PROFILE/) });
  });

  test('--help on a command exits 0 and documents its options; a missing argument exits 2', async () => {
    const help = await run(['logs', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--follow/);
    expect((await run(['logs'])).code).toBe(2);
  });
});
