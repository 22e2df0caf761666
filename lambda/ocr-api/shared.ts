import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { BatchJobClient, FieldError, InvalidRequestError, parseJobRoutes, validateSubmitRequest } from '../../lib/client';
import { callerOf, Caller, errorResponse, json } from '../submit-api/shared';

export { callerOf, errorResponse };
export type { Caller };

/** Content types an upload may declare: what the `ocr` operation decodes (it checks the bytes, not the type). */
export const UPLOAD_CONTENT_TYPES = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/tiff': 'tiff' } as const;
export type UploadContentType = keyof typeof UPLOAD_CONTENT_TYPES;
export const DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024;
export const DEFAULT_UPLOAD_EXPIRES_SECONDS = 300;
export const DEFAULT_RETENTION_DAYS = 7;
export const DEFAULT_MAX_INLINE_TEXT_BYTES = 256 * 1024;
/** How long a result link (text too large to inline) stays valid. */
export const RESULT_LINK_SECONDS = 900;
export const OCR_JOB_NAME_PREFIX = 'ocr';
/** Uploads live in the caller's own prefix of the input bucket, so the submission policy accepts them as inputs. */
export const uploadPrefix = (tenantId: string) => `tenants/${tenantId}/ocr-uploads/`;

/** Where an OCR request is. SUCCEEDED and FAILED are final; RESULT_MISSING is a SUCCEEDED job whose result object is gone. */
export type OcrState = 'AWAITING_UPLOAD' | 'SUBMITTED' | 'SUCCEEDED' | 'FAILED';

/** One OCR request, in the job table (partition key `id`; `expiresAt` is the table's TTL attribute). */
export interface OcrRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly state: OcrState;
  readonly inputKey: string;
  readonly contentType?: string;
  readonly contentLength?: number;
  readonly jobId?: string;
  readonly batchJobId?: string;
  readonly statusReason?: string;
  /** Upload form: when the presigned PUT URL stops working (records written before this field: createdAt + uploadExpiresSeconds). */
  readonly uploadExpiresAt?: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Epoch seconds: DynamoDB deletes the record after this (retentionDays after creation). */
  readonly expiresAt: number;
}

export interface OcrApiDeps {
  readonly client: BatchJobClient;
  readonly s3: S3Client;
  readonly ddb: DynamoDBDocumentClient;
  readonly table: string;
  readonly inputBucket: string;
  readonly outputBucket: string;
  readonly maxUploadBytes: number;
  readonly uploadExpiresSeconds: number;
  readonly retentionDays: number;
  readonly maxInlineTextBytes: number;
  readonly now?: () => Date;
}

let deps: OcrApiDeps | undefined;

/** The handlers' dependencies, from the environment OcrApiStack sets. */
export function depsFromEnv(): OcrApiDeps {
  if (deps) return deps;
  const inputBucket = required('INPUT_BUCKET');
  deps = {
    client: new BatchJobClient({
      jobQueue: required('JOB_QUEUE'),
      jobDefinition: required('JOB_DEFINITION'),
      routes: parseJobRoutes(process.env.JOB_ROUTES, 'JOB_ROUTES'),
      inputBucket,
      outputBucket: process.env.OUTPUT_BUCKET,
      fairShare: process.env.FAIR_SHARE === undefined ? undefined : process.env.FAIR_SHARE === 'true',
      jobNamePrefix: OCR_JOB_NAME_PREFIX,
      maxRetries: 4,
    }),
    s3: new S3Client({}),
    ddb: DynamoDBDocumentClient.from(new DynamoDBClient({})),
    table: required('OCR_TABLE'),
    inputBucket,
    outputBucket: process.env.OUTPUT_BUCKET ?? inputBucket,
    maxUploadBytes: numberEnv('MAX_UPLOAD_BYTES', DEFAULT_MAX_UPLOAD_BYTES),
    uploadExpiresSeconds: numberEnv('UPLOAD_EXPIRES_SECONDS', DEFAULT_UPLOAD_EXPIRES_SECONDS),
    retentionDays: numberEnv('RETENTION_DAYS', DEFAULT_RETENTION_DAYS),
    maxInlineTextBytes: numberEnv('MAX_INLINE_TEXT_BYTES', DEFAULT_MAX_INLINE_TEXT_BYTES),
  };
  return deps;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the OcrApiStack sets it on the function`);
  return value;
}

function numberEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} (${JSON.stringify(raw)}) must be a whole number >= 1`);
  return n;
}

/** `access-control-allow-origin` for a request whose Origin is one of CORS_ALLOWED_ORIGINS (none by default). */
export function corsHeaders(event: APIGatewayProxyEvent, allowed = (process.env.CORS_ALLOWED_ORIGINS ?? '').split(',').filter(Boolean)): Record<string, string> {
  const origin = Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === 'origin')?.[1];
  if (!origin || !(allowed.includes(origin) || allowed.includes('*'))) return {};
  return { 'access-control-allow-origin': allowed.includes('*') ? '*' : origin, vary: 'Origin' };
}

export function withCors(event: APIGatewayProxyEvent, res: APIGatewayProxyResult): APIGatewayProxyResult {
  return { ...res, headers: { ...res.headers, ...corsHeaders(event) } };
}

export const badRequest = (errors: FieldError[]) => json(400, { errors });
export const forbidden = () => json(403, { message: 'no caller identity on the request' });
export const notFound = (id: string) => json(404, { message: `OCR request ${id} not found` });

/** The record, if it exists and belongs to the caller's tenant; another tenant's record answers like a missing one. */
export async function ownRecord(d: OcrApiDeps, id: string, tenantId: string): Promise<OcrRecord | undefined> {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) return undefined;
  const res = await d.ddb.send(new GetCommand({ TableName: d.table, Key: { id }, ConsistentRead: true }));
  const record = res.Item as OcrRecord | undefined;
  return record && record.tenantId === tenantId ? record : undefined;
}

export async function putRecord(d: OcrApiDeps, record: OcrRecord): Promise<void> {
  await d.ddb.send(new PutCommand({ TableName: d.table, Item: record, ConditionExpression: 'attribute_not_exists(id)' }));
}

/** Moves a record from one state to the next; false when another request moved it first. */
export async function moveRecord(d: OcrApiDeps, id: string, from: OcrState, changes: Partial<OcrRecord> & { state: OcrState }): Promise<boolean> {
  const entries = Object.entries({ ...changes, updatedAt: nowOf(d).toISOString() }).filter(([, v]) => v !== undefined);
  try {
    await d.ddb.send(
      new UpdateCommand({
        TableName: d.table,
        Key: { id },
        UpdateExpression: `SET ${entries.map((_, i) => `#k${i} = :v${i}`).join(', ')}`,
        ConditionExpression: '#state = :from',
        ExpressionAttributeNames: { '#state': 'state', ...Object.fromEntries(entries.map(([k], i) => [`#k${i}`, k])) },
        ExpressionAttributeValues: { ':from': from, ...Object.fromEntries(entries.map(([, v], i) => [`:v${i}`, v])) },
      }),
    );
    return true;
  } catch (err) {
    if ((err as Error).name === 'ConditionalCheckFailedException') return false;
    throw err;
  }
}

export const nowOf = (d: OcrApiDeps) => (d.now ? d.now() : new Date());

/** When an upload-form request's presigned PUT URL expires. */
export function uploadExpiryOf(d: OcrApiDeps, record: Pick<OcrRecord, 'createdAt' | 'uploadExpiresAt'>): Date {
  return record.uploadExpiresAt ? new Date(record.uploadExpiresAt) : new Date(new Date(record.createdAt).getTime() + d.uploadExpiresSeconds * 1000);
}

export const uploadExpiredMessage = (at: Date, mismatch?: string) =>
  `the upload URL expired at ${at.toISOString()} and ${mismatch ? `${mismatch}` : 'nothing was uploaded'}: POST /ocr again for a new request and URL`;

/** Why the uploaded object is not what the URL was signed for, or undefined when it is. */
export function uploadMismatch(record: Pick<OcrRecord, 'contentType' | 'contentLength'>, head: { contentLength: number; contentType?: string }): string | undefined {
  if (head.contentLength === record.contentLength && (head.contentType === undefined || head.contentType === record.contentType)) return undefined;
  return `the uploaded object (${head.contentType ?? 'no type'}, ${head.contentLength} bytes) is not what the URL was signed for (${record.contentType}, ${record.contentLength} bytes)`;
}

/** Submits the record's input as an `ocr` job through the SDK (routing sends it to FARGATE:ocr); idempotent per record id. */
export async function submitOcr(d: OcrApiDeps, record: Pick<OcrRecord, 'id' | 'tenantId' | 'userId' | 'inputKey'>): Promise<{ jobId: string; batchJobId: string }> {
  const request = {
    operation: 'ocr',
    inputKey: record.inputKey,
    tenantId: record.tenantId,
    userId: record.userId,
    clientToken: `ocr-api:${record.id}`,
    retentionDays: d.retentionDays,
  };
  validateSubmitRequest(request);
  const job = await d.client.submit(request);
  return { jobId: job.jobId, batchJobId: job.batchJobId };
}

/** The input object's size and type, or undefined when there is none. */
export async function headInput(d: OcrApiDeps, key: string): Promise<{ contentLength: number; contentType?: string } | undefined> {
  try {
    const head = await d.s3.send(new HeadObjectCommand({ Bucket: d.inputBucket, Key: key }));
    return { contentLength: head.ContentLength ?? 0, contentType: head.ContentType };
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  }
}

/** The worker's OCR document (containers/worker/src/operations/ocr.ts OcrDocument), the parts the API returns. */
export interface OcrResultDocument {
  pages: number;
  meanConfidence: number;
  words: number;
  text: string;
  textKey: string;
  perPage: { page: number; text: string; meanConfidence: number }[];
}

/** The result JSON the worker wrote, or undefined when it is not there (not done, or expired). */
export async function readResult(d: OcrApiDeps, jobId: string): Promise<{ key: string; doc: OcrResultDocument } | undefined> {
  const key = `jobs/${jobId}/output/result.json`;
  try {
    const res = await d.s3.send(new GetObjectCommand({ Bucket: d.outputBucket, Key: key }));
    return { key, doc: JSON.parse(await res.Body!.transformToString()) as OcrResultDocument };
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  }
}

export function invalid(err: unknown, rename: Record<string, string> = {}): FieldError[] | undefined {
  if (!(err instanceof InvalidRequestError)) return undefined;
  return err.errors.map((e) => ({ ...e, field: rename[e.field] ?? e.field }));
}
