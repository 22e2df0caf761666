import { createWaiter, WaiterState } from '@smithy/core/client';
import { ClientContext } from './context';
import { InvalidRequestError, JobFailedError, WaitAbortedError, WaitTimeoutError } from './errors';
import { completeJob } from './completion';
import { resolve, status } from './lookup';
import { JobInfo, WaitOptions } from './types';

/**
 * Polls until the job is SUCCEEDED (returned) or FAILED (JobFailedError), with the SDK waiter's
 * exponential backoff and jitter between pollMs and maxPollMs; the fallback when a completion
 * notification was lost. Throws WaitTimeoutError after timeoutMs, WaitAbortedError when `signal` fires.
 */
export async function wait(ctx: ClientContext, jobId: string, options: WaitOptions = {}): Promise<JobInfo> {
  const timeoutMs = options.timeoutMs ?? 3_600_000;
  const pollMs = options.pollMs ?? 2000;
  const maxPollMs = Math.max(pollMs, options.maxPollMs ?? 30_000);
  for (const [field, value] of [['timeoutMs', timeoutMs], ['pollMs', pollMs]] as const) {
    if (!(value > 0)) throw new InvalidRequestError('invalid wait options', [{ field, message: 'must be a positive number of milliseconds', value }]);
  }
  if (options.signal?.aborted) throw new WaitAbortedError(jobId, undefined);
  let last: JobInfo | undefined;
  const result = await createWaiter(
    { client: ctx, maxWaitTime: Math.max(timeoutMs, pollMs + 1) / 1000, minDelay: pollMs / 1000, maxDelay: maxPollMs / 1000, abortSignal: options.signal },
    jobId,
    async (c: ClientContext, id: string) => {
      const info = await status(c, id);
      last = info;
      options.onProgress?.(info);
      if (info.status === 'SUCCEEDED') return { state: WaiterState.SUCCESS, reason: info };
      if (info.status === 'FAILED') return { state: WaiterState.FAILURE, reason: info };
      return { state: WaiterState.RETRY, reason: info };
    },
  );
  if (options.completion && (result.state === WaiterState.SUCCESS || result.state === WaiterState.FAILURE)) {
    await completeJob(options.completion, await resolve(ctx, jobId));
  }
  switch (result.state) {
    case WaiterState.SUCCESS:
      return last!;
    case WaiterState.FAILURE:
      throw new JobFailedError(last!.jobId, last!.statusReason, last!.exitCode);
    case WaiterState.ABORTED:
      throw new WaitAbortedError(jobId, last?.status);
    default:
      throw new WaitTimeoutError(jobId, timeoutMs, last?.status);
  }
}
