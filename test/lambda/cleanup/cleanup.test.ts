import { DescribeJobDefinitionsCommand, DescribeJobsCommand, JobDefinition } from '@aws-sdk/client-batch';
import { ActiveJob, cleanup, CleanupConfig, configFromEnv, decideDeregistrations, decideTerminations } from '../../../lambda/cleanup/index';
import { createMotoBatch, MotoBatch, registerRevision, submit } from '../backlog-probe/moto-batch';

/*
 * moto (no-Docker mode) finishes every job inside SubmitJob, so no job can really sit in RUNNABLE,
 * STARTING or RUNNING there. The tests submit real jobs to moto, present them to the cleanup as active
 * jobs with chosen ages through its `listJobs` seam, and let it call the real TerminateJob on moto:
 * moto stores the termination reason, so DescribeJobs shows exactly which jobs were terminated.
 * Job-definition revisions are real moto registrations, deregistered for real.
 */
const HOUR = 3600_000;
const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
let m: MotoBatch;

function config(overrides: Partial<CleanupConfig> = {}): CleanupConfig {
  return { jobQueues: [m.queueArn], jobDefinitionNames: [], stuckAfterMs: 2 * HOUR, maxRunTimeMs: 24 * HOUR, keepRevisions: 5, dryRun: false, ...overrides };
}

async function reasons(ids: string[]): Promise<Record<string, string | undefined>> {
  const res = await m.client.send(new DescribeJobsCommand({ jobs: ids }));
  return Object.fromEntries((res.jobs ?? []).map((j) => [j.jobId!, j.statusReason]));
}

/** Submits real jobs and returns them as active jobs in the given states and ages. */
async function activeJobs(prefix: string): Promise<{ jobs: ActiveJob[]; stuck: string[]; healthy: string[] }> {
  const spec: Array<[string, string, number, boolean]> = [
    ['runnable-3h', 'RUNNABLE', 3 * HOUR, true],
    ['runnable-1h', 'RUNNABLE', 1 * HOUR, false],
    ['starting-150m', 'STARTING', 2.5 * HOUR, true],
    ['running-25h', 'RUNNING', 25 * HOUR, true],
    ['running-2h', 'RUNNING', 2 * HOUR, false],
    ['pending-5h', 'PENDING', 5 * HOUR, false],
  ];
  const jobs: ActiveJob[] = [];
  const stuck: string[] = [];
  const healthy: string[] = [];
  for (const [name, status, age, isStuck] of spec) {
    const jobId = await submit(m, `${prefix}-${name}`);
    jobs.push({
      jobId,
      jobName: `${prefix}-${name}`,
      jobQueue: m.queueArn,
      status,
      createdAt: NOW - age - (status === 'RUNNING' ? HOUR : 0),
      startedAt: status === 'RUNNING' ? NOW - age : undefined,
      jobDefinition: m.jobDefinitionArn,
    });
    (isStuck ? stuck : healthy).push(jobId);
  }
  return { jobs, stuck, healthy };
}

const lister = (jobs: ActiveJob[]) => async (_queue: string, status: string) => jobs.filter((j) => j.status === status);

beforeAll(async () => {
  m = await createMotoBatch('cleanup-test');
});

test('terminates exactly the jobs stuck in RUNNABLE/STARTING or running too long, and leaves the rest', async () => {
  const { jobs, stuck, healthy } = await activeJobs('term');
  const lines: string[] = [];
  const result = await cleanup(config(), { client: m.client, now: () => NOW, listJobs: lister(jobs), sink: (l) => lines.push(l) });
  expect(result).toEqual({ dryRun: false, examinedJobs: 6, terminated: 3, terminateFailed: 0, deregistered: 0, deregisterFailed: 0 });
  const after = await reasons([...stuck, ...healthy]);
  for (const id of stuck) expect(after[id]).toMatch(/^cdk-batch-platform cleanup: /);
  for (const id of healthy) expect(after[id]).toBeUndefined();
  const actions = lines.map((l) => JSON.parse(l)).filter((l) => l.action === 'terminate');
  expect(actions.map((a) => a.jobId).sort()).toEqual([...stuck].sort());
  expect(actions[0]).toMatchObject({ level: 'info', message: 'terminated job', dryRun: false, jobQueue: m.queueArn });
});

test('dry run terminates nothing but reports what it would do', async () => {
  const { jobs, stuck, healthy } = await activeJobs('dry');
  const lines: string[] = [];
  const result = await cleanup(config({ dryRun: true }), { client: m.client, now: () => NOW, listJobs: lister(jobs), sink: (l) => lines.push(l) });
  expect(result.terminated).toBe(3);
  expect(result.dryRun).toBe(true);
  const after = await reasons([...stuck, ...healthy]);
  for (const id of [...stuck, ...healthy]) expect(after[id]).toBeUndefined();
  expect(lines.map((l) => JSON.parse(l)).filter((l) => l.message === 'would terminate job')).toHaveLength(3);
});

async function revisionStates(name: string): Promise<Record<number, string>> {
  const res = await m.client.send(new DescribeJobDefinitionsCommand({ jobDefinitionName: name }));
  return Object.fromEntries((res.jobDefinitions ?? []).map((d: JobDefinition) => [d.revision!, d.status!]));
}

test('deregisters revisions older than the newest N unless an active job uses them', async () => {
  const name = 'cleanup-test-revisions';
  const arns: string[] = [];
  for (let i = 0; i < 8; i++) arns.push(await registerRevision(m.client, name));
  const usingRevision2: ActiveJob = { jobId: await submit(m, 'rev-user'), jobQueue: m.queueArn, status: 'RUNNING', createdAt: NOW, startedAt: NOW, jobDefinition: arns[1] };
  const lines: string[] = [];
  const result = await cleanup(config({ jobDefinitionNames: [name] }), { client: m.client, now: () => NOW, listJobs: lister([usingRevision2]), sink: (l) => lines.push(l) });
  expect(result.deregistered).toBe(2);
  const states = await revisionStates(name);
  expect(states).toEqual({ 1: 'INACTIVE', 2: 'ACTIVE', 3: 'INACTIVE', 4: 'ACTIVE', 5: 'ACTIVE', 6: 'ACTIVE', 7: 'ACTIVE', 8: 'ACTIVE' });
  expect(lines.map((l) => JSON.parse(l)).filter((l) => l.action === 'deregister').map((l) => l.revision)).toEqual([1, 3]);
});

test('dry run deregisters nothing', async () => {
  const name = 'cleanup-test-revisions-dry';
  for (let i = 0; i < 7; i++) await registerRevision(m.client, name);
  const result = await cleanup(config({ jobDefinitionNames: [name], dryRun: true }), { client: m.client, now: () => NOW, listJobs: lister([]), sink: () => undefined });
  expect(result.deregistered).toBe(2);
  expect(Object.values(await revisionStates(name)).every((s) => s === 'ACTIVE')).toBe(true);
});

test('end to end against moto with the real ListJobs: finished jobs are left alone, old revisions go', async () => {
  const name = 'cleanup-test-e2e';
  for (let i = 0; i < 3; i++) await registerRevision(m.client, name);
  await submit(m, 'e2e-finished');
  const result = await cleanup(config({ jobDefinitionNames: [name], keepRevisions: 2 }), { client: m.client, now: () => NOW, sink: () => undefined });
  expect(result).toEqual({ dryRun: false, examinedJobs: 0, terminated: 0, terminateFailed: 0, deregistered: 1, deregisterFailed: 0 });
  expect(await revisionStates(name)).toEqual({ 1: 'INACTIVE', 2: 'ACTIVE', 3: 'ACTIVE' });
});

test('decideTerminations uses createdAt for RUNNABLE/STARTING and startedAt for RUNNING', () => {
  const jobs: ActiveJob[] = [
    { jobId: 'a', jobQueue: 'q', status: 'RUNNING', createdAt: NOW - 30 * HOUR, startedAt: NOW - 1 * HOUR },
    { jobId: 'b', jobQueue: 'q', status: 'STARTING', createdAt: NOW - 2 * HOUR - 1 },
  ];
  expect(decideTerminations(jobs, NOW, { stuckAfterMs: 2 * HOUR, maxRunTimeMs: 24 * HOUR }).map((t) => t.job.jobId)).toEqual(['b']);
});

test('decideDeregistrations keeps the newest N of each name', () => {
  const revs = [1, 2, 3, 4].map((r) => ({ jobDefinitionName: 'x', revision: r, jobDefinitionArn: `arn:x:${r}` }));
  expect(decideDeregistrations(revs, 3, new Set(['x:1'])).map((r) => r.revision)).toEqual([]);
  expect(decideDeregistrations(revs, 2, new Set()).map((r) => r.revision)).toEqual([1, 2]);
});

test('reads its configuration from the environment the construct sets', () => {
  expect(configFromEnv({ JOB_QUEUES: 'a,b', JOB_DEFINITION_NAMES: 'w', STUCK_AFTER_SECONDS: '60', MAX_RUN_TIME_SECONDS: '120', KEEP_REVISIONS: '2', DRY_RUN: 'true' })).toEqual({
    jobQueues: ['a', 'b'], jobDefinitionNames: ['w'], stuckAfterMs: 60000, maxRunTimeMs: 120000, keepRevisions: 2, dryRun: true,
  });
  expect(() => configFromEnv({ STUCK_AFTER_SECONDS: 'two hours' })).toThrow(/STUCK_AFTER_SECONDS must be a number/);
});
