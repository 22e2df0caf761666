/**
 * Entry of a scan thread for the operations of LIGHT_THREAD_OPERATIONS (see threads.ts): loads the
 * scan and that one operation's zod-free part, nothing else; its config arrives parsed. The image
 * bundles it next to worker.js.
 */
import { LIGHT_THREAD_OPERATIONS } from './thread-operations';
import { runScanThread } from './threads';

void runScanThread((name, _raw, parsed) => {
  const light = LIGHT_THREAD_OPERATIONS.get(name);
  if (light === undefined) throw new Error(`operation ${name} is not one a light scan thread loads (engine/thread-operations.ts)`);
  return { op: light(), config: parsed };
});
