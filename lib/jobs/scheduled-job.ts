import { ArnFormat, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { jobDefinitionArnAllRevisions } from '../common/job-definition-name';
import { checkInteger, checkRange, propError } from '../common/validation';
import { acknowledgeWildcardResource } from '../monitoring/nag';

export const DEFAULT_SCHEDULE_RETRY_ATTEMPTS = 10;
export const DEFAULT_SCHEDULE_MAX_EVENT_AGE = Duration.hours(1);
const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export interface ScheduledJobProps {
  /** Queue the job is submitted to. */
  readonly jobQueue: batch.IJobQueue;
  /** Job definition submitted: the revision deployed with the stack (its ARN is updated on each deploy). */
  readonly jobDefinition: batch.IJobDefinition;
  /**
   * When to submit: `ScheduleExpression.cron({ minute: '0', hour: '2', timeZone: TimeZone.EUROPE_BERLIN })`
   * or `ScheduleExpression.rate(Duration.hours(6))`.
   */
  readonly schedule: scheduler.ScheduleExpression;
  /**
   * Name of each submitted job (1-128 letters, digits, hyphens, underscores; starts alphanumeric).
   * @default - the construct id
   */
  readonly jobName?: string;
  /**
   * Job parameters (substituted into `Ref::name` placeholders of the command).
   * @default - the job definition's defaults
   */
  readonly parameters?: Record<string, string>;
  /**
   * Extra environment variables for the container.
   * @default - none
   */
  readonly environment?: Record<string, string>;
  /**
   * Tags of each submitted job (e.g. `{ 'tenant-id': 'ops' }`, which notifications report as tenantId).
   * @default - none
   */
  readonly tags?: Record<string, string>;
  /**
   * Retries of a failed SubmitJob call (0 to 185).
   * @default 10
   */
  readonly retryAttempts?: number;
  /**
   * How long Scheduler keeps retrying one run (1 minute to 24 hours).
   * @default Duration.hours(1)
   */
  readonly maxEventAge?: Duration;
  /**
   * Queue for runs that could not be submitted.
   * @default - a new encrypted, SSL-only queue
   */
  readonly deadLetterQueue?: sqs.IQueue;
  /**
   * @default - "Submits <jobName> on a schedule"
   */
  readonly description?: string;
  /**
   * @default true
   */
  readonly enabled?: boolean;
}

/**
 * Submits a Batch job on a schedule with EventBridge Scheduler (cron or rate, in a time zone).
 * aws-cdk-lib 2.276 has no Batch target for Scheduler, so this uses its universal target
 * (`arn:aws:scheduler:::aws-sdk:batch:submitJob`), whose input is the SubmitJob request of the Batch
 * API reference; the schedule's role may submit only this definition (all revisions) to this queue.
 */
export class ScheduledJob extends Construct {
  public readonly schedule: scheduler.Schedule;
  public readonly deadLetterQueue: sqs.IQueue;
  /** Role EventBridge Scheduler assumes to call SubmitJob. */
  public readonly role: iam.Role;
  /** The SubmitJob request sent on every run. */
  public readonly submitJobInput: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: ScheduledJobProps) {
    super(scope, id);
    const jobName = props.jobName ?? id;
    if (!Token.isUnresolved(jobName) && !JOB_NAME.test(jobName)) {
      throw propError(this, 'jobName', jobName, '1-128 letters, digits, hyphens and underscores, starting with a letter or digit');
    }
    checkInteger(this, 'retryAttempts', props.retryAttempts, 0);
    checkRange(this, 'retryAttempts', props.retryAttempts, 0, 185);
    const maxEventAge = props.maxEventAge ?? DEFAULT_SCHEDULE_MAX_EVENT_AGE;
    if (!Token.isUnresolved(maxEventAge.toSeconds())) checkRange(this, 'maxEventAge (seconds)', maxEventAge.toSeconds(), 60, 86400);

    if (props.deadLetterQueue) {
      this.deadLetterQueue = props.deadLetterQueue;
    } else {
      const dlq = new sqs.Queue(this, 'DeadLetterQueue', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      Validations.of(dlq).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason: 'This queue is the dead-letter queue of the EventBridge Scheduler target (not an SQS redrive source, so cdk-nag cannot see it).',
      });
      this.deadLetterQueue = dlq;
    }

    const input: Record<string, unknown> = {
      jobName,
      jobQueue: props.jobQueue.jobQueueArn,
      jobDefinition: props.jobDefinition.jobDefinitionArn,
    };
    if (props.parameters && Object.keys(props.parameters).length > 0) input.parameters = props.parameters;
    if (props.environment && Object.keys(props.environment).length > 0) {
      input.containerOverrides = { environment: Object.entries(props.environment).map(([name, value]) => ({ name, value })) };
    }
    if (props.tags && Object.keys(props.tags).length > 0) input.tags = props.tags;
    this.submitJobInput = input;

    const stack = Stack.of(this);
    this.role = new iam.Role(this, 'Role', {
      description: `EventBridge Scheduler submits ${jobName}`,
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
    });
    const definitionArn = jobDefinitionArnAllRevisions(this, props.jobDefinition);
    acknowledgeWildcardResource(this.role, definitionArn, 'Every revision (name:*) of the scheduled job definition: a deploy registers a new revision and the schedule must keep working.');
    const target = new schedulerTargets.Universal({
      role: this.role,
      service: 'batch',
      action: 'submitJob',
      input: scheduler.ScheduleTargetInput.fromObject(input),
      retryAttempts: props.retryAttempts ?? DEFAULT_SCHEDULE_RETRY_ATTEMPTS,
      maxEventAge,
      deadLetterQueue: this.deadLetterQueue,
      policyStatements: [
        new iam.PolicyStatement({
          actions: ['batch:SubmitJob'],
          resources: [props.jobQueue.jobQueueArn, definitionArn],
        }),
        ...(props.tags && Object.keys(props.tags).length > 0
          ? [new iam.PolicyStatement({ actions: ['batch:TagResource'], resources: [jobArnPattern(this, this.role)] })]
          : []),
      ],
    });

    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      schedule: props.schedule,
      target,
      description: props.description ?? `Submits ${jobName} on a schedule`,
      enabled: props.enabled ?? true,
    });
  }
}

/** Tagging at SubmitJob is authorized on the new job's ARN, unknown before the run. */
function jobArnPattern(scope: Construct, role: iam.IRole): string {
  const arn = Stack.of(scope).formatArn({ service: 'batch', resource: 'job', resourceName: '*', arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
  acknowledgeWildcardResource(role, arn, 'SubmitJob with tags needs batch:TagResource on the new job, whose id exists only after submission.');
  return arn;
}
