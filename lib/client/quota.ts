import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { QuotaExceededError } from './errors';

/**
 * Per-tenant admission quotas, enforced at submit on every path (SDK, submit API, queue), in one
 * DynamoDB table (the QuotaTable construct), all under the tenant's partition `tenant#<tenantId>`:
 *
 * - `active`: the tenant's active-jobs counter `n`;
 * - `job#<jobId>`: one lease per admitted job, until `leaseUntil` (epoch seconds);
 * - `minute#<epoch minute>`: the submissions of that minute `n`, expired by DynamoDB TTL (`expiresAt`).
 *
 * Admission is ONE TransactWriteItems: window + 1 (if below the per-minute limit), counter + 1 (if
 * below the active limit) and the lease put (if the job has none), so two concurrent submits can
 * never both take the last slot. Release (a terminal Batch event, lambda/quota-release) deletes the
 * lease and decrements the counter in one transaction conditioned on the lease existing: a duplicate
 * event finds no lease and changes nothing. A lost event is healed when the tenant is next at its
 * limit: leases past `leaseUntil` are released the same way, and a counter above the number of
 * leases (a lease deleted by hand) is set back to that number.
 */
export interface QuotaLimits {
  /** Jobs of the tenant admitted and not yet SUCCEEDED or FAILED. */
  readonly maxActiveJobs: number;
  /** Submissions the tenant may make per calendar minute (UTC). */
  readonly submissionsPerMinute: number;
}

export interface QuotaConfig {
  /** The limits of every tenant without its own entry. */
  readonly default: QuotaLimits;
  /** Per-tenant overrides by tenant id (what is left out comes from `default`). */
  readonly tenants?: Readonly<Record<string, Partial<QuotaLimits>>>;
}

export interface QuotaSettings {
  readonly tableName: string;
  readonly config: QuotaConfig;
  readonly dynamodb: DynamoDBClient;
  /** How long a job's lease lasts when its terminal event never arrives. @default 86400 (24 h) */
  readonly leaseSeconds: number;
  /** Retry-After when the active-jobs limit is reached (jobs end at no predictable time). @default 30 */
  readonly activeRetryAfterSeconds: number;
  /** Clock in ms (injected by tests). @default Date.now */
  readonly now: () => number;
}

export const DEFAULT_LEASE_SECONDS = 86_400;
export const DEFAULT_ACTIVE_RETRY_AFTER_SECONDS = 30;
/** Environment variables the submit Lambdas read (the QuotaTable construct sets them). */
export const QUOTA_ENV = { table: 'QUOTA_TABLE', limits: 'QUOTA_LIMITS', leaseSeconds: 'QUOTA_LEASE_SECONDS' } as const;
/** Requests without a tenant (trusted SDK callers) share this quota key; no tenant id can be `-`. */
export const NO_TENANT_KEY = '-';

/** The quota settings from the environment, or undefined when no quota table is configured. */
export function quotaFromEnv(env: NodeJS.ProcessEnv = process.env, dynamodb?: DynamoDBClient): QuotaSettings | undefined {
  const tableName = env[QUOTA_ENV.table];
  if (!tableName) return undefined;
  const config = parseQuotaConfig(env[QUOTA_ENV.limits], QUOTA_ENV.limits);
  const lease = env[QUOTA_ENV.leaseSeconds] ? Number(env[QUOTA_ENV.leaseSeconds]) : undefined;
  return quotaSettings({ tableName, config, dynamodb, leaseSeconds: lease });
}

/** Settings with their defaults. */
export function quotaSettings(options: {
  tableName: string;
  config: QuotaConfig;
  dynamodb?: DynamoDBClient;
  leaseSeconds?: number;
  activeRetryAfterSeconds?: number;
  now?: () => number;
}): QuotaSettings {
  checkLimits(options.config.default, 'default');
  for (const [tenant, limits] of Object.entries(options.config.tenants ?? {})) checkLimits(limits, `tenants.${tenant}`);
  return {
    tableName: options.tableName,
    config: options.config,
    dynamodb: options.dynamodb ?? new DynamoDBClient({}),
    leaseSeconds: options.leaseSeconds ?? DEFAULT_LEASE_SECONDS,
    activeRetryAfterSeconds: options.activeRetryAfterSeconds ?? DEFAULT_ACTIVE_RETRY_AFTER_SECONDS,
    now: options.now ?? Date.now,
  };
}

/** `{"default":{"maxActiveJobs":10,"submissionsPerMinute":60},"tenants":{"acme":{"maxActiveJobs":50}}}` -> QuotaConfig. */
export function parseQuotaConfig(text: string | undefined, source: string): QuotaConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text ?? '');
  } catch {
    throw new Error(`${source} must be JSON like {"default":{"maxActiveJobs":10,"submissionsPerMinute":60}}, got ${JSON.stringify(text)}`);
  }
  const config = parsed as QuotaConfig;
  if (!config || typeof config !== 'object' || !config.default) throw new Error(`${source} must have a "default" entry with maxActiveJobs and submissionsPerMinute`);
  return config;
}

function checkLimits(limits: Partial<QuotaLimits>, where: string): void {
  for (const key of ['maxActiveJobs', 'submissionsPerMinute'] as const) {
    const v = limits[key];
    if (v === undefined && where !== 'default') continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`quota ${where}.${key} (${JSON.stringify(v)}) must be a whole number >= 0`);
  }
}

/** The limits that apply to a tenant. */
export function limitsFor(config: QuotaConfig, tenantId: string | undefined): QuotaLimits {
  const own = tenantId !== undefined && Object.hasOwn(config.tenants ?? {}, tenantId) ? config.tenants![tenantId] : {};
  return { ...config.default, ...own };
}

const pk = (tenantId: string | undefined) => ({ S: `tenant#${tenantId ?? NO_TENANT_KEY}` });
const num = (n: number) => ({ N: String(n) });

/**
 * Admits one job of the tenant or throws QuotaExceededError (with retryAfterSeconds). A job that
 * already holds a lease (a retried submit of the same job id) is admitted without counting twice.
 */
export async function admit(settings: QuotaSettings, tenantId: string | undefined, jobId: string): Promise<void> {
  const limits = limitsFor(settings.config, tenantId);
  // A limit of 0 blocks the tenant (the conditions below would let the first item through).
  if (limits.submissionsPerMinute <= 0) throw new QuotaExceededError(tenantId, 'submissionsPerMinute', 0, settings.activeRetryAfterSeconds);
  if (limits.maxActiveJobs <= 0) throw new QuotaExceededError(tenantId, 'maxActiveJobs', 0, settings.activeRetryAfterSeconds);
  for (let attempt = 0; ; attempt++) {
    const failed = await tryAdmit(settings, tenantId, jobId, limits);
    if (failed === undefined || failed === 'lease') return;
    const nowMs = settings.now();
    if (failed === 'window') {
      const retryAfter = 60 - (Math.floor(nowMs / 1000) % 60);
      throw new QuotaExceededError(tenantId, 'submissionsPerMinute', limits.submissionsPerMinute, retryAfter);
    }
    // At the active limit: heal leases whose terminal event was lost, then try once more.
    if (attempt > 0 || !(await heal(settings, tenantId))) {
      throw new QuotaExceededError(tenantId, 'maxActiveJobs', limits.maxActiveJobs, settings.activeRetryAfterSeconds);
    }
  }
}

/** undefined when admitted, else which condition refused: the minute window, the active counter, or an existing lease. */
async function tryAdmit(settings: QuotaSettings, tenantId: string | undefined, jobId: string, limits: QuotaLimits): Promise<'window' | 'active' | 'lease' | undefined> {
  const nowMs = settings.now();
  const minute = Math.floor(nowMs / 60_000);
  try {
    await settings.dynamodb.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Update: {
              TableName: settings.tableName,
              Key: { pk: pk(tenantId), sk: { S: `minute#${minute}` } },
              UpdateExpression: 'SET n = if_not_exists(n, :zero) + :one, expiresAt = :exp',
              ConditionExpression: 'attribute_not_exists(n) OR n < :limit',
              ExpressionAttributeValues: { ':zero': num(0), ':one': num(1), ':limit': num(limits.submissionsPerMinute), ':exp': num((minute + 2) * 60) },
            },
          },
          {
            Update: {
              TableName: settings.tableName,
              Key: { pk: pk(tenantId), sk: { S: 'active' } },
              UpdateExpression: 'SET n = if_not_exists(n, :zero) + :one',
              ConditionExpression: 'attribute_not_exists(n) OR n < :limit',
              ExpressionAttributeValues: { ':zero': num(0), ':one': num(1), ':limit': num(limits.maxActiveJobs) },
            },
          },
          {
            Put: {
              TableName: settings.tableName,
              Item: {
                pk: pk(tenantId),
                sk: { S: `job#${jobId}` },
                jobId: { S: jobId },
                admittedAt: num(Math.floor(nowMs / 1000)),
                leaseUntil: num(Math.floor(nowMs / 1000) + settings.leaseSeconds),
              },
              ConditionExpression: 'attribute_not_exists(sk)',
            },
          },
        ],
      }),
    );
    return undefined;
  } catch (err) {
    if (!(err instanceof TransactionCanceledException)) throw err;
    const codes = (err.CancellationReasons ?? []).map((r) => r.Code);
    if (codes[2] === 'ConditionalCheckFailed') return 'lease';
    if (codes[0] === 'ConditionalCheckFailed') return 'window';
    if (codes[1] === 'ConditionalCheckFailed') return 'active';
    throw err;
  }
}

/**
 * Releases the job's slot: deletes its lease and decrements the tenant's counter, in one transaction
 * that only happens while the lease exists. Returns false when there was none (already released: a
 * duplicate terminal event, or a job admitted before quotas existed).
 */
export async function release(settings: Pick<QuotaSettings, 'tableName' | 'dynamodb'>, tenantId: string | undefined, jobId: string): Promise<boolean> {
  try {
    await settings.dynamodb.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Delete: {
              TableName: settings.tableName,
              Key: { pk: pk(tenantId), sk: { S: `job#${jobId}` } },
              ConditionExpression: 'attribute_exists(sk)',
            },
          },
          {
            Update: {
              TableName: settings.tableName,
              Key: { pk: pk(tenantId), sk: { S: 'active' } },
              UpdateExpression: 'SET n = n - :one',
              ConditionExpression: 'n > :zero',
              ExpressionAttributeValues: { ':zero': num(0), ':one': num(1) },
            },
          },
        ],
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof TransactionCanceledException) return false;
    throw err;
  }
}

/**
 * Heals the tenant's counter after lost terminal events: releases leases past `leaseUntil`, and sets a
 * counter above the number of leases back to it (conditioned on the value read, so a concurrent
 * admission is never overwritten). Returns whether a slot was freed.
 */
export async function heal(settings: QuotaSettings, tenantId: string | undefined): Promise<boolean> {
  const nowS = Math.floor(settings.now() / 1000);
  let freed = false;
  let live = 0;
  let counter: number | undefined;
  let startKey: Record<string, never> | undefined;
  do {
    const page = await settings.dynamodb.send(
      new QueryCommand({
        TableName: settings.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': pk(tenantId) },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      const sk = item.sk?.S ?? '';
      if (sk === 'active') counter = Number(item.n?.N ?? '0');
      if (!sk.startsWith('job#')) continue;
      if (Number(item.leaseUntil?.N ?? '0') < nowS) {
        if (await release(settings, tenantId, sk.slice('job#'.length))) freed = true;
      } else live++;
    }
    startKey = page.LastEvaluatedKey as Record<string, never> | undefined;
  } while (startKey);
  if (!freed && counter !== undefined && counter > live) {
    try {
      await settings.dynamodb.send(
        new UpdateItemCommand({
          TableName: settings.tableName,
          Key: { pk: pk(tenantId), sk: { S: 'active' } },
          UpdateExpression: 'SET n = :live',
          ConditionExpression: 'n = :seen',
          ExpressionAttributeValues: { ':live': num(live), ':seen': num(counter) },
        }),
      );
      freed = true;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  }
  return freed;
}
