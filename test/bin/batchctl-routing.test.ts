import { DescribeJobsCommand } from '@aws-sdk/client-batch';
import { runCli } from '../../lib/client/cli';
import { EXIT_CODES } from '../../lib/client';
import { createMotoBatch, MotoBatch } from '../lib/client/moto-batch';

let ec2: MotoBatch;
let fargate: MotoBatch;

class Capture {
  public text = '';
  public isTTY = false;
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(args, {
    stdout,
    stderr,
    isTTY: false,
    env: { BATCH_JOB_QUEUE: ec2.jobQueue, BATCH_JOB_DEFINITION: ec2.jobDefinition, BATCH_INPUT_BUCKET: ec2.bucket, ...env },
    clientOptions: { clients: { batch: ec2.batch, s3: ec2.s3, logs: ec2.logs }, fairShare: false },
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const routesJson = () => JSON.stringify({ 'FARGATE:ocr': { jobQueue: fargate.jobQueueArn, jobDefinition: fargate.jobDefinitionArn } });

beforeAll(async () => {
  ec2 = await createMotoBatch('cli-route-ec2');
  fargate = await createMotoBatch('cli-route-fargate');
});

describe('batchctl routes operations by placement', () => {
  test('submit --operation ocr with BATCH_JOB_ROUTES goes to the Fargate queue and OCR job definition', async () => {
    const res = await cli(['submit', '--operation', 'ocr', '--input-json', '{}', '--json'], { BATCH_JOB_ROUTES: routesJson() });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const job = JSON.parse(res.stdout) as { batchJobId: string; jobId: string };
    const detail = (await ec2.batch.send(new DescribeJobsCommand({ jobs: [job.batchJobId] }))).jobs![0];
    expect(detail).toMatchObject({ jobQueue: fargate.jobQueueArn, jobDefinition: fargate.jobDefinitionArn });
    const status = await cli(['status', job.jobId, '--json'], { BATCH_JOB_ROUTES: routesJson() });
    expect(JSON.parse(status.stdout)).toMatchObject({ jobId: job.jobId, operation: 'ocr' });
  });

  test('--job-routes on the command line wins over the environment', async () => {
    const res = await cli(['--job-routes', routesJson(), 'submit', '--operation', 'ocr', '--input-json', '{}', '--json'], { BATCH_JOB_ROUTES: '{"FARGATE:ocr":{"jobQueue":"nope","jobDefinition":"nope"}}' });
    expect(res.code).toBe(0);
    const job = JSON.parse(res.stdout) as { batchJobId: string };
    expect((await ec2.batch.send(new DescribeJobsCommand({ jobs: [job.batchJobId] }))).jobs![0].jobQueue).toBe(fargate.jobQueueArn);
  });

  test('without a route, ocr is refused as invalid input (exit 2) naming FARGATE:ocr', async () => {
    const res = await cli(['submit', '--operation', 'ocr', '--input-json', '{}']);
    expect(res.code).toBe(EXIT_CODES.USAGE);
    expect(res.stderr).toContain('FARGATE:ocr');
  });

  test('a malformed --job-routes is a usage-level refusal naming the flag', async () => {
    const res = await cli(['--job-routes', '{"FARGATE:ocr":{}}', 'submit', '--operation', 'ocr', '--input-json', '{}', '--json']);
    expect(res.code).toBe(EXIT_CODES.USAGE);
    expect(res.stderr).toContain('--job-routes.FARGATE:ocr.jobQueue');
  });
});
