import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { json } from '../submit-api/shared';
import {
  callerOf,
  depsFromEnv,
  errorResponse,
  forbidden,
  moveRecord,
  notFound,
  OcrApiDeps,
  OcrRecord,
  OcrResultDocument,
  ownRecord,
  readResult,
  RESULT_LINK_SECONDS,
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
 * GET /ocr/{id}: where the request is; when done, the text. The worker writes the result JSON last, so
 * its presence is what "done" means; Batch's status tells the rest (queued, running, failed and why).
 */
export async function getOcr(event: APIGatewayProxyEvent, d: OcrApiDeps): Promise<APIGatewayProxyResult> {
  const caller = callerOf(event);
  if (!caller) return forbidden();
  const id = event.pathParameters?.id ?? '';
  try {
    const record = await ownRecord(d, id, caller.tenantId);
    if (!record) return notFound(id);
    if (record.state === 'AWAITING_UPLOAD') {
      return json(200, { ...base(record), status: record.state, message: `PUT the image to the upload URL, then POST /ocr/${id}/start`, links: { start: `/ocr/${id}/start` } });
    }
    if (record.state === 'FAILED') return json(200, { ...base(record), status: 'FAILED', statusReason: record.statusReason });
    const result = await readResult(d, record.jobId!);
    if (result) {
      if (record.state !== 'SUCCEEDED') await moveRecord(d, id, record.state, { state: 'SUCCEEDED' });
      return json(200, { ...base(record), status: 'SUCCEEDED', result: await resultView(d, result.doc) });
    }
    if (record.state === 'SUCCEEDED') {
      return json(410, { ...base(record), status: 'EXPIRED', message: 'the result was deleted by the bucket lifecycle (retention-days); submit the image again' });
    }
    const job = await d.client.status(record.jobId!);
    if (job.status === 'FAILED') {
      await moveRecord(d, id, 'SUBMITTED', { state: 'FAILED', statusReason: job.statusReason ?? 'the OCR job failed' });
      return json(200, { ...base(record), status: 'FAILED', statusReason: job.statusReason });
    }
    if (job.status === 'SUCCEEDED') {
      // Batch says done but the worker's result is not there: never report success without the text.
      return json(200, { ...base(record), status: 'RESULT_MISSING', message: `the job ended but its result s3://${d.outputBucket}/jobs/${record.jobId}/output/result.json is missing` });
    }
    return json(200, { ...base(record), status: job.status });
  } catch (err) {
    return errorResponse(err, id);
  }
}

export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  return withCors(event, await getOcr(event, depsFromEnv()));
}
