/**
 * The worker's entrypoint: the container runs it (`node /app/worker.js`), and so does `npm run worker`
 * from the checkout. The same file is the script of the engine's scan threads (engine/threads.ts), so
 * it loads nothing until it knows which of the two it is: `require` (not `import`) lets esbuild's bundle
 * evaluate only the modules one side needs, and a scan thread never loads the AWS SDK, the logger or
 * the HTTP server (each thread is a V8 isolate of its own; what it loads, it holds).
 *
 * A bundled batch run starts its scan threads first thing (engine/prestart.ts): they
 * load their operation on the other cores while this thread loads the SDK and reads the object's size,
 * instead of after it (about 0.3 s of a 2-thread run). From the TypeScript sources threads are opt-in
 * (process-main.ts), so nothing is prestarted there.
 */
import { isMainThread, workerData } from 'worker_threads';
import { SCAN_THREAD_MARK } from './engine/thread-mark';

if (!isMainThread && (workerData as { mark?: unknown } | null)?.mark === SCAN_THREAD_MARK) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('./engine/thread-main');
} else if (require.main === module) {
  if (!__filename.endsWith('.ts') && !process.argv.includes('--serve')) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('./engine/prestart') as typeof import('./engine/prestart')).prestartFromEnv();
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('./process-main') as typeof import('./process-main')).start();
}
