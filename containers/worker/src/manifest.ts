import type { S3Client } from '@aws-sdk/client-s3';
import type { ChunkSpec } from './engine';
import type { WorkerConfig } from './config';
import { getText } from './output';

/**
 * One line of a chunk manifest (`runs/{runId}/manifest.jsonl`, written by the planner): the worker
 * reads `index`, `bucket`, `key`, `startByte`, `endByte` and ignores the rest (estimatedRecords,
 * route...). An optional `outputKey` overrides OUTPUT_S3_KEY for that chunk.
 */
export interface ManifestEntry {
  index: number;
  bucket: string;
  key: string;
  startByte: number;
  endByte: number;
  outputKey?: string;
}

export async function readManifestEntry(s3: S3Client, bucket: string, key: string, index: number): Promise<ManifestEntry> {
  const where = `manifest s3://${bucket}/${key}`;
  const text = await getText(s3, bucket, key);
  if (text === undefined) throw new Error(`${where} does not exist; check MANIFEST_S3_BUCKET/MANIFEST_S3_KEY (the planner writes it)`);
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (line.trim() === '') continue;
    let entry: ManifestEntry;
    try {
      entry = JSON.parse(line) as ManifestEntry;
    } catch (err) {
      throw new Error(`${where} line ${n + 1}: JSON: ${(err as Error).message}; a manifest is JSON lines as the planner writes them`);
    }
    if (entry === null || typeof entry !== 'object') throw new Error(`${where} line ${n + 1}: JSON: not an object`);
    if (entry.index !== index) continue;
    for (const field of ['bucket', 'key'] as const) {
      if (typeof entry[field] !== 'string' || entry[field].length === 0) {
        throw new Error(`manifest s3://${bucket}/${key} entry ${index}: ${field} must be a non-empty string`);
      }
    }
    for (const field of ['startByte', 'endByte'] as const) {
      if (!Number.isSafeInteger(entry[field]) || entry[field] < 0) {
        throw new Error(`manifest s3://${bucket}/${key} entry ${index}: ${field} must be a non-negative integer`);
      }
    }
    return entry;
  }
  throw new Error(`manifest s3://${bucket}/${key} has no entry with index ${index}`);
}

/** Turns the validated environment into the engine's ChunkSpec (reading the manifest line if there is one). */
export async function resolveChunkSpec(config: WorkerConfig, s3Manifest: S3Client): Promise<ChunkSpec> {
  const base = {
    jobId: config.jobId,
    operation: config.operation,
    operationConfig: config.operationConfig,
    maxRejectRatio: config.maxRejectRatio,
    maxRecordBytes: config.maxRecordBytes,
  };
  const format = config.env.INPUT_FORMAT;
  const chunk = config.chunk;
  if (chunk.kind === 'manifest') {
    const entry = await readManifestEntry(s3Manifest, chunk.bucket, chunk.key, chunk.index);
    return {
      ...base,
      chunkIndex: chunk.index,
      input: { bucket: entry.bucket, key: entry.key, startByte: entry.startByte, endByte: entry.endByte, format },
      output: { bucket: config.output.bucket, key: entry.outputKey ?? config.output.key.split('{index}').join(String(chunk.index)) },
    };
  }
  const input = config.input!;
  return {
    ...base,
    input:
      chunk.kind === 'range'
        ? { ...input, startByte: chunk.startByte, endByte: chunk.endByte, format }
        : { ...input, format },
    output: config.output,
  };
}
