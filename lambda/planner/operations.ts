import { getOperation, operationNames } from '../../containers/worker/src/operations/registry';

/**
 * Operations a chunked run accepts: the worker's record operations. Custom ones (bundle-photos)
 * read their whole input as one document, so byte ranges mean nothing to them.
 */
export function chunkableOperations(): string[] {
  return operationNames().filter((name) => getOperation(name).kind === 'records');
}
