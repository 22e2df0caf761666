import { paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  ExecutionListItem,
  paginateListExecutions,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { readRunProgress, RunProgress } from '../../../lambda/aggregate/progress';
import { planKey, RUN_ID_PATTERN, RUN_IDENTITY_FIELDS, RunPlan, RUNS_PREFIX, summaryKey } from '../../../lambda/planner/run-layout';
import { readJson } from '../../../lambda/shared/s3-objects';
import { ConflictError, InvalidRequestError, toClientError } from '../errors';
import { RunNotFoundError } from './errors';

/**
 * Runs of the chunked processing workflow, read from the work bucket's `runs/` (plan, done-markers,
 * failures, summary) and, when a state machine is known, from Step Functions (the execution named by
 * the run id and its retries `{runId}-retry-{time}`). Behind `batchctl runs list | status | retry`.
 */
export interface RunsClientOptions {
  readonly s3: S3Client;
  /** Bucket holding `runs/{runId}/...`. */
  readonly runsBucket: string;
  /** Without it (a local run's bucket), status comes from S3 alone and retry is not possible. */
  readonly sfn?: SFNClient;
  readonly stateMachineArn?: string;
  readonly now?: () => Date;
}

/**
 * RUNNING until the aggregator wrote the summary; then the summary's SUCCEEDED / PARTIAL / FAILED.
 * An execution that stopped without a summary gives its own status (FAILED, TIMED_OUT, ABORTED).
 */
export type RunState = 'RUNNING' | 'SUCCEEDED' | 'PARTIAL' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';
export const TERMINAL_RUN_STATES: readonly RunState[] = ['SUCCEEDED', 'PARTIAL', 'FAILED', 'TIMED_OUT', 'ABORTED'];

export interface RunExecution {
  readonly name: string;
  readonly arn: string;
  readonly status: string;
  readonly startedAt?: string;
  readonly stoppedAt?: string;
}

export interface RunStatus {
  readonly runId: string;
  readonly state: RunState;
  /** The run's identifying fields (plan.json). */
  readonly identity?: Record<string, string>;
  readonly operation?: string;
  /** When this attempt started: the latest execution's start, else the plan's (or retry's) time. */
  readonly startedAt?: string;
  /** Retries so far. */
  readonly attempt: number;
  readonly chunks: { readonly total: number; readonly done: number; readonly failed: number; readonly pending: number };
  readonly records: { readonly done: number; readonly estimated: number };
  /** Fraction of chunks finished (done or failed), 0-1. */
  readonly progress: number;
  /** Records per second of this attempt (null before the first record or without a start time). */
  readonly recordsPerSecond: number | null;
  /** Seconds left at the current pace (0 when finished, null when unknown). */
  readonly etaSeconds: number | null;
  /** The latest execution of the run (Step Functions), when a state machine was given. */
  readonly execution?: RunExecution;
}

export const isTerminal = (s: RunStatus): boolean => TERMINAL_RUN_STATES.includes(s.state);

/** `{runId}-retry-{yyyymmddThhmmss}` fits the 80-character execution name limit for any run id. */
export const retryExecutionPrefix = (runId: string): string => `${runId.slice(0, 56)}-retry-`;

export class RunsClient {
  constructor(private readonly o: RunsClientOptions) {}

  /** The most recent runs under `runs/` (by plan time), newest first. */
  public async list(options: { limit?: number } = {}): Promise<RunStatus[]> {
    const ids: string[] = [];
    try {
      for await (const page of paginateListObjectsV2({ client: this.o.s3 }, { Bucket: this.o.runsBucket, Prefix: RUNS_PREFIX, Delimiter: '/' })) {
        for (const p of page.CommonPrefixes ?? []) {
          const id = p.Prefix!.slice(RUNS_PREFIX.length, -1);
          if (RUN_ID_PATTERN.test(id)) ids.push(id);
        }
      }
    } catch (err) {
      throw toClientError(err, 'ListObjectsV2', { bucket: this.o.runsBucket });
    }
    const executions = await this.executions();
    const plans = await Promise.all(ids.map(async (id) => ({ id, plan: await retryTornRead(() => this.readPlan(id)) })));
    const planned = plans
      .filter((p): p is { id: string; plan: RunPlan } => p.plan !== undefined)
      .sort((a, b) => startOf(b.plan).localeCompare(startOf(a.plan)))
      .slice(0, options.limit ?? 20);
    return Promise.all(planned.map((p) => retryTornRead(() => this.statusOf(p.id, p.plan, executions))));
  }

  /** One run's progress and state. */
  public async status(runId: string): Promise<RunStatus> {
    checkRunId(runId);
    return retryTornRead(async () => {
      const plan = await this.readPlan(runId);
      const executions = await this.executions(runId);
      if (!plan && executions.length === 0) throw new RunNotFoundError(runId, this.o.runsBucket);
      return this.statusOf(runId, plan, executions);
    });
  }

  /**
   * Starts a retry of a finished run: an execution `{runId}-retry-{time}` with the run's own input
   * (from plan.json) and `retry: true`; the planner reruns only failed chunks and chunks whose bytes
   * changed. Refused while an execution of the run is running or when it already SUCCEEDED.
   */
  public async retry(runId: string): Promise<{ runId: string; executionArn: string; executionName: string; input: Record<string, unknown> }> {
    checkRunId(runId);
    if (!this.o.sfn || !this.o.stateMachineArn) {
      throw new InvalidRequestError('runs retry needs the workflow', [
        { field: 'stateMachine', message: 'give --state-machine <arn>, set BATCH_STATE_MACHINE_ARN, or use --stack ChunkedProcessing-<stage> (its StateMachineArn output)' },
      ]);
    }
    const plan = await this.readPlan(runId);
    if (!plan) throw new RunNotFoundError(runId, this.o.runsBucket);
    const current = await this.status(runId);
    if (current.state === 'RUNNING') {
      throw new ConflictError(`run ${runId} is still running${current.execution ? ` (execution ${current.execution.name})` : ''}; retry it once it finished`);
    }
    if (current.state === 'SUCCEEDED') throw new ConflictError(`run ${runId} already SUCCEEDED; there is nothing to retry`);
    const input = retryInput(plan);
    const executionName = `${retryExecutionPrefix(runId)}${(this.o.now ?? (() => new Date()))().toISOString().replace(/[-:]/g, '').slice(0, 15)}`;
    try {
      const res = await this.o.sfn.send(
        new StartExecutionCommand({ stateMachineArn: this.o.stateMachineArn, name: executionName, input: JSON.stringify(input) }),
      );
      return { runId, executionArn: res.executionArn!, executionName, input };
    } catch (err) {
      if ((err as { name?: string }).name === 'ExecutionAlreadyExists') {
        throw new ConflictError(`a retry of run ${runId} named ${executionName} already exists; wait a second and try again`);
      }
      throw toClientError(err, 'StartExecution');
    }
  }

  private async readPlan(runId: string): Promise<RunPlan | undefined> {
    try {
      return await readJson<RunPlan>(this.o.s3, this.o.runsBucket, planKey(runId));
    } catch (err) {
      throw toClientError(err, 'GetObject', { bucket: this.o.runsBucket });
    }
  }

  /** Executions of the state machine (of one run when runId is given), newest first. */
  private async executions(runId?: string): Promise<ExecutionListItem[]> {
    if (!this.o.sfn || !this.o.stateMachineArn) return [];
    const out: ExecutionListItem[] = [];
    try {
      for await (const page of paginateListExecutions({ client: this.o.sfn }, { stateMachineArn: this.o.stateMachineArn })) {
        for (const e of page.executions ?? []) if (runId === undefined || executionOf(e.name ?? '', runId)) out.push(e);
      }
    } catch (err) {
      throw toClientError(err, 'ListExecutions');
    }
    return out.sort((a, b) => (b.startDate?.getTime() ?? 0) - (a.startDate?.getTime() ?? 0));
  }

  private async statusOf(runId: string, plan: RunPlan | undefined, all: readonly ExecutionListItem[]): Promise<RunStatus> {
    let progress: RunProgress;
    let summary: { status?: string } | undefined;
    try {
      progress = await readRunProgress(this.o.s3, this.o.runsBucket, runId);
      summary = await readJson<{ status?: string }>(this.o.s3, this.o.runsBucket, summaryKey(runId));
    } catch (err) {
      throw toClientError(err, 'GetObject', { bucket: this.o.runsBucket });
    }
    const latest = await this.latestExecution(runId, all);
    const state = stateOf(summary?.status, latest?.status);
    const startedAt = latest?.startedAt ?? plan?.retriedAt ?? plan?.createdAt;
    const total = progress.chunkCount;
    const finished = progress.chunksDone + progress.chunksFailed;
    const now = (this.o.now ?? (() => new Date()))().getTime();
    const end = latest?.stoppedAt ? Date.parse(latest.stoppedAt) : now;
    const seconds = startedAt ? Math.max(0, (end - Date.parse(startedAt)) / 1000) : 0;
    const rate = seconds > 0 && progress.recordsDone > 0 ? progress.recordsDone / seconds : null;
    const remaining = Math.max(0, progress.estimatedRecords - progress.recordsDone);
    const eta = TERMINAL_RUN_STATES.includes(state) || (total > 0 && finished >= total) ? 0 : rate ? Math.round(remaining / rate) : null;
    return {
      runId,
      state,
      ...(plan?.identity ? { identity: Object.fromEntries(RUN_IDENTITY_FIELDS.map((f) => [f, plan.identity![f]])) } : {}),
      ...(plan?.operation ? { operation: plan.operation } : {}),
      ...(startedAt ? { startedAt } : {}),
      attempt: plan?.attempt ?? 0,
      chunks: { total, done: progress.chunksDone, failed: progress.chunksFailed, pending: Math.max(0, total - finished) },
      records: { done: progress.recordsDone, estimated: progress.estimatedRecords },
      progress: total > 0 ? finished / total : 0,
      recordsPerSecond: rate === null ? null : Math.round(rate),
      etaSeconds: eta,
      ...(latest ? { execution: latest } : {}),
    };
  }

  /** The newest execution that belongs to the run (a retry's name prefix is checked against its input). */
  private async latestExecution(runId: string, all: readonly ExecutionListItem[]): Promise<RunExecution | undefined> {
    if (!this.o.sfn) return undefined;
    for (const e of all.filter((x) => executionOf(x.name ?? '', runId))) {
      let d;
      try {
        d = await this.o.sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn! }));
      } catch (err) {
        throw toClientError(err, 'DescribeExecution');
      }
      const input = safeJson(d.input);
      // A run id given in the input wins over the execution name (the planner uses it).
      if (typeof input?.runId === 'string' && input.runId !== runId) continue;
      return {
        name: d.name ?? e.name!,
        arn: d.executionArn ?? e.executionArn!,
        status: d.status ?? e.status ?? 'UNKNOWN',
        ...(d.startDate ? { startedAt: d.startDate.toISOString() } : {}),
        ...(d.stopDate ? { stoppedAt: d.stopDate.toISOString() } : {}),
      };
    }
    return undefined;
  }
}

/**
 * S3 replaces an object atomically, but local S3 servers (s3rver behind run-local) may serve an object
 * half-written, or cut its body off, while the planner or aggregator rewrites it: such a read is not
 * JSON, or ends with ECONNRESET "aborted". Read again.
 */
async function retryTornRead<T>(read: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await read();
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause ?? err;
      const c = cause as { code?: string; name?: string; message?: string };
      const torn = cause instanceof SyntaxError || ((c.code === 'ECONNRESET' || c.name === 'ECONNRESET') && c.message === 'aborted');
      if (!torn || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 50 * i));
    }
  }
}

function executionOf(name: string, runId: string): boolean {
  return name === runId || name.startsWith(retryExecutionPrefix(runId));
}

function stateOf(summaryStatus: string | undefined, executionStatus: string | undefined): RunState {
  if (executionStatus === 'RUNNING' || executionStatus === 'PENDING_REDRIVE') return 'RUNNING';
  if (summaryStatus === 'SUCCEEDED' || summaryStatus === 'PARTIAL' || summaryStatus === 'FAILED') return summaryStatus;
  if (executionStatus === 'FAILED' || executionStatus === 'TIMED_OUT' || executionStatus === 'ABORTED') return executionStatus;
  return 'RUNNING';
}

function startOf(plan: RunPlan): string {
  return plan.retriedAt ?? plan.createdAt ?? '';
}

function checkRunId(runId: string): void {
  if (!RUN_ID_PATTERN.test(runId)) {
    throw new InvalidRequestError('invalid run id', [{ field: 'runId', value: runId, message: `(${JSON.stringify(runId)}) must be 1-80 characters of A-Z a-z 0-9 _ -, starting with a letter or digit` }]);
  }
}

/** The execution input of a retry: the run's own input, from its plan, plus `retry: true`. */
export function retryInput(plan: RunPlan): Record<string, unknown> {
  const source = plan.source ?? (plan.inputs.length === 1 ? { bucket: plan.inputs[0].bucket, key: plan.inputs[0].key } : undefined);
  if (!source) throw new ConflictError(`run ${plan.runId} was planned before retries existed and read a prefix; start a new run instead`);
  const identity = Object.fromEntries(RUN_IDENTITY_FIELDS.filter((f) => plan.identity && plan.identity[f] !== 'none').map((f) => [f, plan.identity![f]]));
  return {
    runId: plan.runId,
    retry: true,
    bucket: source.bucket,
    ...(source.key !== undefined ? { key: source.key } : { prefix: source.prefix ?? '' }),
    ...('format' in source && source.format ? { format: source.format } : {}),
    operation: plan.operation,
    operationConfig: plan.operationConfig,
    ...(plan.chunkBytes !== undefined ? { chunkBytes: plan.chunkBytes } : { chunkRecords: plan.chunkRecords }),
    lambdaMaxRecords: plan.lambdaMaxRecords,
    ...identity,
  };
}

function safeJson(text: string | undefined): Record<string, unknown> | undefined {
  try {
    const v = text ? (JSON.parse(text) as unknown) : undefined;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
