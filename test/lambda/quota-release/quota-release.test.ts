import { releaseForEvent } from '../../../lambda/quota-release';
import type { BatchJobStateChangeEvent } from '../../../lambda/shared/batch-event';
import { admitQuota, QuotaExceededError } from '../../../lib/client';
import { activeCount, createQuotaTable, settingsWithClock } from '../../lib/client/moto-quota';

let table: Awaited<ReturnType<typeof createQuotaTable>>;

beforeAll(async () => {
  table = await createQuotaTable('release');
});

function terminal(status: string, tags: Record<string, string> | undefined, environment?: { name: string; value: string }[]): BatchJobStateChangeEvent {
  return {
    source: 'aws.batch',
    'detail-type': 'Batch Job State Change',
    detail: { jobId: 'batch-1', jobQueue: 'arn:aws:batch:us-east-1:123456789012:job-queue/q', status, tags, ...(environment ? { container: { environment } } : {}) },
  } as BatchJobStateChangeEvent;
}

test('a terminal event releases the job\'s slot, so the tenant\'s next job is admitted', async () => {
  const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 1, submissionsPerMinute: 100 } });
  await admitQuota(settings, 'rel-a', 'job-1');
  await expect(admitQuota(settings, 'rel-a', 'job-2')).rejects.toBeInstanceOf(QuotaExceededError);
  const outcome = await releaseForEvent(terminal('SUCCEEDED', { 'job-id': 'job-1', 'tenant-id': 'rel-a' }), settings);
  expect(outcome).toEqual({ jobId: 'job-1', tenantId: 'rel-a', released: true, reason: undefined });
  await expect(admitQuota(settings, 'rel-a', 'job-2')).resolves.toBeUndefined();
});

test('duplicate terminal events (SUCCEEDED twice, or FAILED after SUCCEEDED) release once', async () => {
  const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 5, submissionsPerMinute: 100 } });
  await admitQuota(settings, 'rel-b', 'job-1');
  await admitQuota(settings, 'rel-b', 'job-2');
  const event = terminal('FAILED', { 'job-id': 'job-1', 'tenant-id': 'rel-b' });
  expect((await releaseForEvent(event, settings)).released).toBe(true);
  expect((await releaseForEvent(event, settings)).released).toBe(false);
  expect((await releaseForEvent(terminal('SUCCEEDED', { 'job-id': 'job-1', 'tenant-id': 'rel-b' }), settings)).released).toBe(false);
  expect(await activeCount(table, 'rel-b')).toBe(1);
});

test('without tags the job id and tenant come from the container environment', async () => {
  const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 5, submissionsPerMinute: 100 } });
  await admitQuota(settings, 'rel-c', 'job-9');
  const outcome = await releaseForEvent(terminal('SUCCEEDED', undefined, [{ name: 'JOB_ID', value: 'job-9' }, { name: 'TENANT_ID', value: 'rel-c' }]), settings);
  expect(outcome).toMatchObject({ jobId: 'job-9', tenantId: 'rel-c', released: true });
  expect(await activeCount(table, 'rel-c')).toBe(0);
});

test('non-terminal events and jobs that are not BatchJobClient jobs release nothing', async () => {
  const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 5, submissionsPerMinute: 100 } });
  await admitQuota(settings, 'rel-d', 'job-1');
  expect(await releaseForEvent(terminal('RUNNING', { 'job-id': 'job-1', 'tenant-id': 'rel-d' }), settings)).toMatchObject({ released: false, reason: 'status RUNNING is not terminal' });
  expect(await releaseForEvent(terminal('SUCCEEDED', {}), settings)).toMatchObject({ released: false, reason: expect.stringMatching(/no job-id tag/) });
  // Another tenant's tag cannot release this tenant's slot.
  expect((await releaseForEvent(terminal('SUCCEEDED', { 'job-id': 'job-1', 'tenant-id': 'someone-else' }), settings)).released).toBe(false);
  expect(await activeCount(table, 'rel-d')).toBe(1);
});
