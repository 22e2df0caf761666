/**
 * Entry of a scan thread that may run any operation (it loads the registry): from the checkout or tsc
 * output, and through main.ts when the container's worker.js itself is the thread's script.
 */
import { runScanThread } from './threads';

void runScanThread((name, raw) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const op = (require('../operations/registry') as typeof import('../operations/registry')).getOperation(name);
  if (op.kind !== 'records') throw new Error(`operation ${name} does not process records`);
  return { op, config: op.parseConfig(raw) };
});
