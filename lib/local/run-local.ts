import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pLimit from 'p-limit';
import { StateMachine } from 'aws-local-stepfunctions';
import { createAggregateHandler } from '../../lambda/aggregate';
import type { RunSummary } from '../../lambda/aggregate/aggregate';
import { runChunk, ChunkEvent } from '../../lambda/chunk-processor';
import { createPlannerHandler } from '../../lambda/planner';
import { chunkableOperations } from '../../lambda/planner/operations';
import { parseManifest } from '../../lambda/planner/plan';
import { planKey, RUN_ID_PATTERN, RunPlan } from '../../lambda/planner/run-layout';
import { createValidateHandler } from '../../lambda/validate-input';
import { PACKAGE_ROOT } from '../common/node-function';
import { STATE_NAMES } from '../workflow/chunked-processing-workflow';
import { EXIT_CONFIG, EXIT_FAILED, exitCodeFor } from '../../containers/worker/src/run';
import { retentionDaysFrom, tagWrites } from '../../containers/worker/src/retention';
import type { ChunkResult } from '../../containers/worker/src/engine';
import type { AslDefinition } from './asl';
import { bundleInto } from './bundle';
import { codeCacheFile } from './code-cache';
import { bundledS3rver, linkLocalInput, linkObject, LOCAL_INPUT_ROOT_VARIABLE, startEmbeddedS3 } from './embedded-s3';
import { LOAD_MANIFEST_STATE, toLocalDefinition } from './local-definition';
import { ProgressReporter, silentReporter } from './progress-reporter';
import { cachedBySources, packageVersion, SourceCacheOptions } from './source-cache';
import { synthesizeWorkflowCached, validateOnce } from './workflow-cache';
import { PoolOutcome, WorkerPool } from './worker-pool';

/** The one bucket of the embedded S3 server: inputs under `inputs/`, runs under `runs/`. */
export const LOCAL_BUCKET = 'local-runs';
/** Locally, chunks up to this many records run in-process (the Lambda route); larger ones in worker processes. */
export const DEFAULT_LOCAL_LAMBDA_MAX_RECORDS = 100_000;
/** The largest chunk (bytes of input) the local runner plans when no chunk size is given. */
export const LOCAL_MAX_CHUNK_BYTES = 256 * 1024 * 1024;

/**
 * The chunk size (bytes, the planner's `chunkBytes` rule) of a local run given no --chunk-records: the
 * input split into a whole number of rounds of `workers` equal chunks, each at most
 * LOCAL_MAX_CHUNK_BYTES. Locally every chunk costs a fixed amount on top of its records (its
 * operation state built and serialized, its result read and merged by the aggregate step, a worker
 * warming up), and every worker is there from the start, so the fewest chunks that keep every worker
 * busy are the fastest: 2 workers on 258 MB get 2 chunks of 129 MB. The planner still moves each
 * boundary to a record start (the last chunk takes a remainder under a tenth of a chunk).
 */
export function defaultLocalChunkBytes(inputBytes: number, workers: number): number {
  const w = Math.max(1, Math.floor(workers));
  const rounds = Math.max(1, Math.ceil(inputBytes / (w * LOCAL_MAX_CHUNK_BYTES)));
  return Math.max(1, Math.ceil(inputBytes / (w * rounds)));
}

export interface LocalRunOptions {
  /** Input file (JSON lines or CSV, optionally .gz). */
  readonly input: string;
  readonly operation: string;
  /** Where the result goes: the merged document, or the JSON lines of a record-output operation. */
  readonly output: string;
  /**
   * Target records per chunk.
   * @default - the input split into rounds of one chunk per worker, each at most 256 MiB (defaultLocalChunkBytes)
   */
  readonly chunkRecords?: number;
  /** Worker processes (and in-process chunks) at once. @default the number of CPUs */
  readonly workers?: number;
  /** Same id + same state dir = continue that run (finished chunks are skipped). @default a new id */
  readonly runId?: string;
  /** JSON text given to the operation. @default '{}' */
  readonly operationConfig?: string;
  /** Chunks estimated at up to this many records run in-process; larger ones in worker processes. @default 100000 */
  readonly lambdaMaxRecords?: number;
  /** Failed chunks (percent) that still make a PARTIAL run. @default 0 */
  readonly toleratedFailurePercentage?: number;
  /** Directory of the embedded S3 server's data (keep it to restart a run). @default <tmp>/batchctl-run-local */
  readonly stateDir?: string;
  readonly reporter?: ProgressReporter;
  /** Aborting stops the run: the interpreter, running workers (SIGTERM) and the S3 server. */
  readonly signal?: AbortSignal;
  /** Called whenever a chunk finishes (tests abort a run midway with it). */
  readonly onChunkFinished?: (event: { index: number; ok: boolean }) => void;
  /** Extra environment for worker processes (e.g. MAX_REJECT_RATIO). */
  readonly workerEnv?: Record<string, string>;
  /**
   * Retry the finished run `runId` (PARTIAL or FAILED) on `input` as it is now: only failed chunks
   * and chunks whose bytes changed run again (see the planner's retry mode). Needs runId and the
   * state dir of that run.
   * @default false
   */
  readonly retry?: boolean;
  /** Called once the embedded S3 server is up (progress readers: `batchctl runs status` against it). */
  readonly onStarted?: (where: { readonly endpoint: string; readonly bucket: string; readonly runId: string }) => void;
  /**
   * Use this S3-compatible server (which must hold the bucket `local-runs`) instead of starting the
   * embedded one; the run's objects stay there (tests list them and their tags).
   * @default - an embedded S3 server on loopback, data in `stateDir`
   */
  readonly s3?: { readonly endpoint: string; readonly accessKeyId: string; readonly secretAccessKey: string; readonly region?: string };
  /** Where the synthesized definition and the worker bundle are cached (see source-cache.ts). @default node_modules/.cache/cdk-batch-platform */
  readonly cacheDirectory?: string;
}

export interface LocalRunResult {
  readonly summary: RunSummary | Record<string, unknown>;
  readonly status: string;
  readonly runId: string;
  /** Set when a result was written. */
  readonly outputPath?: string;
  readonly chunkCount: number;
  /** Chunks processed by this invocation (skipped ones excluded), per route. */
  readonly invocations: { readonly lambda: number; readonly batch: number };
  readonly records: number;
  readonly durationMs: number;
  readonly delivered: { readonly queue: unknown[]; readonly events: unknown[] };
  /**
   * Where the time went: synthesizing the stack (or reading it from the cache), starting the embedded
   * S3 with the input linked into it and bundling the worker (or reading it from the cache), and the
   * workflow execution.
   */
  readonly phases: { readonly synthMs: number; readonly uploadMs: number; readonly executionMs: number };
  /** Whether the synthesized definition and the worker bundle came from the cache. */
  readonly cache: { readonly definition: boolean; readonly workerBundle: boolean };
  /** Worker processes started by this invocation (the pool reuses them across chunks). */
  readonly workerProcesses: number;
  /** Wall time of each chunk processed by this invocation. */
  readonly chunkTimings: readonly { readonly index: number; readonly route: 'lambda' | 'batch'; readonly records: number; readonly durationMs: number }[];
}

/** A problem with the run-local arguments, found before anything starts. */
export class LocalRunInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalRunInputError';
  }
}

function checkOptions(o: LocalRunOptions): void {
  const problems: string[] = [];
  try {
    const st = fs.statSync(o.input);
    if (!st.isFile()) problems.push(`--input ${o.input} is not a file`);
    else fs.accessSync(o.input, fs.constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push(`--input ${o.input} ${code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable' : `cannot be read (${code})`}`);
  }
  const ops = chunkableOperations();
  if (!ops.includes(o.operation)) problems.push(`--operation ${JSON.stringify(o.operation)} is unknown; allowed: ${ops.join(', ')}`);
  const positive = (name: string, v: number | undefined, min = 1): void => {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < min)) problems.push(`${name} (${v}) must be a whole number >= ${min}`);
  };
  positive('--chunk-records', o.chunkRecords);
  positive('--workers', o.workers);
  positive('--lambda-max-records', o.lambdaMaxRecords, 0);
  if (o.toleratedFailurePercentage !== undefined && !(o.toleratedFailurePercentage >= 0 && o.toleratedFailurePercentage <= 100)) {
    problems.push(`--tolerated-failure-percentage (${o.toleratedFailurePercentage}) must be between 0 and 100`);
  }
  if (o.retry && o.runId === undefined) problems.push('--retry needs --run-id of the run to retry (and its --state-dir)');
  if (o.runId !== undefined && !RUN_ID_PATTERN.test(o.runId)) problems.push(`--run-id (${JSON.stringify(o.runId)}) must be 1-80 characters of A-Z a-z 0-9 _ -`);
  if (o.operationConfig !== undefined) {
    try {
      JSON.parse(o.operationConfig);
    } catch (err) {
      problems.push(`--operation-config is not valid JSON: ${(err as Error).message}`);
    }
  }
  const outDir = path.dirname(path.resolve(o.output));
  if (!fs.existsSync(outDir)) problems.push(`--output directory ${outDir} does not exist`);
  if (problems.length > 0) throw new LocalRunInputError(problems.join('; '));
}

/**
 * Bundles the worker entrypoint like the container image does (esbuild, one file), once per change of
 * its sources: the bundle is cached under the source cache, keyed by the esbuild version and checked
 * against every file esbuild read for it (the bundle itself included).
 */
export async function bundleWorker(cache: SourceCacheOptions): Promise<{ file: string; codeCache: string; hit: boolean }> {
  const lookup = await cachedBySources(
    'worker-bundle',
    { esbuild: packageVersion('esbuild'), entry: 'containers/worker/src/main.ts' },
    async (base) => {
      const { file, inputs } = bundleInto(base, path.join(PACKAGE_ROOT, 'containers/worker/src/main.ts'));
      return { value: file, files: [...inputs, file] };
    },
    cache,
  );
  return { file: lookup.value, codeCache: codeCacheFile(lookup.value, lookup.fingerprint), hit: lookup.hit };
}

type TaskHandler = (input: unknown) => Promise<unknown>;

/**
 * aws-local-stepfunctions 3 calls Promise.withResolvers (Node.js >= 22); this package supports
 * Node.js >= 20.19, so the local runner provides it where the runtime does not.
 */
export function ensurePromiseWithResolvers(): void {
  const P = Promise as unknown as { withResolvers?: () => unknown };
  if (typeof P.withResolvers === 'function') return;
  P.withResolvers = () => {
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

/** A free TCP port on loopback (the embedded S3 server binds it a moment later). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function newRunId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `local-${t}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * `batchctl run-local`: runs the workflow the stack synthesizes, through aws-local-stepfunctions,
 * on one machine. Lambda tasks call the real handlers in-process with the environment the stack
 * gives them; Batch tasks go to a pool of long-lived worker processes (the bundled entrypoint in its
 * serve mode, one chunk at a time each); S3 is s3rver on loopback in a child process, the input linked
 * into its store. The synthesized definition and the worker bundle are cached while their sources are
 * unchanged (source-cache.ts).
 */
export async function runLocal(options: LocalRunOptions): Promise<LocalRunResult> {
  checkOptions(options);
  const started = Date.now();
  const workers = options.workers ?? Math.max(1, os.cpus().length);
  const runId = options.runId ?? newRunId();
  ensurePromiseWithResolvers();
  const stateDir = options.stateDir ?? path.join(os.tmpdir(), 'batchctl-run-local');
  fs.mkdirSync(stateDir, { recursive: true });
  const reporter = options.reporter ?? silentReporter;

  const cache: SourceCacheOptions = { directory: options.cacheDirectory };
  const tStart = Date.now();
  // The synthesis goes first: a cache read, or on a miss a child process that loads aws-cdk-lib,
  // synthesizes and validates while this process bundles s3rver and the worker (esbuild, on a miss),
  // starts the S3 server, links the input and starts the worker pool.
  let synthMs = 0;
  const synthesizing = synthesizeWorkflowCached(
    {
      bucketName: LOCAL_BUCKET,
      settings: {
        lambdaMaxRecords: options.lambdaMaxRecords ?? DEFAULT_LOCAL_LAMBDA_MAX_RECORDS,
        toleratedFailurePercentage: options.toleratedFailurePercentage ?? 0,
        // The same one retry of a failed chunk as on AWS, without the 30 s wait.
        chunkRetryIntervalSeconds: 1,
      },
    },
    cache,
  ).then((r) => {
    synthMs = Date.now() - tStart;
    return r;
  });
  // Settled below in every path (a failed start still waits for the child to end).
  synthesizing.catch(() => undefined);
  const s3Dir = path.join(stateDir, 's3');
  // An external S3-compatible server (options.s3) holds the run instead of the embedded one.
  const external = options.s3;
  // The embedded server's port is chosen here, so the worker processes (whose environment names the
  // endpoint) start at once instead of after the server process has loaded s3rver.
  const port = external ? 0 : await freeLoopbackPort();
  const endpoint = external ? external.endpoint : `http://127.0.0.1:${port}`;
  // The server's bundle is looked up (a few milliseconds when cached) and its process spawned before the
  // worker bundle's sources are checked: validation and planning wait for the server.
  let s3rverBundle: Awaited<ReturnType<typeof bundledS3rver>> | { error: unknown } | undefined;
  if (!external) s3rverBundle = await bundledS3rver(cache).catch((error: unknown) => ({ error }));
  const serverStarting: Promise<{ readonly endpoint: string; close(): Promise<void> }> = !s3rverBundle
    ? Promise.resolve({ endpoint, close: async () => undefined })
    : 'error' in s3rverBundle
      ? Promise.reject(s3rverBundle.error)
      : startEmbeddedS3(s3Dir, LOCAL_BUCKET, port, s3rverBundle);
  serverStarting.catch(() => undefined);
  const credentials = external ? { accessKeyId: external.accessKeyId, secretAccessKey: external.secretAccessKey } : { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const region = external?.region ?? 'us-east-1';
  // Workers read the input in place (a link under this folder) when the S3 server is the embedded one;
  // only the runner sets the variable: one inherited from the environment or given in workerEnv is dropped.
  const localInputRoot = external ? undefined : path.join(stateDir, 'local-input');
  const workerEnvBase = poolEnvironment({ processEnv: process.env, workerEnv: options.workerEnv, endpoint, region, credentials, localInputRoot });
  let pool: WorkerPool | undefined;
  const [bundleResult] = await Promise.allSettled([bundleWorker(cache)]);
  if (bundleResult.status === 'fulfilled') {
    pool = new WorkerPool({ workerJs: bundleResult.value.file, codeCache: bundleResult.value.codeCache, size: workers, env: workerEnvBase });
    // The worker processes start (Node, the bundle's modules) while the S3 server starts and the
    // synthesis, validation and planning run.
    pool.prestart();
  }
  const [serverResult] = await Promise.allSettled([serverStarting]);
  if (serverResult.status === 'rejected' || bundleResult.status === 'rejected') {
    await pool?.close();
    if (serverResult.status === 'fulfilled') await serverResult.value.close();
    await Promise.allSettled([synthesizing]);
    throw serverResult.status === 'rejected' ? serverResult.reason : (bundleResult as PromiseRejectedResult).reason;
  }
  const server = serverResult.value;
  const worker = bundleResult.value;
  options.onStarted?.({ endpoint, bucket: LOCAL_BUCKET, runId });
  const s3Plain = new S3Client({ endpoint, region, forcePathStyle: true, credentials });
  // The state machine's own S3 states write exactly what their parameters say (Tagging included), as on
  // AWS: through a client of their own that the handlers' tagWrites does not touch.
  const statesS3 = new S3Client({ endpoint, region, forcePathStyle: true, credentials });

  let aborted = false;
  const onAbort = (): void => {
    aborted = true;
    pool?.interrupt();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  let key = `inputs/${runId}/${path.basename(options.input)}`;
  let removeInput: (() => void | Promise<unknown>) | undefined;
  try {
    if (options.retry) {
      // A retry reads the run's own input key (the planner refuses another), whatever the fixed file is called.
      const plan = await s3Plain.send(new GetObjectCommand({ Bucket: LOCAL_BUCKET, Key: planKey(runId) })).then(
        async (res) => JSON.parse(await res.Body!.transformToString()) as RunPlan,
        () => undefined,
      );
      if (!plan?.source?.key) {
        throw new LocalRunInputError(`--retry: run ${runId} has no plan in ${stateDir}; give the --run-id and --state-dir of a finished local run`);
      }
      key = plan.source.key;
    }
    if (external) {
      // An external server gets a copy (a fixed part size keeps the ETag of the same file the same).
      const inputKey = key;
      // Tagged like every object of the run, with the stack's retention (so after the synthesis).
      tagWrites(s3Plain, { retentionDays: stackRetentionDays((await synthesizing).template) });
      await new Upload({ client: s3Plain, params: { Bucket: LOCAL_BUCKET, Key: inputKey, Body: fs.createReadStream(options.input) }, partSize: 64 * 1024 * 1024, queueSize: 1 }).done();
      removeInput = () => s3Plain.send(new DeleteObjectCommand({ Bucket: LOCAL_BUCKET, Key: inputKey })).catch(() => undefined);
    } else {
      // The input is linked into the store, not copied: same bytes, an ETag that stays the same while the
      // file is unchanged (a restarted run checks it against its plan).
      const inStore = linkObject(s3Dir, LOCAL_BUCKET, key, options.input);
      const inPlace = linkLocalInput(localInputRoot!, LOCAL_BUCKET, key, options.input);
      removeInput = () => {
        inStore.remove();
        inPlace.remove();
      };
    }
    const uploadMs = Date.now() - tStart;
    const synthesized = await synthesizing;
    const { template, functionArns, hit: definitionHit } = synthesized;
    const local: AslDefinition = toLocalDefinition(synthesized.definition);
    // Every object of the run carries the stack's retention tag (the handlers tag theirs with the
    // RETENTION_DAYS the synthesized stack gives them).
    const s3 = tagWrites(s3Plain, { retentionDays: stackRetentionDays(template) });

    const envOf = (params: unknown): Record<string, string> => {
      const arn = (params as { FunctionName?: string }).FunctionName;
      const id = Object.keys(functionArns).find((k) => functionArns[k] === arn);
      const fn = id ? (template.Resources as Record<string, { Properties: { Environment?: { Variables?: Record<string, unknown> } } }>)[id] : undefined;
      if (!fn) throw new Error(`no function in the synthesized template for ${arn}`);
      const vars = fn.Properties.Environment?.Variables ?? {};
      return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
    };
    const payloadOf = (params: unknown): unknown => (params as { Payload: unknown }).Payload;

    const limit = pLimit(workers);
    const invocations = { lambda: 0, batch: 0 };
    let chunkCount = 0;
    let estimatedRecords = 0;
    let chunksDone = 0;
    let chunksFailed = 0;
    let records = 0;
    const progress = (): void =>
      reporter.update({ chunksDone, chunksFailed, chunkCount, records, estimatedRecords, elapsedMs: Date.now() - started });
    // A chunk counts as finished once its done-marker or failure record is in S3 (what a restart sees).
    const finished = (index: number, ok: boolean, n = 0): void => {
      if (ok) chunksDone++;
      else chunksFailed++;
      records += n;
      progress();
      options.onChunkFinished?.({ index, ok });
    };
    const batchRecords = new Map<number, number>();
    const chunkTimings: { index: number; route: 'lambda' | 'batch'; records: number; durationMs: number }[] = [];
    const delivered = { queue: [] as unknown[], events: [] as unknown[] };

    const handlers: Record<string, TaskHandler> = {
      [STATE_NAMES.validate]: async (params) => {
        const handler = createValidateHandler({ s3, env: envOf(params) });
        return { StatusCode: 200, Payload: await handler(payloadOf(params) as never) };
      },
      [STATE_NAMES.plan]: async (params) => {
        const out = await createPlannerHandler({ s3, env: envOf(params) })(payloadOf(params));
        chunkCount = out.chunkCount;
        estimatedRecords = out.estimatedRecords;
        chunksDone = 0;
        reporter.start(out.chunkCount - out.chunksDone, out.estimatedRecords);
        return { StatusCode: 200, Payload: out };
      },
      [LOAD_MANIFEST_STATE]: async (params) => {
        const { Bucket, Key } = params as { Bucket: string; Key: string };
        const res = await s3.send(new GetObjectCommand({ Bucket, Key }));
        const items = parseManifest(await res.Body!.transformToString());
        chunkCount = items.filter((c) => !c.done).length;
        return items;
      },
      [STATE_NAMES.lambdaChunk]: (params) =>
        limit(async () => {
          const event = payloadOf(params) as ChunkEvent;
          const env = envOf(params);
          invocations.lambda++;
          const t0 = Date.now();
          const out = await runChunk(event, { s3, runsBucket: env.RUNS_BUCKET, retentionDays: retentionDaysFrom(env) });
          chunkTimings.push({ index: event.chunk.index, route: 'lambda', records: out.records, durationMs: Date.now() - t0 });
          finished(event.chunk.index, true, out.records);
          return { StatusCode: 200, Payload: out };
        }),
      [STATE_NAMES.batchChunk]: (params) =>
        limit(async () => {
          if (aborted) throw new Error('run aborted');
          const p = params as { JobName: string; ContainerOverrides: { Environment: { Name: string; Value: string }[] } };
          // The environment a Batch container of this chunk would see: the process's, then the job's overrides.
          const contract: Record<string, string> = {};
          for (const [k, v] of Object.entries(workerEnvBase)) if (v !== undefined) contract[k] = v;
          for (const e of p.ContainerOverrides.Environment) contract[e.Name] = String(e.Value);
          const index = Number(/-chunk-(\d+)$/.exec(p.JobName)?.[1] ?? -1);
          invocations.batch++;
          const t0 = Date.now();
          const outcome = await pool!.run(contract);
          const code = exitCodeOf(outcome);
          if (code !== 0) {
            const reason = typeof outcome.body.message === 'string' ? outcome.body.message : typeof outcome.body.error === 'string' ? outcome.body.error : lastLine(outcome.stderr);
            const err = new Error(JSON.stringify({ Status: 'FAILED', StatusReason: `worker failed with exit code ${code}: ${reason}`, Container: { ExitCode: code } }));
            err.name = 'States.TaskFailed';
            throw err;
          }
          const chunkRecordCount = typeof outcome.body.records === 'number' ? outcome.body.records : 0;
          chunkTimings.push({ index, route: 'batch', records: chunkRecordCount, durationMs: Date.now() - t0 });
          batchRecords.set(index, chunkRecordCount);
          return { JobId: p.JobName, JobName: p.JobName, Status: 'SUCCEEDED' };
        }),
      [STATE_NAMES.batchDone]: async (params) => {
        const out = await putObjectTask(statesS3)(params);
        const index = Number(/(\d+)$/.exec((params as { Key: string }).Key)?.[1] ?? -1);
        finished(index, true, batchRecords.get(index) ?? 0);
        return out;
      },
      [STATE_NAMES.recordFailure]: async (params) => {
        const out = await putObjectTask(statesS3)(params);
        finished(Number(/(\d+)\.json$/.exec((params as { Key: string }).Key)?.[1] ?? -1), false);
        return out;
      },
      [STATE_NAMES.aggregate]: async (params) => ({
        StatusCode: 200,
        Payload: await createAggregateHandler({ s3, env: envOf(params) })(payloadOf(params) as never),
      }),
      [STATE_NAMES.sendSqs]: async (params) => {
        delivered.queue.push((params as { MessageBody: unknown }).MessageBody);
        return { MessageId: `local-${delivered.queue.length}` };
      },
      [STATE_NAMES.putEvent]: async (params) => {
        for (const e of (params as { Entries: { Detail: unknown }[] }).Entries) delivered.events.push(e.Detail);
        return { Entries: [{ EventId: `local-${delivered.events.length}` }], FailedEntryCount: 0 };
      },
    };
    checkEveryTaskHandled(local, handlers);

    // The interpreter's validation (asl-validator) runs once per definition text: in the synthesis child
    // on a cache miss, and remembered in the cache for every later run.
    await validateOnce(local, cache, synthesized.validated);
    const machine = new StateMachine(local as never, { validationOptions: { noValidate: true } });
    const input = {
      runId,
      bucket: LOCAL_BUCKET,
      key,
      operation: options.operation,
      ...(options.chunkRecords !== undefined
        ? { chunkRecords: options.chunkRecords }
        : { chunkBytes: defaultLocalChunkBytes(fs.statSync(options.input).size, workers) }),
      ...(options.operationConfig !== undefined ? { operationConfig: options.operationConfig } : {}),
      ...(options.retry ? { retry: true } : {}),
    };
    const tExec = Date.now();
    const execution = machine.run(input, {
      overrides: { taskResourceLocalHandlers: handlers as never },
      context: { Execution: { Id: `local:${runId}`, Name: runId, Input: input, StartTime: new Date(started).toISOString() } },
    });
    const stop = (): void => execution.abort();
    options.signal?.addEventListener('abort', stop, { once: true });
    if (options.signal?.aborted) stop();
    let output: unknown;
    try {
      output = await execution.result;
    } catch (err) {
      if (aborted) throw new Error(`run ${runId} aborted; run again with --run-id ${runId} to continue it`);
      // A FAILED run ends in the RunFailed state after delivering its summary: report that summary.
      if (delivered.queue.length === 0) throw err;
    } finally {
      options.signal?.removeEventListener('abort', stop);
      reporter.stop();
    }
    const executionMs = Date.now() - tExec;
    const summary = (delivered.queue[delivered.queue.length - 1] ?? output) as RunSummary;
    let outputPath: string | undefined;
    if (summary.result) outputPath = await writeOutput(s3, summary, options.output);
    return {
      summary,
      status: summary.status,
      runId,
      outputPath,
      chunkCount: summary.chunks?.total ?? 0,
      invocations,
      records: summary.records ?? 0,
      durationMs: Date.now() - started,
      delivered,
      phases: { synthMs, uploadMs, executionMs },
      cache: { definition: definitionHit, workerBundle: worker.hit },
      workerProcesses: pool!.started,
      chunkTimings,
    };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await Promise.allSettled([synthesizing]);
    await pool?.close();
    // Only the link goes: every invocation links the input again (same file, same ETag).
    await removeInput?.();
    s3Plain.destroy();
    statesS3.destroy();
    await server.close();
  }
}

/**
 * The environment of the pool's worker processes (and the base of each chunk's contract): this
 * process's, the embedded S3's endpoint and credentials, `workerEnv`, and WORKER_LOCAL_INPUT_ROOT set
 * by the runner alone — to `localInputRoot` when given, else absent (a value inherited from the
 * environment or passed in `workerEnv` is dropped: nothing else picks which local files a worker reads).
 */
export function poolEnvironment(p: {
  readonly processEnv: NodeJS.ProcessEnv;
  readonly workerEnv?: Record<string, string>;
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly localInputRoot?: string;
}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...p.processEnv,
    AWS_ENDPOINT_URL_S3: p.endpoint,
    AWS_ENDPOINT_URL: p.endpoint,
    AWS_REGION: p.region,
    AWS_ACCESS_KEY_ID: p.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: p.credentials.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    LOG_LEVEL: 'info',
    ...p.workerEnv,
  };
  delete env[LOCAL_INPUT_ROOT_VARIABLE];
  if (p.localInputRoot) env[LOCAL_INPUT_ROOT_VARIABLE] = p.localInputRoot;
  return env;
}

/** The RETENTION_DAYS the synthesized workflow gives its functions (all the same); absent: the runtime's fallback. */
function stackRetentionDays(template: Record<string, unknown>): number {
  const resources = (template.Resources ?? {}) as Record<string, { Type: string; Properties?: Record<string, unknown> }>;
  for (const r of Object.values(resources)) {
    const vars = (r.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables;
    if (r.Type === 'AWS::Lambda::Function' && typeof vars?.RETENTION_DAYS === 'string') return retentionDaysFrom({ RETENTION_DAYS: vars.RETENTION_DAYS });
  }
  return retentionDaysFrom({});
}

function putObjectTask(s3: S3Client): TaskHandler {
  return async (params) => {
    const p = params as { Bucket: string; Key: string; Body: unknown; ContentType?: string; Tagging?: string };
    // Objects come from the Body.$ adaptation in toLocalDefinition (what States.JsonToString does on AWS).
    const body = typeof p.Body === 'string' ? p.Body : JSON.stringify(p.Body);
    await s3.send(new PutObjectCommand({ Bucket: p.Bucket, Key: p.Key, Body: body, ContentType: p.ContentType, Tagging: p.Tagging }));
    return { ETag: 'local' };
  };
}

/** Every Task state of the local definition must have a local handler, or the interpreter would call AWS. */
function checkEveryTaskHandled(def: AslDefinition, handlers: Record<string, TaskHandler>): void {
  const missing: string[] = [];
  const visit = (states: Record<string, Record<string, unknown>>): void => {
    for (const [name, s] of Object.entries(states)) {
      if (s.Type === 'Task' && !handlers[name]) missing.push(name);
      const proc = s.ItemProcessor as { States: Record<string, Record<string, unknown>> } | undefined;
      if (proc) visit(proc.States);
      for (const b of (s.Branches as { States: Record<string, Record<string, unknown>> }[] | undefined) ?? []) visit(b.States);
    }
  };
  visit(def.States as never);
  if (missing.length > 0) throw new Error(`the workflow has Task states without a local handler: ${missing.join(', ')}`);
}

/** The exit code the worker process would have ended with in batch mode, from its serve-mode answer (see serve.ts). */
function exitCodeOf(outcome: PoolOutcome): number {
  if (outcome.httpStatus === 0) return outcome.exitCode ?? EXIT_FAILED;
  if (outcome.httpStatus === 400) return EXIT_CONFIG;
  if (typeof outcome.body.status === 'string') return exitCodeFor(outcome.body as unknown as ChunkResult);
  return EXIT_FAILED;
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

/** The merged document, or for record-output operations the chunk outputs concatenated in input order. */
async function writeOutput(s3: S3Client, summary: RunSummary, output: string): Promise<string> {
  const target = path.resolve(output);
  if (summary.parts) {
    const res = await s3.send(new GetObjectCommand({ Bucket: summary.parts.bucket, Key: summary.parts.key }));
    const parts = JSON.parse(await res.Body!.transformToString()) as { bucket: string; key: string }[];
    const out = fs.createWriteStream(target);
    for (const part of parts) {
      const obj = await s3.send(new GetObjectCommand({ Bucket: part.bucket, Key: part.key }));
      for await (const chunk of obj.Body as AsyncIterable<Buffer>) {
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    return target;
  }
  const res = await s3.send(new GetObjectCommand({ Bucket: summary.result!.bucket, Key: summary.result!.key }));
  fs.writeFileSync(target, await res.Body!.transformToString());
  return target;
}
