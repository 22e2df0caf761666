import { execFile } from 'child_process';
import * as path from 'path';
import { promisify } from 'util';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { runCli } from '../../lib/client/cli';
import { stackOutputsToConfig } from '../../lib/client';
import { motoClientConfig, motoEnv } from '../support/moto';
import { createMotoBatch, MotoBatch } from '../lib/client/moto-batch';

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
async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(args, {
    stdout,
    stderr,
    isTTY: false,
    env: { BATCH_JOB_QUEUE: m.jobQueue, BATCH_JOB_DEFINITION: m.jobDefinition, BATCH_INPUT_BUCKET: m.bucket, ...env },
    clientOptions: { clients: { batch: m.batch, s3: m.s3, logs: m.logs }, fairShare: false },
    cloudFormation: new CloudFormationClient(motoClientConfig()),
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
    const cancel = await cli(['cancel', job.jobId, '--reason', 'test', '--json']);
    expect(JSON.parse(cancel.stdout).statusReason).toBe('test');
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

  test('--help on a command exits 0 and documents its options; a missing argument exits 2', async () => {
    const help = await run(['logs', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--follow/);
    expect((await run(['logs'])).code).toBe(2);
  });
});
