import {
  BatchClient,
  DeregisterJobDefinitionCommand,
  DescribeJobDefinitionsCommand,
  JobDefinition,
  TerminateJobCommand,
} from '@aws-sdk/client-batch';
import { batchClient, listAllJobs, listFromEnv } from '../shared/batch-list';
import { createLogger, errorMessage, Logger, LogSink } from '../shared/log';

/**
 * Scheduled hygiene for Batch:
 * - terminates jobs stuck in RUNNABLE or STARTING longer than `stuckAfterMs` (a RUNNABLE job that no
 *   compute environment can place waits forever: Batch has no default timeout for that state);
 * - terminates jobs RUNNING longer than `maxRunTimeMs` (a safety net for job definitions without timeout);
 * - deregisters job-definition revisions older than the newest `keepRevisions` that no active job in
 *   the given queues uses.
 * Every action is one JSON log line; with dryRun nothing is changed and the lines say `dryRun: true`.
 */

export const ACTIVE_STATUSES = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING'] as const;

export interface ActiveJob {
  readonly jobId: string;
  readonly jobName?: string;
  readonly jobQueue: string;
  readonly status: string;
  /** Epoch ms of submission. */
  readonly createdAt?: number;
  /** Epoch ms of STARTING -> RUNNING. */
  readonly startedAt?: number;
  readonly jobDefinition?: string;
}

export interface Termination {
  readonly job: ActiveJob;
  readonly reason: string;
  /** How long the job has been in the state that made it stuck, in seconds. */
  readonly ageSeconds: number;
}

export interface Thresholds {
  readonly stuckAfterMs: number;
  readonly maxRunTimeMs: number;
}

/** Which of `jobs` to terminate at `now`. Pure, so it is tested with any clock. */
export function decideTerminations(jobs: readonly ActiveJob[], now: number, t: Thresholds): Termination[] {
  const out: Termination[] = [];
  for (const job of jobs) {
    if (job.status === 'RUNNABLE' || job.status === 'STARTING') {
      if (typeof job.createdAt !== 'number') continue;
      const age = now - job.createdAt;
      if (age > t.stuckAfterMs) {
        out.push({ job, ageSeconds: Math.round(age / 1000), reason: `cdk-batch-platform cleanup: ${job.status} for ${formatDuration(age)}, limit ${formatDuration(t.stuckAfterMs)}` });
      }
    } else if (job.status === 'RUNNING') {
      const since = job.startedAt ?? job.createdAt;
      if (typeof since !== 'number') continue;
      const age = now - since;
      if (age > t.maxRunTimeMs) {
        out.push({ job, ageSeconds: Math.round(age / 1000), reason: `cdk-batch-platform cleanup: RUNNING for ${formatDuration(age)}, limit ${formatDuration(t.maxRunTimeMs)}` });
      }
    }
  }
  return out;
}

export interface RevisionRef {
  readonly jobDefinitionName: string;
  readonly revision: number;
  readonly jobDefinitionArn: string;
}

/**
 * ACTIVE revisions to deregister: all but the newest `keep` of each name, minus any revision an
 * active job references (by ARN, or by `name:revision`).
 */
export function decideDeregistrations(revisions: readonly RevisionRef[], keep: number, inUse: ReadonlySet<string>): RevisionRef[] {
  const byName = new Map<string, RevisionRef[]>();
  for (const r of revisions) byName.set(r.jobDefinitionName, [...(byName.get(r.jobDefinitionName) ?? []), r]);
  const out: RevisionRef[] = [];
  for (const list of byName.values()) {
    const sorted = [...list].sort((a, b) => b.revision - a.revision);
    for (const r of sorted.slice(keep)) {
      if (inUse.has(r.jobDefinitionArn) || inUse.has(`${r.jobDefinitionName}:${r.revision}`)) continue;
      out.push(r);
    }
  }
  return out.sort((a, b) => a.jobDefinitionName.localeCompare(b.jobDefinitionName) || a.revision - b.revision);
}

export interface CleanupConfig extends Thresholds {
  readonly jobQueues: readonly string[];
  readonly jobDefinitionNames: readonly string[];
  readonly keepRevisions: number;
  readonly dryRun: boolean;
}

export interface CleanupResult {
  readonly dryRun: boolean;
  readonly examinedJobs: number;
  readonly terminated: number;
  readonly terminateFailed: number;
  readonly deregistered: number;
  readonly deregisterFailed: number;
}

export interface CleanupDeps {
  readonly client: BatchClient;
  readonly now?: () => number;
  readonly sink?: LogSink;
  /** Lists active jobs of a queue in one status; defaults to paginated ListJobs. */
  readonly listJobs?: (queue: string, status: string) => Promise<ActiveJob[]>;
}

export async function cleanup(config: CleanupConfig, deps: CleanupDeps): Promise<CleanupResult> {
  const log = createLogger({ handler: 'cleanup', dryRun: config.dryRun }, deps.sink);
  const now = deps.now ? deps.now() : Date.now();
  const listJobs =
    deps.listJobs ??
    (async (queue: string, status: string): Promise<ActiveJob[]> =>
      (await listAllJobs(deps.client, queue, status)).map((s) => ({
        jobId: s.jobId!,
        jobName: s.jobName,
        jobQueue: queue,
        status: s.status ?? status,
        createdAt: s.createdAt,
        startedAt: s.startedAt,
        jobDefinition: s.jobDefinition,
      })));

  const active: ActiveJob[] = [];
  for (const queue of config.jobQueues) {
    for (const status of ACTIVE_STATUSES) active.push(...(await listJobs(queue, status)));
  }

  let terminated = 0;
  let terminateFailed = 0;
  for (const t of decideTerminations(active, now, config)) {
    const fields = { action: 'terminate', jobId: t.job.jobId, jobName: t.job.jobName, jobQueue: t.job.jobQueue, status: t.job.status, ageSeconds: t.ageSeconds, reason: t.reason };
    if (config.dryRun) {
      log.info('would terminate job', fields);
      terminated += 1;
      continue;
    }
    try {
      await deps.client.send(new TerminateJobCommand({ jobId: t.job.jobId, reason: t.reason }));
      log.info('terminated job', fields);
      terminated += 1;
    } catch (err) {
      log.error('could not terminate job', { ...fields, error: errorMessage(err) });
      terminateFailed += 1;
    }
  }

  const inUse = new Set<string>();
  for (const job of active) if (job.jobDefinition) inUse.add(job.jobDefinition);
  const { deregistered, deregisterFailed } = await cleanRevisions(config, deps.client, inUse, log);

  const result: CleanupResult = { dryRun: config.dryRun, examinedJobs: active.length, terminated, terminateFailed, deregistered, deregisterFailed };
  log.info('cleanup finished', { action: 'summary', ...result });
  return result;
}

async function cleanRevisions(config: CleanupConfig, client: BatchClient, inUse: ReadonlySet<string>, log: Logger): Promise<{ deregistered: number; deregisterFailed: number }> {
  const revisions: RevisionRef[] = [];
  for (const name of config.jobDefinitionNames) {
    for (const def of await describeActiveRevisions(client, name)) {
      if (def.jobDefinitionName && def.revision !== undefined && def.jobDefinitionArn) {
        revisions.push({ jobDefinitionName: def.jobDefinitionName, revision: def.revision, jobDefinitionArn: def.jobDefinitionArn });
      }
    }
  }
  let deregistered = 0;
  let deregisterFailed = 0;
  for (const r of decideDeregistrations(revisions, config.keepRevisions, inUse)) {
    const fields = { action: 'deregister', jobDefinitionName: r.jobDefinitionName, revision: r.revision, jobDefinitionArn: r.jobDefinitionArn, keepRevisions: config.keepRevisions };
    if (config.dryRun) {
      log.info('would deregister job definition revision', fields);
      deregistered += 1;
      continue;
    }
    try {
      await client.send(new DeregisterJobDefinitionCommand({ jobDefinition: r.jobDefinitionArn }));
      log.info('deregistered job definition revision', fields);
      deregistered += 1;
    } catch (err) {
      log.error('could not deregister job definition revision', { ...fields, error: errorMessage(err) });
      deregisterFailed += 1;
    }
  }
  return { deregistered, deregisterFailed };
}

async function describeActiveRevisions(client: BatchClient, name: string): Promise<JobDefinition[]> {
  const defs: JobDefinition[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(new DescribeJobDefinitionsCommand({ jobDefinitionName: name, status: 'ACTIVE', nextToken }));
    defs.push(...(page.jobDefinitions ?? []).filter((d) => d.status === undefined || d.status === 'ACTIVE'));
    nextToken = page.nextToken;
  } while (nextToken);
  return defs;
}

function formatDuration(ms: number): string {
  const minutes = Math.round(ms / 60000);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  return `${hours}h${minutes % 60 ? `${minutes % 60}m` : ''}`;
}

function positiveNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`cleanup: ${name} must be a number >= 0, got "${raw}"`);
  return n;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): CleanupConfig {
  return {
    jobQueues: listFromEnv('JOB_QUEUES', env),
    jobDefinitionNames: listFromEnv('JOB_DEFINITION_NAMES', env),
    stuckAfterMs: positiveNumber(env, 'STUCK_AFTER_SECONDS', 7200) * 1000,
    maxRunTimeMs: positiveNumber(env, 'MAX_RUN_TIME_SECONDS', 86400) * 1000,
    keepRevisions: Math.max(1, Math.floor(positiveNumber(env, 'KEEP_REVISIONS', 5))),
    dryRun: env.DRY_RUN === 'true',
  };
}

const client = batchClient();

export const handler = async (): Promise<CleanupResult> => cleanup(configFromEnv(), { client });
