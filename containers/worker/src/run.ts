import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigError, WorkerConfig } from './config';
import { ChunkResult, processChunk, resolveFormat, ThreadOptions } from './engine';
import { emfLine, Logger } from './log';
import { resolveChunkSpec } from './manifest';
import { chunkDoneLine, chunkFailedLine, RunIdentity, UNSET_IDENTITY } from './run-metrics';
import { getOperation } from './operations/registry';
import { tagWrites } from './retention';
import { inputS3Client, outputS3Client } from './s3';

/** Exit codes of the entrypoint (documented in docs/worker.md, Environment contract). */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_CONFIG = 2;
/** 128 + SIGTERM: interrupted with a checkpoint saved; a retry resumes. */
export const EXIT_INTERRUPTED = 143;

export function exitCodeFor(result: ChunkResult): number {
  if (result.status === 'succeeded') return EXIT_OK;
  if (result.status === 'interrupted') return EXIT_INTERRUPTED;
  return EXIT_FAILED;
}

/** Problems the environment can already show, reported as ConfigErrors before any byte is read. */
export function precheck(config: WorkerConfig): void {
  const op = getOperation(config.operation);
  try {
    op.parseConfig(config.operationConfig);
  } catch (err) {
    throw new ConfigError('OPERATION_CONFIG', (err as Error).message);
  }
  if (op.kind === 'records' && config.input) {
    try {
      resolveFormat(config.input.key, config.env.INPUT_FORMAT);
    } catch (err) {
      throw new ConfigError('INPUT_S3_KEY', (err as Error).message);
    }
  }
}

/** One worker run from a validated config: clients, chunk resolution, processing, summary + EMF, callback. */
export async function runWorker(
  config: WorkerConfig,
  log: Logger,
  signal?: AbortSignal,
  options: { threads?: ThreadOptions } = {},
): Promise<ChunkResult> {
  precheck(config);
  const s3In = inputS3Client();
  // Outputs, rejects, checkpoints and staged parts in the platform's buckets carry the retention tag
  // its lifecycle rules expire them by; a third-party store (OUTPUT_S3_ENDPOINT, e.g. R2) has no such
  // rules and may not support object tags, so its objects are written untagged.
  const external = Boolean(config.outputStore.endpoint || config.outputStore.accessKeyId);
  const s3Out = external ? outputS3Client(config.outputStore) : tagWrites(inputS3Client(), { retentionDays: config.retentionDays, jobId: config.jobId });
  try {
    return await runWithClients(config, log, s3In, s3Out, signal, options.threads);
  } finally {
    // Serve mode runs many times in one process: release the keep-alive sockets of each run.
    s3In.destroy();
    if (s3Out !== s3In) s3Out.destroy();
  }
}

async function runWithClients(
  config: WorkerConfig,
  log: Logger,
  s3In: S3Client,
  s3Out: S3Client,
  signal?: AbortSignal,
  threads?: ThreadOptions,
): Promise<ChunkResult> {
  const spec = await resolveChunkSpec(config, s3In);
  const chunkLog = log.child({ jobId: config.jobId, chunk: spec.chunkIndex ?? null, tenantId: config.env.TENANT_ID });
  chunkLog.info('processing', {
    pid: process.pid,
    operation: spec.operation,
    input: `s3://${spec.input.bucket}/${spec.input.key}`,
    startByte: spec.input.startByte ?? 0,
    endByte: spec.input.endByte ?? null,
    output: `s3://${spec.output.bucket}/${spec.output.key}`,
  });
  const result = await processChunk(spec, { s3In, s3Out, log: chunkLog, signal, threads });
  const figures = {
    records: result.records,
    rejected: result.rejected,
    bytes: result.bytes,
    durationMs: result.durationMs,
    recordsPerSecond: result.recordsPerSecond,
  };
  const threadsUsed = result.threads ?? 1;
  chunkLog.info('summary', {
    summary: true,
    status: result.status,
    ...figures,
    threads: threadsUsed,
    output: `s3://${result.output.bucket}/${result.output.key}`,
    ...(result.message ? { reason: result.message } : {}),
  });
  process.stdout.write(
    emfLine(figures, { operation: result.operation, tenantId: config.env.TENANT_ID, jobId: result.jobId, status: result.status }) +
      '\n',
  );
  const runLine = runProgressLine(config, result, spec.chunkIndex);
  if (runLine) process.stdout.write(runLine + '\n');
  // CALLBACK_URL is called once per job, signed, by the completion path (lib/client/completion.ts),
  // never per chunk from here: an array job would call it once per chunk, unsigned.
  return result;
}

/**
 * A Batch-route chunk of the chunked workflow (RUN_ID set by the state machine): the same per-run
 * progress line the Lambda chunk processor emits (ChunksDone, RecordsProcessed, RecordsRejected,
 * ChunkDuration; ChunkAttemptsFailed for a failed attempt), with the run's dimensions from the
 * RUN_* environment. An interrupted attempt (SIGTERM, Spot) emits nothing, as on Lambda. No RUN_ID: none.
 */
export function runProgressLine(config: Pick<WorkerConfig, 'env'>, result: Pick<ChunkResult, 'status' | 'records' | 'rejected' | 'durationMs'>, chunkIndex?: number): string | undefined {
  const env = config.env;
  if (!env.RUN_ID || result.status === 'interrupted') return undefined;
  const identity: RunIdentity = {
    customerId: env.RUN_CUSTOMER_ID ?? UNSET_IDENTITY.customerId,
    tenantId: env.RUN_TENANT_ID ?? UNSET_IDENTITY.tenantId,
    batchId: env.RUN_BATCH_ID ?? UNSET_IDENTITY.batchId,
    deployment: env.RUN_DEPLOYMENT ?? UNSET_IDENTITY.deployment,
    snapshotId: env.RUN_SNAPSHOT_ID ?? UNSET_IDENTITY.snapshotId,
  };
  const index = env.CHUNK_INDEX ?? chunkIndex;
  if (result.status === 'failed') return chunkFailedLine(env.RUN_ID, identity, { index, route: 'batch', error: 'ChunkFailed' });
  return chunkDoneLine(env.RUN_ID, identity, { index, route: 'batch', records: result.records, rejected: result.rejected, durationMs: result.durationMs });
}
