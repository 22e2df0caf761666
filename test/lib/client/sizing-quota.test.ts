import { DescribeJobsCommand } from '@aws-sdk/client-batch';
import { BatchJobClient, InvalidRequestError, QuotaExceededError, releaseQuota } from '../../../lib/client';
import { createMotoBatch, MotoBatch } from './moto-batch';
import { activeCount, createQuotaTable, recordingBatch, settingsWithClock } from './moto-quota';

let m: MotoBatch;
let table: Awaited<ReturnType<typeof createQuotaTable>>;

beforeAll(async () => {
  m = await createMotoBatch('sizing-quota');
  table = await createQuotaTable('sdk');
});

const clientWith = (extra: Partial<ConstructorParameters<typeof BatchJobClient>[0]> = {}) =>
  new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false, ...extra });

describe('sizing per submit (SDK)', () => {
  test('vcpus and memoryMiB become the job\'s containerOverrides.resourceRequirements', async () => {
    const rec = recordingBatch();
    const client = clientWith({ clients: { ...m, batch: rec.batch } });
    const job = await client.submit({ operation: 'measure', input: [], vcpus: 4, memoryMiB: 8192 });
    expect(rec.submitted).toHaveLength(1);
    expect(rec.submitted[0].containerOverrides?.resourceRequirements).toEqual([
      { type: 'VCPU', value: '4' },
      { type: 'MEMORY', value: '8192' },
    ]);
    // The job exists in Batch under the recorded request.
    const described = await m.batch.send(new DescribeJobsCommand({ jobs: [job.batchJobId] }));
    expect(described.jobs?.[0]?.jobName).toBe(job.jobName);
  });

  test('only one of the two given: the other is the operation\'s placement value', async () => {
    const rec = recordingBatch();
    await clientWith({ clients: { ...m, batch: rec.batch } }).submit({ operation: 'buffer', input: [], vcpus: 2 });
    expect(rec.submitted[0].containerOverrides?.resourceRequirements).toEqual([
      { type: 'VCPU', value: '2' },
      { type: 'MEMORY', value: '4096' },
    ]);
  });

  test('without sizing the job keeps its job definition\'s resources (no resourceRequirements override)', async () => {
    const rec = recordingBatch();
    await clientWith({ clients: { ...m, batch: rec.batch } }).submit({ operation: 'measure', input: [] });
    expect(rec.submitted[0].containerOverrides?.resourceRequirements).toBeUndefined();
  });

  test('out of the operation\'s bounds is refused naming field, value and range; nothing is submitted', async () => {
    const rec = recordingBatch();
    const err = await clientWith({ clients: { ...m, batch: rec.batch } })
      .submit({ operation: 'measure', input: [], vcpus: 64, memoryMiB: 1024 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    const errors = (err as InvalidRequestError).errors;
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ field: 'vcpus', value: '64', message: expect.stringContaining('1 to 16 vCPUs for measure') }),
        expect.objectContaining({ field: 'memoryMiB', value: '1024', message: expect.stringContaining('2048 to 65536 MiB for measure') }),
      ]),
    );
    expect(rec.submitted).toHaveLength(0);
  });

  test('the stack\'s ceiling (sizingLimits) narrows the operation\'s bounds', async () => {
    const err = await clientWith({ sizingLimits: { maxVcpus: 4, maxMemoryMiB: 8192 } })
      .submit({ operation: 'measure', input: [], vcpus: 8 })
      .catch((e: unknown) => e);
    expect((err as InvalidRequestError).errors).toEqual([
      expect.objectContaining({ field: 'vcpus', value: '8', message: expect.stringContaining('1 to 4 vCPUs for measure (the stack allows at most 4)') }),
    ]);
  });

  test('an operation that declares no sizing accepts only its placement\'s values', async () => {
    const err = await clientWith().submit({ operation: 'aggregate-defects', input: [], vcpus: 2 }).catch((e: unknown) => e);
    expect((err as InvalidRequestError).errors[0]).toMatchObject({ field: 'vcpus', message: expect.stringContaining('declares no sizing') });
  });
});

describe('per-tenant quotas (SDK)', () => {
  test('the N+1st active job of a tenant is refused with retryAfterSeconds; another tenant is not affected', async () => {
    const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 2, submissionsPerMinute: 100 } });
    const client = clientWith({ quota: settings });
    await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'active-a' });
    await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'active-a' });
    const err = await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'active-a' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuotaExceededError);
    expect(err).toMatchObject({ limit: 'maxActiveJobs', limitValue: 2, retryAfterSeconds: 30, exitCode: 7, tenantId: 'active-a' });
    expect((err as Error).message).toMatch(/tenant active-a may have at most 2 active jobs; retry after 30 s/);
    expect(await activeCount(table, 'active-a')).toBe(2);
    await expect(client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'active-b' })).resolves.toMatchObject({ created: true });
  });

  test('releasing a job (terminal event) lets a new one in; a duplicate release does not over-release', async () => {
    const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 1, submissionsPerMinute: 100 } });
    const client = clientWith({ quota: settings });
    const first = await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'rel' });
    await expect(client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'rel' })).rejects.toBeInstanceOf(QuotaExceededError);
    expect(await releaseQuota(settings, 'rel', first.jobId)).toBe(true);
    expect(await releaseQuota(settings, 'rel', first.jobId)).toBe(false);
    expect(await activeCount(table, 'rel')).toBe(0);
    const second = await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'rel' });
    // The duplicate did not free a second slot: the next one is refused again.
    await expect(client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'rel' })).rejects.toBeInstanceOf(QuotaExceededError);
    expect(await releaseQuota(settings, 'rel', first.jobId)).toBe(false);
    expect(await activeCount(table, 'rel')).toBe(1);
    expect(second.created).toBe(true);
  });

  test('submissions per minute: the N+1st of the minute is refused until the next minute (Retry-After counts down to it)', async () => {
    const { settings, clock } = settingsWithClock(table, { default: { maxActiveJobs: 100, submissionsPerMinute: 2 } });
    const client = clientWith({ quota: settings });
    await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'rate' });
    await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'rate' });
    const err = (await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'rate' }).catch((e: unknown) => e)) as QuotaExceededError;
    expect(err).toBeInstanceOf(QuotaExceededError);
    // The clock is at 12:00:10: 50 s to the next minute.
    expect(err).toMatchObject({ limit: 'submissionsPerMinute', limitValue: 2, retryAfterSeconds: 50 });
    clock.ms += 50_000;
    await expect(client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'rate' })).resolves.toMatchObject({ created: true });
  });

  test('per-tenant overrides win over the defaults', async () => {
    const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 1, submissionsPerMinute: 100 }, tenants: { big: { maxActiveJobs: 3 } } });
    const client = clientWith({ quota: settings });
    for (let i = 0; i < 3; i++) await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'big' });
    await expect(client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'big' })).rejects.toMatchObject({ limitValue: 3 });
  });

  test('an idempotent repeat of a submitted job takes no second slot', async () => {
    const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 1, submissionsPerMinute: 100 } });
    const client = clientWith({ quota: settings });
    const a = await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'idem', clientToken: 'tok-1' });
    const b = await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'idem', clientToken: 'tok-1' });
    expect(b).toMatchObject({ created: false, jobId: a.jobId });
    expect(await activeCount(table, 'idem')).toBe(1);
  });

  test('a refused or failed submit gives its slot back (Batch has no job)', async () => {
    const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 1, submissionsPerMinute: 100 } });
    const client = clientWith({ quota: settings, jobDefinition: 'no-such-definition' });
    await expect(client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'giveback' })).rejects.toBeInstanceOf(InvalidRequestError);
    expect(await activeCount(table, 'giveback')).toBe(0);
  });

  test('a lost terminal event is healed: a lease past its expiry is released when the tenant is next at its limit', async () => {
    const { settings, clock } = settingsWithClock(table, { default: { maxActiveJobs: 1, submissionsPerMinute: 100 } });
    const client = clientWith({ quota: settings });
    await client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'lost' });
    await expect(client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'lost' })).rejects.toBeInstanceOf(QuotaExceededError);
    clock.ms += 3601_000; // past the 1 h lease of settingsWithClock; no terminal event ever came
    await expect(client.submit({ operation: 'aggregate-defects', input: [], tenantId: 'lost' })).resolves.toMatchObject({ created: true });
    expect(await activeCount(table, 'lost')).toBe(1);
  });
});
