import { ThrottledError } from './errors';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly maxRetries: number;
  /** Base of the exponential backoff, in ms. */
  readonly baseMs: number;
  /** Upper bound of one delay, in ms. */
  readonly maxDelayMs: number;
  /** Injected for tests: resolves after `ms`. */
  readonly sleep: (ms: number) => Promise<void>;
  /** Injected for tests: a number in [0, 1). */
  readonly random: () => number;
}

export const DEFAULT_MAX_RETRIES = 8;
export const DEFAULT_RETRY_BASE_MS = 100;
export const DEFAULT_RETRY_MAX_DELAY_MS = 20_000;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const THROTTLE_CODES = new Set([
  'TooManyRequestsException',
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestLimitExceeded',
  'SlowDown',
  'RequestThrottled',
  'RequestThrottledException',
  'ProvisionedThroughputExceededException',
]);

interface AwsLikeError {
  name?: string;
  Code?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

/** True when AWS asked us to slow down (HTTP 429 or one of the throttling error codes). */
export function isThrottle(err: unknown): boolean {
  const e = err as AwsLikeError | undefined;
  if (!e || typeof e !== 'object') return false;
  if (e.$metadata?.httpStatusCode === 429) return true;
  if (e.$retryable?.throttling) return true;
  return [e.name, e.Code, e.code].some((c) => typeof c === 'string' && THROTTLE_CODES.has(c));
}

/** True for server-side and network failures that are worth another try (5xx, reset sockets). */
export function isTransient(err: unknown): boolean {
  const e = err as AwsLikeError & { code?: string } | undefined;
  if (!e || typeof e !== 'object') return false;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return true;
  return ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'TimeoutError', 'RequestTimeout'].some((c) => e.code === c || e.name === c);
}

/**
 * Exponential backoff with "full jitter" (a uniform delay in [0, min(cap, base * 2^attempt)]): the
 * variant that spreads retrying clients best, so 20 throttled callers don't all come back at once.
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 */
export function backoffDelay(attempt: number, policy: Pick<RetryPolicy, 'baseMs' | 'maxDelayMs' | 'random'>): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** attempt);
  return Math.floor(policy.random() * ceiling);
}

/**
 * Runs `fn`, retrying throttling (and, when `retryTransient` says so, transient) errors with backoff.
 * `beforeRetry` runs before each retry after a non-throttling failure, to check whether the failed
 * call took effect anyway (a SubmitJob whose response was lost) and to stop with its value if so.
 */
export async function withRetry<T>(
  operation: string,
  policy: RetryPolicy,
  fn: () => Promise<T>,
  options: { retryTransient?: boolean; beforeRetry?: () => Promise<T | undefined> } = {},
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const throttled = isThrottle(err);
      const transient = !throttled && (options.retryTransient ?? true) && isTransient(err);
      if (!throttled && !transient) throw err;
      if (attempt >= policy.maxRetries) {
        if (throttled) throw new ThrottledError(operation, attempt + 1, { cause: err });
        throw err;
      }
      await policy.sleep(backoffDelay(attempt, policy));
      if (transient && options.beforeRetry) {
        const done = await options.beforeRetry();
        if (done !== undefined) return done;
      }
    }
  }
}
