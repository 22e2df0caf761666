import { aggregateDefects } from './aggregate-defects';
import { bundlePhotos } from './bundle-photos';
import { declaredOperationNames, declaredPlacement } from './declarations';
import { GEO_OPERATIONS } from './geo/operations';
import { ocr } from './ocr';
import { placementOf, samePlacement } from './placement';
import { transformRecords } from './transform-records';
import type { Operation } from './types';

/** Every operation the worker knows, by OPERATION name. Adding one: a module plus one line here. */
const OPERATIONS: Record<string, Operation> = {
  [aggregateDefects.name]: aggregateDefects,
  [transformRecords.name]: transformRecords,
  [bundlePhotos.name]: bundlePhotos,
  [ocr.name]: ocr,
  ...Object.fromEntries(GEO_OPERATIONS.map((op) => [op.name, op])),
};

// The submission policy only knows ./declarations: an operation without a declaration could never be
// submitted, and a declaration without an operation would let submits through that the worker refuses.
{
  const declared = declaredOperationNames().sort().join(', ');
  const registered = Object.keys(OPERATIONS).sort().join(', ');
  if (declared !== registered) throw new Error(`operations/declarations.ts declares [${declared}] but the registry runs [${registered}]: keep them in step`);
  // The submit paths route by the declared placement; the module's must be the same or jobs land on the wrong queue or image.
  for (const [name, op] of Object.entries(OPERATIONS)) {
    const routed = declaredPlacement(name)!;
    if (!samePlacement(routed, placementOf(op))) {
      throw new Error(`operation ${name}: declarations.ts places it ${JSON.stringify(routed)} but the module declares ${JSON.stringify(placementOf(op))}: keep them in step`);
    }
  }
}

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
