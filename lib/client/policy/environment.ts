import type { OperationDeclaration } from '../../../containers/worker/src/operations/declarations';
import { FieldError } from '../errors';
import { refused } from './fields';

/**
 * Names no submitter may ever set, whatever an operation declares: they would choose the code the
 * worker runs (NODE_OPTIONS, LD_PRELOAD, PATH), where it sends data or with which credentials
 * (AWS_*, any *_ENDPOINT*, OUTPUT_S3_* credentials), or overwrite the contract the client derives
 * from the request. Endpoints and credentials come from the stack (job definition, Secrets Manager).
 */
export const CONTRACT_NAMES: readonly string[] = [
  'JOB_ID',
  'OPERATION',
  'OPERATION_CONFIG',
  'TENANT_ID',
  'USER_ID',
  'CALLBACK_URL',
  'CHUNK_START_BYTE',
  'CHUNK_END_BYTE',
];
const NEVER_SETTABLE: readonly { readonly test: (name: string) => boolean; readonly why: string }[] = [
  { test: (n) => n.startsWith('NODE_'), why: 'NODE_* (NODE_OPTIONS would load code into the worker)' },
  { test: (n) => n === 'PATH' || n.startsWith('LD_') || n.startsWith('DYLD_'), why: 'PATH, LD_*, DYLD_* (they pick the binaries and libraries that run)' },
  { test: (n) => n.startsWith('AWS_'), why: 'AWS_* (credentials, region, endpoints and Batch\'s own variables come from the stack)' },
  { test: (n) => n.includes('ENDPOINT'), why: '*_ENDPOINT* (endpoints come from the stack)' },
  { test: (n) => /(SECRET|PASSWORD|ACCESS_KEY|TOKEN|CREDENTIAL)/.test(n), why: 'credentials (they come from the stack)' },
  { test: (n) => /^(INPUT|OUTPUT|MANIFEST)_S3_/.test(n), why: 'INPUT_S3_*, OUTPUT_S3_*, MANIFEST_S3_* (the client sets where a job reads and writes)' },
  { test: (n) => CONTRACT_NAMES.includes(n), why: `the worker contract (${CONTRACT_NAMES.join(', ')}), set by the client from the request` },
];

/** Why a name can never be set by a submitter, or undefined. */
export function neverSettable(name: string): string | undefined {
  return NEVER_SETTABLE.find((r) => r.test(name.toUpperCase()))?.why;
}

/** Deny by default: only the operation's declared names, each with a value matching its pattern. */
export function checkEnvironment(environment: Readonly<Record<string, string>> | undefined, declaration: OperationDeclaration): FieldError[] {
  if (!environment) return [];
  const declared = Object.keys(declaration.environment);
  const allowedNames = declared.length ? declared.join(', ') : 'none';
  const errors: FieldError[] = [];
  for (const [name, value] of Object.entries(environment)) {
    const field = `environment.${name}`;
    const never = neverSettable(name);
    if (never) {
      errors.push(refused(field, name, `names a submitter may set for ${declaration.name} (${allowedNames}); never ${never}`));
      continue;
    }
    const rule = Object.hasOwn(declaration.environment, name) ? declaration.environment[name] : undefined;
    if (!rule) {
      errors.push(refused(field, name, `names ${declaration.name} declares for submitters: ${allowedNames}`));
    } else if (typeof value !== 'string' || !rule.pattern.test(value)) {
      errors.push(refused(field, value, `${name}: ${rule.allowed}`));
    }
  }
  return errors;
}
