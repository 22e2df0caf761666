import { Token } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import { IConstruct } from 'constructs';
import { checkRange, propError } from '../common/validation';

/** Batch evaluates at most 5 `evaluateOnExit` rules per job definition. */
export const MAX_RETRY_RULES = 5;
export const DEFAULT_RETRY_ATTEMPTS = 3;
/** Batch allows 1 to 10 attempts. */
export const MIN_RETRY_ATTEMPTS = 1;
export const MAX_RETRY_ATTEMPTS = 10;

/**
 * Status reasons of infrastructure failures, matched as Batch glob patterns (a trailing `*` only).
 * - `Host EC2*`: the EC2 instance went away under the job ("Host EC2 (instance i-...) terminated."),
 *   typically a Spot reclaim.
 * - `Your Spot Task was interrupted*`: the stop reason ECS gives a Fargate Spot task that was reclaimed.
 * - `CannotPullContainerError:*`: the container reason when the image pull failed (throttling, a
 *   transient endpoint or registry error); it is matched on `onReason`, the container's reason.
 */
export const INFRASTRUCTURE_FAILURE_REASONS = {
  ec2HostTerminated: batch.Reason.SPOT_INSTANCE_RECLAIMED,
  fargateSpotInterrupted: batch.Reason.custom({ onStatusReason: 'Your Spot Task was interrupted*' }),
  cannotPullContainer: batch.Reason.CANNOT_PULL_CONTAINER,
} as const;

/** Ready-made `retryStrategies` for job definitions. */
export class RetryPresets {
  /**
   * Retries only failures of the infrastructure (EC2 host terminated or Spot-reclaimed, Fargate Spot
   * interruption, image pull failure) and exits on everything else, so an application error is
   * reported once instead of being re-run `attempts` times. Batch applies the first matching rule and
   * retries when none matches, hence the final catch-all EXIT. Four rules: one is left for your own.
   */
  public static infrastructureOnly(): batch.RetryStrategy[] {
    return [
      batch.RetryStrategy.of(batch.Action.RETRY, INFRASTRUCTURE_FAILURE_REASONS.ec2HostTerminated),
      batch.RetryStrategy.of(batch.Action.RETRY, INFRASTRUCTURE_FAILURE_REASONS.fargateSpotInterrupted),
      batch.RetryStrategy.of(batch.Action.RETRY, INFRASTRUCTURE_FAILURE_REASONS.cannotPullContainer),
      batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom({ onStatusReason: '*' })),
    ];
  }
}

/** Throws a propError unless there are at most 5 retry rules (Batch's limit). */
export function checkRetryStrategies(scope: IConstruct, strategies: readonly batch.RetryStrategy[]): void {
  if (strategies.length > MAX_RETRY_RULES) {
    throw propError(scope, 'retryStrategies', `${strategies.length} rules`, `at most ${MAX_RETRY_RULES} rules (Batch's limit)`,
      'has too many rules');
  }
}

/** Throws a propError unless 1 <= attempts <= 10 (Batch's limits) and whole. */
export function checkRetryAttempts(scope: IConstruct, attempts: number): void {
  if (Token.isUnresolved(attempts)) return;
  checkRange(scope, 'attempts', attempts, MIN_RETRY_ATTEMPTS, MAX_RETRY_ATTEMPTS);
  if (!Number.isInteger(attempts)) {
    throw propError(scope, 'attempts', attempts, `a whole number from ${MIN_RETRY_ATTEMPTS} to ${MAX_RETRY_ATTEMPTS}`);
  }
}
