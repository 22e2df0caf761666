import { ClientContext } from './context';
import { JobFailedError, WaitTimeoutError } from './errors';
import { status } from './lookup';
import { JobInfo, WaitOptions } from './types';

/**
 * Polls until the job is SUCCEEDED (returned) or FAILED (JobFailedError), with a growing interval;
 * the fallback when a completion notification was lost. Throws WaitTimeoutError after timeoutMs.
 */
export async function wait(ctx: ClientContext, jobId: string, options: WaitOptions = {}): Promise<JobInfo> {
  const timeoutMs = options.timeoutMs ?? 3_600_000;
  const maxPollMs = options.maxPollMs ?? 30_000;
  let delay = options.pollMs ?? 2000;
  const started = Date.now();
  for (;;) {
    const info = await status(ctx, jobId);
    options.onProgress?.(info);
    if (info.status === 'SUCCEEDED') return info;
    if (info.status === 'FAILED') throw new JobFailedError(info.jobId, info.statusReason, info.exitCode);
    const remaining = timeoutMs - (Date.now() - started);
    if (remaining <= 0) throw new WaitTimeoutError(jobId, timeoutMs, info.status);
    await ctx.retry.sleep(Math.min(delay, remaining));
    delay = Math.min(maxPollMs, Math.ceil(delay * 1.5));
  }
}
