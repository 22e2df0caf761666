import type { Operation } from '../operations/types';

/**
 * Operations a scan thread can load on their own, without the registry: the registry loads every
 * operation and the libraries they use (geometry, the AWS SDK), about 0.2 s of CPU and 3 MB of script
 * to compile in every thread. A thread for one of these starts from engine/scan-thread (its own small
 * bundle in the image); any other operation's threads start from engine/thread-main, which has the
 * registry.
 */
export const LIGHT_THREAD_OPERATIONS = new Map<string, () => Operation>([
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ['aggregate-defects', () => (require('../operations/aggregate-defects') as typeof import('../operations/aggregate-defects')).aggregateDefects],
]);
