import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CompletionRecord, DynamoCompletionStore } from '../../../lambda/webhook/completion-store';
import { createWebhookHandler, defaultConfirmSubscription, WebhookDeps } from '../../../lambda/webhook/index';
import { loadPathSecret } from '../../../lambda/webhook/path-secret';
import { fetchCertificate } from '../../../lambda/webhook/sns-signature';
import { motoClientConfig } from '../../support/moto';
import { TestSigner } from './sns-signer';
import { createWebhookFixture, TEST_PATH_SECRET, TEST_TOPIC_ARN } from './webhook-fixture';

/**
 * The attacks of issue 10 against the webhook, with real parts: the secret comes from moto's Secrets
 * Manager, completions go to moto's DynamoDB, certificates and SubscribeURLs are served by local HTTP
 * servers that count what they were asked for (the SNS URLs of a message are mapped onto them).
 */
const TABLE = 'webhook-attacks-completions';
const REAL_CERT_PATH = '/SimpleNotificationService-0000000000000000000000.pem';
const HUGE = 5 * 1024 * 1024;

let signer: TestSigner;
let ddb: DynamoDBClient;
let secret: string;
let server: http.Server;
let base: string;
const hits: string[] = [];
const logs: string[] = [];
let storeCalls = 0;

beforeAll(async () => {
  ({ signer, ddb } = await createWebhookFixture(TABLE));
  const sm = new SecretsManagerClient(motoClientConfig());
  await sm.send(new CreateSecretCommand({ Name: 'webhook-attacks-path-secret', SecretString: TEST_PATH_SECRET }));
  secret = await loadPathSecret(sm, 'webhook-attacks-path-secret');
  server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    hits.push(path);
    if (path === REAL_CERT_PATH) return res.end(signer.certPem);
    if (path === '/') return res.end('<ConfirmSubscriptionResponse/>');
    if (path === '/huge-declared.pem') {
      res.writeHead(200, { 'content-length': String(HUGE) });
      return res.end(Buffer.alloc(HUGE, 'A'));
    }
    if (path === '/huge-chunked.pem') {
      // No Content-Length: the fetcher must stop reading at its bound by itself.
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      const chunk = Buffer.alloc(64 * 1024, 'A');
      let sent = 0;
      const pump = (): void => {
        while (sent < HUGE) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => undefined);
      return pump();
    }
    if (path === '/silent.pem') return; // never answers
    res.statusCode = 404;
    res.end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  signer.cleanup();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  hits.length = 0;
  logs.length = 0;
  storeCalls = 0;
});

const local = (snsUrl: string): string => {
  const u = new URL(snsUrl);
  return `${base}${u.pathname}${u.search}`;
};

function deps(overrides: Partial<WebhookDeps> = {}): WebhookDeps {
  const real = new DynamoCompletionStore(ddb, TABLE);
  return {
    pathSecret: secret,
    store: { record: (rec: CompletionRecord) => ((storeCalls += 1), real.record(rec)) },
    fetchCertificate: (url) => fetchCertificate(local(url)),
    confirmSubscription: (url) => defaultConfirmSubscription(local(url)),
    allowedTopicArns: [TEST_TOPIC_ARN],
    sink: (line) => logs.push(line),
    ...overrides,
  };
}

function event(body: string, extra: Partial<APIGatewayProxyEvent> = {}): APIGatewayProxyEvent {
  return { httpMethod: 'POST', pathParameters: { secret }, body, isBase64Encoded: false, headers: {}, ...extra } as unknown as APIGatewayProxyEvent;
}

let n = 0;
function notification(jobId: string, extra: Record<string, string> = {}): Record<string, string> {
  n += 1;
  return {
    Type: 'Notification',
    MessageId: `attack-${n}`,
    TopicArn: TEST_TOPIC_ARN,
    Message: JSON.stringify({ jobId, status: 'SUCCEEDED' }),
    Timestamp: new Date().toISOString(),
    ...extra,
  };
}

async function itemCount(): Promise<number> {
  return (await ddb.send(new ScanCommand({ TableName: TABLE }))).Count ?? 0;
}

describe('the path secret is checked before any other work', () => {
  test.each([
    ['a wrong secret', { pathParameters: { secret: 'x'.repeat(48) } }],
    ['no secret', { pathParameters: null }],
    ['the secret in another case', { pathParameters: { secret: TEST_PATH_SECRET.toLowerCase() } }],
    ['the secret with a suffix', { pathParameters: { secret: `${TEST_PATH_SECRET}/` } }],
    ['the secret as a prefix only', { pathParameters: { secret: TEST_PATH_SECRET.slice(0, -1) } }],
    ['the secret in the query string instead', { pathParameters: null, queryStringParameters: { secret: TEST_PATH_SECRET } }],
    ['the secret in a header instead', { pathParameters: null, headers: { secret: TEST_PATH_SECRET, authorization: `Bearer ${TEST_PATH_SECRET}` } }],
    ['an inherited "secret" key', { pathParameters: Object.create({ secret: TEST_PATH_SECRET }) }],
  ])('%s: 403, no certificate fetched, nothing parsed, no DynamoDB call', async (_name, extra) => {
    const before = await itemCount();
    const handler = createWebhookHandler(deps());
    // A signed, valid message: only the secret may stop it. And a body that is not JSON: 403, not 400.
    for (const body of [JSON.stringify(signer.sign(notification('job-nosecret'), '2', `https://sns.eu-central-1.amazonaws.com${REAL_CERT_PATH}`)), '{not json']) {
      const res = await handler(event(body, extra as Partial<APIGatewayProxyEvent>));
      expect(res.statusCode).toBe(403);
      expect(JSON.parse(res.body)).toEqual({ error: 'forbidden' });
    }
    expect(hits).toEqual([]);
    expect(storeCalls).toBe(0);
    expect(await itemCount()).toBe(before);
    expect(logs.join('\n')).not.toContain(TEST_PATH_SECRET.slice(0, 16));
  });

  test('with the secret the same message is recorded (the control)', async () => {
    const res = await createWebhookHandler(deps())(event(JSON.stringify(signer.sign(notification('job-control'), '2', `https://sns.eu-central-1.amazonaws.com${REAL_CERT_PATH}`))));
    expect(res.statusCode).toBe(200);
    expect(storeCalls).toBe(1);
    expect(hits).toEqual([REAL_CERT_PATH]);
  });
});

describe('attacker-sized fields are logged bounded', () => {
  test('a 5 MB MessageId: 413 before parsing, and a short log line', async () => {
    const body = JSON.stringify({ ...notification('job-5mb'), MessageId: 'M'.repeat(HUGE) });
    const res = await createWebhookHandler(deps())(event(body));
    expect(res.statusCode).toBe(413);
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) expect(line.length).toBeLessThan(2048);
  });

  test('a 5 MB MessageId in a base64 body: 413 as well', async () => {
    const body = Buffer.from(JSON.stringify({ ...notification('job-5mb64'), MessageId: 'M'.repeat(HUGE) })).toString('base64');
    const res = await createWebhookHandler(deps())(event(body, { isBase64Encoded: true }));
    expect(res.statusCode).toBe(413);
    for (const line of logs) expect(line.length).toBeLessThan(2048);
  });

  test('a 900 KB MessageId and TopicArn under the body bound: 403, every field cut, no certificate fetched', async () => {
    const big = 'M'.repeat(900 * 1024);
    const res = await createWebhookHandler(deps())(event(JSON.stringify({ ...notification('job-900k'), MessageId: big, TopicArn: `arn:${'T'.repeat(50_000)}` })));
    expect(res.statusCode).toBe(403);
    expect(logs).toHaveLength(1);
    expect(logs[0].length).toBeLessThan(2048);
    expect(logs[0]).toContain(`(+${big.length - 256} chars)`);
    expect(hits).toEqual([]);
  });
});

describe('own keys only', () => {
  test.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'])('SignatureVersion %j is a 403 without an error log', async (version) => {
    const msg = { ...signer.sign(notification('job-proto'), '2', `https://sns.eu-central-1.amazonaws.com${REAL_CERT_PATH}`), SignatureVersion: version };
    const res = await createWebhookHandler(deps())(event(JSON.stringify(msg)));
    expect(res.statusCode).toBe(403);
    expect(logs.map((l) => JSON.parse(l).level)).toEqual(['warn']);
    expect(JSON.parse(logs[0]).reason).toMatch(/SignatureVersion .* is not accepted; allowed: 2/);
  });

  test('a body with "__proto__" and "constructor" keys neither verifies nor pollutes Object.prototype', async () => {
    const body = `{"__proto__":{"polluted":"yes","Type":"Notification"},"constructor":{"prototype":{"polluted":"yes"}},"TopicArn":"${TEST_TOPIC_ARN}"}`;
    const res = await createWebhookHandler(deps())(event(body));
    expect(res.statusCode).toBe(403);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.parse(logs[0]).reason).toMatch(/^Type undefined is not one of/);
  });

  test('SignatureVersion 1 is refused by default even when correctly signed', async () => {
    const res = await createWebhookHandler(deps())(event(JSON.stringify(signer.sign(notification('job-sha1'), '1', `https://sns.eu-central-1.amazonaws.com${REAL_CERT_PATH}`))));
    expect(res.statusCode).toBe(403);
    expect(hits).toEqual([]);
  });
});

describe('Timestamp window', () => {
  const confirmation = (timestamp: string): Record<string, string> =>
    signer.sign(
      {
        Type: 'SubscriptionConfirmation',
        MessageId: `confirm-${timestamp}`,
        Token: 'tok',
        TopicArn: TEST_TOPIC_ARN,
        Message: 'You have chosen to subscribe to the topic',
        SubscribeURL: `https://sns.eu-central-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${TEST_TOPIC_ARN}&Token=tok`,
        Timestamp: timestamp,
      },
      '2',
      `https://sns.eu-central-1.amazonaws.com${REAL_CERT_PATH}`,
    );

  test('a replayed SubscriptionConfirmation two hours old is refused without fetching its SubscribeURL or a certificate', async () => {
    const res = await createWebhookHandler(deps())(event(JSON.stringify(confirmation(new Date(Date.now() - 2 * 3600_000).toISOString()))));
    expect(res.statusCode).toBe(403);
    expect(hits).toEqual([]);
    expect(JSON.parse(logs[0]).reason).toMatch(/older than 3600 s/);
  });

  test('a fresh SubscriptionConfirmation is confirmed with one GET of its SubscribeURL (the control)', async () => {
    const res = await createWebhookHandler(deps())(event(JSON.stringify(confirmation(new Date().toISOString()))));
    expect(res.statusCode).toBe(200);
    expect(hits).toEqual([REAL_CERT_PATH, '/']);
  });

  test('the confirmation window is configurable', async () => {
    const handler = createWebhookHandler(deps({ confirmationMaxAgeMs: 60_000 }));
    expect((await handler(event(JSON.stringify(confirmation(new Date(Date.now() - 5 * 60_000).toISOString()))))).statusCode).toBe(403);
    expect(hits).toEqual([]);
  });

  test.each([
    ['a Timestamp an hour in the future', new Date(Date.now() + 3600_000).toISOString()],
    ['a Timestamp that is not ISO 8601 UTC', 'Tue, 26 Nov 2026 01:00:00 GMT'],
    ['a Timestamp with an offset', '2026-11-26T01:00:00+01:00'],
  ])('%s is refused', async (_name, timestamp) => {
    const res = await createWebhookHandler(deps())(event(JSON.stringify(confirmation(timestamp))));
    expect(res.statusCode).toBe(403);
    expect(hits).toEqual([]);
  });

  test('a notification older than its 24 h window is refused and not recorded', async () => {
    const msg = signer.sign(notification('job-old', { Timestamp: new Date(Date.now() - 25 * 3600_000).toISOString() }), '2', `https://sns.eu-central-1.amazonaws.com${REAL_CERT_PATH}`);
    expect((await createWebhookHandler(deps())(event(JSON.stringify(msg)))).statusCode).toBe(403);
    expect(storeCalls).toBe(0);
  });
});

describe('certificate fetches', () => {
  test('an invented .pem path sent 20 times costs one GET within the window', async () => {
    const handler = createWebhookHandler(deps());
    const invented = 'https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-invented.pem';
    const statuses: number[] = [];
    for (let i = 0; i < 20; i += 1) statuses.push((await handler(event(JSON.stringify(signer.sign(notification(`job-inv-${i}`), '2', invented))))).statusCode);
    expect(statuses).toEqual(Array(20).fill(502));
    expect(hits).toEqual(['/SimpleNotificationService-invented.pem']);
  });

  test('concurrent requests for one invented path share one GET, and the window ends', async () => {
    let clock = Date.now();
    const handler = createWebhookHandler(deps({ now: () => new Date(clock), failedCertificateFetchTtlMs: 60_000 }));
    const invented = 'https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-concurrent.pem';
    await Promise.all(Array.from({ length: 10 }, (_, i) => handler(event(JSON.stringify(signer.sign(notification(`job-conc-${i}`), '2', invented))))));
    expect(hits).toHaveLength(1);
    clock += 61_000;
    await handler(event(JSON.stringify(signer.sign(notification('job-conc-late', { Timestamp: new Date(clock).toISOString() }), '2', invented))));
    expect(hits).toHaveLength(2);
  });

  test('a response declaring 5 MB is refused before its body is read', async () => {
    await expect(fetchCertificate(`${base}/huge-declared.pem`)).rejects.toThrow(/declares 5242880 bytes; a certificate may have at most 16384/);
  });

  test('a 5 MB response without Content-Length is cut at the bound', async () => {
    await expect(fetchCertificate(`${base}/huge-chunked.pem`)).rejects.toThrow(/sent more than 16384 bytes/);
  });

  test('an oversize certificate answers 502 through the handler and is not fetched again within the window', async () => {
    const handler = createWebhookHandler(deps());
    const url = 'https://sns.eu-central-1.amazonaws.com/huge-chunked.pem';
    for (let i = 0; i < 3; i += 1) expect((await handler(event(JSON.stringify(signer.sign(notification(`job-huge-${i}`), '2', url))))).statusCode).toBe(502);
    expect(hits).toEqual(['/huge-chunked.pem']);
    for (const line of logs) expect(line.length).toBeLessThan(2048);
  });

  test('a server that never answers is given up after the timeout', async () => {
    await expect(fetchCertificate(`${base}/silent.pem`, { timeoutMs: 300 })).rejects.toThrow(/timed out/);
  });
});

describe('header tricks', () => {
  const signed = (): Record<string, string> => signer.sign(notification('job-hdr'), '2', `https://sns.eu-central-1.amazonaws.com${REAL_CERT_PATH}`);

  test.each<[string, (m: Record<string, string>) => Partial<APIGatewayProxyEvent>]>([
    ['the message type header twice in different case with different values', () => ({ headers: { 'x-amz-sns-message-type': 'Notification', 'X-Amz-Sns-Message-Type': 'SubscriptionConfirmation' } })],
    ['the message type header with two values', () => ({ multiValueHeaders: { 'x-amz-sns-message-type': ['Notification', 'SubscriptionConfirmation'] } })],
    ['a topic header that differs from the body', () => ({ headers: { 'x-amz-sns-topic-arn': 'arn:aws:sns:eu-central-1:999999999999:other' } })],
    ['a message id header that differs from the body', (m) => ({ headers: { 'x-amz-sns-message-id': `${m.MessageId}\r\nx-injected: 1` } })],
  ])('%s: 403, no certificate fetched', async (_name, extra) => {
    const msg = signed();
    const res = await createWebhookHandler(deps())(event(JSON.stringify(msg), extra(msg)));
    expect(res.statusCode).toBe(403);
    expect(hits).toEqual([]);
    expect(storeCalls).toBe(0);
  });

  test('consistent headers in any case are accepted (the control)', async () => {
    const msg = signed();
    const res = await createWebhookHandler(deps())(
      event(JSON.stringify(msg), { headers: { 'X-Amz-Sns-Message-Type': 'Notification', 'x-amz-sns-topic-arn': TEST_TOPIC_ARN }, multiValueHeaders: { 'x-amz-sns-message-id': [msg.MessageId] } }),
    );
    expect(res.statusCode).toBe(200);
  });

  test('a base64 flag on a body that is not base64 JSON: 400', async () => {
    expect((await createWebhookHandler(deps())(event('%%%not-base64%%%', { isBase64Encoded: true }))).statusCode).toBe(400);
  });
});
