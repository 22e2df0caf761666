import type { APIGatewayProxyEvent } from 'aws-lambda';
import { DynamoDBClient, GetItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DynamoCompletionStore } from '../../../lambda/webhook/completion-store';
import { createWebhookHandler, WebhookDeps } from '../../../lambda/webhook/index';
import { TestSigner } from './sns-signer';
import { createWebhookFixture, TEST_PATH_SECRET, TEST_TOPIC_ARN } from './webhook-fixture';

const TABLE = 'webhook-handler-test-completions';
const TOPIC = TEST_TOPIC_ARN;
const SUBSCRIBE_URL = 'https://sns.eu-central-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=abc';

let signer: TestSigner;
let ddb: DynamoDBClient;
const certRequests: string[] = [];
const confirmed: string[] = [];

function deps(overrides: Partial<WebhookDeps> = {}): WebhookDeps {
  return {
    pathSecret: TEST_PATH_SECRET,
    store: new DynamoCompletionStore(ddb, TABLE),
    // Serves the throwaway certificate for ANY url: only the handler's own checks keep foreign hosts out.
    fetchCertificate: async (url) => {
      certRequests.push(url);
      return signer.certPem;
    },
    confirmSubscription: async (url) => {
      confirmed.push(url);
    },
    allowedTopicArns: [TOPIC],
    outputBucket: 'staging-bucket',
    sink: () => undefined,
    ...overrides,
  };
}

function request(body: unknown, raw = false): APIGatewayProxyEvent {
  return {
    httpMethod: 'POST',
    pathParameters: { secret: TEST_PATH_SECRET },
    body: raw ? (body as string) : JSON.stringify(body),
    isBase64Encoded: false,
    headers: {},
  } as unknown as APIGatewayProxyEvent;
}

let counter = 0;
function notification(jobId: string, status = 'SUCCEEDED', extra: Record<string, string> = {}, timestamp = new Date().toISOString()): Record<string, string> {
  counter += 1;
  return {
    Type: 'Notification',
    MessageId: `msg-${counter}-${jobId}`,
    TopicArn: TOPIC,
    Subject: 'Batch job state change',
    Message: JSON.stringify({ jobId, jobName: 'road-defects', jobQueue: 'arn:aws:batch:eu-central-1:123456789012:job-queue/q', status, statusReason: 'Essential container in task exited', exitCode: status === 'FAILED' ? 1 : 0, tenantId: 'tenant-a', stoppedAt: 1641944500058 }),
    Timestamp: timestamp,
    ...extra,
  };
}

function confirmation(): Record<string, string> {
  return {
    Type: 'SubscriptionConfirmation',
    MessageId: 'confirm-1',
    Token: 'abc',
    TopicArn: TOPIC,
    Message: 'You have chosen to subscribe to the topic',
    SubscribeURL: SUBSCRIBE_URL,
    Timestamp: new Date().toISOString(),
  };
}

async function item(jobId: string, status: string): Promise<Record<string, unknown> | undefined> {
  const res = await ddb.send(new GetItemCommand({ TableName: TABLE, Key: { jobId: { S: jobId }, status: { S: status } } }));
  return res.Item;
}

beforeAll(async () => {
  ({ signer, ddb } = await createWebhookFixture(TABLE));
});

afterAll(() => signer.cleanup());

describe('accepts', () => {
  test('a SignatureVersion 2 (SHA256) notification and records status and result location', async () => {
    const res = await createWebhookHandler(deps())(request(signer.sign(notification('job-v2'), '2')));
    expect(res.statusCode).toBe(200);
    const rec = await item('job-v2', 'SUCCEEDED');
    expect(rec?.resultLocation).toEqual({ S: 's3://staging-bucket/jobs/job-v2/output/' });
    expect(rec?.tenantId).toEqual({ S: 'tenant-a' });
    expect(rec?.exitCode).toEqual({ N: '0' });
  });

  test('a SignatureVersion 1 (SHA1) notification when version 1 is allowed', async () => {
    const res = await createWebhookHandler(deps({ signatureVersions: ['1', '2'] }))(request(signer.sign(notification('job-v1', 'FAILED'), '1')));
    expect(res.statusCode).toBe(200);
    expect((await item('job-v1', 'FAILED'))?.exitCode).toEqual({ N: '1' });
  });

  test('a notification without Subject (Subject is then not part of the signed string)', async () => {
    const { Subject: _omit, ...fields } = notification('job-nosubject');
    const res = await createWebhookHandler(deps())(request(signer.sign(fields)));
    expect(res.statusCode).toBe(200);
    expect(await item('job-nosubject', 'SUCCEEDED')).toBeDefined();
  });

  test('a base64-encoded request body', async () => {
    const body = Buffer.from(JSON.stringify(signer.sign(notification('job-b64')))).toString('base64');
    const res = await createWebhookHandler(deps())({ ...request(''), body, isBase64Encoded: true });
    expect(res.statusCode).toBe(200);
    expect(await item('job-b64', 'SUCCEEDED')).toBeDefined();
  });
});

describe('idempotency', () => {
  test('the same message twice leaves one unchanged item and reports the duplicate', async () => {
    const handler = createWebhookHandler(deps({ now: () => new Date() }));
    const msg = signer.sign(notification('job-dup'));
    expect(JSON.parse((await handler(request(msg))).body).outcome).toBe('recorded');
    const first = await item('job-dup', 'SUCCEEDED');
    const later = createWebhookHandler(deps({ now: () => new Date(Date.now() + 30 * 60 * 1000) }));
    const second = await later(request(msg));
    expect(second.statusCode).toBe(200);
    expect(JSON.parse(second.body).outcome).toBe('duplicate');
    expect(await item('job-dup', 'SUCCEEDED')).toEqual(first);
  });

  test('a second message for the same job and status (EventBridge retry, new MessageId) changes nothing', async () => {
    const handler = createWebhookHandler(deps());
    await handler(request(signer.sign(notification('job-retry'))));
    const first = await item('job-retry', 'SUCCEEDED');
    const res = await handler(request(signer.sign(notification('job-retry'))));
    expect(JSON.parse(res.body).outcome).toBe('duplicate');
    expect(await item('job-retry', 'SUCCEEDED')).toEqual(first);
  });
});

describe('rejects with 403', () => {
  const cases: Array<[string, () => Record<string, unknown>]> = [
    ['an unsigned message', () => {
      const { Signature: _s, ...rest } = signer.sign(notification('job-unsigned'));
      return rest;
    }],
    ['a tampered body', () => ({ ...signer.sign(notification('job-tampered')), Message: JSON.stringify({ jobId: 'job-tampered', status: 'SUCCEEDED', exitCode: 0 }) })],
    ['a tampered signature', () => {
      const msg = signer.sign(notification('job-badsig'));
      const sig = Buffer.from(msg.Signature, 'base64');
      sig[10] ^= 0xff;
      return { ...msg, Signature: sig.toString('base64') };
    }],
    ['a certificate on a foreign host', () => signer.sign(notification('job-host'), '2', 'https://sns.eu-central-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem')],
    ['a certificate on a look-alike host', () => signer.sign(notification('job-host2'), '2', 'https://sns-eu-central-1.amazonaws.com/SimpleNotificationService-1.pem')],
    ['a certificate URL over http', () => signer.sign(notification('job-http'), '2', 'http://sns.eu-central-1.amazonaws.com/SimpleNotificationService-1.pem')],
    ['a certificate URL that is not a .pem', () => signer.sign(notification('job-notpem'), '2', 'https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-1.txt')],
    ['a wrong Type', () => signer.sign({ ...notification('job-type'), Type: 'Advertisement' })],
    ['a missing MessageId', () => {
      const { MessageId: _m, ...rest } = notification('job-missing');
      return signer.sign(rest);
    }],
    ['an unknown SignatureVersion', () => ({ ...signer.sign(notification('job-sv')), SignatureVersion: '3' })],
    ['a topic that is not allowed', () => signer.sign(notification('job-topic', 'SUCCEEDED', { TopicArn: 'arn:aws:sns:eu-central-1:999999999999:attacker' }))],
    ['a message signed with another certificate than the one at its URL', () => signer.sign(notification('job-othercert'), '2', 'https://sns.eu-central-1.amazonaws.com/Other.pem')],
  ];

  test.each(cases)('%s, and records nothing', async (_name, build) => {
    const fetchCert = async (url: string): Promise<string> => (url.endsWith('Other.pem') ? signer.otherCertPem : signer.certPem);
    const msg = build();
    const res = await createWebhookHandler(deps({ fetchCertificate: fetchCert }))(request(msg));
    expect(res.statusCode).toBe(403);
    const jobId = JSON.parse(String(msg.Message ?? '{}')).jobId ?? 'none';
    expect(await item(jobId, 'SUCCEEDED')).toBeUndefined();
  });

  test('a message whose certificate has expired', async () => {
    const later = new Date('2100-01-01T00:00:00Z');
    const handler = createWebhookHandler(deps({ now: () => later }));
    const res = await handler(request(signer.sign(notification('job-expired', 'SUCCEEDED', {}, later.toISOString()))));
    expect(res.statusCode).toBe(403);
    expect(await item('job-expired', 'SUCCEEDED')).toBeUndefined();
  });

  test('a message whose certificate is not yet valid', async () => {
    const earlier = new Date('2000-01-01T00:00:00Z');
    const handler = createWebhookHandler(deps({ now: () => earlier }));
    expect((await handler(request(signer.sign(notification('job-early', 'SUCCEEDED', {}, earlier.toISOString()))))).statusCode).toBe(403);
  });

  test('a body Type that differs from the x-amz-sns-message-type header', async () => {
    const event = { ...request(signer.sign(notification('job-header'))), headers: { 'x-amz-sns-message-type': 'SubscriptionConfirmation' } };
    expect((await createWebhookHandler(deps())(event as APIGatewayProxyEvent)).statusCode).toBe(403);
  });
});

describe('rejects with 400', () => {
  test.each([
    ['a body that is not JSON', '{"Type": "Notification"'],
    ['a JSON array', '[1,2]'],
    ['an empty body', ''],
  ])('%s', async (_name, body) => {
    const res = await createWebhookHandler(deps())(request(body, true));
    expect(res.statusCode).toBe(400);
  });
});

describe('subscription confirmation', () => {
  test('confirms a verified SubscriptionConfirmation by fetching its SubscribeURL', async () => {
    confirmed.length = 0;
    const res = await createWebhookHandler(deps())(request(signer.sign(confirmation())));
    expect(res.statusCode).toBe(200);
    expect(confirmed).toEqual([SUBSCRIBE_URL]);
  });

  test('does not confirm when the signature does not verify', async () => {
    confirmed.length = 0;
    const msg = { ...signer.sign(confirmation()), Token: 'forged' };
    expect((await createWebhookHandler(deps())(request(msg))).statusCode).toBe(403);
    expect(confirmed).toEqual([]);
  });

  test('does not confirm a signed SubscribeURL on a foreign host', async () => {
    confirmed.length = 0;
    const msg = signer.sign({ ...confirmation(), SubscribeURL: 'https://attacker.example/confirm' });
    expect((await createWebhookHandler(deps())(request(msg))).statusCode).toBe(403);
    expect(confirmed).toEqual([]);
  });

  test('answers 502 (SNS retries) when the SubscribeURL cannot be fetched', async () => {
    const handler = createWebhookHandler(deps({ confirmSubscription: async () => { throw new Error('connect ETIMEDOUT'); } }));
    expect((await handler(request(signer.sign(confirmation())))).statusCode).toBe(502);
  });

  test('acknowledges an UnsubscribeConfirmation without resubscribing', async () => {
    confirmed.length = 0;
    const res = await createWebhookHandler(deps())(request(signer.sign({ ...confirmation(), Type: 'UnsubscribeConfirmation', MessageId: 'unsub-1' })));
    expect(res.statusCode).toBe(200);
    expect(confirmed).toEqual([]);
  });
});

describe('certificates', () => {
  test('fetches each signing certificate once for many messages', async () => {
    const urls: string[] = [];
    const handler = createWebhookHandler(deps({ fetchCertificate: async (u) => (urls.push(u), signer.certPem) }));
    await Promise.all(['c1', 'c2', 'c3', 'c4'].map((j) => handler(request(signer.sign(notification(`job-cache-${j}`))))));
    expect(urls).toEqual([signer.certUrl]);
  });

  test('answers 502 when the certificate cannot be fetched, serves that failure for the window, then fetches again', async () => {
    let calls = 0;
    let clock = Date.now();
    const handler = createWebhookHandler(deps({
      now: () => new Date(clock),
      failedCertificateFetchTtlMs: 60_000,
      fetchCertificate: async () => {
        calls += 1;
        if (calls === 1) throw new Error('ECONNRESET');
        return signer.certPem;
      },
    }));
    expect((await handler(request(signer.sign(notification('job-fetchfail'))))).statusCode).toBe(502);
    expect((await handler(request(signer.sign(notification('job-fetchfail'))))).statusCode).toBe(502);
    expect(calls).toBe(1);
    clock += 61_000;
    expect((await handler(request(signer.sign(notification('job-fetchfail', 'SUCCEEDED', {}, new Date(clock).toISOString()))))).statusCode).toBe(200);
    expect(calls).toBe(2);
  });
});

test('ignores (200, not stored) a verified notification that is not a job notification', async () => {
  const before = (await ddb.send(new ScanCommand({ TableName: TABLE }))).Count;
  const res = await createWebhookHandler(deps())(request(signer.sign({ ...notification('x'), Message: 'hello' })));
  expect(res.statusCode).toBe(200);
  expect(JSON.parse(res.body).ignored).toBe(true);
  expect((await ddb.send(new ScanCommand({ TableName: TABLE }))).Count).toBe(before);
});

test('refuses to start without an allowed topic', () => {
  expect(() => createWebhookHandler(deps({ allowedTopicArns: [] }))).toThrow(/ALLOWED_TOPIC_ARNS/);
});
