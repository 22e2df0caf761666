import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { json } from '../submit-api/shared';
import {
  callerOf,
  depsFromEnv,
  errorResponse,
  forbidden,
  headInput,
  moveRecord,
  notFound,
  nowOf,
  OcrApiDeps,
  OcrRecord,
  OcrResultDocument,
  ownRecord,
  readResult,
  RESULT_LINK_SECONDS,
  uploadExpiredMessage,
  uploadExpiryOf,
  uploadMismatch,
  withCors,
} from './shared';

const base = (r: OcrRecord) => ({ id: r.id, createdAt: r.createdAt, updatedAt: r.updatedAt });

/**
 * The text of a finished request: full text, per-page text and confidence inline while their UTF-8 size
 * stays within maxInlineTextBytes; above that a presigned link to the `.txt` (RESULT_LINK_SECONDS) and
 * the per-page confidences without their text.
 */
async function resultView(d: OcrApiDeps, doc: OcrResultDocument): Promise<Record<string, unknown>> {
  const size = Buffer.byteLength(doc.text) + doc.perPage.reduce((s, p) => s + Buffer.byteLength(p.text), 0);
  const figures = { pages: doc.pages, words: doc.words, meanConfidence: doc.meanConfidence };
  if (size <= d.maxInlineTextBytes) {
    return { ...figures, text: doc.text, perPage: doc.perPage.map((p) => ({ page: p.page, text: p.text, meanConfidence: p.meanConfidence })) };
  }
  const textUrl = await getSignedUrl(d.s3, new GetObjectCommand({ Bucket: d.outputBucket, Key: doc.textKey }), { expiresIn: RESULT_LINK_SECONDS });
  return {
    ...figures,
    textTruncated: true,
    message: `the text (${size} bytes with the per-page copies) is above the inline cap of ${d.maxInlineTextBytes} bytes: download it from textUrl`,
    textUrl,
    perPage: doc.perPage.map((p) => ({ page: p.page, meanConfidence: p.meanConfidence })),
  };
}

/**
 * GET /ocr/{id}: where the request is; when done, the text.
 * - A request past its retention (`expiresAt`; DynamoDB's TTL deletes lazily) is 410 EXPIRED, whatever
 *   is still stored.
 * - AWAITING_UPLOAD: whether the upload has arrived (then: call start), is still awaited (until the upload
 *   URL's expiry), or never came before the URL expired (410 UPLOAD_EXPIRED: create a new request).
 * - Submitted: Batch's status decides. The text is returned only for a job Batch calls SUCCEEDED, so a
 *   result left by an earlier attempt of a job that then failed (or is being retried) never looks current.
 */
export async function getOcr(event: APIGatewayProxyEvent, d: OcrApiDeps): Promise<APIGatewayProxyResult> {
  const caller = callerOf(event);
  if (!caller) return forbidden();
  const id = event.pathParameters?.id ?? '';
  try {
    const record = await ownRecord(d, id, caller.tenantId);
    if (!record) return notFound(id);
    const now = nowOf(d);
    if (record.expiresAt * 1000 <= now.getTime()) {
      const at = new Date(record.expiresAt * 1000).toISOString();
      return json(410, { ...base(record), status: 'EXPIRED', message: `the request expired at ${at} (retention-days ${d.retentionDays}); submit the image again` });
    }
    if (record.state === 'AWAITING_UPLOAD') return awaitingUpload(d, record, now);
    if (record.state === 'FAILED') return json(200, { ...base(record), status: 'FAILED', statusReason: record.statusReason });
    if (record.state === 'SUCCEEDED') {
      const result = await readResult(d, record.jobId!);
      if (result) return json(200, { ...base(record), status: 'SUCCEEDED', result: await resultView(d, result.doc) });
      return json(410, { ...base(record), status: 'EXPIRED', message: 'the result was deleted by the bucket lifecycle (retention-days); submit the image again' });
    }
    const job = await d.client.status(record.jobId!);
    if (job.status === 'FAILED') {
      const statusReason = job.statusReason ?? 'the OCR job failed (Batch gave no reason)';
      await moveRecord(d, id, 'SUBMITTED', { state: 'FAILED', statusReason });
      return json(200, { ...base(record), status: 'FAILED', statusReason });
    }
    if (job.status !== 'SUCCEEDED') return json(200, { ...base(record), status: job.status });
    const result = await readResult(d, record.jobId!);
    if (!result) {
      // Batch says done but the worker's result is not there: never report success without the text.
      return json(200, { ...base(record), status: 'RESULT_MISSING', message: `the job ended but its result s3://${d.outputBucket}/jobs/${record.jobId}/output/result.json is missing` });
    }
    await moveRecord(d, id, 'SUBMITTED', { state: 'SUCCEEDED' });
    return json(200, { ...base(record), status: 'SUCCEEDED', result: await resultView(d, result.doc) });
  } catch (err) {
    return errorResponse(err, id);
  }
}

/** An upload-form request not started yet: arrived, still awaited, or the upload URL expired without one. */
async function awaitingUpload(d: OcrApiDeps, record: OcrRecord, now: Date): Promise<APIGatewayProxyResult> {
  const links = { start: `/ocr/${record.id}/start` };
  const head = await headInput(d, record.inputKey);
  const mismatch = head && uploadMismatch(record, head);
  if (head && !mismatch) {
    return json(200, { ...base(record), status: 'UPLOADED', message: `the upload has arrived: POST /ocr/${record.id}/start to run OCR`, links });
  }
  const uploadExpiresAt = uploadExpiryOf(d, record);
  if (uploadExpiresAt.getTime() <= now.getTime()) {
    return json(410, { ...base(record), status: 'UPLOAD_EXPIRED', uploadExpiresAt: uploadExpiresAt.toISOString(), message: uploadExpiredMessage(uploadExpiresAt, mismatch) });
  }
  return json(200, {
    ...base(record),
    status: 'AWAITING_UPLOAD',
    uploadExpiresAt: uploadExpiresAt.toISOString(),
    message: mismatch
      ? `${mismatch}: PUT the image as signed before ${uploadExpiresAt.toISOString()}, then POST /ocr/${record.id}/start`
      : `PUT the image to the upload URL before ${uploadExpiresAt.toISOString()}, then POST /ocr/${record.id}/start`,
    links,
  });
}

export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  return withCors(event, await getOcr(event, depsFromEnv()));
}
