import type { AnyRecordOperation } from '../operations/types';

/** What a scan thread runs of a record operation: no parseConfig (its config arrives parsed), no deserialize. */
export type ThreadOperation = Pick<AnyRecordOperation, 'name' | 'kind' | 'values' | 'scanLines' | 'init' | 'step' | 'serialize'>;

/**
 * Operations a scan thread can load on their own, without the registry: the registry loads every
 * operation and the libraries they use (geometry, the AWS SDK, zod), about 0.2 s of CPU and 3 MB of
 * script to compile in every thread. A thread for one of these starts from engine/scan-thread (its own
 * small bundle in the image) and loads only the operation's zod-free part (its config arrives parsed:
 * engine/prestart.ts or scanThreaded parse it in the starting thread); any other operation's threads
 * start from engine/thread-main, which has the registry.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
export const LIGHT_THREAD_OPERATIONS = new Map<string, () => ThreadOperation>([
  ['aggregate-defects', () => (require('../operations/aggregate-defects-core') as typeof import('../operations/aggregate-defects-core')).aggregateDefectsThread],
]);
/* eslint-enable @typescript-eslint/no-require-imports */
