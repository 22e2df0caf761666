import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { listFromEnv } from '../shared/batch-list';
import { createLogger, errorMessage, LogSink } from '../shared/log';
import { CompletionRecord, CompletionStore, DynamoCompletionStore } from './completion-store';
import { CertificateCache, CertificateFetcher, checkSnsUrl, fetchCertificate, SnsMessage, SnsVerificationError, verifySnsMessage } from './sns-signature';

/**
 * POST /webhooks/batch-complete: the HTTPS subscriber of the JobNotifications topic.
 * 400 body is not a JSON object; 403 anything that does not verify as an SNS message of an allowed
 * topic; 502 when a certificate or the subscribe URL cannot be fetched (SNS retries); 200 otherwise.
 */
export type SubscriptionConfirmer = (subscribeUrl: string) => Promise<void>;

export interface WebhookDeps {
  readonly store: CompletionStore;
  readonly fetchCertificate: CertificateFetcher;
  readonly confirmSubscription: SubscriptionConfirmer;
  /** Topics whose messages are accepted: any other topic could be subscribed to this URL by anyone. */
  readonly allowedTopicArns: readonly string[];
  /** Bucket of the staging layout; the result location is `s3://<bucket>/jobs/<jobId>/output/`. */
  readonly outputBucket?: string;
  readonly now?: () => Date;
  readonly sink?: LogSink;
}

export async function defaultConfirmSubscription(subscribeUrl: string): Promise<void> {
  const res = await fetch(subscribeUrl, { signal: AbortSignal.timeout(5000), redirect: 'error' });
  if (!res.ok) throw new Error(`GET SubscribeURL returned HTTP ${res.status}`);
}

function reply(statusCode: number, body: Record<string, unknown>): APIGatewayProxyResult {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** The job notification JobNotifications publishes (see the README's message format). */
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
  if (!parsed || typeof parsed !== 'object') return undefined;
  const n = parsed as Record<string, unknown>;
  if (typeof n.jobId !== 'string' || n.jobId === '' || typeof n.status !== 'string' || n.status === '') return undefined;
  return n as unknown as JobNotification;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function createWebhookHandler(deps: WebhookDeps): (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult> {
  if (deps.allowedTopicArns.length === 0) throw new Error('webhook: no allowed topic; set ALLOWED_TOPIC_ARNS to the JobNotifications topic ARN');
  const certs = new CertificateCache(deps.fetchCertificate);
  const log = createLogger({ handler: 'webhook' }, deps.sink);
  const now = deps.now ?? (() => new Date());

  return async (event) => {
    if (event.httpMethod && event.httpMethod !== 'POST') return reply(405, { error: 'only POST is accepted' });
    const raw = event.body ? (event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body) : '';
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
      const headerType = Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === 'x-amz-sns-message-type')?.[1];
      if (headerType !== undefined && headerType !== candidate.Type) throw new SnsVerificationError(`header type ${headerType} differs from body Type`);
      if (typeof candidate.TopicArn !== 'string' || !deps.allowedTopicArns.includes(candidate.TopicArn)) {
        throw new SnsVerificationError(`TopicArn ${JSON.stringify(candidate.TopicArn)} is not an allowed topic`);
      }
      msg = await verifySnsMessage(candidate, certs, now());
    } catch (err) {
      if (err instanceof SnsVerificationError) {
        log.warn('rejected: SNS message does not verify', { status: 403, reason: err.message, messageId: candidate.MessageId });
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
    const record: CompletionRecord = {
      jobId: job.jobId,
      status: job.status,
      jobName: str(job.jobName),
      jobQueue: str(job.jobQueue),
      statusReason: str(job.statusReason),
      exitCode: num(job.exitCode),
      tenantId: str(job.tenantId),
      stoppedAt: num(job.stoppedAt),
      resultLocation: deps.outputBucket ? `s3://${deps.outputBucket}/jobs/${job.jobId}/output/` : undefined,
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

let defaultHandler: ((event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>) | undefined;

export const handler = async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
  defaultHandler ??= createWebhookHandler({
    store: new DynamoCompletionStore(new DynamoDBClient({}), requiredEnv('TABLE_NAME')),
    fetchCertificate,
    confirmSubscription: defaultConfirmSubscription,
    allowedTopicArns: listFromEnv('ALLOWED_TOPIC_ARNS'),
    outputBucket: process.env.OUTPUT_BUCKET || undefined,
  });
  return defaultHandler(event);
};

function requiredEnv(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`webhook: environment variable ${name} is not set`);
  return v;
}
