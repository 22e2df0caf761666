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
  ownRecord,
  submitOcr,
  uploadExpiredMessage,
  uploadExpiryOf,
  uploadMismatch,
  withCors,
} from './shared';

/**
 * POST /ocr/{id}/start: the caller's upload has landed; submit its `ocr` job. 202 when submitted, 200
 * when it already was (a repeated call submits nothing: the client token is the request id), 409 when
 * the upload is not there yet (or has another type or size than the URL was signed for), 410
 * UPLOAD_EXPIRED when it is not there and the upload URL has expired (a new request is needed).
 */
export async function startOcr(event: APIGatewayProxyEvent, d: OcrApiDeps): Promise<APIGatewayProxyResult> {
  const caller = callerOf(event);
  if (!caller) return forbidden();
  const id = event.pathParameters?.id ?? '';
  try {
    const record = await ownRecord(d, id, caller.tenantId);
    if (!record) return notFound(id);
    if (record.state !== 'AWAITING_UPLOAD') return json(200, { id, status: record.state, links: { self: `/ocr/${id}` } });
    const head = await headInput(d, record.inputKey);
    if (!head) {
      const uploadExpiresAt = uploadExpiryOf(d, record);
      if (uploadExpiresAt.getTime() <= nowOf(d).getTime()) {
        return json(410, { id, status: 'UPLOAD_EXPIRED', uploadExpiresAt: uploadExpiresAt.toISOString(), message: uploadExpiredMessage(uploadExpiresAt) });
      }
      return json(409, { id, status: record.state, message: 'the upload has not arrived: PUT the image to the upload URL (with its headers), then call start again' });
    }
    const mismatch = uploadMismatch(record, head);
    if (mismatch) return json(409, { id, status: record.state, message: mismatch });
    const job = await submitOcr(d, record);
    const moved = await moveRecord(d, id, 'AWAITING_UPLOAD', { state: 'SUBMITTED', ...job });
    return json(moved ? 202 : 200, { id, status: 'SUBMITTED', links: { self: `/ocr/${id}` } });
  } catch (err) {
    return errorResponse(err, id);
  }
}

export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  return withCors(event, await startOcr(event, depsFromEnv()));
}
