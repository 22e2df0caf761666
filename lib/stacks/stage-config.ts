import { RemovalPolicy } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { ComputeArchitecture } from '../compute/instance-presets';
import type { NatGatewayMode } from '../network/batch-network';

/** Names of the stages this app knows; `cdk synth -c stage=<name>` picks one. */
export const STAGE_NAMES = ['dev', 'prod'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/**
 * Everything that differs between stages, in one typed place. `bin/app.ts` reads `-c stage=...`
 * once and hands the matching object to the stacks.
 */
export interface StageConfig {
  readonly stage: StageName;
  /**
   * Upper bound of the Spot (and On-Demand) compute environments: with 4-vCPU chunk jobs, 256 runs 64
   * chunks at once (the seed's figure; the workflow's Map concurrency is 50).
   */
  readonly maxvCpus: number;
  /** Size of the chunked workflow's Batch chunk jobs (ChunkJobDefinition); WORKER_THREADS follows vCpus. */
  readonly chunkJob: ChunkJobStageConfig;
  /** Spot first with On-Demand fallback (`true`), or On-Demand only (`false`). */
  readonly useSpot: boolean;
  /** Also create a Fargate (Spot) queue for small jobs that must start fast. */
  readonly fargate: boolean;
  /** NAT gateways for the VPC (0 = VPC endpoints only, no NAT bill). */
  readonly natGateways: number;
  /** SSM / SSM messages / EC2 messages endpoints (Session Manager access to instances). */
  readonly ssmEndpoints: boolean;
  /**
   * Days the objects the platform writes (outputs, rejects, checkpoints, `runs/`, completion records)
   * are kept when the job names no retention: their `retention-days` tag (StagingBuckets objectRetentionDays).
   * @default 30
   */
  readonly retentionDays?: number;
  /** Retention of every log group of the stage. */
  readonly logRetention: logs.RetentionDays;
  /** What happens to buckets, logs and worker image repositories when the stack is deleted. */
  readonly removalPolicy: RemovalPolicy;
  /**
   * Tagged images each worker image repository keeps (one per deployment of a changed image).
   * @default 10
   */
  readonly keptImages?: number;
  /** Time a job may stay RUNNABLE (no capacity / misconfiguration) before the queue cancels it. */
  readonly runnableTimeoutMinutes: number;
  /** Worker job timeout. */
  readonly jobTimeoutMinutes: number;
  /** Jobs submitted on a schedule (EventBridge Scheduler), e.g. the nightly road-defect aggregation. */
  readonly schedules: readonly ScheduledJobConfig[];
  /**
   * Private ranges (CIDR) job callbacks may reach in this stage; every other private, loopback,
   * link-local or reserved address is refused (docs/security.md, "Job callbacks").
   * @default - none
   */
  readonly callbackAllowedCidrs?: readonly string[];
  /** The road-metrics workload (`RoadMetrics-<stage>`); absent: not deployed in this stage. */
  readonly roadMetrics?: RoadMetricsStageConfig;
  /**
   * Internet egress for the workloads that need it (BatchNetwork egress mode: NAT gateway(s), BatchEgress
   * subnets, HTTPS-only security group); absent: no NAT, no internet route. Needed by `photoBundles`.
   */
  readonly egress?: NatGatewayMode;
  /** The photo-bundles workload (`PhotoBundles-<stage>`); absent: not deployed in this stage. */
  readonly photoBundles?: PhotoBundlesStageConfig;
  /**
   * AWS Cost Anomaly Detection on the resources tagged `stage=<stage>` (the tag must be activated as a
   * cost allocation tag): anomalies with a total impact of at least this many USD go to the operations
   * topic; absent: no cost monitor in this stage.
   */
  readonly costAnomalyThresholdUsd?: number;
  /**
   * Failed share of finished jobs (percent, per queue, 15 minutes) above which the FailureRate alarm fires.
   * @default 5
   */
  readonly failureRateThresholdPercent?: number;
  /**
   * Per-tenant quotas on every submit path (SDK/batchctl via the QuotaTableName/QuotaLimits outputs, the
   * submit API, the queue): the default limits of every tenant; absent: no quotas in this stage.
   */
  readonly quota?: { readonly maxActiveJobs: number; readonly submissionsPerMinute: number };
  /** The OCR API workload (`OcrApi-<stage>`); absent: not deployed in this stage. Needs `fargate` (the OcrJob definition). */
  readonly ocrApi?: OcrApiStageConfig;
}

/** The OCR API workload of a stage (see docs/workloads/ocr-api.md). */
export interface OcrApiStageConfig {
  /** Point-in-time recovery of the request table. */
  readonly pointInTimeRecovery: boolean;
  /** The cleanup schedule (every 6 hours) on or off. */
  readonly cleanup: boolean;
  /**
   * Browser origins allowed by CORS on the API and, for the presigned upload PUT, on the platform's input
   * bucket (BatchPlatformStack `uploadCorsOrigins`); none: server-side callers only.
   */
  readonly corsAllowedOrigins?: readonly string[];
}

/** One Batch chunk job of the chunked workflow (see docs/chunked-processing.md, "Sizing"). */
export interface ChunkJobStageConfig {
  readonly vCpus: number;
  readonly memoryMiB: number;
}

/** The photo-bundles workload of a stage (see docs/workloads/photo-bundles.md). */
export interface PhotoBundlesStageConfig {
  /** The R2 bucket the ZIPs go to; the R2 endpoint is a deploy-time parameter (R2Endpoint). */
  readonly r2Bucket: string;
  /** Upper bound of the bundle compute environments. */
  readonly maxvCpus: number;
  readonly architecture: ComputeArchitecture;
}

/** The road-metrics workload of a stage: an Aurora Serverless v2 cluster made for it, and a budget. */
export interface RoadMetricsStageConfig {
  /** Aurora Serverless v2 capacity range (ACU); min 0 pauses the cluster when idle. */
  readonly minCapacity: number;
  readonly maxCapacity: number;
  /** Monthly spend of the whole stage (USD) the budget alarm watches. */
  readonly monthlyBudgetUsd: number;
}

/** One job the stage submits on a schedule. */
export interface ScheduledJobConfig {
  /** Construct id and job name. */
  readonly name: string;
  /** Cron fields in `timeZone` (IANA name). */
  readonly cron: { readonly minute: string; readonly hour: string; readonly weekDay?: string };
  readonly timeZone: string;
  /** Worker operation and its input/output keys in the staging buckets. */
  readonly operation: string;
  readonly inputKey: string;
  readonly outputKey: string;
}

export const STAGES: Record<StageName, StageConfig> = {
  dev: {
    stage: 'dev',
    // dev: 16 chunk jobs at once at most, so a mistaken run cannot buy 256 vCPUs.
    maxvCpus: 64,
    chunkJob: { vCpus: 4, memoryMiB: 8192 },
    useSpot: true,
    fargate: true,
    natGateways: 0,
    ssmEndpoints: false,
    logRetention: logs.RetentionDays.TWO_WEEKS,
    // Dev results are looked at the same day; a week is plenty and keeps the dev bill flat.
    retentionDays: 7,
    removalPolicy: RemovalPolicy.DESTROY,
    keptImages: 5,
    runnableTimeoutMinutes: 60,
    jobTimeoutMinutes: 60,
    schedules: [],
    roadMetrics: { minCapacity: 0, maxCapacity: 2, monthlyBudgetUsd: 100 },
    // Photo bundles start in dev: one NAT gateway (about $36.50 a month) lets the seed's app try the whole
    // path against a dev R2 bucket without giving prod an internet route before the workload is proven.
    egress: 'ONE',
    photoBundles: { r2Bucket: 'photo-bundles-dev', maxvCpus: 100, architecture: 'X86_64' },
    // The OCR API starts in dev: a new public (IAM-authorized) surface and a new image that is tried there
    // first, as the photo bundles were. Dev records are throwaway (no PITR); prod gets it by adding this entry.
    ocrApi: { pointInTimeRecovery: false, cleanup: true },
    // One tenant cannot fill dev's 64 vCPUs with a loop: 20 jobs in flight, 60 submissions a minute.
    quota: { maxActiveJobs: 20, submissionsPerMinute: 60 },
  },
  prod: {
    stage: 'prod',
    maxvCpus: 256,
    chunkJob: { vCpus: 4, memoryMiB: 8192 },
    useSpot: true,
    fargate: true,
    natGateways: 0,
    ssmEndpoints: true,
    logRetention: logs.RetentionDays.THREE_MONTHS,
    retentionDays: 30,
    removalPolicy: RemovalPolicy.RETAIN,
    runnableTimeoutMinutes: 240,
    jobTimeoutMinutes: 240,
    // The nightly road-defect job is RoadMetrics-<stage>'s own ScheduledJob (lib/workloads/road-metrics).
    schedules: [],
    roadMetrics: { minCapacity: 0.5, maxCapacity: 8, monthlyBudgetUsd: 1000 },
    // A tenth of the road-metrics budget: an anomaly that size is worth a look the same day.
    costAnomalyThresholdUsd: 100,
    // Room for the nightly and ad-hoc load of one tenant; a runaway client is refused (429) long before
    // it can hold all 256 vCPUs. Per-tenant overrides: BatchPlatformStack's `quota.tenantLimits`.
    quota: { maxActiveJobs: 100, submissionsPerMinute: 300 },
  },
};

/** Resolves `-c stage=<name>`; an unknown name fails with the list of known ones. */
export function stageConfig(name: unknown): StageConfig {
  const stage = name ?? 'dev';
  if (typeof stage !== 'string' || !(STAGE_NAMES as readonly string[]).includes(stage)) {
    throw new Error(`context stage (${JSON.stringify(stage)}) is unknown; allowed: ${STAGE_NAMES.join(', ')}`);
  }
  return STAGES[stage as StageName];
}
