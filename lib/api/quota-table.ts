import { Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { handlerEntry, PlatformFunction } from '../common/node-function';
import { propError } from '../common/validation';

/** Limits of one tenant (lib/client/quota.ts QuotaLimits). */
export interface TenantQuotaLimits {
  /** Jobs admitted and not yet SUCCEEDED or FAILED. */
  readonly maxActiveJobs: number;
  /** Submissions per calendar minute (UTC). */
  readonly submissionsPerMinute: number;
}

export const DEFAULT_MAX_ACTIVE_JOBS = 20;
export const DEFAULT_SUBMISSIONS_PER_MINUTE = 60;
export const DEFAULT_QUOTA_LEASE = Duration.hours(24);

export interface QuotaTableProps {
  /** Queues whose terminal job events release slots (every queue the submitters send jobs to, routes included). */
  readonly jobQueues: batch.IJobQueue[];
  /** Limits of every tenant without its own entry. @default { maxActiveJobs: 20, submissionsPerMinute: 60 } */
  readonly defaultLimits?: TenantQuotaLimits;
  /** Per-tenant overrides by tenant id (as the submit API derives it, e.g. `apikey:abc123`). @default - none */
  readonly tenantLimits?: Readonly<Record<string, Partial<TenantQuotaLimits>>>;
  /**
   * How long an admitted job holds its slot when its terminal event never arrives (the next refused
   * submit of the tenant frees expired slots). Longer than a job can stay queued plus run. @default Duration.hours(24)
   */
  readonly leaseDuration?: Duration;
  /** @default RemovalPolicy.DESTROY (counters rebuild themselves; nothing here is a record of value) */
  readonly removalPolicy?: RemovalPolicy;
  /** Retention of the release Lambda's log group. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Per-tenant admission quotas: a DynamoDB table of active-job counters, job leases and per-minute
 * windows (lib/client/quota.ts), and a Lambda that releases a job's slot on its terminal Batch event.
 * Give it to SubmitApi / QueueTriggeredJobs (`quota`) and to BatchJobClient users through the
 * `QuotaTableName` / `QuotaLimits` outputs.
 */
export class QuotaTable extends Construct {
  public readonly table: dynamodb.Table;
  public readonly releaseFunction: PlatformFunction;
  public readonly releaseRule: events.Rule;
  public readonly releaseDeadLetterQueue: sqs.Queue;
  /** The limits as the JSON the runtime parses (QUOTA_LIMITS). */
  public readonly limitsJson: string;
  /** QUOTA_TABLE, QUOTA_LIMITS and QUOTA_LEASE_SECONDS for a submitting function. */
  public readonly environment: Record<string, string>;

  constructor(scope: Construct, id: string, props: QuotaTableProps) {
    super(scope, id);
    if (!props.jobQueues?.length) throw propError(this, 'jobQueues', props.jobQueues ?? [], 'at least one job queue', 'is empty');
    const defaults = props.defaultLimits ?? { maxActiveJobs: DEFAULT_MAX_ACTIVE_JOBS, submissionsPerMinute: DEFAULT_SUBMISSIONS_PER_MINUTE };
    this.checkLimits('defaultLimits', defaults, true);
    for (const [tenant, limits] of Object.entries(props.tenantLimits ?? {})) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}$/.test(tenant)) {
        throw propError(this, `tenantLimits[${JSON.stringify(tenant)}]`, tenant, 'a tenant id: 1-128 ASCII letters, digits and . _ : @ + = -');
      }
      this.checkLimits(`tenantLimits.${tenant}`, limits, false);
    }
    const lease = props.leaseDuration ?? DEFAULT_QUOTA_LEASE;
    if (!Token.isUnresolved(lease.toSeconds()) && lease.toSeconds() < 60) throw propError(this, 'leaseDuration', lease.toString(), '1 minute or more', 'is too short');

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiresAt',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.limitsJson = Stack.of(this).toJsonString({ default: defaults, ...(props.tenantLimits ? { tenants: props.tenantLimits } : {}) });
    this.environment = { QUOTA_TABLE: this.table.tableName, QUOTA_LIMITS: this.limitsJson, QUOTA_LEASE_SECONDS: String(lease.toSeconds()) };

    this.releaseFunction = new PlatformFunction(this, 'ReleaseFunction', {
      entry: handlerEntry('quota-release/index.ts'),
      description: "Releases a tenant's quota slot when its Batch job SUCCEEDED or FAILED (idempotent per job)",
      timeout: Duration.seconds(10),
      logRetention: props.logRetention,
      environment: { QUOTA_TABLE: this.table.tableName },
    });
    this.table.grant(this.releaseFunction, 'dynamodb:DeleteItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem');
    if (this.releaseFunction.role) {
      Validations.of(this.releaseFunction.role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.',
      });
    }
    this.releaseDeadLetterQueue = new sqs.Queue(this, 'ReleaseDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.releaseDeadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead-letter queue of the EventBridge target of the quota-release Lambda (not an SQS redrive source, so cdk-nag cannot see it).',
    });
    this.releaseRule = new events.Rule(this, 'ReleaseRule', {
      description: 'Terminal Batch Job State Changes of the platform queues -> quota-release Lambda',
      eventPattern: {
        source: ['aws.batch'],
        detailType: ['Batch Job State Change'],
        detail: { jobQueue: props.jobQueues.map((q) => q.jobQueueArn), status: ['SUCCEEDED', 'FAILED'] },
      },
    });
    this.releaseRule.addTarget(
      new targets.LambdaFunction(this.releaseFunction, { deadLetterQueue: this.releaseDeadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(12) }),
    );
  }

  /** Admission rights for a submitting function: the transaction, the healing query and the counter repair. */
  public grantAdmit(grantee: iam.IGrantable): iam.Grant {
    return this.table.grant(grantee, 'dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Query');
  }

  private checkLimits(where: string, limits: Partial<TenantQuotaLimits>, required: boolean): void {
    for (const key of ['maxActiveJobs', 'submissionsPerMinute'] as const) {
      const v = limits[key];
      if (v === undefined && !required) continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw propError(this, `${where}.${key}`, v, 'a whole number >= 0');
    }
  }
}
