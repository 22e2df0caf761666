import { Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * Builds the one error shape every construct of this library throws for a bad prop:
 * `[<construct path>] <prop> (<value>) <problem>; allowed: <allowed>`.
 */
export function propError(scope: IConstruct, prop: string, value: unknown, allowed: string, problem = 'is invalid'): Error {
  return new Error(`[${scope.node.path}] ${prop} (${formatValue(value)}) ${problem}; allowed: ${allowed}`);
}

/** Throws a propError unless `min <= value <= max`; unresolved tokens are skipped. */
export function checkRange(scope: IConstruct, prop: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isFinite(value) || value < min || value > max) {
    throw propError(scope, prop, value, `${min} to ${max}`, 'is out of range');
  }
}

/** Throws a propError unless value is a whole number >= min (tokens skipped). */
export function checkInteger(scope: IConstruct, prop: string, value: number | undefined, min: number): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min) {
    throw propError(scope, prop, value, `a whole number >= ${min}`);
  }
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(formatValue).join(', ')}]`;
  if (value === undefined) return 'undefined';
  try {
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  } catch {
    return String(value);
  }
}
