import { spawn } from 'child_process';
import * as path from 'path';
import { motoEnv } from '../../../support/moto';

export const REPO_ROOT = path.resolve(__dirname, '../../../..');
/** Exactly what `npm run worker` runs (node itself, with tsx as a loader: no wrapper process between). */
export const WORKER_COMMAND = ['node', '--import', 'tsx', 'containers/worker/src/main.ts'];

export interface WorkerRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout lines that parse as JSON. */
  logs: Record<string, unknown>[];
}

export interface WorkerProcessOptions {
  args?: string[];
  /**
   * Sends SIGTERM to the worker's own process (the pid its "processing" line logs) this many ms after
   * that line, as ECS signals the container's PID 1.
   */
  sigtermAfterMs?: number;
  /** Called with each stdout line as it arrives. */
  onLine?: (line: string) => void;
}

/** Runs the worker entrypoint as a child process with moto's environment plus `env`. */
export function runWorkerProcess(env: Record<string, string>, options: WorkerProcessOptions = {}): Promise<WorkerRun> {
  const [cmd, ...args] = WORKER_COMMAND;
  const child = spawn(cmd, [...args, ...(options.args ?? [])], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...motoEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let partial = '';
  let signalled = false;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      options.onLine?.(line);
      if (options.sigtermAfterMs !== undefined && !signalled && line.includes('"message":"processing"')) {
        signalled = true;
        const workerPid = (JSON.parse(line) as { pid: number }).pid;
        setTimeout(() => {
          try {
            process.kill(workerPid, 'SIGTERM');
          } catch {
            // already gone: it finished before the signal
          }
        }, options.sigtermAfterMs);
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const logs: Record<string, unknown>[] = [];
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a log line
        }
      }
      resolve({ code, signal, stdout, stderr, logs });
    });
  });
}

export function summaryOf(run: WorkerRun): Record<string, unknown> | undefined {
  return run.logs.find((l) => l.summary === true);
}
