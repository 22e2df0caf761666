/**
 * Entry of a scan thread that may run any operation (it loads the registry): from the checkout or tsc
 * output, and through main.ts when the container's worker.js itself is the thread's script.
 */
import { runScanThread } from './threads';

// eslint-disable-next-line @typescript-eslint/no-require-imports
void runScanThread((name) => (require('../operations/registry') as typeof import('../operations/registry')).getOperation(name));
