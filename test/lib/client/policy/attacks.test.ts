import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEvent, SQSRecord } from 'aws-lambda';
import { handleRecords, RecordOutcome } from '../../../../lambda/queue-submit';
import { submitJob } from '../../../../lambda/submit-api/submit';
import { BatchJobClient, FieldError, IdempotencyConflictError, InvalidRequestError, JobIdConflictError } from '../../../../lib/client';
import { runCli } from '../../../../lib/client/cli';
import { motoClientConfig, motoEndpoint, motoEnv } from '../../../support/moto';
import { createMotoBatch, MotoBatch } from '../moto-batch';

/**
 * The attacks of issue 10 (and more), each tried through the three ways in: the SDK
 * (BatchJobClient.submit), the submit API handler and the queue-submit handler. Every refusal must
 * name the field, and afterwards the aws CLI must find no job in Batch and no object in S3.
 */

const STATUSES = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING', 'SUCCEEDED', 'FAILED'];

function aws(args: string[]): unknown {
  const out = execFileSync('aws', ['--endpoint-url', motoEndpoint(), '--output', 'json', ...args], { env: { ...process.env, ...motoEnv() }, encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : {};
}

/** Every job of the queue, any status, as the aws CLI lists them. */
function batchJobs(m: MotoBatch): { jobName: string; jobId: string }[] {
  return STATUSES.flatMap((status) => (aws(['batch', 'list-jobs', '--job-queue', m.jobQueue, '--job-status', status]) as { jobSummaryList: { jobName: string; jobId: string }[] }).jobSummaryList);
}

function s3Keys(m: MotoBatch): string[] {
  const res = aws(['s3api', 'list-objects-v2', '--bucket', m.bucket]) as { Contents?: { Key: string }[] };
  return (res.Contents ?? []).map((o) => o.Key).sort();
}

/** An object's text, read back with the aws CLI. */
function s3Text(m: MotoBatch, key: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'policy-')), 'object');
  aws(['s3api', 'get-object', '--bucket', m.bucket, '--key', key, file]);
  return fs.readFileSync(file, 'utf8');
}

function clientFor(m: MotoBatch, jobDefinition = m.jobDefinition): BatchJobClient {
  return new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false, maxRetries: 1});
}

/** One attack: the request (as a submitter would send it) and the fields that must be refused. */
interface Attack {
  readonly name: string;
  readonly request: Record<string, unknown>;
  readonly fields: readonly string[];
  /** The submit API takes tenant and inputKey from nowhere but the identity: they are unknown fields there. */
  readonly apiFields?: readonly string[];
}

const parsed = (json: string) => JSON.parse(json) as Record<string, unknown>;

const ATTACKS: readonly Attack[] = [
  {
    name: 'the SQS message of the issue: ../../etc/passwd, acme/../other, OUTPUT_S3_ENDPOINT and NODE_OPTIONS',
    request: {
      operation: 'aggregate-defects',
      inputKey: '../../etc/passwd',
      tenantId: 'acme/../other',
      environment: { OUTPUT_S3_ENDPOINT: 'https://attacker.example', NODE_OPTIONS: '--require ./x.js' },
    },
    fields: ['environment.NODE_OPTIONS', 'environment.OUTPUT_S3_ENDPOINT', 'inputKey', 'tenantId'],
    apiFields: ['environment.NODE_OPTIONS', 'environment.OUTPUT_S3_ENDPOINT', 'inputKey', 'tenantId'],
  },
  { name: 'an unknown operation', request: { operation: 'rm-rf-everything', input: {} }, fields: ['operation'] },
  {
    name: "another tenant's key, a key with a bucket, an absolute key",
    request: { operation: 'aggregate-defects', inputKey: 'tenants/other/defects.jsonl', tenantId: 'acme' },
    fields: ['inputKey'],
    apiFields: ['inputKey', 'tenantId'],
  },
  { name: 'an s3:// URL as input key', request: { operation: 'aggregate-defects', inputKey: 's3://other-bucket/defects.jsonl', tenantId: 'acme' }, fields: ['inputKey'], apiFields: ['inputKey', 'tenantId'] },
  { name: 'a key with a NUL byte', request: { operation: 'aggregate-defects', inputKey: 'tenants/acme/a\u0000b.jsonl', tenantId: 'acme' }, fields: ['inputKey'], apiFields: ['inputKey', 'tenantId'] },
  { name: 'AWS credentials, LD_PRELOAD and PATH in the environment', request: { operation: 'aggregate-defects', input: {}, environment: { AWS_SECRET_ACCESS_KEY: 'x', LD_PRELOAD: '/tmp/x.so', PATH: '/tmp' } }, fields: ['environment.AWS_SECRET_ACCESS_KEY', 'environment.LD_PRELOAD', 'environment.PATH'] },
  { name: 'an undeclared variable and a declared one with a bad value', request: { operation: 'aggregate-defects', input: {}, environment: { FOO: '1', LOG_LEVEL: 'trace' } }, fields: ['environment.FOO', 'environment.LOG_LEVEL'] },
  { name: 'a contract name (OUTPUT_S3_KEY) in the environment', request: { operation: 'aggregate-defects', input: {}, environment: { OUTPUT_S3_KEY: 'tenants/other/result.json' } }, fields: ['environment.OUTPUT_S3_KEY'] },
  { name: 'header smuggling with CR/LF in a callback URL', request: { operation: 'aggregate-defects', input: {}, callbackUrl: 'https://hooks.example/done\r\nX-Injected: 1' }, fields: ['callbackUrl'] },
  { name: 'percent-encoded CR/LF in a callback URL', request: { operation: 'aggregate-defects', input: {}, callbackUrl: 'https://hooks.example/done%0d%0aX-Injected:%201' }, fields: ['callbackUrl'] },
  { name: 'userinfo in a callback URL', request: { operation: 'aggregate-defects', input: {}, callbackUrl: 'https://user:secret@hooks.example/done' }, fields: ['callbackUrl'] },
  { name: 'a plain http callback URL', request: { operation: 'aggregate-defects', input: {}, callbackUrl: 'http://hooks.example/done' }, fields: ['callbackUrl'] },
  { name: 'a Cyrillic look-alike tenant id', request: { operation: 'aggregate-defects', input: {}, tenantId: '\u0430cme' }, fields: ['tenantId'], apiFields: ['tenantId'] },
  { name: 'a full-width look-alike tenant id', request: { operation: 'aggregate-defects', input: {}, tenantId: '\uff41cme' }, fields: ['tenantId'], apiFields: ['tenantId'] },
  { name: 'an oversize config', request: { operation: 'transform-records', input: {}, operationConfig: { set: { blob: 'x'.repeat(5000) } } }, fields: ['operationConfig'] },
  { name: "a config the operation's schema refuses", request: { operation: 'transform-records', input: {}, operationConfig: { rename: 'everything' } }, fields: ['operationConfig.rename'] },
  {
    name: '__proto__ in the environment',
    request: parsed('{"operation":"aggregate-defects","input":{},"environment":{"__proto__":{"NODE_OPTIONS":"--require /tmp/x.js"}}}'),
    fields: ['environment.__proto__'],
  },
  {
    name: '__proto__ in the config',
    request: parsed('{"operation":"transform-records","input":{},"operationConfig":{"set":{"__proto__":{"polluted":true}}}}'),
    fields: ['operationConfig.set.__proto__'],
  },
];

function fieldsOf(errors: readonly FieldError[]): string[] {
  return [...new Set(errors.map((e) => e.field))].sort();
}

/** Each refusal names the field, shows the value (cut to a bounded size) and says what is allowed. */
function expectClearErrors(name: string, errors: readonly FieldError[], expected: readonly string[]): void {
  expect([name, fieldsOf(errors)]).toEqual([name, expect.arrayContaining([...expected].sort())]);
  for (const field of expected) {
    const e = errors.find((x) => x.field === field)!;
    expect([name, field, e.message.length < 1000, /allowed|must|expected|Unrecognized/i.test(e.message)]).toEqual([name, field, true, true]);
  }
}

function apiEvent(body: unknown, headers: Record<string, string> = {}): APIGatewayProxyEvent {
  return {
    body: JSON.stringify(body),
    headers,
    pathParameters: null,
    requestContext: { identity: { userArn: 'arn:aws:sts::111111111111:assumed-role/Acme/s1', apiKeyId: null } },
  } as unknown as APIGatewayProxyEvent;
}

/** The API takes no tenantId or inputKey from the body; strip them to try the rest of the attack. */
function apiBody(request: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = { ...request };
  if (body.input === undefined && body.inputKey !== undefined) body.input = {};
  return body;
}

let sqs: SQSClient;
let stamp = 0;

async function queuePair(): Promise<{ source: string; dlq: string }> {
  const id = `${Date.now().toString(36)}-${stamp++}`;
  return {
    source: (await sqs.send(new CreateQueueCommand({ QueueName: `policy-src-${id}` }))).QueueUrl!,
    dlq: (await sqs.send(new CreateQueueCommand({ QueueName: `policy-dlq-${id}` }))).QueueUrl!,
  };
}

async function receive(queueUrl: string): Promise<SQSRecord[]> {
  const records: SQSRecord[] = [];
  for (;;) {
    const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'] }));
    if (!res.Messages?.length) return records;
    for (const msg of res.Messages) {
      records.push({
        messageId: msg.MessageId!,
        receiptHandle: msg.ReceiptHandle!,
        body: msg.Body!,
        attributes: msg.Attributes ?? {},
        messageAttributes: Object.fromEntries(Object.entries(msg.MessageAttributes ?? {}).map(([k, v]) => [k, { stringValue: v.StringValue, dataType: v.DataType }])),
        md5OfBody: msg.MD5OfBody!,
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:source',
        awsRegion: 'us-east-1',
      } as unknown as SQSRecord);
    }
  }
}

/** Sends the bodies to a fresh source queue, runs the handler on what SQS delivers, returns outcomes and DLQ records. */
async function throughQueue(client: BatchJobClient, bodies: readonly string[]): Promise<{ outcomes: RecordOutcome[]; dead: SQSRecord[] }> {
  const { source, dlq } = await queuePair();
  for (const body of bodies) await sqs.send(new SendMessageCommand({ QueueUrl: source, MessageBody: body }));
  const outcomes: RecordOutcome[] = [];
  // One message per batch, in order, so conflict tests see the first message submitted first.
  for (const record of await receive(source)) {
    outcomes.push(...(await handleRecords([record], { client, sqs, deadLetterQueueUrl: dlq, maxReceiveCount: 3, concurrency: 1 })).outcomes);
  }
  return { outcomes, dead: await receive(dlq) };
}

beforeAll(() => {
  sqs = new SQSClient(motoClientConfig());
});

describe('every attack is refused and leaves nothing in Batch or S3', () => {
  test('through the SDK', async () => {
    const m = await createMotoBatch('policy-sdk');
    const client = clientFor(m);
    for (const attack of ATTACKS) {
      const err = await client.submit(attack.request as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect([attack.name, err]).toEqual([attack.name, expect.any(InvalidRequestError)]);
      expectClearErrors(attack.name, (err as InvalidRequestError).errors, attack.fields);
    }
    expect(batchJobs(m)).toEqual([]);
    expect(s3Keys(m)).toEqual([]);
  }, 120_000);

  test('through the submit API (400 with every field)', async () => {
    const m = await createMotoBatch('policy-api');
    const client = clientFor(m);
    for (const attack of ATTACKS) {
      const res = await submitJob(apiEvent(apiBody(attack.request)), client);
      expect([attack.name, res.statusCode]).toEqual([attack.name, 400]);
      const { errors } = JSON.parse(res.body) as { errors: FieldError[] };
      expect([attack.name, fieldsOf(errors)]).toEqual([attack.name, expect.arrayContaining([...(attack.apiFields ?? attack.fields)].sort())]);
    }
    expect(batchJobs(m)).toEqual([]);
    expect(s3Keys(m)).toEqual([]);
  }, 120_000);

  test('through the queue (DLQ with the reason)', async () => {
    const m = await createMotoBatch('policy-queue');
    const bodies = ATTACKS.map((a) => JSON.stringify(a.request));
    const { outcomes, dead } = await throughQueue(clientFor(m), bodies);
    expect(outcomes.map((o) => o.outcome)).toEqual(ATTACKS.map(() => 'dead-lettered'));
    expect(dead).toHaveLength(ATTACKS.length);
    for (const attack of ATTACKS) {
      const record = dead.find((d) => d.body === JSON.stringify(attack.request))!;
      const reason = record.messageAttributes['failure-reason'].stringValue!;
      for (const field of attack.fields) expect([attack.name, reason]).toEqual([attack.name, expect.stringContaining(`${field}:`)]);
    }
    const traversal = dead.find((d) => d.body.includes('etc/passwd'))!.messageAttributes['failure-reason'].stringValue!;
    expect(traversal).toMatch(/inputKey: "..\/..\/etc\/passwd" is not allowed; allowed: .*no \. or \.\. segments/);
    expect(traversal).toMatch(/environment\.NODE_OPTIONS: .*never NODE_\*/);
    expect(batchJobs(m)).toEqual([]);
    expect(s3Keys(m)).toEqual([]);
  }, 120_000);
});

describe('a chosen job id that exists is a conflict, never an overwrite', () => {
  test('SDK: JobIdConflictError; inputs.json keeps the first input; one Batch job', async () => {
    const m = await createMotoBatch('policy-dup-sdk');
    const client = clientFor(m);
    const first = await client.submit({ operation: 'aggregate-defects', input: { n: 1 }, jobId: 'dup1' });
    const err = await client.submit({ operation: 'aggregate-defects', input: { n: 2 }, jobId: 'dup1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobIdConflictError);
    expect(err).toMatchObject({ jobId: 'dup1', exitCode: 6 });
    expect(JSON.parse(s3Text(m, 'jobs/dup1/inputs.json'))).toEqual({ n: 1 });
    expect(batchJobs(m).map((j) => j.jobId)).toEqual([first.batchJobId]);
  }, 60_000);

  test('CLI: `batchctl submit --job-id` twice exits 6 (conflict) the second time', async () => {
    const m = await createMotoBatch('policy-dup-cli');
    const run = async (args: string[]) => {
      const err: string[] = [];
      const code = await runCli(['--queue', m.jobQueue, '--job-definition', m.jobDefinition, '--input-bucket', m.bucket, ...args], {
        stdout: { write: () => true },
        stderr: { write: (s: string) => err.push(s) },
        env: {},
        isTTY: false,
        clientOptions: { clients: { batch: m.batch, s3: m.s3, logs: m.logs }, fairShare: false },
      });
      return { code, stderr: err.join('') };
    };
    expect((await run(['submit', '--operation', 'aggregate-defects', '--input-json', '{"n":1}', '--job-id', 'dup1'])).code).toBe(0);
    const second = await run(['submit', '--operation', 'aggregate-defects', '--input-json', '{"n":2}', '--job-id', 'dup1']);
    expect(second.code).toBe(6);
    expect(second.stderr).toMatch(/job id dup1 is already taken/);
    expect(JSON.parse(s3Text(m, 'jobs/dup1/inputs.json'))).toEqual({ n: 1 });
    expect(batchJobs(m)).toHaveLength(1);
  }, 60_000);

  test('submit API: 409 JobIdConflict', async () => {
    const m = await createMotoBatch('policy-dup-api');
    const client = clientFor(m);
    expect((await submitJob(apiEvent({ operation: 'aggregate-defects', input: { n: 1 }, jobId: 'dup2' }), client)).statusCode).toBe(202);
    const res = await submitJob(apiEvent({ operation: 'aggregate-defects', input: { n: 2 }, jobId: 'dup2' }), client);
    expect(res.statusCode).toBe(409);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'JobIdConflict', jobId: 'dup2' });
    expect(JSON.parse(s3Text(m, 'jobs/dup2/inputs.json'))).toEqual({ n: 1 });
    expect(batchJobs(m)).toHaveLength(1);
  }, 60_000);

  test('queue: the second message goes to the DLQ with the conflict', async () => {
    const m = await createMotoBatch('policy-dup-queue');
    const { outcomes, dead } = await throughQueue(clientFor(m), [
      JSON.stringify({ operation: 'aggregate-defects', input: { n: 1 }, jobId: 'dup3', clientToken: 'a' }),
      JSON.stringify({ operation: 'aggregate-defects', input: { n: 2 }, jobId: 'dup3', clientToken: 'b' }),
    ]);
    expect(outcomes.map((o) => o.outcome)).toEqual(['submitted', 'dead-lettered']);
    expect(dead[0].messageAttributes['failure-reason'].stringValue).toMatch(/^conflict: job id dup3 is already taken/);
    expect(JSON.parse(s3Text(m, 'jobs/dup3/inputs.json'))).toEqual({ n: 1 });
    expect(batchJobs(m)).toHaveLength(1);
  }, 60_000);
});

describe('the same idempotency key with another payload is a conflict naming the original job', () => {
  test('SDK: IdempotencyConflictError; the same payload still returns the original job', async () => {
    const m = await createMotoBatch('policy-idem-sdk');
    const client = clientFor(m);
    const first = await client.submit({ operation: 'aggregate-defects', input: { n: 1 }, clientToken: 'k1' });
    const err = await client.submit({ operation: 'aggregate-defects', input: { n: 2 }, clientToken: 'k1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdempotencyConflictError);
    expect(err).toMatchObject({ jobId: first.jobId, exitCode: 6 });
    const again = await client.submit({ operation: 'aggregate-defects', input: { n: 1 }, clientToken: 'k1' });
    expect(again).toMatchObject({ created: false, jobId: first.jobId, batchJobId: first.batchJobId });
    expect(JSON.parse(s3Text(m, `jobs/${first.jobId}/inputs.json`))).toEqual({ n: 1 });
    expect(batchJobs(m)).toHaveLength(1);
  }, 60_000);

  test('submit API: 409 IdempotencyConflict with the original job id; the same body gets 200', async () => {
    const m = await createMotoBatch('policy-idem-api');
    const client = clientFor(m);
    const headers = { 'Idempotency-Key': 'k-1' };
    const first = await submitJob(apiEvent({ operation: 'aggregate-defects', input: { n: 1 } }, headers), client);
    expect(first.statusCode).toBe(202);
    const { jobId } = JSON.parse(first.body) as { jobId: string };
    const other = await submitJob(apiEvent({ operation: 'aggregate-defects', input: { n: 2 } }, headers), client);
    expect(other.statusCode).toBe(409);
    expect(JSON.parse(other.body)).toMatchObject({ error: 'IdempotencyConflict', jobId });
    const same = await submitJob(apiEvent({ operation: 'aggregate-defects', input: { n: 1 } }, headers), client);
    expect(same.statusCode).toBe(200);
    expect(JSON.parse(same.body)).toMatchObject({ jobId, status: 'ALREADY_SUBMITTED' });
    expect(batchJobs(m)).toHaveLength(1);
  }, 60_000);

  test('queue: a reused clientToken with another payload goes to the DLQ naming the original job', async () => {
    const m = await createMotoBatch('policy-idem-queue');
    const { outcomes, dead } = await throughQueue(clientFor(m), [
      JSON.stringify({ operation: 'aggregate-defects', input: { n: 1 }, clientToken: 'order-7' }),
      JSON.stringify({ operation: 'aggregate-defects', input: { n: 2 }, clientToken: 'order-7' }),
      JSON.stringify({ operation: 'aggregate-defects', input: { n: 1 }, clientToken: 'order-7' }),
    ]);
    expect(outcomes.map((o) => o.outcome)).toEqual(['submitted', 'dead-lettered', 'duplicate']);
    expect(dead[0].messageAttributes['failure-reason'].stringValue).toContain(`conflict: the client token was already used for job ${outcomes[0].jobId}`);
    expect(batchJobs(m)).toHaveLength(1);
  }, 60_000);
});

describe('a submission whose SubmitJob fails leaves no staged input', () => {
  // A job definition Batch does not know: SubmitJob answers a ClientException after the input was staged.
  test('SDK', async () => {
    const m = await createMotoBatch('policy-fail-sdk');
    const err = await clientFor(m, 'no-such-definition').submit({ operation: 'aggregate-defects', input: { n: 1 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(batchJobs(m)).toEqual([]);
    expect(s3Keys(m)).toEqual([]);
  }, 60_000);

  test('SDK with a client token and a chosen job id: neither input nor lock is left, so a retry can succeed', async () => {
    const m = await createMotoBatch('policy-fail-token');
    const failing = clientFor(m, 'no-such-definition');
    await expect(failing.submit({ operation: 'aggregate-defects', input: {}, clientToken: 't' })).rejects.toThrow(InvalidRequestError);
    await expect(failing.submit({ operation: 'aggregate-defects', input: {}, jobId: 'mine' })).rejects.toThrow(InvalidRequestError);
    expect(s3Keys(m)).toEqual([]);
    const retried = await clientFor(m).submit({ operation: 'aggregate-defects', input: {}, jobId: 'mine' });
    expect(retried.created).toBe(true);
  }, 60_000);

  test('submit API', async () => {
    const m = await createMotoBatch('policy-fail-api');
    const res = await submitJob(apiEvent({ operation: 'aggregate-defects', input: { n: 1 } }), clientFor(m, 'no-such-definition'));
    expect(res.statusCode).toBe(400);
    expect(batchJobs(m)).toEqual([]);
    expect(s3Keys(m)).toEqual([]);
  }, 60_000);

  test('queue', async () => {
    const m = await createMotoBatch('policy-fail-queue');
    const { outcomes } = await throughQueue(clientFor(m, 'no-such-definition'), [JSON.stringify({ operation: 'aggregate-defects', input: { n: 1 } })]);
    expect(outcomes.map((o) => o.outcome)).toEqual(['dead-lettered']);
    expect(batchJobs(m)).toEqual([]);
    expect(s3Keys(m)).toEqual([]);
  }, 60_000);
});
