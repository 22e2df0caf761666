import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchClient, DescribeJobsCommand, JobDetail } from '@aws-sdk/client-batch';
import { S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { parseAllowedCidrs } from '../../lib/client/callback';
import { completeJob, CompletionDeps, CompletionResult } from '../../lib/client/completion';
import { retentionDaysFrom } from '../../containers/worker/src/retention';
import { listFromEnv } from '../shared/batch-list';
import { errorMessage, LogSink } from '../shared/log';
import { createBoundedLogger, own, preview } from './bounded';
import { CompletionRecord, CompletionStore, DynamoCompletionStore } from './completion-store';
import { createSecretCheck, loadPathSecret } from './path-secret';
import {
  CertificateCache,
  CertificateFetcher,
  checkSnsUrl,
  fetchCertificate,
  SIGNATURE_VERSIONS,
  SignatureVersion,
  SnsMessage,
  SnsVerificationError,
  verifySnsMessage,
} from './sns-signature';

/**
 * POST /webhooks/batch-complete/{secret}: the HTTPS subscriber of the JobNotifications topic.
 * 403 without the right path secret (checked first, in constant time, before anything else is
 * read); 413 body above the bound; 400 body is not a JSON object; 403 anything that does not verify
 * as a fresh SNS message of an allowed topic; 502 when a certificate or the subscribe URL cannot be
 * fetched (SNS retries); 200 otherwise.
 */
export type SubscriptionConfirmer = (subscribeUrl: string) => Promise<void>;

/** SNS messages are at most 256 KiB; with the JSON envelope and its escaping 1 MiB is ample. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export interface WebhookDeps {
  /** The secret of the subscription URL's last path segment (`{secret}`). */
  readonly pathSecret: string;
  readonly store: CompletionStore;
  readonly fetchCertificate: CertificateFetcher;
  readonly confirmSubscription: SubscriptionConfirmer;
  /** Topics whose messages are accepted: any other topic could be subscribed to this URL by anyone. */
  readonly allowedTopicArns: readonly string[];
  /** Bucket of the staging layout; the result location is `s3://<bucket>/jobs/<jobId>/output/`. */
  readonly outputBucket?: string;
  /** @default ['2'] */
  readonly signatureVersions?: readonly SignatureVersion[];
  /** @default 1 h */
  readonly confirmationMaxAgeMs?: number;
  /** @default 24 h */
  readonly notificationMaxAgeMs?: number;
  /** How long a failed certificate fetch is remembered. @default 60 s */
  readonly failedCertificateFetchTtlMs?: number;
  /** @default 1 MiB */
  readonly maxBodyBytes?: number;
  readonly now?: () => Date;
  readonly sink?: LogSink;
  /**
   * Completion of SUCCEEDED/FAILED jobs: the job's own description (DescribeJobs, never the
   * notification) gives its output and CALLBACK_URL; completeJob records the result and calls it once.
   * @default - status recorded only
   */
  readonly completion?: {
    readonly deps: CompletionDeps;
    readonly describe: (batchJobId: string) => Promise<JobDetail | undefined>;
  };
}

export async function defaultConfirmSubscription(subscribeUrl: string): Promise<void> {
  const res = await fetch(subscribeUrl, { signal: AbortSignal.timeout(5000), redirect: 'error' });
  if (!res.ok) throw new Error(`GET SubscribeURL returned HTTP ${res.status}`);
}

function reply(statusCode: number, body: Record<string, unknown>): APIGatewayProxyResult {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** The job notification JobNotifications publishes (see docs/lifecycle.md, Message format). */
interface JobNotification {
  jobId: string;
  status: string;
  jobName?: unknown;
  jobQueue?: unknown;
  statusReason?: unknown;
  exitCode?: unknown;
  tenantId?: unknown;
  stoppedAt?: unknown;
}

function parseJobNotification(message: string): JobNotification | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const n = parsed as Record<string, unknown>;
  const jobId = own(n, 'jobId');
  const status = own(n, 'status');
  if (typeof jobId !== 'string' || jobId === '' || typeof status !== 'string' || status === '') return undefined;
  return {
    jobId,
    status,
    jobName: own(n, 'jobName'),
    jobQueue: own(n, 'jobQueue'),
    statusReason: own(n, 'statusReason'),
    exitCode: own(n, 'exitCode'),
    tenantId: own(n, 'tenantId'),
    stoppedAt: own(n, 'stoppedAt'),
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * Every value the request carries for header `name`, matched case-insensitively over `headers` and
 * `multiValueHeaders` (API Gateway fills both). More than one distinct value is an attempt to make
 * two readers of the request see different things.
 */
function headerValues(event: APIGatewayProxyEvent, name: string): string[] {
  const values = new Set<string>();
  for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === name && typeof v === 'string') values.add(v);
  for (const [k, vs] of Object.entries(event.multiValueHeaders ?? {})) {
    if (k.toLowerCase() === name && Array.isArray(vs)) for (const v of vs) if (typeof v === 'string') values.add(v);
  }
  return [...values];
}

/** Throws SnsVerificationError when an x-amz-sns-* header is ambiguous or contradicts the body. */
function checkSnsHeaders(event: APIGatewayProxyEvent, body: Record<string, unknown>): void {
  for (const [header, field] of [
    ['x-amz-sns-message-type', 'Type'],
    ['x-amz-sns-topic-arn', 'TopicArn'],
    ['x-amz-sns-message-id', 'MessageId'],
  ] as const) {
    const values = headerValues(event, header);
    if (values.length > 1) throw new SnsVerificationError(`header ${header} is sent ${values.length} times with different values`);
    if (values.length === 1 && values[0] !== own(body, field)) {
      throw new SnsVerificationError(`header ${header} ${preview(values[0])} differs from body ${field} ${preview(own(body, field))}`);
    }
  }
}

export function createWebhookHandler(deps: WebhookDeps): (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult> {
  if (deps.allowedTopicArns.length === 0) throw new Error('webhook: no allowed topic; set ALLOWED_TOPIC_ARNS to the JobNotifications topic ARN');
  const secretMatches = createSecretCheck(deps.pathSecret);
  const log = createBoundedLogger({ handler: 'webhook' }, deps.sink);
  const now = deps.now ?? (() => new Date());
  const certs = new CertificateCache(deps.fetchCertificate, { failedFetchTtlMs: deps.failedCertificateFetchTtlMs, now: () => now().getTime() });
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const verifyOptions = {
    signatureVersions: deps.signatureVersions,
    confirmationMaxAgeMs: deps.confirmationMaxAgeMs,
    notificationMaxAgeMs: deps.notificationMaxAgeMs,
  };

  return async (event) => {
    // First, before the body is even decoded: unauthenticated callers cost one hash and one line.
    const params = event.pathParameters ?? {};
    if (!secretMatches(Object.hasOwn(params, 'secret') ? params.secret : undefined)) {
      log.warn('rejected: wrong or missing path secret', { status: 403, sourceIp: event.requestContext?.identity?.sourceIp });
      return reply(403, { error: 'forbidden' });
    }
    if (event.httpMethod && event.httpMethod !== 'POST') return reply(405, { error: 'only POST is accepted' });
    const encoded = event.body ?? '';
    // Base64 grows a body by 4/3: compare before decoding, so an oversize body is never copied.
    if ((event.isBase64Encoded ? Math.floor((encoded.length * 3) / 4) : Buffer.byteLength(encoded, 'utf8')) > maxBodyBytes) {
      log.warn('rejected: body too large', { status: 413, bodyChars: encoded.length, maxBodyBytes });
      return reply(413, { error: `body exceeds ${maxBodyBytes} bytes` });
    }
    const raw = event.isBase64Encoded ? Buffer.from(encoded, 'base64').toString('utf8') : encoded;
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      log.warn('rejected: body is not JSON', { status: 400 });
      return reply(400, { error: 'body is not JSON' });
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      log.warn('rejected: body is not a JSON object', { status: 400 });
      return reply(400, { error: 'body is not a JSON object' });
    }
    const candidate = body as Record<string, unknown>;

    let msg: SnsMessage;
    try {
      checkSnsHeaders(event, candidate);
      const topicArn = own(candidate, 'TopicArn');
      if (typeof topicArn !== 'string' || !deps.allowedTopicArns.includes(topicArn)) {
        throw new SnsVerificationError(`TopicArn ${preview(topicArn)} is not an allowed topic`);
      }
      msg = await verifySnsMessage(candidate, certs, now(), verifyOptions);
    } catch (err) {
      if (err instanceof SnsVerificationError) {
        log.warn('rejected: SNS message does not verify', { status: 403, reason: err.message, messageId: own(candidate, 'MessageId') });
        return reply(403, { error: 'message signature does not verify' });
      }
      log.error('could not verify: certificate unavailable', { status: 502, error: errorMessage(err) });
      return reply(502, { error: 'signing certificate unavailable' });
    }
    if (msg.Type === 'SubscriptionConfirmation') {
      let url: URL;
      try {
        url = checkSnsUrl(msg.SubscribeURL, 'SubscribeURL');
      } catch (err) {
        log.warn('rejected: SubscribeURL not on an SNS host', { status: 403, reason: errorMessage(err) });
        return reply(403, { error: 'SubscribeURL is not an Amazon SNS URL' });
      }
      try {
        await deps.confirmSubscription(url.toString());
      } catch (err) {
        log.error('could not confirm subscription', { status: 502, topicArn: msg.TopicArn, error: errorMessage(err) });
        return reply(502, { error: 'could not confirm subscription' });
      }
      log.info('confirmed subscription', { topicArn: msg.TopicArn, messageId: msg.MessageId });
      return reply(200, { confirmed: true });
    }
    if (msg.Type === 'UnsubscribeConfirmation') {
      log.info('unsubscribed; not resubscribing', { topicArn: msg.TopicArn, messageId: msg.MessageId });
      return reply(200, { unsubscribed: true });
    }

    const job = parseJobNotification(msg.Message);
    if (!job) {
      // Verified but not ours to understand: acknowledging stops SNS from retrying it forever.
      log.warn('ignored: notification is not a job notification', { messageId: msg.MessageId, topicArn: msg.TopicArn });
      return reply(200, { ignored: true });
    }
    let completed: CompletionResult | undefined;
    if (deps.completion && (job.status === 'SUCCEEDED' || job.status === 'FAILED')) {
      try {
        const detail = await deps.completion.describe(job.jobId);
        if (detail) completed = await completeJob(deps.completion.deps, detail);
        if (completed?.callback) {
          const c = completed.callback;
          if (c.delivered) log.info('callback delivered', { jobId: job.jobId, attempts: c.attempts, status: c.status });
          else log.warn('callback not delivered', { jobId: job.jobId, attempts: c.attempts, reason: c.reason, deadLettered: c.deadLettered });
        }
      } catch (err) {
        // 500: SNS redelivers, and completeJob is idempotent (its record is created only once).
        log.error('could not complete job', { jobId: job.jobId, error: errorMessage(err) });
        return reply(500, { error: 'could not complete job' });
      }
    }
    const summary = completed?.summary;
    const record: CompletionRecord = {
      jobId: job.jobId,
      status: job.status,
      jobName: str(job.jobName),
      jobQueue: str(job.jobQueue),
      statusReason: str(job.statusReason),
      exitCode: num(job.exitCode),
      tenantId: str(job.tenantId),
      stoppedAt: num(job.stoppedAt),
      resultLocation: summary?.resultLocation ?? (deps.outputBucket ? `s3://${deps.outputBucket}/jobs/${job.jobId}/output/` : undefined),
      platformJobId: summary?.jobId,
      resultObjects: summary?.result?.objects,
      resultBytes: summary?.result?.bytes,
      callbackDelivered: completed?.callback ? String(completed.callback.delivered) : undefined,
      messageId: msg.MessageId,
      topicArn: msg.TopicArn,
      recordedAt: now().toISOString(),
    };
    try {
      const outcome = await deps.store.record(record);
      log.info(outcome === 'recorded' ? 'recorded job completion' : 'duplicate; already recorded', { jobId: job.jobId, status: job.status, messageId: msg.MessageId, outcome });
      return reply(200, { jobId: job.jobId, status: job.status, outcome });
    } catch (err) {
      log.error('could not record job completion', { jobId: job.jobId, error: errorMessage(err) });
      return reply(500, { error: 'could not record job completion' });
    }
  };
}

let defaultHandler: Promise<(event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>> | undefined;

export const handler = async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
  defaultHandler ??= handlerFromEnv(process.env).catch((err) => {
    defaultHandler = undefined; // a cold start that could not read the secret tries again on the next request
    throw err;
  });
  return (await defaultHandler)(event);
};

/** The handler the Lambda runs, configured by the environment the CompletionWebhook construct sets. */
export async function handlerFromEnv(env: NodeJS.ProcessEnv, secrets = new SecretsManagerClient({})): Promise<(event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>> {
  return createWebhookHandler({
    pathSecret: await loadPathSecret(secrets, requiredEnv(env, 'PATH_SECRET_ARN')),
    store: new DynamoCompletionStore(new DynamoDBClient({}), requiredEnv(env, 'TABLE_NAME')),
    fetchCertificate: (url) => fetchCertificate(url),
    confirmSubscription: defaultConfirmSubscription,
    allowedTopicArns: listFromEnv('ALLOWED_TOPIC_ARNS', env),
    outputBucket: env.OUTPUT_BUCKET || undefined,
    signatureVersions: signatureVersionsFromEnv(env),
    confirmationMaxAgeMs: secondsFromEnv(env, 'CONFIRMATION_MAX_AGE_SECONDS'),
    notificationMaxAgeMs: secondsFromEnv(env, 'NOTIFICATION_MAX_AGE_SECONDS'),
    completion: completionFromEnv(env, secrets),
  });
}

/**
 * Completion is on when the construct set CALLBACK_SECRET_ARN: the HMAC key is read once per cold
 * start, on the first callback. CALLBACK_ALLOWED_CIDRS lists the private ranges this stage may call.
 */
export function completionFromEnv(env: NodeJS.ProcessEnv, secrets: SecretsManagerClient): WebhookDeps['completion'] {
  const secretArn = env.CALLBACK_SECRET_ARN;
  if (!secretArn) return undefined;
  const allowedCidrs = listFromEnv('CALLBACK_ALLOWED_CIDRS', env);
  const allowed = allowedCidrs.length ? parseAllowedCidrs(allowedCidrs, 'CALLBACK_ALLOWED_CIDRS') : undefined;
  const batch = new BatchClient({});
  let secret: Promise<string> | undefined;
  return {
    describe: async (batchJobId) => (await batch.send(new DescribeJobsCommand({ jobs: [batchJobId] }))).jobs?.[0],
    deps: {
      s3: new S3Client({}),
      // A job submitted by hand has an untagged input: its completion record takes the stage's retention.
      defaultRetentionDays: retentionDaysFrom(env),
      callback: {
        secret: () =>
          (secret ??= secrets.send(new GetSecretValueCommand({ SecretId: secretArn })).then((r) => {
            if (!r.SecretString) throw new Error(`webhook: secret ${secretArn} has no SecretString`);
            return r.SecretString;
          })).catch((err) => {
            secret = undefined;
            throw err;
          }),
        deadLetterQueueUrl: requiredEnv(env, 'CALLBACK_DLQ_URL'),
        sqs: new SQSClient({}),
        post: { allowed },
      },
    },
  };
}

export function signatureVersionsFromEnv(env: NodeJS.ProcessEnv): SignatureVersion[] | undefined {
  const listed = listFromEnv('SIGNATURE_VERSIONS', env);
  if (listed.length === 0) return undefined;
  for (const v of listed) {
    if (!(SIGNATURE_VERSIONS as readonly string[]).includes(v)) throw new Error(`webhook: SIGNATURE_VERSIONS (${preview(env.SIGNATURE_VERSIONS)}) contains ${preview(v)}; allowed: ${SIGNATURE_VERSIONS.join(', ')}`);
  }
  return listed as SignatureVersion[];
}

export function secondsFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < 1) throw new Error(`webhook: ${name} (${preview(raw)}) must be a whole number of seconds from 1 to 9999999`);
  return Number(raw) * 1000;
}

function requiredEnv(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new Error(`webhook: environment variable ${name} is not set`);
  return v;
}
