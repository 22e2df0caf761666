import { BatchClientError, EXIT_CODES } from '../errors';

/** No `runs/{runId}/plan.json` in the runs bucket and no execution of that name. */
export class RunNotFoundError extends BatchClientError {
  public readonly code = 'RUN_NOT_FOUND';
  public readonly exitCode = EXIT_CODES.NOT_FOUND;
  constructor(public readonly runId: string, public readonly runsBucket: string) {
    super(`run ${runId} not found: no s3://${runsBucket}/runs/${runId}/plan.json and no execution of that name`);
  }
}

/** `runs status --watch` / `runs retry --watch` saw the run end other than SUCCEEDED. */
export class RunNotSucceededError extends BatchClientError {
  public readonly code = 'RUN_NOT_SUCCEEDED';
  public readonly exitCode = EXIT_CODES.JOB_FAILED;
  constructor(public readonly runId: string, public readonly state: string) {
    super(`run ${runId} ended ${state}${state === 'PARTIAL' || state === 'FAILED' ? `; \`batchctl runs retry ${runId}\` reruns only its failed chunks` : ''}`);
  }
}

/** `--watch --timeout` passed before the run finished. */
export class RunWatchTimeoutError extends BatchClientError {
  public readonly code = 'WAIT_TIMEOUT';
  public readonly exitCode = EXIT_CODES.TIMEOUT;
  constructor(public readonly runId: string, timeoutSeconds: number) {
    super(`run ${runId} still running after ${timeoutSeconds} s`);
  }
}

/** Ctrl-C while watching. */
export class RunWatchAbortedError extends BatchClientError {
  public readonly code = 'WAIT_ABORTED';
  public readonly exitCode = EXIT_CODES.INTERRUPTED;
  constructor(public readonly runId: string) {
    super(`stopped watching run ${runId}; the run itself keeps going`);
  }
}
