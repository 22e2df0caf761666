import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { runCli } from '../../lib/client/cli';
import { motoClientConfig } from '../support/moto';
import { createMotoBatch, MotoBatch } from '../lib/client/moto-batch';
import { createQuotaTable, recordingBatch } from '../lib/client/moto-quota';

let m: MotoBatch;
let table: Awaited<ReturnType<typeof createQuotaTable>>;

class Capture {
  public text = '';
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}, batch = m.batch): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(args, {
    stdout,
    stderr,
    isTTY: false,
    env: { BATCH_JOB_QUEUE: m.jobQueue, BATCH_JOB_DEFINITION: m.jobDefinition, BATCH_INPUT_BUCKET: m.bucket, ...env },
    clientOptions: { clients: { batch, s3: m.s3, logs: m.logs }, fairShare: false },
    cloudFormation: new CloudFormationClient(motoClientConfig()),
    dynamodb: table.dynamodb,
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

beforeAll(async () => {
  m = await createMotoBatch('cli-sizing');
  table = await createQuotaTable('cli');
});

test('submit --vcpus --memory sizes the job', async () => {
  const rec = recordingBatch();
  const res = await cli(['submit', '--operation', 'simplify', '--input-json', '[]', '--vcpus', '2', '--memory', '4096', '--json'], {}, rec.batch);
  expect(res.code).toBe(0);
  expect(rec.submitted[0].containerOverrides?.resourceRequirements).toEqual([
    { type: 'VCPU', value: '2' },
    { type: 'MEMORY', value: '4096' },
  ]);
});

test('out-of-bounds sizing is a usage error (exit 2) naming field, value and range', async () => {
  const res = await cli(['submit', '--operation', 'simplify', '--input-json', '[]', '--vcpus', '32', '--json']);
  expect(res.code).toBe(2);
  const error = JSON.parse(res.stderr.trim().split('\n').pop()!).error;
  expect(error.code).toBe('INVALID_REQUEST');
  expect(JSON.stringify(error)).toMatch(/vcpus.*32.*1 to 16 vCPUs for simplify/);
  expect((await cli(['submit', '--operation', 'simplify', '--input-json', '[]', '--vcpus', 'many'])).code).toBe(2);
});

test('a tenant over its quota (BATCH_QUOTA_TABLE / BATCH_QUOTA_LIMITS) exits 7 with retryAfterSeconds', async () => {
  const env = { BATCH_QUOTA_TABLE: table.tableName, BATCH_QUOTA_LIMITS: JSON.stringify({ default: { maxActiveJobs: 1, submissionsPerMinute: 100 } }) };
  const args = ['submit', '--operation', 'aggregate-defects', '--input-json', '[]', '--tenant', 'cli-tenant', '--json'];
  const first = await cli(args, env);
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  const res = await cli(args, env);
  expect(res.code).toBe(7);
  expect(JSON.parse(res.stderr.trim().split('\n').pop()!).error).toMatchObject({ code: 'QUOTA_EXCEEDED', limit: 'maxActiveJobs', limitValue: 1, retryAfterSeconds: 30 });
});
