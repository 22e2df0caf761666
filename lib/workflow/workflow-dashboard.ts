import { Duration } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { ChunkedProcessingWorkflow } from './chunked-processing-workflow';

/**
 * Namespace and names of the workflow's EMF metrics, written by the runtime (lambda/aggregate/run-metrics.ts
 * RUN_METRIC_NAMESPACE / RUN_DIMENSION_SETS; the chunk processor's per-chunk progress lines). Constructs do
 * not import runtime code, so a test checks these agree.
 */
export const WORKFLOW_METRIC_NAMESPACE = 'CdkBatchPlatform/ChunkedProcessing';
/** Per-run dimension set: every identifying field of the run's input document plus the run id. */
export const RUN_DIMENSIONS = ['Deployment', 'CustomerId', 'TenantId', 'BatchId', 'SnapshotId', 'RunId'] as const;
/** The platform's job-state metrics (lambda/job-metrics, lambda/backlog-probe). */
const PLATFORM_NAMESPACE = 'CdkBatchPlatform';
/**
 * Id of the S3 request-metrics configuration on the work bucket, filtered to `runs/` (BatchPlatformStack
 * adds it): S3 publishes request metrics only for a bucket with such a configuration.
 */
export const RUNS_REQUEST_METRICS_ID = 'RunsPrefix';
export const INPUT_REQUEST_METRICS_ID = 'Inputs';

export interface WorkflowDashboardProps {
  readonly workflow: ChunkedProcessingWorkflow;
  /** The work bucket (runs/); its request metrics need the `RunsPrefix` metrics configuration. */
  readonly bucket: s3.IBucket;
  /**
   * The input bucket, if other than `bucket`; its request metrics need the `Inputs` configuration.
   * @default - no input-bucket widget
   */
  readonly inputBucket?: s3.IBucket;
  /** Queue of the Batch-route chunks (job status counts). */
  readonly jobQueue: batch.IJobQueue;
  /** @default - CloudFormation generates one */
  readonly dashboardName?: string;
  /** @default Duration.minutes(1) */
  readonly period?: Duration;
}

/**
 * The chunked workflow's dashboard (the seed's widgets): execution time, Lambda duration and errors, Batch
 * job status counts, S3 operations on runs/, processing progress per run (with the run's identifying fields
 * as dimensions), error rates and types, and resource utilisation.
 */
export class WorkflowDashboard extends Construct {
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: WorkflowDashboardProps) {
    super(scope, id);
    const period = props.period ?? Duration.minutes(1);
    const w = props.workflow;
    const sm = w.stateMachine;
    const fns: [string, lambda.IFunction][] = [
      ['validate', w.validateFunction],
      ['planner', w.plannerFunction],
      ['chunk-processor', w.chunkFunction],
      ['aggregate', w.aggregateFunction],
      ...w.kafkaDeliveryFunctions.map((fn, i) => [`kafka-delivery-${i + 1}`, fn] as [string, lambda.IFunction]),
    ];
    const sum = { statistic: cloudwatch.Stats.SUM, period };
    const search = (dims: readonly string[], metric: string, stat: string, label: string): cloudwatch.MathExpression =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${WORKFLOW_METRIC_NAMESPACE},${dims.join(',')}} MetricName="${metric}"', '${stat}', ${period.toSeconds()})`,
        label,
        period,
      });
    const perRun = (metric: string): cloudwatch.MathExpression => search(RUN_DIMENSIONS, metric, 'Sum', `${metric} per run`);
    const byDeployment = (metric: string): cloudwatch.MathExpression => search(['Deployment'], metric, 'Sum', `${metric} by deployment`);
    const queueMetric = (metricName: string, statistic: string): cloudwatch.Metric =>
      new cloudwatch.Metric({ namespace: PLATFORM_NAMESPACE, metricName, dimensionsMap: { JobQueue: props.jobQueue.jobQueueName }, statistic, period });
    const s3Metric = (bucket: s3.IBucket, filterId: string, metricName: string): cloudwatch.Metric =>
      new cloudwatch.Metric({ namespace: 'AWS/S3', metricName, dimensionsMap: { BucketName: bucket.bucketName, FilterId: filterId }, statistic: cloudwatch.Stats.SUM, period });
    const height = 6;

    this.dashboard = new cloudwatch.Dashboard(this, 'Resource', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown: '## Chunked processing\nRuns of the chunked workflow: plan -> chunks on Lambda or Batch -> aggregate -> delivery. Per-run lines carry '
          + `the run's identifying fields (${RUN_DIMENSIONS.join(', ')}). See docs/chunked-processing.md, "Dashboard".`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Execution time (Step Functions)',
        left: [
          sm.metric('ExecutionTime', { statistic: cloudwatch.Stats.AVERAGE, period, label: 'average' }),
          sm.metric('ExecutionTime', { statistic: cloudwatch.Stats.p(95), period, label: 'p95' }),
          sm.metric('ExecutionTime', { statistic: cloudwatch.Stats.MAXIMUM, period, label: 'maximum' }),
        ],
        leftYAxis: { label: 'ms', showUnits: false },
        width: 8,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Executions',
        left: [sm.metricStarted(sum), sm.metricSucceeded(sum), sm.metricFailed(sum), sm.metricTimedOut(sum), sm.metricAborted(sum)],
        width: 8,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Processing progress (all runs, by deployment)',
        left: [byDeployment('ChunksDone'), byDeployment('RunChunksFailed')],
        right: [byDeployment('RecordsProcessed'), byDeployment('RecordsRejected')],
        width: 8,
        height,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Records processed per run',
        left: [perRun('RecordsProcessed')],
        width: 12,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Chunks done and rejects per run',
        left: [perRun('ChunksDone')],
        right: [perRun('RecordsRejected')],
        width: 12,
        height,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Lambda duration (p95)',
        left: fns.map(([label, fn]) => fn.metricDuration({ statistic: cloudwatch.Stats.p(95), period, label })),
        width: 8,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Lambda errors and throttles',
        left: fns.map(([label, fn]) => fn.metricErrors({ ...sum, label: `${label} errors` })),
        right: fns.map(([label, fn]) => fn.metricThrottles({ ...sum, label: `${label} throttles` })),
        width: 8,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Batch jobs (chunk queue)',
        left: [queueMetric('JobsSubmitted', 'Sum'), queueMetric('JobsSucceeded', 'Sum'), queueMetric('JobsFailed', 'Sum')],
        right: [queueMetric('RunnableJobs', 'Maximum')],
        width: 8,
        height,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Error rates',
        left: [
          new cloudwatch.MathExpression({
            expression: '100 * SUM(chunksFailed) / (SUM(chunksFailed) + SUM(chunksSucceeded))',
            usingMetrics: {
              chunksFailed: search(['Deployment'], 'RunChunksFailed', 'Sum', 'failed chunks'),
              chunksSucceeded: search(['Deployment'], 'RunChunksSucceeded', 'Sum', 'succeeded chunks'),
            },
            label: 'failed chunks %',
            period,
          }),
          new cloudwatch.MathExpression({
            expression: 'IF(execStarted > 0, 100 * (execFailed + execTimedOut + execAborted) / execStarted, 0)',
            usingMetrics: { execFailed: sm.metricFailed(sum), execTimedOut: sm.metricTimedOut(sum), execAborted: sm.metricAborted(sum), execStarted: sm.metricStarted(sum) },
            label: 'failed executions %',
            period,
          }),
        ],
        leftYAxis: { min: 0, max: 100, label: '%', showUnits: false },
        right: [byDeployment('RunsFailed'), byDeployment('RunsPartial')],
        width: 8,
        height,
      }),
      new cloudwatch.LogQueryWidget({
        title: 'Error types (state machine log)',
        logGroupNames: [w.logGroup.logGroupName],
        queryLines: [
          'fields @timestamp, type, details.error',
          'filter type like /Failed|TimedOut|Aborted/',
          'stats count(*) as failures by type, details.error',
          'sort failures desc',
        ],
        width: 8,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'S3 operations on runs/',
        left: [s3Metric(props.bucket, RUNS_REQUEST_METRICS_ID, 'GetRequests'), s3Metric(props.bucket, RUNS_REQUEST_METRICS_ID, 'PutRequests'), s3Metric(props.bucket, RUNS_REQUEST_METRICS_ID, 'ListRequests')],
        right: [s3Metric(props.bucket, RUNS_REQUEST_METRICS_ID, '4xxErrors'), s3Metric(props.bucket, RUNS_REQUEST_METRICS_ID, '5xxErrors')],
        width: 8,
        height,
      }),
    );
    const utilisation: cloudwatch.IWidget[] = [
      new cloudwatch.GraphWidget({
        title: 'Resource utilisation: Batch containers (Container Insights)',
        left: [
          new cloudwatch.MathExpression({ expression: `SEARCH('{ECS/ContainerInsights,ClusterName} MetricName="CpuUtilized"', 'Sum', ${period.toSeconds()})`, label: 'CPU used', period }),
          new cloudwatch.MathExpression({ expression: `SEARCH('{ECS/ContainerInsights,ClusterName} MetricName="CpuReserved"', 'Sum', ${period.toSeconds()})`, label: 'CPU reserved', period }),
        ],
        right: [
          new cloudwatch.MathExpression({ expression: `SEARCH('{ECS/ContainerInsights,ClusterName} MetricName="MemoryUtilized"', 'Sum', ${period.toSeconds()})`, label: 'memory used (MiB)', period }),
        ],
        width: 12,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Resource utilisation: Lambda concurrency and chunk duration',
        left: fns.map(([label, fn]) => fn.metric('ConcurrentExecutions', { statistic: cloudwatch.Stats.MAXIMUM, period, label })),
        right: [search(['Deployment'], 'ChunkDuration', 'Average', 'chunk duration (ms)')],
        width: 12,
        height,
      }),
    ];
    this.dashboard.addWidgets(...utilisation);
    if (props.inputBucket) {
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'S3 operations on the input bucket',
          left: [s3Metric(props.inputBucket, INPUT_REQUEST_METRICS_ID, 'GetRequests'), s3Metric(props.inputBucket, INPUT_REQUEST_METRICS_ID, 'BytesDownloaded')],
          width: 12,
          height,
        }),
      );
    }
  }
}
