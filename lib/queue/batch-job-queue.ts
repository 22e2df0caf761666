import { Annotations, Duration, RemovalPolicy, Resource, Token } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import { Construct } from 'constructs';
import { checkInteger, checkRange, propError } from '../common/validation';
import { Ec2ComputeEnvironment } from '../compute/ec2-compute-environment';
import { FargateComputeEnvironment } from '../compute/fargate-compute-environment';

export const DEFAULT_QUEUE_PRIORITY = 1;
export const DEFAULT_RUNNABLE_TIMEOUT = Duration.hours(4);
/** Batch's limits for job state time limit actions (maxTimeSeconds). */
export const MIN_RUNNABLE_TIMEOUT_SECONDS = 600;
export const MAX_RUNNABLE_TIMEOUT_SECONDS = 86400;
/** Batch attaches at most 3 compute environments to a job queue. */
export const MAX_COMPUTE_ENVIRONMENTS = 3;
export const DEFAULT_SHARE_WEIGHT = 1;

/**
 * A compute environment of this library, or any Batch compute environment (L2 or imported). Both
 * wrappers implement `batch.IComputeEnvironment`; the alias stays for code written against it.
 */
export type QueueComputeEnvironment = batch.IComputeEnvironment;

/** One share of a fair-share policy. */
export interface FairShareEntry {
  /** Share identifier jobs are submitted with (a trailing `*` matches a prefix). */
  readonly shareIdentifier: string;
  /**
   * Relative weight: a share with weight 2 gets half the compute of a share with weight 1.
   * @default 1
   */
  readonly weightFactor?: number;
}

/** Fair-share scheduling of a queue. */
export interface FairShareOptions {
  /**
   * Weights of known share identifiers (others get weight 1).
   */
  readonly shares: readonly FairShareEntry[];
  /**
   * Time window over which past usage counts against a share.
   * @default - only current usage counts
   */
  readonly shareDecay?: Duration;
  /**
   * Percentage (0-99) of the maximum vCPUs held back for share identifiers that are not yet active.
   * @default - none reserved
   */
  readonly computeReservation?: number;
}

export interface BatchJobQueueProps {
  /**
   * Compute environments in order of preference (first is tried first): e.g. Spot, then On-Demand as
   * fallback. 1 to 3, all EC2 or all Fargate.
   */
  readonly computeEnvironments: readonly QueueComputeEnvironment[];
  /**
   * Priority among queues sharing a compute environment (higher wins), 0 to 1000.
   * @default 1
   */
  readonly priority?: number;
  /**
   * Fair-share scheduling. With it, every submission must carry a `shareIdentifier` (SubmitJob fails
   * otherwise); without it, the queue is first in, first out.
   * @default - FIFO, no scheduling policy
   */
  readonly fairShare?: FairShareOptions;
  /**
   * How long a job may stay at the head of the queue in RUNNABLE because of a misconfiguration (it
   * asks for more vCPU/memory than any instance has, or more than maxvCpus) or missing capacity
   * before Batch cancels it. 10 minutes to 24 hours.
   * @default Duration.hours(4)
   */
  readonly runnableTimeout?: Duration;
}

/**
 * A job queue over ordered compute environments, with jobs stuck in RUNNABLE cancelled after
 * `runnableTimeout` (instead of blocking the queue forever) and optional fair-share scheduling.
 * No physical name. Usable wherever aws-cdk-lib expects a `batch.IJobQueue`.
 */
export class BatchJobQueue extends Resource implements batch.IJobQueue {
  /** The aws-cdk-lib job queue inside (this construct delegates to it). */
  public readonly jobQueue: batch.IJobQueue;
  public readonly jobQueueArn: string;
  public readonly jobQueueName: string;
  /** The fair-share policy, when `fairShare` is set. */
  public readonly schedulingPolicy?: batch.IFairshareSchedulingPolicy;
  /** Whether submissions must carry a `shareIdentifier` (true when the queue has a fair-share policy). */
  public readonly requiresShareIdentifier: boolean;
  /** EC2 or Fargate queue; undefined when only imported environments of unknown kind are attached. */
  public readonly platform?: 'EC2' | 'FARGATE';

  constructor(scope: Construct, id: string, props: BatchJobQueueProps) {
    super(scope, id);
    const environments = props.computeEnvironments ?? [];
    if (environments.length < 1 || environments.length > MAX_COMPUTE_ENVIRONMENTS) {
      throw propError(this, 'computeEnvironments', `${environments.length} environments`,
        `1 to ${MAX_COMPUTE_ENVIRONMENTS} compute environments (Batch's limit per queue)`, 'has the wrong number of environments');
    }
    this.platform = this.checkOnePlatform(environments);
    this.warnOnDemandBeforeSpot(environments);

    const priority = props.priority ?? DEFAULT_QUEUE_PRIORITY;
    checkInteger(this, 'priority', priority, 0);
    checkRange(this, 'priority', priority, 0, 1000);

    const runnableTimeout = props.runnableTimeout ?? DEFAULT_RUNNABLE_TIMEOUT;
    const runnableSeconds = runnableTimeout.toSeconds();
    if (!Token.isUnresolved(runnableSeconds)
      && (runnableSeconds < MIN_RUNNABLE_TIMEOUT_SECONDS || runnableSeconds > MAX_RUNNABLE_TIMEOUT_SECONDS)) {
      throw propError(this, 'runnableTimeout', `${runnableSeconds} seconds`,
        `${MIN_RUNNABLE_TIMEOUT_SECONDS} to ${MAX_RUNNABLE_TIMEOUT_SECONDS} seconds (10 minutes to 24 hours, Batch's limits)`, 'is out of range');
    }

    if (props.fairShare) {
      this.schedulingPolicy = this.createFairSharePolicy(props.fairShare);
    }
    this.requiresShareIdentifier = this.schedulingPolicy !== undefined;

    const queue = new batch.JobQueue(this, 'Resource', {
      priority,
      schedulingPolicy: this.schedulingPolicy,
      computeEnvironments: environments.map((ce, index) => ({ computeEnvironment: unwrap(ce), order: index + 1 })),
      // Every reason the API knows for a job stuck in RUNNABLE: each blocks the queue behind it.
      jobStateTimeLimitActions: Object.values(batch.JobStateTimeLimitActionsReason).map((reason) => ({
        action: batch.JobStateTimeLimitActionsAction.CANCEL,
        state: batch.JobStateTimeLimitActionsState.RUNNABLE,
        maxTime: runnableTimeout,
        reason,
      })),
    });
    this.jobQueue = queue;
    this.jobQueueArn = queue.jobQueueArn;
    this.jobQueueName = queue.jobQueueName;
  }

  public get jobQueueRef(): batch.JobQueueReference {
    return this.jobQueue.jobQueueRef;
  }

  public get computeEnvironments(): batch.OrderedComputeEnvironment[] {
    return this.jobQueue.computeEnvironments;
  }

  public get priority(): number {
    return this.jobQueue.priority;
  }

  public get enabled(): boolean | undefined {
    return this.jobQueue.enabled;
  }

  /** Adds a compute environment after those given in the props (Batch allows 3 in all). */
  public addComputeEnvironment(computeEnvironment: batch.IComputeEnvironmentRef, order: number): void {
    const ce = computeEnvironment instanceof Ec2ComputeEnvironment || computeEnvironment instanceof FargateComputeEnvironment
      ? computeEnvironment.computeEnvironment
      : computeEnvironment;
    this.jobQueue.addComputeEnvironment(ce, order);
  }

  public applyRemovalPolicy(policy: RemovalPolicy): void {
    this.jobQueue.applyRemovalPolicy(policy);
  }

  private checkOnePlatform(environments: readonly QueueComputeEnvironment[]): 'EC2' | 'FARGATE' | undefined {
    const kinds = environments.map(platformOf);
    const known = kinds.filter((k): k is 'EC2' | 'FARGATE' => k !== undefined);
    if (known.includes('EC2') && known.includes('FARGATE')) {
      const described = environments.map((ce, i) => `${nodePath(ce)} (${kinds[i] ?? 'unknown'})`);
      throw propError(this, 'computeEnvironments', described, 'all EC2 or all Fargate environments (Batch refuses mixed queues)',
        'mixes EC2 and Fargate');
    }
    return known[0];
  }

  private warnOnDemandBeforeSpot(environments: readonly QueueComputeEnvironment[]): void {
    const firstSpot = environments.findIndex((ce) => isSpot(ce) === true);
    const firstOnDemand = environments.findIndex((ce) => isSpot(ce) === false);
    if (firstSpot >= 0 && firstOnDemand >= 0 && firstOnDemand < firstSpot) {
      Annotations.of(this).addWarningV2('cdk-batch-platform:onDemandBeforeSpot',
        'An On-Demand compute environment comes before a Spot one: the Spot environment only gets jobs when On-Demand is full. '
        + 'Put Spot first and On-Demand as the fallback unless that is intended.');
    }
  }

  private createFairSharePolicy(options: FairShareOptions): batch.FairshareSchedulingPolicy {
    checkRange(this, 'fairShare.computeReservation', options.computeReservation, 0, 99);
    if (options.shareDecay !== undefined && !Token.isUnresolved(options.shareDecay.toSeconds())) {
      checkRange(this, 'fairShare.shareDecay', options.shareDecay.toSeconds(), 0, 604800);
    }
    const shares = options.shares.map((share) => {
      const weightFactor = share.weightFactor ?? DEFAULT_SHARE_WEIGHT;
      checkRange(this, `fairShare.shares[${share.shareIdentifier}].weightFactor`, weightFactor, 0.0001, 999.9999);
      if (!Token.isUnresolved(share.shareIdentifier) && !/^[A-Za-z0-9_]{1,255}\*?$/.test(share.shareIdentifier)) {
        throw propError(this, 'fairShare.shares.shareIdentifier', share.shareIdentifier,
          'letters, digits and underscores (up to 255), optionally ending in *');
      }
      return { shareIdentifier: share.shareIdentifier, weightFactor };
    });
    return new batch.FairshareSchedulingPolicy(this, 'FairSharePolicy', {
      shares,
      shareDecay: options.shareDecay,
      computeReservation: options.computeReservation,
    });
  }
}

function unwrap(ce: QueueComputeEnvironment): batch.IComputeEnvironment {
  return ce instanceof Ec2ComputeEnvironment || ce instanceof FargateComputeEnvironment ? ce.computeEnvironment : ce;
}

function platformOf(ce: QueueComputeEnvironment): 'EC2' | 'FARGATE' | undefined {
  if (ce instanceof Ec2ComputeEnvironment) return 'EC2';
  if (ce instanceof FargateComputeEnvironment) return 'FARGATE';
  if (ce instanceof batch.FargateComputeEnvironment) return 'FARGATE';
  if (ce instanceof batch.ManagedEc2EcsComputeEnvironment || ce instanceof batch.UnmanagedComputeEnvironment) return 'EC2';
  return undefined;
}

function isSpot(ce: QueueComputeEnvironment): boolean | undefined {
  if (ce instanceof Ec2ComputeEnvironment) return ce.capacity === 'SPOT';
  if (ce instanceof FargateComputeEnvironment) return ce.spot;
  if (ce instanceof batch.FargateComputeEnvironment || ce instanceof batch.ManagedEc2EcsComputeEnvironment) return ce.spot ?? false;
  return undefined;
}

function nodePath(ce: QueueComputeEnvironment): string {
  return ce.node.path;
}
