/** Entry file of a scan thread when the engine runs from the checkout or from tsc output (see threads.ts). */
import { runScanThread } from './threads';

void runScanThread();
