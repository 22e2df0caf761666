/**
 * The worker process (started by ./main.ts, the entrypoint the container and `npm run worker` run).
 * Batch mode reads the environment contract and processes one chunk; `--serve`
 * starts the local HTTP mode. Process-level concerns (env, exit codes, signals) live here only; the
 * chunk processing itself is `processChunk` in ./engine, which the chunk Lambda imports too.
 */
import { ConfigError, parseConfig } from './config';
import { threadCountFromEnv, ThreadOptions } from './engine';
import { createLogger, Logger, LogLevel } from './log';
import { EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED, exitCodeFor, runWorker } from './run';
import { serve } from './serve';

/** After SIGTERM the checkpoint must be saved well inside ECS's stop timeout (30 s by default). */
const SHUTDOWN_DEADLINE_MS = 25_000;

function exit(code: number): void {
  // Let stdout drain (logs piped to CloudWatch) before leaving.
  process.exitCode = code;
  process.stdout.write('', () => process.exit(code));
}

async function batchMode(log: Logger): Promise<void> {
  let config;
  try {
    config = parseConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`worker: invalid environment: ${err.message}\n`);
      log.error('invalid environment', { variable: err.variable, error: err.message });
      return exit(EXIT_CONFIG);
    }
    throw err;
  }
  const jobLog = log.child({ jobId: config.jobId });
  let threads: ThreadOptions;
  try {
    // From the TypeScript sources (`npm run worker`, tests) every thread would compile the engine again
    // through tsx (seconds per thread): there threads are used only when WORKER_THREADS asks for them.
    const fromSources = __filename.endsWith('.ts');
    threads = { count: threadCountFromEnv(process.env.WORKER_THREADS ?? (fromSources ? '1' : undefined)) };
  } catch (err) {
    process.stderr.write(`worker: invalid environment: ${(err as Error).message}\n`);
    jobLog.error('invalid environment', { variable: 'WORKER_THREADS', error: (err as Error).message });
    return exit(EXIT_CONFIG);
  }
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    jobLog.warn(`${signal} received; stopping at the next record boundary and saving a checkpoint`);
    controller.abort();
    setTimeout(() => {
      jobLog.error(`no checkpoint within ${SHUTDOWN_DEADLINE_MS} ms of ${signal}; exiting`);
      process.exit(EXIT_INTERRUPTED);
    }, SHUTDOWN_DEADLINE_MS).unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const result = await runWorker(config, jobLog, controller.signal, { threads });
    if (result.status === 'failed') process.stderr.write(`worker: ${result.message}\n`);
    exit(exitCodeFor(result));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`worker: invalid environment: ${err.message}\n`);
      jobLog.error('invalid environment', { variable: err.variable, error: err.message });
      return exit(EXIT_CONFIG);
    }
    const message = (err as Error).message;
    process.stderr.write(`worker: ${message}\n`);
    jobLog.error('failed', { error: message, stack: (err as Error).stack });
    exit(EXIT_FAILED);
  }
}

async function serveMode(args: string[], log: Logger): Promise<void> {
  const i = args.indexOf('--port');
  const raw = i >= 0 ? args[i + 1] : (process.env.PORT ?? '8080');
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`worker: --port/PORT (${raw}) must be an integer 0-65535\n`);
    return exit(EXIT_CONFIG);
  }
  const host = process.env.HOST ?? '0.0.0.0';
  const handle = await serve(port, log, host);
  let stopping = false;
  // `on`, not `once`: a second SIGTERM (a wrapper such as tsx relays the one the group got) must not
  // hit Node's default handler and kill the process mid-shutdown.
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal} received; shutting down`);
    void handle.shutdown().then(() => exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const log = createLogger({ service: 'worker' }, { level: (process.env.LOG_LEVEL as LogLevel | undefined) ?? 'info' });
  if (argv.includes('--serve')) return serveMode(argv, log);
  if (argv.length > 0 && argv[0] !== '--') {
    process.stderr.write(`worker: unknown arguments ${argv.join(' ')}; run without arguments (batch mode) or with --serve [--port N]\n`);
    return exit(EXIT_CONFIG);
  }
  return batchMode(log);
}

/** Runs main() and turns an unexpected error into exit 1. */
export function start(): void {
  main().catch((err) => {
    process.stderr.write(`worker: ${(err as Error).stack ?? String(err)}\n`);
    exit(EXIT_FAILED);
  });
}
