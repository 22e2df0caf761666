import { S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { getOperation } from '../../containers/worker/src/operations/registry';
import { derivedKeys } from '../../containers/worker/src/output';
import { listDoneIndexes, parseManifest } from '../planner/plan';
import { failurePrefix, ManifestChunk, manifestKey, planKey, resultKey, RunIdentity, RunPlan, runPrefix, summaryKey, UNSET_IDENTITY } from '../planner/run-layout';
import { defaultEmit, runMetricsLine } from './run-metrics';
import { listKeys, putJson, readJson, readText } from '../shared/s3-objects';
import { ChunkFingerprint, chunkFingerprint, FingerprintFile, fingerprintsKey, InputChangedError } from '../planner/fingerprint';

export type RunStatus = 'SUCCEEDED' | 'PARTIAL' | 'FAILED';

/** At most this many failed chunks are listed in the summary (it travels through Step Functions and SQS). */
export const MAX_LISTED_FAILURES = 25;
const CAUSE_CHARS = 500;
const READ_CONCURRENCY = 8;

export interface FailedChunk {
  readonly index: number;
  readonly key: string;
  readonly startByte: number;
  readonly endByte: number;
  readonly error: string;
  readonly cause?: string;
}

/** What every run ends with: in `runs/{runId}/summary.json`, on the summary queue and in the EventBridge event. */
export interface RunSummary {
  /** Version of this message format; bumped on any incompatible change (see docs/chunked-processing.md). */
  readonly schemaVersion: 1;
  readonly runId: string;
  /** The run input's identifying fields (customerId, tenantId, batchId, deployment, snapshotId). */
  readonly identity: RunIdentity;
  readonly status: RunStatus;
  readonly operation: string;
  readonly chunks: { readonly total: number; readonly succeeded: number; readonly failed: number };
  readonly records: number;
  readonly rejected: number;
  /** The first MAX_LISTED_FAILURES failed chunks, by index. */
  readonly failedChunks: readonly FailedChunk[];
  readonly toleratedFailurePercentage: number;
  /** The merged result (same document as one whole-object worker run); null when the run FAILED. */
  readonly result: { readonly bucket: string; readonly key: string } | null;
  /** Record-output operations (transform-records): the chunk outputs in input order, as a JSON list. */
  readonly parts?: { readonly bucket: string; readonly key: string };
  readonly summary: { readonly bucket: string; readonly key: string };
  readonly finishedAt: string;
  /** Why the chunk loop itself stopped, when it did (e.g. tolerated failures exceeded). */
  readonly mapError?: string;
}

export interface AggregateEvent {
  readonly runId: string;
  readonly operation: string;
  /** JSON text, as ValidateInput produced it. */
  readonly operationConfig?: string;
  readonly mapError?: { readonly Error?: string; readonly Cause?: string };
}

export interface AggregateDeps {
  readonly s3: S3Client;
  readonly runsBucket: string;
  readonly toleratedFailurePercentage: number;
  readonly now?: () => Date;
  /** Where the EMF metrics line goes. @default defaultEmit (stdout on Lambda) */
  readonly emit?: (line: string) => void;
}

/**
 * Merges the chunk results of a run from S3 (never from the state payload) with the operation's own
 * merge, writes `runs/{runId}/result.json` and `summary.json`, and returns the summary. A chunk
 * counts as done only with its done-marker and its result; everything else in the manifest failed.
 */
export async function aggregateRun(event: AggregateEvent, deps: AggregateDeps): Promise<RunSummary> {
  const { s3, runsBucket } = deps;
  const manifestBody = await readText(s3, runsBucket, manifestKey(event.runId));
  if (manifestBody === undefined) throw new Error(`run ${event.runId} has no manifest at s3://${runsBucket}/${manifestKey(event.runId)}`);
  const chunks = parseManifest(manifestBody).sort((a, b) => a.index - b.index);
  const plan = await readJson<RunPlan>(s3, runsBucket, planKey(event.runId));
  const identity = plan?.identity ?? UNSET_IDENTITY;
  const op = getOperation(event.operation);
  if (op.kind !== 'records') throw new Error(`operation ${event.operation} is not a record operation; it cannot be aggregated from chunks`);
  const config = op.parseConfig(JSON.parse(event.operationConfig || '{}'));

  const done = await listDoneIndexes(s3, runsBucket, event.runId);
  const documentKey = (c: ManifestChunk): string => (op.output === 'records' ? derivedKeys(c.outputKey).summary : c.outputKey);

  let state = op.init(config);
  const failed: ManifestChunk[] = [];
  // Merged in chunk order while the next READ_CONCURRENCY documents are read: at most that many are
  // held at once, whatever the number of chunks, and reading overlaps merging.
  await forEachInOrder(
    chunks,
    (c) => (done.has(c.index) ? readJson<Record<string, unknown>>(s3, runsBucket, documentKey(c)) : Promise.resolve(undefined)),
    READ_CONCURRENCY,
    (doc, c) => {
      if (doc === undefined) failed.push(c);
      else state = op.merge(state, op.deserialize(doc));
    },
  );
  const succeeded = chunks.length - failed.length;
  const tolerated = deps.toleratedFailurePercentage;
  const status: RunStatus =
    failed.length === 0 ? 'SUCCEEDED' : succeeded > 0 && (failed.length * 100) / chunks.length <= tolerated ? 'PARTIAL' : 'FAILED';

  const failureDocs = await readFailures(s3, runsBucket, event.runId);
  const failedChunks = failed.slice(0, MAX_LISTED_FAILURES).map((c) => describeFailure(c, failureDocs.get(c.index), done.has(c.index)));

  const merged = op.serialize(state);
  let result: RunSummary['result'] = null;
  let parts: RunSummary['parts'];
  if (status !== 'FAILED') {
    result = { bucket: runsBucket, key: resultKey(event.runId) };
    await putJson(s3, runsBucket, result.key, merged);
    if (op.output === 'records') {
      parts = { bucket: runsBucket, key: `${runPrefix(event.runId)}parts.json` };
      await putJson(
        s3,
        runsBucket,
        parts.key,
        chunks.filter((c) => done.has(c.index)).map((c) => ({ index: c.index, bucket: runsBucket, key: c.outputKey })),
      );
    }
  }
  // A run that can be retried records what its finished chunks read, so `batchctl runs retry` after
  // a data fix can prove which results still hold (docs/chunked-processing.md, "Runs: progress and retry").
  if (status !== 'SUCCEEDED' && plan) {
    await recordFingerprints(s3, runsBucket, event.runId, plan, chunks.filter((c) => done.has(c.index)), deps.now);
  }
  const summary: RunSummary = {
    schemaVersion: 1,
    runId: event.runId,
    identity,
    status,
    operation: event.operation,
    chunks: { total: chunks.length, succeeded, failed: failed.length },
    records: Number(merged.records ?? state.records),
    rejected: Number(merged.rejected ?? state.rejected),
    failedChunks,
    toleratedFailurePercentage: tolerated,
    result,
    ...(parts ? { parts } : {}),
    summary: { bucket: runsBucket, key: summaryKey(event.runId) },
    finishedAt: (deps.now ?? (() => new Date()))().toISOString(),
    ...(event.mapError ? { mapError: `${event.mapError.Error ?? 'Error'}: ${truncate(event.mapError.Cause ?? '')}` } : {}),
  };
  await putJson(s3, runsBucket, summary.summary.key, summary);
  (deps.emit ?? defaultEmit)(
    runMetricsLine(
      event.runId,
      identity,
      [
        { name: 'RunRecordsProcessed', unit: 'Count', value: summary.records },
        { name: 'RunRecordsRejected', unit: 'Count', value: summary.rejected },
        { name: 'RunChunksSucceeded', unit: 'Count', value: succeeded },
        { name: 'RunChunksFailed', unit: 'Count', value: failed.length },
        { name: 'RunsSucceeded', unit: 'Count', value: status === 'SUCCEEDED' ? 1 : 0 },
        { name: 'RunsPartial', unit: 'Count', value: status === 'PARTIAL' ? 1 : 0 },
        { name: 'RunsFailed', unit: 'Count', value: status === 'FAILED' ? 1 : 0 },
      ],
      { operation: event.operation, status },
      (deps.now ?? (() => new Date()))().getTime(),
    ),
  );
  return summary;
}

/**
 * Calls `use` with `read(item)` for every item in order, reading up to `window` items ahead: item
 * i + window is read only once item i has been used, so at most `window` results are held at once.
 * The first failure (of a read, in order, or of `use`) is thrown once the reads already started end.
 */
export async function forEachInOrder<I, T>(
  items: readonly I[],
  read: (item: I) => Promise<T>,
  window: number,
  use: (value: T, item: I) => void,
): Promise<void> {
  const size = Math.max(1, window);
  const ahead = new Map<number, Promise<T>>();
  const start = (i: number): void => {
    if (i >= items.length) return;
    const p = read(items[i]);
    // Handled when its turn comes; until then a rejection must not count as unhandled.
    p.catch(() => undefined);
    ahead.set(i, p);
  };
  for (let i = 0; i < Math.min(size, items.length); i++) start(i);
  try {
    for (let i = 0; i < items.length; i++) {
      const value = await ahead.get(i)!;
      ahead.delete(i);
      use(value, items[i]);
      start(i + size);
    }
  } finally {
    await Promise.allSettled(ahead.values());
  }
}

/**
 * Writes `runs/{runId}/fingerprints.json` for the finished chunks, read from the object versions the
 * plan names (If-Match on their ETags). An object that changed since it was planned gets no
 * fingerprints: its chunks then rerun on retry, which is always sound.
 */
async function recordFingerprints(
  s3: S3Client,
  runsBucket: string,
  runId: string,
  plan: RunPlan,
  finished: readonly ManifestChunk[],
  now?: () => Date,
): Promise<void> {
  const limit = pLimit(READ_CONCURRENCY);
  const changed = new Set<string>();
  const fingerprints = await Promise.all(
    finished.map((c) =>
      limit(async (): Promise<ChunkFingerprint | undefined> => {
        const input = (plan.inputs ?? []).find((i) => i.bucket === c.bucket && i.key === c.key);
        const id = `${c.bucket}/${c.key}`;
        if (!input?.etag || changed.has(id)) return undefined;
        try {
          const sha256 = await chunkFingerprint(s3, input, c);
          return sha256 === undefined
            ? undefined
            : { index: c.index, bucket: c.bucket, key: c.key, startByte: c.startByte, endByte: c.endByte, etag: input.etag, sha256 };
        } catch (err) {
          if (err instanceof InputChangedError) {
            changed.add(id);
            return undefined;
          }
          throw err;
        }
      }),
    ),
  );
  const doc: FingerprintFile = {
    schemaVersion: 1,
    runId,
    recordedAt: (now ?? (() => new Date()))().toISOString(),
    chunks: fingerprints.filter((f): f is ChunkFingerprint => f !== undefined && !changed.has(`${f.bucket}/${f.key}`)),
  };
  await putJson(s3, runsBucket, fingerprintsKey(runId), doc);
}

/** `{Error, Cause}` the workflow's RecordChunkFailure state wrote, by chunk index. */
async function readFailures(s3: S3Client, bucket: string, runId: string): Promise<Map<number, { Error?: string; Cause?: string }>> {
  const prefix = failurePrefix(runId);
  const out = new Map<number, { Error?: string; Cause?: string }>();
  const keys = await listKeys(s3, bucket, prefix);
  const limit = pLimit(READ_CONCURRENCY);
  await Promise.all(
    keys.map((key) =>
      limit(async () => {
        const index = Number(key.slice(prefix.length).replace(/\.json$/, ''));
        const doc = await readJson<{ Error?: string; Cause?: string }>(s3, bucket, key);
        if (Number.isInteger(index) && doc) out.set(index, doc);
      }),
    ),
  );
  return out;
}

/** Turns the Step Functions error of a chunk (Lambda error JSON or a Batch job description) into one line. */
export function describeFailure(
  chunk: ManifestChunk,
  failure: { Error?: string; Cause?: string } | undefined,
  hadMarker: boolean,
): FailedChunk {
  const base = { index: chunk.index, key: chunk.key, startByte: chunk.startByte, endByte: chunk.endByte };
  if (!failure) {
    return {
      ...base,
      error: hadMarker ? 'ResultMissing' : 'NotFinished',
      cause: hadMarker ? `done-marker exists but the result ${chunk.outputKey} cannot be read` : 'the chunk has neither a result nor a recorded failure',
    };
  }
  let cause = failure.Cause ?? '';
  try {
    const parsed = JSON.parse(cause) as {
      errorMessage?: string;
      StatusReason?: string;
      Container?: { ExitCode?: number; Reason?: string };
      Attempts?: { Container?: { ExitCode?: number; Reason?: string } }[];
    };
    if (parsed.errorMessage) cause = parsed.errorMessage;
    else if (parsed.StatusReason !== undefined || parsed.Container) {
      const exit = parsed.Container?.ExitCode ?? parsed.Attempts?.[parsed.Attempts.length - 1]?.Container?.ExitCode;
      cause = [parsed.StatusReason, parsed.Container?.Reason, exit !== undefined ? `exit code ${exit}` : undefined].filter(Boolean).join('; ');
    }
  } catch {
    // Cause is plain text.
  }
  return { ...base, error: failure.Error ?? 'Error', cause: truncate(cause) };
}

function truncate(s: string): string {
  return s.length > CAUSE_CHARS ? `${s.slice(0, CAUSE_CHARS)}...` : s;
}
