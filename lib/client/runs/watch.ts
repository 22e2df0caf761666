import { isTerminal, RunStatus } from './runs';
import { RunWatchAbortedError, RunWatchTimeoutError } from './errors';

export interface WatchOptions {
  /** Time between two reads. */
  readonly intervalMs: number;
  /** Give up after this long (RunWatchTimeoutError). @default no limit */
  readonly timeoutMs?: number;
  /** Aborting stops watching (RunWatchAbortedError); the run keeps going. */
  readonly signal?: AbortSignal;
  /** Called with every status read, the last one included. */
  readonly onStatus: (status: RunStatus) => void;
}

/** Reads `read()` every interval until the run is in a terminal state, and returns that status. */
export async function watchRun(runId: string, read: () => Promise<RunStatus>, o: WatchOptions): Promise<RunStatus> {
  const started = Date.now();
  for (;;) {
    if (o.signal?.aborted) throw new RunWatchAbortedError(runId);
    const status = await read();
    o.onStatus(status);
    if (isTerminal(status)) return status;
    if (o.timeoutMs !== undefined && Date.now() - started + o.intervalMs > o.timeoutMs) {
      throw new RunWatchTimeoutError(runId, Math.round(o.timeoutMs / 1000));
    }
    await sleep(o.intervalMs, o.signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
