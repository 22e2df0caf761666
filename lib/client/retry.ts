import { AdaptiveRetryStrategy, isServerError, isThrottlingError, isTransientError, StandardRetryStrategy } from '@smithy/core/retry';
import type { RetryErrorInfo, RetryErrorType, RetryStrategyV2, SdkError, StandardRetryToken } from '@smithy/types';
import { ThrottledError } from './errors';

/** Retries after the first attempt, by default: SubmitJob allows about 50 calls/s, bursts need room. */
export const DEFAULT_MAX_RETRIES = 8;

export type RetryMode = 'standard' | 'adaptive';

/**
 * The SDK v3 retry strategy of that mode: `standard` (exponential backoff with full jitter, a retry
 * token bucket) or `adaptive` (standard plus client-side rate limiting that slows down on throttling).
 */
export function sdkRetryStrategy(mode: RetryMode, maxAttempts: number): RetryStrategyV2 {
  return mode === 'adaptive' ? new AdaptiveRetryStrategy(maxAttempts) : new StandardRetryStrategy(maxAttempts);
}

/** How the SDK classifies an error for retrying (THROTTLING, TRANSIENT, SERVER_ERROR or CLIENT_ERROR). */
export function classify(err: unknown): RetryErrorType {
  const e = err as SdkError;
  if (!e || typeof e !== 'object') return 'CLIENT_ERROR';
  if (isThrottlingError(e)) return 'THROTTLING';
  if (isTransientError(e)) return 'TRANSIENT';
  if (isServerError(e)) return 'SERVER_ERROR';
  return 'CLIENT_ERROR';
}

/** True when AWS asked us to slow down (HTTP 429 or one of the SDK's throttling error codes). */
export function isThrottle(err: unknown): boolean {
  return classify(err) === 'THROTTLING';
}

/**
 * Runs `fn` under an SDK retry strategy: the strategy decides whether and when to retry (and sleeps
 * the backoff); the SDK's error classification says what kind of failure it was. Driven per call
 * rather than inside the SDK client because SubmitJob needs two things the client's retry middleware
 * cannot do: a non-idempotent submit must not retry a transient failure (the job may exist already),
 * and an idempotent one first looks whether it does (`beforeRetry`). Works with brought clients too.
 */
export async function withRetry<T>(
  operation: string,
  strategy: RetryStrategyV2,
  fn: () => Promise<T>,
  options: { retryTransient?: boolean; beforeRetry?: () => Promise<T | undefined> } = {},
): Promise<T> {
  let token = (await strategy.acquireInitialRetryToken(operation)) as StandardRetryToken;
  for (;;) {
    try {
      const result = await fn();
      strategy.recordSuccess(token);
      return result;
    } catch (err) {
      const errorType = classify(err);
      const throttled = errorType === 'THROTTLING';
      if (errorType === 'CLIENT_ERROR' || (!throttled && options.retryTransient === false)) throw err;
      const info: RetryErrorInfo = { errorType, error: err as SdkError };
      try {
        token = (await strategy.refreshRetryTokenForRetry(token, info)) as StandardRetryToken;
      } catch {
        // Out of attempts (or of retry capacity).
        if (throttled) throw new ThrottledError(operation, token.getRetryCount() + 1, { cause: err });
        throw err;
      }
      if (!throttled && options.beforeRetry) {
        const done = await options.beforeRetry();
        if (done !== undefined) return done;
      }
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
