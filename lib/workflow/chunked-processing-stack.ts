import { CfnOutput, Duration, Stack, StackProps } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { StageConfig } from '../stacks/stage-config';
import { ChunkedProcessingWorkflow, ChunkedProcessingWorkflowProps } from './chunked-processing-workflow';
import { WorkflowDashboard } from './workflow-dashboard';

/** Workflow settings a stage may change; the rest comes from the platform stack and the stage. */
export type ChunkedProcessingSettings = Omit<ChunkedProcessingWorkflowProps, 'jobQueue' | 'jobDefinition' | 'bucket' | 'inputBuckets'>;

export interface ChunkedProcessingStackProps extends StackProps {
  /** The stage (log retention and removal policy come from it). */
  readonly stage: StageConfig;
  /** Queue for the Batch-route chunks (from the platform stack). */
  readonly jobQueue: batch.IJobQueue;
  /** The worker job definition (from the platform stack). */
  readonly jobDefinition: batch.IJobDefinition;
  /** Work bucket for `runs/{runId}/...`, also readable as input. */
  readonly bucket: s3.IBucket;
  /**
   * More buckets to read inputs from.
   * @default - none
   */
  readonly inputBuckets?: s3.IBucket[];
  /**
   * Overrides of the workflow's settings.
   * @default - the workflow's defaults (concurrency 50, 500K-record chunks, Lambda up to 1M records)
   */
  readonly settings?: ChunkedProcessingSettings;
  /**
   * Topic the workflow's alarms notify (the platform's operations topic). The alarms watch every
   * Lambda's errors, the summary dead-letter queue and failed executions.
   * @default - no alarms
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Name of the workflow dashboard.
   * @default - `ChunkedProcessing-<stage>`
   */
  readonly dashboardName?: string;
}

/** `ChunkedProcessing-<stage>`: the chunked processing workflow of one stage, in its own stack. */
export class ChunkedProcessingStack extends Stack {
  public readonly workflow: ChunkedProcessingWorkflow;
  /** The workflow dashboard (docs/chunked-processing.md, "Dashboard"). */
  public readonly dashboard: WorkflowDashboard;
  /** Alarms on the workflow (empty without `alarmTopic`). */
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: ChunkedProcessingStackProps) {
    super(scope, id, props);
    this.workflow = new ChunkedProcessingWorkflow(this, 'Workflow', {
      logRetention: props.stage.logRetention,
      removalPolicy: props.stage.removalPolicy,
      retentionDays: props.stage.retentionDays,
      ...props.settings,
      jobQueue: props.jobQueue,
      jobDefinition: props.jobDefinition,
      bucket: props.bucket,
      inputBuckets: props.inputBuckets,
    });
    if (props.alarmTopic) this.addAlarms(props.alarmTopic);
    new CfnOutput(this, 'StateMachineArn', {
      value: this.workflow.stateMachine.stateMachineArn,
      description: 'Start a run: aws stepfunctions start-execution --state-machine-arn <this> --input \'{"bucket":...,"key":...,"operation":...}\'',
    });
    if (this.workflow.summaryQueue) {
      new CfnOutput(this, 'SummaryQueueUrl', {
        value: this.workflow.summaryQueue.queueUrl,
        description: 'Every run summary (runId, status, counts, failed chunks, result location)',
      });
    }
    this.dashboard = new WorkflowDashboard(this, 'Dashboard', {
      workflow: this.workflow,
      bucket: props.bucket,
      inputBucket: props.inputBuckets?.[0],
      jobQueue: props.jobQueue,
      dashboardName: props.dashboardName,
    });
  }

  /**
   * The platform's BatchMonitoring lives in the platform stack, which this stack depends on, so the
   * workflow's alarms are made here (alarming from there would make the two stacks depend on each other).
   */
  private addAlarms(topic: sns.ITopic): void {
    const w = this.workflow;
    const alarm = (id: string, metric: cloudwatch.IMetric, description: string) => {
      const a = new cloudwatch.Alarm(this, id, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      a.addAlarmAction(new actions.SnsAction(topic));
      a.addOkAction(new actions.SnsAction(topic));
      this.alarms.push(a);
    };
    const period = Duration.minutes(5);
    for (const [id, fn] of [
      ['ValidateErrors', w.validateFunction],
      ['PlannerErrors', w.plannerFunction],
      ['ChunkErrors', w.chunkFunction],
      ['AggregateErrors', w.aggregateFunction],
      ...w.kafkaDeliveryFunctions.map((fn, i) => [`KafkaDelivery${i + 1}Errors`, fn] as const),
    ] as const) {
      alarm(`${id}Alarm`, fn.metricErrors({ period, statistic: 'Sum' }), `${id.replace('Errors', '')} Lambda of the chunked workflow reported errors`);
    }
    alarm('ExecutionsFailedAlarm', w.stateMachine.metricFailed({ period, statistic: 'Sum' }), 'A chunked-processing run FAILED');
    if (w.summaryDeadLetterQueue) {
      alarm(
        'SummaryDlqAlarm',
        w.summaryDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        'Run summaries could not be delivered (summary dead-letter queue is not empty)',
      );
    }
  }
}
