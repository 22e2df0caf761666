// Public API of cdk-batch-platform. Named exports keep constant names from clashing across modules.

// The Lambda defaults every construct here uses (Node.js 22 on ARM64, local esbuild, log group with retention)
export { PlatformFunction, handlerEntry } from './common/node-function';
export type { PlatformFunctionProps } from './common/node-function';

// Network and storage
export { BatchNetwork } from './network/batch-network';
export type { BatchNetworkProps, BatchInterfaceEndpointKey } from './network/batch-network';
export { StagingBuckets, RETENTION_TAG, JOB_ID_TAG, RETENTION_DAYS_ENV, DEFAULT_OBJECT_RETENTION_DAYS, jobInputsKey, jobOutputPrefix, runPrefix } from './storage/staging-buckets';
export type { StagingBucketsProps, JobIoGrantOptions } from './storage/staging-buckets';

// Compute, queues, job definitions
export { INSTANCE_PRESETS } from './compute/instance-presets';
export type { ComputeArchitecture, InstancePreset } from './compute/instance-presets';
export { Ec2ComputeEnvironment } from './compute/ec2-compute-environment';
export type { Ec2ComputeEnvironmentProps, Ec2Capacity } from './compute/ec2-compute-environment';
export { FargateComputeEnvironment } from './compute/fargate-compute-environment';
export type { FargateComputeEnvironmentProps } from './compute/fargate-compute-environment';
export { BatchJobQueue } from './queue/batch-job-queue';
export type { BatchJobQueueProps, FairShareEntry, FairShareOptions, QueueComputeEnvironment } from './queue/batch-job-queue';
export { RetryPresets, INFRASTRUCTURE_FAILURE_REASONS, MAX_RETRY_RULES } from './jobs/retry-strategies';
export { WorkerJobDefinition, FARGATE_SIZES } from './jobs/worker-job-definition';
export type { WorkerJobDefinitionProps, WorkerPlatform } from './jobs/worker-job-definition';
export { WorkerImage, DEFAULT_KEPT_IMAGES, UNTAGGED_IMAGE_EXPIRY_DAYS } from './jobs/worker-image';
export type { WorkerImageProps } from './jobs/worker-image';

// Job lifecycle: notifications, webhook, monitoring, cleanup, schedules
export { JobNotifications, BATCH_JOB_STATUSES, TENANT_TAG } from './notifications/job-notifications';
export type { JobNotificationsProps, JobNotificationsSqsSubscription, BatchJobStatusName } from './notifications/job-notifications';
export { CompletionWebhook, WEBHOOK_PATH } from './notifications/completion-webhook';
export type { CompletionWebhookProps } from './notifications/completion-webhook';
export { BatchMonitoring, METRIC_NAMESPACE } from './monitoring/batch-monitoring';
export type { BatchMonitoringProps } from './monitoring/batch-monitoring';
export { JobCleanup } from './cleanup/job-cleanup';
export type { JobCleanupProps } from './cleanup/job-cleanup';
export { ScheduledJob } from './jobs/scheduled-job';
export type { ScheduledJobProps } from './jobs/scheduled-job';

// Chunked processing of very large datasets
export { ChunkedProcessingWorkflow, STATE_NAMES as CHUNKED_STATE_NAMES, RUN_EVENT_SOURCE, RUN_EVENT_DETAIL_TYPE } from './workflow/chunked-processing-workflow';
export type { ChunkedProcessingWorkflowProps } from './workflow/chunked-processing-workflow';
export { ChunkedProcessingStack } from './workflow/chunked-processing-stack';
export { ChunkJobDefinition, DEFAULT_CHUNK_JOB_VCPUS, DEFAULT_CHUNK_JOB_MEMORY } from './workflow/chunk-job-definition';
export type { ChunkJobDefinitionProps } from './workflow/chunk-job-definition';
export { DeliveryTargets, DELIVERY_MESSAGE_SCHEMA_VERSION } from './workflow/delivery-targets';
export type { DeliveryTarget, SqsDeliveryTarget, EventBridgeDeliveryTarget, KafkaDeliveryTarget } from './workflow/delivery-targets';
export { WorkflowDashboard } from './workflow/workflow-dashboard';
export type { WorkflowDashboardProps } from './workflow/workflow-dashboard';
export type { ChunkedProcessingStackProps, ChunkedProcessingSettings } from './workflow/chunked-processing-stack';

// Stacks and stages
export { BatchPlatformStack } from './stacks/batch-platform-stack';
export type { BatchPlatformStackProps } from './stacks/batch-platform-stack';
export { STAGES, STAGE_NAMES, stageConfig } from './stacks/stage-config';
export type { ScheduledJobConfig, StageConfig, StageName } from './stacks/stage-config';
export { addPlatformStacks, addComplianceChecks } from './stacks/platform-app';
export type { PlatformStacks } from './stacks/platform-app';

// Submitting jobs: constructs (HTTP API, SQS-triggered). The runtime SDK (BatchJobClient) is the
// subpath `cdk-batch-platform/client`: importing the constructs loads no AWS SDK client.
export * from './api';
