import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { FieldError, InvalidRequestError, issuesToFieldErrors, SubmitOptions, SubmitRequestInput } from '../../lib/client';
import { readJson } from '../shared/s3-objects';
import { BundleCompletion, completionRecordKey, publishCompletion } from '../shared/photo-bundle-completion';

/**
 * The photo-bundle message (PhotoBundlesStack's queue) and how it becomes a `bundle-photos` job.
 * The message names photos, a destination prefix and who to tell; it never names an endpoint, a
 * credential or any bucket other than the one the stack was deployed with: those come from the stack.
 */

/** Message field `eventId`: also the ZIP's file name and the idempotency key. */
export const EVENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** A destination prefix: relative key segments ending in '/', no '..', no leading '/'. */
export const DESTINATION_PREFIX_PATTERN = /^(?:[A-Za-z0-9_.-]+\/)*$/;
export const MAX_PHOTOS = 10_000;
/** Largest manifest object the handler reads (10k photos with long URLs fit). */
export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
/** Manifests live under this prefix of the platform's input bucket (the handler may read nothing else). */
export const MANIFEST_PREFIX = 'photo-manifests/';
export const BUNDLE_OPERATION = 'bundle-photos';
/** Client tokens of bundle jobs: one job per event id, whatever the message id. */
export const BUNDLE_TOKEN_PREFIX = 'photo-bundle:';

const photoSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'url must be an http(s) URL' }),
  name: z.string().min(1, 'name must not be empty').max(255, 'name must be at most 255 characters').optional(),
});
const photosSchema = z.array(photoSchema).min(1, 'photos must list at least one photo').max(MAX_PHOTOS, `photos must list at most ${MAX_PHOTOS} photos`);

export const photoBundleMessageSchema = z
  .strictObject({
    eventId: z.string().regex(EVENT_ID_PATTERN, 'eventId must be 1-128 letters, digits, - or _, starting with a letter or digit'),
    photos: photosSchema.optional(),
    manifestKey: z
      .string()
      .startsWith(MANIFEST_PREFIX, `manifestKey must be a key under ${MANIFEST_PREFIX} in the platform's input bucket`)
      .max(1024)
      .refine((k) => !k.split('/').includes('..'), 'manifestKey must not contain ".." segments')
      .optional(),
    destination: z.strictObject({
      bucket: z.string().min(1, 'destination.bucket must not be empty'),
      prefix: z
        .string()
        .max(512)
        .regex(DESTINATION_PREFIX_PATTERN, "destination.prefix must be '' or key segments (letters, digits, _ . -) each ending in '/', e.g. 'events/2026/'")
        .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), "destination.prefix must not contain '.' or '..' segments"),
    }),
    notify: z
      .strictObject({
        email: z.email('notify.email must be an e-mail address').optional(),
      })
      .optional(),
  })
  .superRefine((m, ctx) => {
    if ((m.photos === undefined) === (m.manifestKey === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: m.photos === undefined ? ['photos'] : ['manifestKey'],
        message: 'give either photos ([{url, name?}]) or manifestKey (a JSON list of photos in the input bucket), not both',
      });
    }
  });

export type PhotoBundleMessage = z.output<typeof photoBundleMessageSchema>;

/** What the stack fixes for every bundle; a message cannot change any of it. */
export interface PhotoBundleSettings {
  /** The one destination bucket (R2) the stack's credentials may write. */
  readonly destinationBucket: string;
  /** Parallel downloads per bundle. */
  readonly downloadConcurrency: number;
  /** The platform's input bucket (manifests are read from it). */
  readonly inputBucket: string;
  /** Reads `manifestKey` objects and completion records. */
  readonly s3: S3Client;
  /** The platform topic: a re-sent event whose bundle is finished gets its completion message again. @default - not re-published */
  readonly completions?: { readonly sns: SNSClient; readonly topicArn: string };
}

/**
 * A re-sent event whose bundle already finished: publishes the recorded completion (the existing ZIP's
 * location) again instead of bundling anew. Returns it, or undefined while the bundle is still queued or
 * running (its completion follows by itself then).
 */
export async function republishFinished(jobId: string, settings: PhotoBundleSettings): Promise<BundleCompletion | undefined> {
  if (!settings.completions) return undefined;
  const completion = await readJson<BundleCompletion>(settings.s3, settings.inputBucket, completionRecordKey(jobId));
  if (!completion) return undefined;
  await publishCompletion(completion, settings.completions);
  return completion;
}

/** The staged input of a bundle job: the worker's `{files}` plus what the completion notifier needs. */
export interface PhotoBundleInput {
  readonly files: { url: string; name: string }[];
  readonly eventId: string;
  readonly destination: { bucket: string; prefix: string };
  readonly archiveKey: string;
  readonly notify?: { email?: string };
}

/** Where the ZIP of an event goes: `<prefix><eventId>.zip` in the destination bucket. */
export function archiveKeyOf(message: Pick<PhotoBundleMessage, 'eventId' | 'destination'>): string {
  return `${message.destination.prefix}${message.eventId}.zip`;
}

/** Validates a message: every problem (field, value, what is allowed) in one InvalidRequestError. */
export function parsePhotoBundleMessage(raw: unknown, settings: Pick<PhotoBundleSettings, 'destinationBucket'>): PhotoBundleMessage {
  const parsed = photoBundleMessageSchema.safeParse(raw);
  const errors: FieldError[] = parsed.success ? [] : withValues(issuesToFieldErrors(parsed.error.issues, raw));
  const bucket = (raw as { destination?: { bucket?: unknown } } | null)?.destination?.bucket;
  if (typeof bucket === 'string' && bucket !== '' && bucket !== settings.destinationBucket) {
    errors.push({ field: 'destination.bucket', message: `${JSON.stringify(bucket)} is not the bundle bucket of this deployment; allowed: ${JSON.stringify(settings.destinationBucket)}`, value: bucket });
  }
  if (errors.length > 0 || !parsed.success) throw new InvalidRequestError('invalid photo-bundle message', errors);
  return parsed.data;
}

/** The value in the text too: InvalidRequestError's message lists `field: message` only. */
function withValues(errors: FieldError[]): FieldError[] {
  return errors.map((e) => (e.value === undefined ? e : { ...e, message: `${e.message} (got ${JSON.stringify(e.value)})` }));
}

/** A photo's ZIP entry name: the given name, else the URL's last path segment, else `photo-<n>`. */
export function photoName(photo: { url: string; name?: string }, index: number): string {
  if (photo.name) return photo.name;
  const last = decodeURIComponentSafe(new URL(photo.url).pathname.split('/').filter(Boolean).pop() ?? '');
  return last || `photo-${index + 1}`;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

async function readManifest(key: string, settings: PhotoBundleSettings): Promise<z.output<typeof photosSchema>> {
  let text: string;
  try {
    const res = await settings.s3.send(new GetObjectCommand({ Bucket: settings.inputBucket, Key: key }));
    if ((res.ContentLength ?? 0) > MAX_MANIFEST_BYTES) {
      throw new InvalidRequestError('invalid photo-bundle message', [{ field: 'manifestKey', message: `is ${res.ContentLength} bytes; allowed: at most ${MAX_MANIFEST_BYTES}`, value: key }]);
    }
    text = await res.Body!.transformToString('utf8');
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) {
      throw new InvalidRequestError('invalid photo-bundle message', [{ field: 'manifestKey', message: `no such object in s3://${settings.inputBucket}`, value: key }]);
    }
    throw err;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new InvalidRequestError('invalid photo-bundle message', [{ field: 'manifestKey', message: 'is not JSON; allowed: a JSON array [{url, name?}] or {"photos": [...]}', value: key }]);
  }
  const list = Array.isArray(doc) ? doc : (doc as { photos?: unknown } | null)?.photos;
  const parsed = photosSchema.safeParse(list);
  if (!parsed.success) {
    const errors = withValues(issuesToFieldErrors(parsed.error.issues, list)).map((e) => ({ ...e, field: `manifestKey(${key}).${e.field}` }));
    throw new InvalidRequestError('invalid photo-bundle message', errors);
  }
  return parsed.data;
}

/**
 * The submit request and options of a validated message: the `bundle-photos` operation, the photo list
 * staged as input, the ZIP at `<prefix><eventId>.zip` in the stack's bucket, and a client token derived
 * from the event id, so the same event sent twice (or redelivered) yields one job.
 */
export async function photoBundleSubmission(
  raw: unknown,
  settings: PhotoBundleSettings,
): Promise<{ message: PhotoBundleMessage; request: SubmitRequestInput; options: SubmitOptions; input: PhotoBundleInput }> {
  const message = parsePhotoBundleMessage(raw, settings);
  const photos = message.photos ?? (await readManifest(message.manifestKey!, settings));
  const archiveKey = archiveKeyOf(message);
  const input: PhotoBundleInput = {
    files: photos.map((p, i) => ({ url: p.url, name: photoName(p, i) })),
    eventId: message.eventId,
    destination: message.destination,
    archiveKey,
    ...(message.notify ? { notify: message.notify } : {}),
  };
  return {
    message,
    input,
    request: {
      operation: BUNDLE_OPERATION,
      input,
      clientToken: `${BUNDLE_TOKEN_PREFIX}${message.eventId}`,
      operationConfig: { concurrency: settings.downloadConcurrency },
    },
    options: { output: { bucket: settings.destinationBucket, key: archiveKey } },
  };
}
