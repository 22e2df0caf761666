import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { releaseQuota } from '../../lib/client';
import { BatchJobStateChangeEvent } from '../shared/batch-event';

/**
 * Frees a tenant's quota slot when its job reaches SUCCEEDED or FAILED (lib/client/quota.ts). The
 * platform job id and tenant come from the job's tags (`job-id`, `tenant-id`, set by BatchJobClient at
 * submit), else from the container environment (JOB_ID, TENANT_ID). Release is idempotent per job:
 * a duplicate event finds no lease and changes nothing.
 */
export interface ReleaseOutcome {
  readonly jobId?: string;
  readonly tenantId?: string;
  readonly released: boolean;
  readonly reason?: string;
}

interface DetailWithEnvironment {
  readonly container?: { readonly environment?: readonly { name?: string; value?: string }[] };
}

export async function releaseForEvent(event: BatchJobStateChangeEvent, settings: { tableName: string; dynamodb: DynamoDBClient }): Promise<ReleaseOutcome> {
  const d = event.detail;
  if (event.source !== 'aws.batch' || event['detail-type'] !== 'Batch Job State Change' || !d) return { released: false, reason: 'not a Batch Job State Change' };
  if (d.status !== 'SUCCEEDED' && d.status !== 'FAILED') return { released: false, reason: `status ${d.status} is not terminal` };
  const env = new Map(((d as DetailWithEnvironment).container?.environment ?? []).map((e) => [e.name, e.value]));
  const jobId = d.tags?.['job-id'] ?? env.get('JOB_ID');
  const tenantId = d.tags?.['tenant-id'] ?? env.get('TENANT_ID') ?? undefined;
  if (!jobId) return { released: false, reason: 'no job-id tag or JOB_ID: not a job of BatchJobClient' };
  const released = await releaseQuota(settings, tenantId || undefined, jobId);
  return { jobId, tenantId, released, reason: released ? undefined : 'no lease (already released, or admitted without quotas)' };
}

let dynamodb: DynamoDBClient | undefined;

export async function handler(event: BatchJobStateChangeEvent): Promise<ReleaseOutcome> {
  const tableName = process.env.QUOTA_TABLE;
  if (!tableName) throw new Error('QUOTA_TABLE is not set: the QuotaTable construct sets it on the function');
  dynamodb ??= new DynamoDBClient({});
  const outcome = await releaseForEvent(event, { tableName, dynamodb });
  console.log(JSON.stringify({ level: 'info', handler: 'quota-release', batchJobId: event.detail?.jobId, ...outcome }));
  return outcome;
}
