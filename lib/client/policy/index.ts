import { createHash } from 'crypto';
import { declaredOperationNames, operationDeclaration } from '../../../containers/worker/src/operations/declarations';
import { FieldError, InvalidRequestError } from '../errors';
import { issuesToFieldErrors, parseSubmitRequest, SubmitRequest } from '../schema';
import { checkEnvironment } from './environment';
import { checkSizing, SizingLimits } from './sizing';
import { checkCallbackUrl, checkInputKey, checkPrototypeKeys, checkTenantId, checkUserId, refused, shown } from './fields';

export { CONTRACT_NAMES, neverSettable } from './environment';
export { checkSizing, FARGATE_SIZES, jobSize, SIZING_ENV, sizingLimitsFromEnv } from './sizing';
export type { JobSize, SizingLimits } from './sizing';
export { MAX_ECHOED_VALUE_CHARS, tenantPrefix, TENANT_ID_PATTERN, USER_ID_PATTERN } from './fields';

/**
 * The ONE submission policy. BatchJobClient.submit applies it before it touches S3 or Batch, and the
 * submit API and the queue path call validateSubmitRequest on what they received, so the three ways
 * in refuse the same requests with the same field errors. See docs/security.md "Who can submit what".
 */

/** OPERATION_CONFIG travels in the container overrides (8 KiB for everything): larger configs belong in the staged input. */
export const MAX_OPERATION_CONFIG_BYTES = 4096;

/** What the stack adds to the policy (the submit Lambdas read it from their environment). */
export interface PolicyOptions {
  /** The stack's ceiling on `vcpus` / `memoryMiB` per job. @default - only the operation's bounds */
  readonly sizingLimits?: SizingLimits;
}

/** Every policy problem of a request that already passed the schema, plus those the raw body shows (prototype keys). */
export function checkSubmissionPolicy(req: SubmitRequest, raw: unknown = req, options: PolicyOptions = {}): FieldError[] {
  const errors: FieldError[] = [];
  const body = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  // On the raw body: a parsed copy has already lost an own `__proto__` key (assigning it sets the prototype).
  errors.push(...checkPrototypeKeys('environment', body.environment), ...checkPrototypeKeys('operationConfig', body.operationConfig));
  errors.push(...checkTenantId(req.tenantId), ...checkUserId(req.userId), ...checkInputKey(req.inputKey, req.tenantId), ...checkCallbackUrl(req.callbackUrl));
  const declaration = operationDeclaration(req.operation);
  if (!declaration) {
    errors.push(refused('operation', req.operation, `an operation of the worker's registry: ${declaredOperationNames().join(', ')}`));
    return errors;
  }
  if (!errors.some((e) => e.field.startsWith('environment.'))) errors.push(...checkEnvironment(req.environment, declaration));
  errors.push(...checkSizing(req, declaration, options.sizingLimits));
  if (req.operationConfig !== undefined && !errors.some((e) => e.field.startsWith('operationConfig'))) {
    const bytes = Buffer.byteLength(JSON.stringify(req.operationConfig));
    if (bytes > MAX_OPERATION_CONFIG_BYTES) {
      errors.push({
        field: 'operationConfig',
        message: `is ${bytes} bytes of JSON; allowed: at most ${MAX_OPERATION_CONFIG_BYTES} (it travels in the container overrides): put large settings in the input`,
        value: shown(req.operationConfig),
      });
    } else {
      const parsed = declaration.configSchema.safeParse(req.operationConfig);
      if (!parsed.success) {
        for (const e of issuesToFieldErrors(parsed.error.issues, req.operationConfig)) {
          const field = e.field === '(body)' ? 'operationConfig' : `operationConfig.${e.field}`;
          errors.push({ field, message: `${e.message}; allowed: what the ${declaration.name} config schema accepts (docs/worker.md)`, ...(e.value === undefined ? {} : { value: shown(e.value) }) });
        }
      }
    }
  }
  return errors;
}

/**
 * The schema, then the policy: returns the request, or throws one InvalidRequestError listing every
 * problem (field, value shown truncated, what is allowed). Nothing has been staged or submitted then.
 */
export function validateSubmitRequest(raw: unknown, options: PolicyOptions = {}): SubmitRequest {
  let req: SubmitRequest;
  try {
    req = parseSubmitRequest(raw);
  } catch (err) {
    if (!(err instanceof InvalidRequestError)) throw err;
    // Add what the policy can say about the raw fields, so a caller sees every problem at once.
    // The schema's message wins for a field both report, except environment names: the policy's says what is allowed.
    const policy = rawPolicyErrors(raw);
    const preferPolicy = new Set(policy.filter((e) => e.field.startsWith('environment.')).map((e) => e.field));
    const schema = err.errors.filter((e) => !preferPolicy.has(e.field));
    const fields = new Set(schema.map((e) => e.field));
    throw new InvalidRequestError('invalid submit request', [...schema, ...policy.filter((e) => !fields.has(e.field))]);
  }
  const errors = checkSubmissionPolicy(req, raw, options);
  if (errors.length) throw new InvalidRequestError('submission refused by policy', errors);
  return req;
}

function rawPolicyErrors(raw: unknown): FieldError[] {
  if (raw === null || typeof raw !== 'object') return [];
  const r = raw as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const errors = [
    ...checkPrototypeKeys('environment', r.environment),
    ...checkPrototypeKeys('operationConfig', r.operationConfig),
    ...checkTenantId(str(r.tenantId)),
    ...checkUserId(str(r.userId)),
    ...checkCallbackUrl(str(r.callbackUrl)),
    ...checkInputKey(str(r.inputKey), str(r.tenantId)),
  ];
  const operation = str(r.operation);
  const declaration = operation === undefined ? undefined : operationDeclaration(operation);
  if (operation !== undefined && !declaration) {
    errors.push(refused('operation', operation, `an operation of the worker's registry: ${declaredOperationNames().join(', ')}`));
  }
  const env = r.environment;
  if (declaration && env !== null && typeof env === 'object' && !Array.isArray(env) && !errors.some((e) => e.field.startsWith('environment.'))) {
    errors.push(...checkEnvironment(env as Record<string, string>, declaration));
  }
  return errors;
}

/**
 * sha256 of the canonical request (keys sorted at every level, the client token left out): stored
 * with the submission, so a reused idempotency key with another payload is told apart from a retry.
 */
export function requestHash(req: SubmitRequest): string {
  const { clientToken: _token, ...rest } = req;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}
