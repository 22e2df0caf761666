/**
 * Scan threads started from the batch job's environment before the worker loads anything else (main.ts
 * calls this first thing): they load their operation on the other cores while the main thread loads the
 * SDK and reads the object's size. Kept out of threads.ts, which the scan threads' own bundle includes:
 * parsing the config needs the operation's zod schema, which the threads never load.
 */
import { cpuLimit, prestartScanThreads, releasePrestartedThreads, threadCountFromEnv } from './threads';
import { LIGHT_THREAD_OPERATIONS } from './thread-operations';

/** parseConfig of each light operation (LIGHT_THREAD_OPERATIONS), loaded on demand. */
const CONFIG_PARSERS = new Map<string, () => (raw: unknown) => unknown>([
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ['aggregate-defects', () => (require('../operations/aggregate-defects') as typeof import('../operations/aggregate-defects')).aggregateDefects.parseConfig],
]);

/**
 * prestartScanThreads from OPERATION, OPERATION_CONFIG, WORKER_THREADS and FIELD_SCANNER. Does nothing
 * (returns 0) when the environment is not valid: the process then reports it as usual and no chunk
 * takes the threads.
 */
export function prestartFromEnv(env: NodeJS.ProcessEnv = process.env, cpus = cpuLimit()): number {
  const operation = env.OPERATION;
  const parser = operation === undefined ? undefined : CONFIG_PARSERS.get(operation);
  if (operation === undefined || parser === undefined || !LIGHT_THREAD_OPERATIONS.has(operation)) return 0;
  try {
    const count = threadCountFromEnv(env.WORKER_THREADS, cpus);
    if (count < 2) return 0;
    const raw = env.OPERATION_CONFIG === undefined ? undefined : (JSON.parse(env.OPERATION_CONFIG) as unknown);
    return prestartScanThreads(operation, raw, parser()(raw), count, env.FIELD_SCANNER !== 'off');
  } catch {
    releasePrestartedThreads();
    return 0;
  }
}
