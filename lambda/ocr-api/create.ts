import { PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { randomUUID } from 'crypto';
import { z } from 'zod';
import { taggingHeader } from '../../containers/worker/src/retention';
import { FieldError, InvalidRequestError, issuesToFieldErrors, validateSubmitRequest } from '../../lib/client';
import { json } from '../submit-api/shared';
import {
  badRequest,
  callerOf,
  depsFromEnv,
  errorResponse,
  forbidden,
  headInput,
  invalid,
  nowOf,
  OcrApiDeps,
  OcrRecord,
  putRecord,
  submitOcr,
  UPLOAD_CONTENT_TYPES,
  UploadContentType,
  uploadPrefix,
  withCors,
} from './shared';

const CONTENT_TYPES = Object.keys(UPLOAD_CONTENT_TYPES) as [UploadContentType, ...UploadContentType[]];

function bodySchema(maxUploadBytes: number) {
  return z
    .strictObject({
      upload: z
        .strictObject({
          contentType: z.enum(CONTENT_TYPES, { error: `contentType must be one of ${CONTENT_TYPES.join(', ')}` }),
          // A presigned PUT cannot carry a size range (only POST policies can): the URL is signed for this exact length.
          contentLength: z
            .number({ error: 'contentLength (bytes of the image) is required: the upload URL is signed for exactly that size' })
            .int('contentLength must be a whole number of bytes')
            .min(1, 'contentLength must be at least 1 byte')
            .max(maxUploadBytes, `contentLength must be at most ${maxUploadBytes} bytes`),
        })
        .optional(),
      key: z.string({ error: 'key must be a string' }).min(1, 'key must not be empty').max(1024, 'key must be at most 1024 characters').optional(),
    })
    .superRefine((body, ctx) => {
      if ((body.upload === undefined) === (body.key === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: [],
          message: 'give either upload ({ contentType, contentLength }: returns a presigned PUT URL) or key (an image already in the input bucket under tenants/<your tenant>/), not both and not neither',
        });
      }
    });
}

const view = (r: OcrRecord) => ({ id: r.id, status: r.state, links: { self: `/ocr/${r.id}`, ...(r.state === 'AWAITING_UPLOAD' ? { start: `/ocr/${r.id}/start` } : {}) } });

/**
 * POST /ocr.
 * - `{ "upload": { "contentType": "image/png", "contentLength": 48213 } }`: records the request
 *   (AWAITING_UPLOAD) and answers 201 with a presigned PUT URL for `tenants/<tenant>/ocr-uploads/<id>.<ext>`,
 *   signed for that content type, that exact length and the retention tag; the caller PUTs the image, then
 *   calls `POST /ocr/{id}/start`.
 * - `{ "key": "tenants/<tenant>/scans/a.png" }`: an image already in the input bucket under the caller's
 *   prefix; submitted at once (202).
 */
export async function createOcr(event: APIGatewayProxyEvent, d: OcrApiDeps): Promise<APIGatewayProxyResult> {
  const caller = callerOf(event);
  if (!caller) return forbidden();
  let raw: unknown;
  try {
    raw = JSON.parse(event.body ?? '');
  } catch {
    return badRequest([{ field: '(body)', message: 'the body must be a JSON object' }]);
  }
  const parsed = bodySchema(d.maxUploadBytes).safeParse(raw);
  if (!parsed.success) return badRequest(issuesToFieldErrors(parsed.error.issues, raw));
  const now = nowOf(d);
  const id = randomUUID();
  const base = { id, tenantId: caller.tenantId, userId: caller.userId, createdAt: now.toISOString(), updatedAt: now.toISOString(), expiresAt: Math.floor(now.getTime() / 1000) + d.retentionDays * 86400 };

  try {
    if (parsed.data.upload) {
      const { contentType, contentLength } = parsed.data.upload;
      const inputKey = `${uploadPrefix(caller.tenantId)}${id}.${UPLOAD_CONTENT_TYPES[contentType]}`;
      const tagging = taggingHeader({ retentionDays: d.retentionDays });
      const url = await getSignedUrl(
        d.s3,
        new PutObjectCommand({ Bucket: d.inputBucket, Key: inputKey, ContentType: contentType, ContentLength: contentLength, Tagging: tagging }),
        {
          expiresIn: d.uploadExpiresSeconds,
          // Signed as headers (not hoisted into the query), so S3 refuses a PUT of another type, size or tag.
          signableHeaders: new Set(['content-type', 'content-length']),
          unhoistableHeaders: new Set(['x-amz-tagging']),
        },
      );
      const uploadExpiresAt = new Date(now.getTime() + d.uploadExpiresSeconds * 1000).toISOString();
      const record: OcrRecord = { ...base, state: 'AWAITING_UPLOAD', inputKey, contentType, contentLength, uploadExpiresAt };
      await putRecord(d, record);
      return json(201, {
        ...view(record),
        upload: {
          method: 'PUT',
          url,
          headers: { 'content-type': contentType, 'content-length': String(contentLength), 'x-amz-tagging': tagging },
          expiresAt: uploadExpiresAt,
        },
      });
    }

    const inputKey = parsed.data.key!;
    let job: { jobId: string; batchJobId: string };
    try {
      // The one submission policy decides which keys a tenant may name (its own tenants/<tenant>/ prefix).
      job = await submitOcrChecked(d, { id, tenantId: caller.tenantId, userId: caller.userId, inputKey });
    } catch (err) {
      const errors = invalid(err, { inputKey: 'key' });
      if (errors) return badRequest(errors);
      throw err;
    }
    const record: OcrRecord = { ...base, state: 'SUBMITTED', inputKey, ...job };
    await putRecord(d, record);
    return json(202, view(record));
  } catch (err) {
    return errorResponse(err);
  }
}

/** submitOcr, after checking that the key names an existing object (a 400 naming it, not a failed job later). */
async function submitOcrChecked(d: OcrApiDeps, r: Parameters<typeof submitOcr>[1]): Promise<{ jobId: string; batchJobId: string }> {
  // Policy first: a key outside the caller's prefix is refused before we look at it (no probing of other tenants' keys).
  validateSubmitRequest({ operation: 'ocr', inputKey: r.inputKey, tenantId: r.tenantId, userId: r.userId });
  const head = await headInput(d, r.inputKey);
  if (!head) {
    const e: FieldError = {
      field: 'inputKey',
      message: `no object ${JSON.stringify(r.inputKey)} in the input bucket; allowed: the key of an image already uploaded under tenants/${r.tenantId}/`,
      value: r.inputKey,
    };
    throw new InvalidRequestError('no such input', [e]);
  }
  return submitOcr(d, r);
}

export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  return withCors(event, await createOcr(event, depsFromEnv()));
}
