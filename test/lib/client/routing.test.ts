import { DescribeJobsCommand } from '@aws-sdk/client-batch';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { BatchJobClient, BatchJobClientOptions, InvalidRequestError, JobAlreadyFinishedError, parseJobRoutes } from '../../../lib/client';
import { declaredPlacement } from '../../../containers/worker/src/operations/declarations';
import { placementOf } from '../../../containers/worker/src/operations/placement';
import { getOperation, operationNames } from '../../../containers/worker/src/operations/registry';
import { createMotoBatch, MotoBatch } from './moto-batch';

let ec2: MotoBatch;
let fargate: MotoBatch;

function client(extra: Partial<BatchJobClientOptions> = {}): BatchJobClient {
  return new BatchJobClient({
    jobQueue: ec2.jobQueue,
    jobDefinition: ec2.jobDefinition,
    inputBucket: ec2.bucket,
    clients: { batch: ec2.batch, s3: ec2.s3, logs: ec2.logs },
    fairShare: false,
    sleep: async () => undefined,
    retryStrategy: new ConfiguredRetryStrategy(3, 1),
    routes: { 'FARGATE:ocr': { jobQueue: fargate.jobQueueArn, jobDefinition: fargate.jobDefinitionArn } },
    ...extra,
  });
}

async function describe1(batchJobId: string) {
  const res = await ec2.batch.send(new DescribeJobsCommand({ jobs: [batchJobId] }));
  return res.jobs![0];
}

function refusal(fn: () => unknown): InvalidRequestError {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidRequestError) return err;
    throw err;
  }
  throw new Error('expected an InvalidRequestError');
}

beforeAll(async () => {
  ec2 = await createMotoBatch('route-ec2');
  fargate = await createMotoBatch('route-fargate');
});

describe('operation-to-queue routing', () => {
  test('every registered operation declares the placement its module has (the submit side routes by the declaration)', () => {
    for (const name of operationNames()) expect(declaredPlacement(name)).toEqual(placementOf(getOperation(name)));
    expect(declaredPlacement('ocr')).toMatchObject({ runsOn: 'FARGATE', image: 'ocr' });
  });

  test('ocr goes to the Fargate route with the OCR job definition; aggregate-defects stays on the EC2 queue', async () => {
    const c = client();
    const ocrJob = await c.submit({ operation: 'ocr', inputKey: 'uploads/page.png' });
    const recordJob = await c.submit({ operation: 'aggregate-defects', input: [] });
    const ocrDetail = await describe1(ocrJob.batchJobId);
    const recordDetail = await describe1(recordJob.batchJobId);
    expect(ocrDetail.jobQueue).toBe(fargate.jobQueueArn);
    expect(ocrDetail.jobDefinition).toBe(fargate.jobDefinitionArn);
    expect(recordDetail.jobQueue).toBe(ec2.jobQueueArn);
    expect(recordDetail.jobDefinition).toBe(ec2.jobDefinitionArn);
  });

  test('status and cancel find a routed job by its platform job id', async () => {
    const c = client();
    const job = await c.submit({ operation: 'ocr', inputKey: 'uploads/scan.tiff' });
    const info = await c.status(job.jobId);
    expect(info).toMatchObject({ jobId: job.jobId, batchJobId: job.batchJobId, operation: 'ocr' });
    // moto without Docker may finish the job at once: then cancel refuses a finished job, which it found.
    const outcome = await c.cancel(job.jobId).then((info) => info.batchJobId, (err: unknown) => err);
    if (outcome instanceof JobAlreadyFinishedError) expect(outcome.message).toContain(job.jobId);
    else expect(outcome).toBe(job.batchJobId);
  });

  test('a client without the route refuses ocr, naming the placement it needs, and stages nothing', async () => {
    const c = client({ routes: undefined });
    const err = await c.submit({ operation: 'ocr', input: { note: 'staged?' }, jobId: 'unrouted-ocr-1' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect((err as InvalidRequestError).errors[0]).toMatchObject({ field: 'operation', value: 'ocr', message: expect.stringContaining('FARGATE:ocr') });
    const listed = await ec2.s3.send(new ListObjectsV2Command({ Bucket: ec2.bucket, Prefix: 'jobs/unrouted-ocr-1/' }));
    expect(listed.KeyCount ?? 0).toBe(0);
  });

  test('a route for the default placement replaces the client queue for record operations', async () => {
    const c = client({ routes: { 'EC2:worker': { jobQueue: fargate.jobQueueArn, jobDefinition: fargate.jobDefinitionArn } } });
    const job = await c.submit({ operation: 'transform-records', input: [] });
    expect((await describe1(job.batchJobId)).jobQueue).toBe(fargate.jobQueueArn);
  });
});

describe('route tables', () => {
  test('JSON routes parse into a table without a prototype', () => {
    const routes = parseJobRoutes('{"FARGATE:ocr":{"jobQueue":"q","jobDefinition":"d"}}', 'JOB_ROUTES')!;
    expect(routes['FARGATE:ocr']).toEqual({ jobQueue: 'q', jobDefinition: 'd' });
    expect(Object.getPrototypeOf(routes)).toBeNull();
    expect(parseJobRoutes(undefined, 'JOB_ROUTES')).toBeUndefined();
  });

  test('bad route tables are refused naming the source, the key and what is allowed', () => {
    expect(refusal(() => parseJobRoutes('{not json', 'JOB_ROUTES')).errors[0]).toMatchObject({ field: 'JOB_ROUTES', message: expect.stringMatching(/JSON object/) });
    const badKey = refusal(() => parseJobRoutes('{"GPU:ocr":{"jobQueue":"q","jobDefinition":"d"}}', 'JOB_ROUTES'));
    expect(badKey.errors[0]).toMatchObject({ field: 'JOB_ROUTES.GPU:ocr', message: expect.stringContaining('FARGATE:ocr') });
    const proto = refusal(() => parseJobRoutes('{"__proto__":{"jobQueue":"q","jobDefinition":"d"}}', 'JOB_ROUTES'));
    expect(proto.errors[0].field).toBe('JOB_ROUTES.__proto__');
    const missing = refusal(() => parseJobRoutes('{"FARGATE:ocr":{"jobQueue":"q"}}', '--routes'));
    expect(missing.errors[0].field).toBe('--routes.FARGATE:ocr.jobDefinition');
  });

  test('the constructor checks routes given in code', () => {
    expect(() => client({ routes: { 'FARGATE:ocr': { jobQueue: '', jobDefinition: 'd' } } })).toThrow(InvalidRequestError);
  });
});
