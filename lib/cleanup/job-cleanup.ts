import { ArnFormat, Duration, Stack, Token } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { handlerEntry, PlatformFunction } from '../common/node-function';
import { checkInteger, propError } from '../common/validation';
import { acknowledgeLambdaBasics, acknowledgeWildcardResource } from '../monitoring/nag';
import { jobDefinitionArnAllRevisions, jobDefinitionNameOf } from '../common/job-definition-name';

export const DEFAULT_CLEANUP_RATE = Duration.hours(6);
export const DEFAULT_STUCK_AFTER = Duration.hours(2);
export const DEFAULT_MAX_RUN_TIME = Duration.hours(24);
export const DEFAULT_KEEP_REVISIONS = 5;

export interface JobCleanupProps {
  /** Queues whose stuck jobs are terminated. */
  readonly jobQueues: batch.IJobQueue[];
  /**
   * Job definitions whose old revisions are deregistered (revisions of these names only).
   * @default - none: no revision is deregistered
   */
  readonly jobDefinitions?: batch.IJobDefinition[];
  /**
   * How often the cleanup runs.
   * @default Duration.hours(6)
   */
  readonly rate?: Duration;
  /**
   * A job in RUNNABLE or STARTING longer than this (since submission) is terminated.
   * @default Duration.hours(2)
   */
  readonly stuckAfter?: Duration;
  /**
   * A job RUNNING longer than this is terminated.
   * @default Duration.hours(24)
   */
  readonly maxRunTime?: Duration;
  /**
   * Newest revisions of each job definition that are always kept.
   * @default 5
   */
  readonly keepRevisions?: number;
  /**
   * Whether the schedule runs. Off keeps the function (run it by hand) and its rule, disabled.
   * @default true
   */
  readonly enabled?: boolean;
  /**
   * Log what would be done, change nothing.
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * Retention of the log group of the cleanup Lambda.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Scheduled hygiene Lambda: terminates jobs stuck in RUNNABLE/STARTING or running past a maximum,
 * deregisters old unused job-definition revisions, logs each action as JSON and returns counts.
 */
export class JobCleanup extends Construct {
  public readonly function: PlatformFunction;
  public readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: JobCleanupProps) {
    super(scope, id);
    if (!props.jobQueues || props.jobQueues.length === 0) {
      throw propError(this, 'jobQueues', props.jobQueues ?? [], 'at least one job queue', 'is empty');
    }
    const rate = props.rate ?? DEFAULT_CLEANUP_RATE;
    const stuckAfter = props.stuckAfter ?? DEFAULT_STUCK_AFTER;
    const maxRunTime = props.maxRunTime ?? DEFAULT_MAX_RUN_TIME;
    for (const [name, d, min] of [['rate', rate, 60], ['stuckAfter', stuckAfter, 300], ['maxRunTime', maxRunTime, 300]] as const) {
      if (!Token.isUnresolved(d.toSeconds()) && d.toSeconds() < min) throw propError(this, name, d.toHumanString(), `${min} seconds or more`, 'is too short');
    }
    checkInteger(this, 'keepRevisions', props.keepRevisions, 1);
    const jobDefinitions = props.jobDefinitions ?? [];

    this.function = new PlatformFunction(this, 'Function', {
      entry: handlerEntry('cleanup/index.ts'),
      description: 'Terminates stuck Batch jobs and deregisters old job-definition revisions',
      timeout: Duration.minutes(5),
      logRetention: props.logRetention,
      // One run at a time: two overlapping runs would terminate and deregister the same things twice.
      reservedConcurrentExecutions: 1,
      environment: {
        JOB_QUEUES: props.jobQueues.map((q) => q.jobQueueArn).join(','),
        JOB_DEFINITION_NAMES: jobDefinitions.map((d) => jobDefinitionNameOf(d.jobDefinitionArn)).join(','),
        STUCK_AFTER_SECONDS: String(stuckAfter.toSeconds()),
        MAX_RUN_TIME_SECONDS: String(maxRunTime.toSeconds()),
        KEEP_REVISIONS: String(props.keepRevisions ?? DEFAULT_KEEP_REVISIONS),
        DRY_RUN: props.dryRun ? 'true' : 'false',
      },
    });

    const stack = Stack.of(this);
    const jobsArn = stack.formatArn({ service: 'batch', resource: 'job', resourceName: '*', arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
    const definitionArns = jobDefinitions.map((d) => jobDefinitionArnAllRevisions(this, d));
    this.function.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'ListAndDescribe', actions: ['batch:ListJobs', 'batch:DescribeJobs', 'batch:DescribeJobDefinitions'], resources: ['*'] }),
    );
    this.function.addToRolePolicy(new iam.PolicyStatement({ sid: 'TerminateJobs', actions: ['batch:TerminateJob'], resources: [jobsArn] }));
    if (definitionArns.length > 0) {
      this.function.addToRolePolicy(new iam.PolicyStatement({ sid: 'DeregisterOldRevisions', actions: ['batch:DeregisterJobDefinition'], resources: definitionArns }));
    }
    acknowledgeLambdaBasics(this.function, 'batch:ListJobs, DescribeJobs and DescribeJobDefinitions support no resource-level permissions');
    const role = this.function.role!;
    acknowledgeWildcardResource(
      role,
      jobsArn,
      'batch:TerminateJob authorizes on the job ARN, which carries only the job id (unknown at deploy time); Batch has no condition key for the job queue, so the handler terminates only jobs it listed from the given queues.',
    );
    for (const arn of definitionArns) {
      acknowledgeWildcardResource(role, arn, 'Every revision (name:*) of a job definition given to the construct: old revisions are exactly what it deregisters.');
    }

    this.rule = new events.Rule(this, 'Schedule', {
      description: 'Runs the Batch cleanup Lambda',
      schedule: events.Schedule.rate(rate),
      enabled: props.enabled ?? true,
    });
    this.rule.addTarget(new targets.LambdaFunction(this.function, { retryAttempts: 0 }));
  }
}
