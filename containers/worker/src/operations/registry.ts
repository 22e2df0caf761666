import { aggregateDefects } from './aggregate-defects';
import { bundlePhotos } from './bundle-photos';
import { ocr } from './ocr';
import { transformRecords } from './transform-records';
import type { Operation } from './types';

/** Every operation the worker knows, by OPERATION name. Adding one: a module plus one line here. */
const OPERATIONS: Record<string, Operation> = {
  [aggregateDefects.name]: aggregateDefects,
  [transformRecords.name]: transformRecords,
  [bundlePhotos.name]: bundlePhotos,
  [ocr.name]: ocr,
};

export function operationNames(): string[] {
  return Object.keys(OPERATIONS);
}

export function hasOperation(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(OPERATIONS, name);
}

export function getOperation(name: string): Operation {
  if (!hasOperation(name)) {
    throw new Error(`unknown operation "${name}"; known: ${operationNames().join(', ')}`);
  }
  return OPERATIONS[name];
}
