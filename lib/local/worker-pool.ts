import { ChildProcess, spawn } from 'child_process';
import * as http from 'http';
import * as os from 'os';
import { mainWithCodeCache } from './code-cache';

/**
 * Long-lived worker processes for the local runner's Batch route. Each is the bundled worker
 * entrypoint in its own local mode (`worker.js --serve`, containers/worker/src/serve.ts): it takes the
 * environment contract of one chunk as the body of `POST /process` and runs it with the same
 * `runWorker` a Batch container runs, so a chunk pays Node's start-up and module loading once per
 * process instead of once per chunk. A process runs one chunk at a time; the pool starts processes
 * lazily, up to `size`, and hands each chunk to an idle one.
 */
export interface WorkerPoolOptions {
  /** The bundled worker (containers/worker/src/main.ts). */
  readonly workerJs: string;
  readonly size: number;
  /** Environment of the processes (S3 endpoint and credentials, LOG_LEVEL, ...). */
  readonly env: NodeJS.ProcessEnv;
  /**
   * A V8 code cache file for `workerJs` (code-cache.ts): the processes load the bundle with it, and the
   * processes that found no usable cache write one when they exit.
   * @default - no code cache: `node workerJs`
   */
  readonly codeCache?: string;
}

/** What one chunk ended with: the worker's HTTP status and result document, or its process's exit. */
export interface PoolOutcome {
  /** 200 succeeded, 422 failed, 503 interrupted, 400 invalid contract, 500 unexpected; 0 when the process died. */
  readonly httpStatus: number;
  readonly body: Record<string, unknown>;
  /** The last lines the process wrote to stderr (for failure messages). */
  readonly stderr: string;
  /** The process's exit code when it died during the chunk. */
  readonly exitCode?: number;
}

interface Member {
  readonly child: ChildProcess;
  readonly port: Promise<number>;
  readonly agent: http.Agent;
  busy: boolean;
  stderr: string;
  exit?: number;
}

export class WorkerPool {
  private readonly members: Member[] = [];
  private readonly waiting: ((m: Member) => void)[] = [];
  private closed = false;
  /** How many processes this pool has started (processes, not chunks). */
  public started = 0;

  constructor(private readonly options: WorkerPoolOptions) {}

  /** Runs one chunk (its contract variables) on an idle process. */
  async run(contract: Record<string, string>): Promise<PoolOutcome> {
    const member = await this.acquire();
    try {
      const port = await member.port;
      return await this.post(member, port, contract);
    } finally {
      member.busy = false;
      this.release(member);
    }
  }

  /** Starts every process of the pool now instead of at the first chunks. */
  prestart(): void {
    while (!this.closed && this.members.filter((m) => m.exit === undefined).length < this.options.size) this.spawn();
  }

  /** Processes alive now. */
  get alive(): readonly ChildProcess[] {
    return this.members.filter((m) => m.exit === undefined).map((m) => m.child);
  }

  /** Interrupts running chunks (SIGTERM: the worker saves checkpoints) without waiting. */
  interrupt(): void {
    for (const m of this.members) if (m.exit === undefined) m.child.kill('SIGTERM');
  }

  /** Stops every process (SIGTERM, then SIGKILL after `graceMs`) and waits until all have exited. */
  async close(graceMs = 5_000): Promise<void> {
    this.closed = true;
    const exits = this.members.map(
      (m) =>
        new Promise<void>((resolve) => {
          m.agent.destroy();
          if (m.child.exitCode !== null || m.child.signalCode !== null) return resolve();
          const t = setTimeout(() => m.child.kill('SIGKILL'), graceMs);
          m.child.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          m.child.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
  }

  private async acquire(): Promise<Member> {
    if (this.closed) throw new Error('worker pool closed');
    const idle = this.members.find((m) => !m.busy && m.exit === undefined);
    if (idle) {
      idle.busy = true;
      return idle;
    }
    const live = this.members.filter((m) => m.exit === undefined).length;
    if (live < this.options.size) {
      const m = this.spawn();
      m.busy = true;
      return m;
    }
    return new Promise<Member>((resolve) => this.waiting.push(resolve));
  }

  private release(member: Member): void {
    const next = this.waiting.shift();
    if (!next) return;
    if (member.exit === undefined) {
      member.busy = true;
      next(member);
    } else {
      // The process died: a new one takes the waiting chunk.
      void this.acquire().then(next);
    }
  }

  private spawn(): Member {
    const args = ['--serve', '--port', '0'];
    const { workerJs, codeCache } = this.options;
    const child = spawn(process.execPath, ['--enable-source-maps', ...(codeCache ? mainWithCodeCache(workerJs, codeCache, args) : [workerJs, ...args])], {
      env: { ...this.options.env, HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.started++;
    const member: Member = {
      child,
      agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
      busy: false,
      stderr: '',
      port: new Promise<number>((resolve, reject) => {
        let tail = '';
        child.stdout!.on('data', (d: Buffer) => {
          const lines = (tail + d.toString()).split('\n');
          tail = lines.pop() ?? '';
          for (const line of lines) {
            // The worker's structured log line `serving` carries the bound port.
            if (!line.includes('"serving"')) continue;
            try {
              const port = (JSON.parse(line) as { port?: unknown }).port;
              if (typeof port === 'number') resolve(port);
            } catch {
              // not a JSON line
            }
          }
        });
        child.once('error', reject);
        child.once('exit', (code) => reject(new Error(`worker process exited with code ${code} before serving: ${lastLine(member.stderr)}`)));
      }),
    };
    member.port.catch(() => undefined);
    child.stderr!.on('data', (d: Buffer) => (member.stderr = (member.stderr + d.toString()).slice(-8000)));
    child.once('exit', (code, signal) => {
      member.exit = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1);
    });
    this.members.push(member);
    return member;
  }

  private post(member: Member, port: number, contract: Record<string, string>): Promise<PoolOutcome> {
    const body = JSON.stringify(contract);
    return new Promise<PoolOutcome>((resolve) => {
      const died = (): void => {
        const finish = (): void => resolve({ httpStatus: 0, body: {}, stderr: member.stderr, exitCode: member.exit ?? 1 });
        if (member.exit !== undefined) finish();
        else member.child.once('exit', () => setImmediate(finish));
      };
      const req = http.request(
        // The result document is in S3 (the aggregate step reads it there): not sent back and parsed here.
        { host: '127.0.0.1', port, method: 'POST', path: '/process?document=omit', agent: member.agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('error', died);
          res.on('end', () => {
            let parsed: Record<string, unknown> = {};
            try {
              parsed = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
            } catch {
              parsed = { error: 'the worker answered with a body that is not JSON' };
            }
            resolve({ httpStatus: res.statusCode ?? 0, body: parsed, stderr: member.stderr });
          });
        },
      );
      req.on('error', died);
      req.end(body);
    });
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}
