import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateStateMachineCommand, DescribeExecutionCommand, SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { sampleBuffer } from '../../../containers/worker/src/sample-data';
import { aggregateRun } from '../../../lambda/aggregate/aggregate';
import { runChunk } from '../../../lambda/chunk-processor';
import { chunkableOperations } from '../../../lambda/planner/operations';
import { parseManifest, planRun } from '../../../lambda/planner/plan';
import { ManifestChunk, manifestKey } from '../../../lambda/planner/run-layout';
import { validateRunRequest } from '../../../lambda/validate-input/validate';
import { runCli } from '../../../lib/client/cli';
import { RunsClient } from '../../../lib/client/runs';
import { motoClientConfig } from '../../support/moto';

/** `batchctl runs` against moto: S3 holds the runs (written by the real handlers), Step Functions their executions. */
const BUCKET = 'runs-cli-suite';
const s3 = new S3Client(motoClientConfig());
const sfn = new SFNClient(motoClientConfig());
let stateMachineArn: string;
afterAll(() => {
  s3.destroy();
  sfn.destroy();
});

const CLEAN = sampleBuffer({ count: 8_000, seed: 31 });
/** Lines 3,000-3,100 unparsable (same length): the second of four 2,000-record chunks fails. */
function poisoned(): Buffer {
  const out = Buffer.from(CLEAN);
  let line = 0;
  for (let i = 0; i < out.length; i++) {
    if (out[i] === 0x0a) line++;
    else if (line >= 3_000 && line < 3_100) out[i] = 0x78;
  }
  return out;
}

async function manifest(runId: string): Promise<ManifestChunk[]> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: manifestKey(runId) }));
  return parseManifest(await res.Body!.transformToString());
}

/** Plans `runId` and processes its first `upTo` chunks through the real chunk handler (failures recorded). */
async function startRun(runId: string, key: string, upTo = Infinity): Promise<ManifestChunk[]> {
  const run = validateRunRequest(
    { runId, bucket: BUCKET, key, operation: 'aggregate-defects', chunkRecords: 2_000, customerId: 'cust-7', tenantId: 'tenant-b' },
    { operations: chunkableOperations() },
  );
  await planRun(run, { s3, runsBucket: BUCKET });
  const chunks = await manifest(runId);
  for (const chunk of chunks.slice(0, upTo)) {
    try {
      await runChunk({ runId, operation: 'aggregate-defects', operationConfig: '{}', chunk }, { s3, runsBucket: BUCKET, emit: () => undefined });
    } catch (err) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: chunk.failureKey, Body: JSON.stringify({ Error: (err as Error).name, Cause: (err as Error).message }) }));
    }
  }
  return chunks;
}

async function finish(runId: string): Promise<void> {
  await aggregateRun({ runId, operation: 'aggregate-defects' }, { s3, runsBucket: BUCKET, toleratedFailurePercentage: 50, emit: () => undefined });
}

async function cli(args: string[], withStateMachine = true): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(
    ['runs', '--runs-bucket', BUCKET, ...(withStateMachine ? ['--state-machine', stateMachineArn] : []), ...args],
    {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (err += t) },
      env: {},
      isTTY: false,
      runsClients: { s3, sfn },
    },
  );
  return { code, out, err };
}

beforeAll(async () => {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (err) {
    if ((err as Error).name !== 'BucketAlreadyOwnedByYou') throw err;
  }
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/poisoned.jsonl', Body: poisoned() }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/clean.jsonl', Body: CLEAN }));
  const sm = await sfn.send(
    new CreateStateMachineCommand({
      name: `runs-cli-${Date.now()}`,
      roleArn: 'arn:aws:iam::123456789012:role/workflow',
      definition: JSON.stringify({ StartAt: 'Done', States: { Done: { Type: 'Succeed' } } }),
    }),
  );
  stateMachineArn = sm.stateMachineArn!;
}, 60_000);

describe('runs status', () => {
  const runId = 'status-midway';
  let executionArn: string;
  /** Records of the first two chunks, counted independently: the lines in their byte ranges. */
  let firstTwo: number;
  beforeAll(async () => {
    executionArn = (await sfn.send(new StartExecutionCommand({ stateMachineArn, name: runId, input: JSON.stringify({ bucket: BUCKET, key: 'in/clean.jsonl' }) })))
      .executionArn!;
    const chunks = await startRun(runId, 'in/clean.jsonl', 2);
    firstTwo = CLEAN.subarray(0, chunks[1].endByte).toString('latin1').split('\n').length - 1;
  }, 60_000);

  test('a running run: chunks done/pending, records, rate and ETA from S3 and the execution', async () => {
    const { code, out } = await cli(['--json', 'status', runId]);
    expect(code).toBe(0);
    const s = JSON.parse(out);
    expect(s).toMatchObject({
      runId,
      state: 'RUNNING',
      operation: 'aggregate-defects',
      identity: expect.objectContaining({ customerId: 'cust-7', tenantId: 'tenant-b' }),
      chunks: { total: 4, done: 2, failed: 0, pending: 2 },
      records: { done: firstTwo },
      progress: 0.5,
      execution: { name: runId, status: 'RUNNING', arn: executionArn },
    });
    expect(s.recordsPerSecond).toBeGreaterThan(0);
    expect(s.etaSeconds).toBeGreaterThanOrEqual(0);
  });

  test('human output names every figure', async () => {
    const { code, out } = await cli(['status', runId]);
    expect(code).toBe(0);
    expect(out).toContain(`run ${runId}  RUNNING  50%`);
    expect(out).toMatch(/chunks +2 done, 0 failed, 2 pending of 4/);
    expect(out).toContain(`records     ${firstTwo.toLocaleString('en-US')} of ~`);
    expect(out).toMatch(/ETA +\d+s/);
  });

  test('an unknown run exits 3 (not found)', async () => {
    const { code, err } = await cli(['--json', 'status', 'no-such-run']);
    expect(code).toBe(3);
    expect(JSON.parse(err).error.code).toBe('RUN_NOT_FOUND');
  });

  test('a bad run id exits 2 naming the field and the value', async () => {
    const { code, err } = await cli(['status', '../etc']);
    expect(code).toBe(2);
    expect(err).toContain('runId: ("../etc") must be 1-80 characters');
  });

  test('without a runs bucket exits 2 saying how to give one', async () => {
    let err = '';
    const code = await runCli(['runs', 'status', runId], { stdout: { write: () => true }, stderr: { write: (t: string) => (err += t) }, env: {}, isTTY: false });
    expect(code).toBe(2);
    expect(err).toContain('runsBucket: give --runs-bucket, set BATCH_RUNS_BUCKET, or use --stack BatchPlatform-<stage>');
  });

  test('--watch reads until the run finished and exits 0 when it SUCCEEDED', async () => {
    const rest = (await manifest(runId)).slice(2);
    const watching = cli(['status', runId, '--watch', '--interval', '1']);
    for (const chunk of rest) await runChunk({ runId, operation: 'aggregate-defects', operationConfig: '{}', chunk }, { s3, runsBucket: BUCKET, emit: () => undefined });
    await finish(runId);
    await sfn.send(new StopExecutionCommand({ executionArn }));
    const { code, out } = await watching;
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(new RegExp(`${runId} SUCCEEDED 100% chunks 4/4 \\(0 failed\\), 8,000 records, ETA 0s`));
  }, 60_000);
});

describe('runs retry', () => {
  const runId = 'retry-cli';
  let executionArn: string;
  beforeAll(async () => {
    executionArn = (await sfn.send(new StartExecutionCommand({ stateMachineArn, name: runId, input: '{}' }))).executionArn!;
    await startRun(runId, 'in/poisoned.jsonl');
    await finish(runId);
  }, 60_000);

  test('is refused while the run\'s execution is still running (exit 6)', async () => {
    const { code, err } = await cli(['retry', runId]);
    expect(code).toBe(6);
    expect(err).toContain(`run ${runId} is still running (execution ${runId})`);
  });

  test('a finished PARTIAL run: status shows the failed chunk; --watch exits 1', async () => {
    await sfn.send(new StopExecutionCommand({ executionArn }));
    const s = JSON.parse((await cli(['--json', 'status', runId])).out);
    expect(s).toMatchObject({ state: 'PARTIAL', chunks: { total: 4, done: 3, failed: 1, pending: 0 }, etaSeconds: 0 });
    const watched = await cli(['status', runId, '--watch']);
    expect(watched.code).toBe(1);
    expect(watched.err).toContain(`batchctl runs retry ${runId}`);
  });

  test('starts an execution with the run\'s own input and retry: true', async () => {
    const { code, out } = await cli(['--json', 'retry', runId]);
    expect(code).toBe(0);
    const started = JSON.parse(out);
    expect(started.executionName).toMatch(new RegExp(`^${runId}-retry-\\d{8}T\\d{6}$`));
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
    expect(JSON.parse(d.input!)).toEqual({
      runId,
      retry: true,
      bucket: BUCKET,
      key: 'in/poisoned.jsonl',
      operation: 'aggregate-defects',
      operationConfig: '{}',
      chunkRecords: 2_000,
      lambdaMaxRecords: 1_000_000,
      customerId: 'cust-7',
      tenantId: 'tenant-b',
    });
    // The retry's execution is now the run's latest: the run counts as running again.
    expect(JSON.parse((await cli(['--json', 'status', runId])).out)).toMatchObject({ state: 'RUNNING', execution: { name: started.executionName } });
  });

  test('of a SUCCEEDED run is refused (exit 6), and of an unknown run exits 3', async () => {
    expect((await cli(['retry', 'status-midway'])).code).toBe(6);
    expect((await cli(['retry', 'never-was'])).code).toBe(3);
  });

  test('needs the state machine (exit 2)', async () => {
    const { code, err } = await cli(['retry', runId], false);
    expect(code).toBe(2);
    expect(err).toContain('stateMachine: give --state-machine <arn>, set BATCH_STATE_MACHINE_ARN, or use --stack ChunkedProcessing-<stage>');
  });
});

describe('runs list', () => {
  test('lists runs newest first with status and chunk counts', async () => {
    const { code, out } = await cli(['--json', 'list']);
    expect(code).toBe(0);
    const list = JSON.parse(out) as { runId: string; state: string; chunks: { done: number; failed: number; pending: number } }[];
    const byId = Object.fromEntries(list.map((r) => [r.runId, r]));
    expect(byId['status-midway']).toMatchObject({ state: 'SUCCEEDED', chunks: { done: 4, failed: 0, pending: 0 } });
    expect(byId['retry-cli']).toMatchObject({ state: 'RUNNING', chunks: { done: 3, failed: 1, pending: 0 } });
    expect(list.map((r) => r.runId).indexOf('retry-cli')).toBeLessThan(list.map((r) => r.runId).indexOf('status-midway'));
  });

  test('human output is one line per run under a header', async () => {
    const { out } = await cli(['list', '--limit', '1']);
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/^RUN ID +STATUS +STARTED +DONE\/FAIL\/PEND +RECORDS$/);
    expect(lines).toHaveLength(2);
  });

  test('from S3 alone (a local run\'s bucket): the summary gives the state', async () => {
    const runs = await new RunsClient({ s3, runsBucket: BUCKET }).list();
    const run = runs.find((r) => r.runId === 'status-midway');
    expect(run).toMatchObject({ state: 'SUCCEEDED', chunks: { total: 4, done: 4 } });
    expect(run).not.toHaveProperty('execution');
  });
});

describe('runs --stack (stack outputs, as the other commands read them)', () => {
  const runId = 'stack-outputs';
  const cfn = new CloudFormationClient(motoClientConfig());
  let stackName: string;
  let executionArn: string;
  afterAll(() => cfn.destroy());

  /** A deployed ChunkedProcessing stack as batchctl sees it: DescribeStacks outputs (moto's CloudFormation). */
  async function deployedStack(outputs: Record<string, string>): Promise<string> {
    const name = `cli-runs-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}`;
    await cfn.send(
      new CreateStackCommand({
        StackName: name,
        TemplateBody: JSON.stringify({
          Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
          Outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { Value: v }])),
        }),
      }),
    );
    return name;
  }

  async function cliStack(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await runCli(args, { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) }, env, isTTY: false, runsClients: { s3, sfn }, cloudFormation: cfn });
    return { code, out, err };
  }

  beforeAll(async () => {
    executionArn = (await sfn.send(new StartExecutionCommand({ stateMachineArn, name: runId, input: JSON.stringify({ bucket: BUCKET, key: 'in/clean.jsonl' }) }))).executionArn!;
    await startRun(runId, 'in/clean.jsonl', 1);
    stackName = await deployedStack({ RunsBucketName: BUCKET, StateMachineArn: stateMachineArn, SummaryQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/summaries' });
  }, 60_000);

  test('reads the runs bucket and the state machine from RunsBucketName and StateMachineArn, before or after `runs`', async () => {
    for (const args of [['--stack', stackName, 'runs', 'status', runId, '--json'], ['runs', 'status', runId, '--stack', stackName, '--json']]) {
      const { code, out, err } = await cliStack(args);
      expect({ code, err }).toEqual({ code: 0, err: '' });
      // The execution is there only if the state machine came from the stack.
      expect(JSON.parse(out)).toMatchObject({ runId, chunks: { total: 4, done: 1 }, execution: { name: runId, arn: executionArn } });
    }
    const list = await cliStack(['--stack', stackName, 'runs', 'list', '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.out).map((r: { runId: string }) => r.runId)).toContain(runId);
  });

  test('flags win over the environment, the environment over the stack', async () => {
    const wrong = await deployedStack({ RunsBucketName: 'no-such-runs-bucket', StateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:nope' });
    const byFlag = await cliStack(['--stack', wrong, 'runs', '--runs-bucket', BUCKET, '--state-machine', stateMachineArn, 'status', runId, '--json']);
    expect(byFlag.code).toBe(0);
    expect(JSON.parse(byFlag.out).execution).toMatchObject({ arn: executionArn });
    const byEnv = await cliStack(['--stack', wrong, 'runs', 'status', runId, '--json'], { BATCH_RUNS_BUCKET: BUCKET, BATCH_STATE_MACHINE_ARN: stateMachineArn });
    expect(byEnv.code).toBe(0);
    expect(JSON.parse(byEnv.out).execution).toMatchObject({ arn: executionArn });
  });

  test('the platform stack (OutputBucketName) and the workflow stack (StateMachineArn) together, as the app deploys them', async () => {
    const platform = await deployedStack({ JobQueueArn: 'arn:aws:batch:us-east-1:123456789012:job-queue/q', OutputBucketName: BUCKET });
    const workflow = await deployedStack({ StateMachineArn: stateMachineArn, SummaryQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/summaries' });
    const { code, out, err } = await cliStack(['--stack', platform, '--stack', workflow, 'runs', 'status', runId, '--json']);
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(JSON.parse(out)).toMatchObject({ runId, chunks: { done: 1 }, execution: { arn: executionArn } });
    // The platform stack alone: the runs bucket, no state machine (status from S3 alone; retry needs the state machine).
    const alone = await cliStack(['--stack', platform, 'runs', 'status', runId, '--json']);
    expect(alone.code).toBe(0);
    expect(JSON.parse(alone.out).execution).toBeUndefined();
    const retry = await cliStack(['--stack', platform, 'runs', 'retry', runId]);
    expect(retry.code).toBe(2);
    expect(retry.err).toContain('use --stack ChunkedProcessing-<stage>');
  });

  test('a stack with neither bucket exits 2 saying which stack to give; an unknown stack exits 2 naming it', async () => {
    const workflow = await deployedStack({ StateMachineArn: stateMachineArn });
    const missing = await cliStack(['--stack', workflow, 'runs', 'status', runId]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('runsBucket: give --runs-bucket, set BATCH_RUNS_BUCKET, or use --stack BatchPlatform-<stage>');
    const unknown = await cliStack(['--stack', 'NoSuchStack-dev', 'runs', 'list', '--json']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('NoSuchStack-dev');
  });
});
