import { HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { retentionDaysFrom, taggingHeader } from '../../containers/worker/src/retention';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { SNSClient } from '@aws-sdk/client-sns';
import type { BatchJobStateChangeEvent } from '../shared/batch-event';
import { BundleCompletion, COMPLETION_MESSAGE_TYPE, completionRecordKey, MAX_LISTED_FAILURES, publishCompletion } from '../shared/photo-bundle-completion';
import { readJson, readText } from '../shared/s3-objects';

/**
 * Tells the requester that a photo bundle is ready (or failed): on the Batch "Job State Change" event
 * of a bundle job (SUCCEEDED or FAILED) it reads the job's staged input (event id, destination, who to
 * notify) from the platform's input bucket and the worker's manifest next to the ZIP in R2, and
 * publishes one message on the platform's notification topic with the ZIP's location, size, photo
 * count and failures; with SES configured and `notify.email` in the message, it also sends an e-mail.
 * The message is kept at `jobs/{jobId}/completion.json`, so re-sending a finished event returns it.
 */

/** The staged input of a bundle job (lambda/queue-submit/photo-bundle.ts writes it). */
interface StagedBundleInput {
  files: unknown[];
  eventId: string;
  destination: { bucket: string; prefix: string };
  archiveKey: string;
  notify?: { email?: string };
}

interface WorkerManifest {
  files: number;
  succeeded: number;
  failed: number;
  failures: { name: string; url: string; error: string }[];
}

export interface NotifyDeps {
  /** The platform's staging S3 (inputs, completion records). */
  readonly staging: S3Client;
  readonly inputBucket: string;
  /** The bundle destination (R2), with the stack's credentials. */
  readonly destination: () => Promise<S3Client>;
  readonly sns: SNSClient;
  readonly topicArn: string;
  /** Batch job names are `<prefix>-<jobId>`. */
  readonly jobNamePrefix: string;
  /** Set when e-mail is enabled on the stack. */
  readonly email?: { readonly ses: SESv2Client; readonly from: string };
  readonly now?: () => Date;
}

/** Builds, publishes and records the completion of one bundle job; undefined for events it does not handle. */
export async function notifyCompletion(event: BatchJobStateChangeEvent, deps: NotifyDeps): Promise<BundleCompletion | undefined> {
  const d = event.detail;
  if (d.status !== 'SUCCEEDED' && d.status !== 'FAILED') return undefined;
  const prefix = `${deps.jobNamePrefix}-`;
  if (!d.jobName?.startsWith(prefix)) return undefined;
  const jobId = d.jobName.slice(prefix.length);
  const input = await readJson<StagedBundleInput>(deps.staging, deps.inputBucket, `jobs/${jobId}/inputs.json`);
  if (!input?.eventId || !input.destination || !input.archiveKey) {
    throw new Error(`job ${jobId}: s3://${deps.inputBucket}/jobs/${jobId}/inputs.json is missing or not a photo-bundle input`);
  }
  const r2 = await deps.destination();
  const bucket = input.destination.bucket;
  const manifestKey = `${input.archiveKey}.manifest.json`;
  const text = await readText(r2, bucket, manifestKey);
  const manifest = text === undefined ? undefined : (JSON.parse(text) as WorkerManifest);
  let archive: BundleCompletion['archive'] = null;
  if (d.status === 'SUCCEEDED') {
    const head = await r2.send(new HeadObjectCommand({ Bucket: bucket, Key: input.archiveKey }));
    archive = { bucket, key: input.archiveKey, bytes: head.ContentLength ?? 0 };
  }
  const failures = (manifest?.failures ?? []).map((f) => ({ name: f.name, url: f.url, error: f.error }));
  const completion: BundleCompletion = {
    type: COMPLETION_MESSAGE_TYPE,
    status: d.status === 'SUCCEEDED' ? 'READY' : 'FAILED',
    eventId: input.eventId,
    jobId,
    batchJobId: d.jobId,
    archive,
    manifest: manifest ? { bucket, key: manifestKey } : null,
    photos: manifest?.files ?? input.files.length,
    succeeded: manifest?.succeeded ?? 0,
    failed: manifest?.failed ?? 0,
    failures: failures.slice(0, MAX_LISTED_FAILURES),
    failuresTruncated: failures.length > MAX_LISTED_FAILURES,
    ...(d.statusReason ? { reason: d.statusReason } : {}),
    completedAt: (deps.now?.() ?? new Date()).toISOString(),
  };
  await deps.staging.send(
    new PutObjectCommand({
      Bucket: deps.inputBucket,
      Key: completionRecordKey(jobId),
      Body: JSON.stringify(completion),
      ContentType: 'application/json',
      Tagging: taggingHeader({ retentionDays: retentionDaysFrom(), jobId }),
    }),
  );
  await publishCompletion(completion, deps);
  if (deps.email && input.notify?.email) await sendEmail(completion, input.notify.email, deps.email);
  return completion;
}

async function sendEmail(c: BundleCompletion, to: string, email: NonNullable<NotifyDeps['email']>): Promise<void> {
  const lines =
    c.status === 'READY'
      ? [
        `Your photos of event ${c.eventId} are bundled: ${c.succeeded} of ${c.photos} photos, ${c.archive!.bytes} bytes.`,
        `ZIP: ${c.archive!.bucket}/${c.archive!.key}`,
        ...(c.failed > 0 ? [`${c.failed} photos could not be downloaded:`, ...c.failures.map((f) => `- ${f.name}: ${f.error}`)] : []),
      ]
      : [`The photo bundle of event ${c.eventId} failed: ${c.reason ?? 'see the job log'}.`];
  await email.ses.send(
    new SendEmailCommand({
      FromEmailAddress: email.from,
      Destination: { ToAddresses: [to] },
      Content: { Simple: { Subject: { Data: `Photo bundle ${c.eventId}: ${c.status}` }, Body: { Text: { Data: lines.join('\n') } } } },
    }),
  );
}

let deps: NotifyDeps | undefined;

function depsFromEnv(): NotifyDeps {
  const env = (name: string) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set: the PhotoBundlesStack sets it on the function`);
    return v;
  };
  let r2: Promise<S3Client> | undefined;
  return {
    staging: new S3Client({}),
    inputBucket: env('INPUT_BUCKET'),
    destination: () =>
      (r2 ??= (async () => {
        const secret = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: env('R2_CREDENTIALS_SECRET_ARN') }));
        const { accessKeyId, secretAccessKey } = JSON.parse(secret.SecretString ?? '{}') as { accessKeyId?: string; secretAccessKey?: string };
        if (!accessKeyId || !secretAccessKey) throw new Error('the R2 credentials secret must hold {"accessKeyId","secretAccessKey"}');
        return new S3Client({ endpoint: env('R2_ENDPOINT'), region: 'auto', credentials: { accessKeyId, secretAccessKey } });
      })()),
    sns: new SNSClient({}),
    topicArn: env('NOTIFICATION_TOPIC_ARN'),
    jobNamePrefix: env('JOB_NAME_PREFIX'),
    email: process.env.EMAIL_FROM ? { ses: new SESv2Client({}), from: process.env.EMAIL_FROM } : undefined,
  };
}

export async function handler(event: BatchJobStateChangeEvent): Promise<void> {
  deps ??= depsFromEnv();
  const completion = await notifyCompletion(event, deps);
  if (completion) console.log(JSON.stringify({ level: 'info', message: 'bundle completion published', eventId: completion.eventId, status: completion.status, jobId: completion.jobId }));
}
