import { staticUrlProblem } from '../callback-url';
import { FieldError } from '../errors';

/**
 * Field rules of the submission policy that do not depend on the operation: identities, input keys,
 * callback URLs, object keys that could reach a prototype, and how a refused value is shown.
 */

/** Longest value echoed back in an error (the rest is cut, so a 5 MB field never becomes a 5 MB reply or log line). */
export const MAX_ECHOED_VALUE_CHARS = 120;

/**
 * Tenant ids: plain ASCII (no Unicode look-alikes such as Cyrillic `а` for `a`, no full-width forms),
 * no `/` (a tenant id is one segment of its key prefix, so no tenant's prefix can contain another's),
 * starting with a letter or digit.
 */
export const TENANT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}$/;
export const TENANT_ID_ALLOWED = '1-128 ASCII letters, digits and . _ : @ + = -, starting with a letter or digit';
/** User ids are recorded on the job (an IAM ARN from the submit API), never used in a key: `/` allowed. */
export const USER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,255}$/;
export const USER_ID_ALLOWED = '1-256 ASCII letters, digits and . _ : @ + = / -, starting with a letter or digit';

/** Where a tenant's own objects live in the input bucket; its submits may read inputs only there. */
export function tenantPrefix(tenantId: string): string {
  return `tenants/${tenantId}/`;
}
/** Prefixes of the platform's own objects (staged inputs, idempotency records, chunk manifests). */
export const PLATFORM_PREFIXES = ['jobs/', 'runs/'] as const;

export const MAX_CALLBACK_URL_CHARS = 2048;

/** Keys that reach an object's prototype when assigned through `obj[key] = ...`. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** The value as shown in an error: strings and JSON cut to MAX_ECHOED_VALUE_CHARS, control characters escaped. */
export function shown(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  // JSON.stringify escapes CR/LF and the other control characters, so a refused value cannot forge a log line.
  const escaped = JSON.stringify(text).slice(1, -1);
  return escaped.length > MAX_ECHOED_VALUE_CHARS ? `${escaped.slice(0, MAX_ECHOED_VALUE_CHARS)}... (${text.length} chars)` : escaped;
}

export function refused(field: string, value: unknown, allowed: string): FieldError {
  return { field, message: `${JSON.stringify(shown(value))} is not allowed; allowed: ${allowed}`, value: shown(value) };
}

export function checkTenantId(tenantId: string | undefined): FieldError[] {
  if (tenantId === undefined || TENANT_ID_PATTERN.test(tenantId)) return [];
  return [refused('tenantId', tenantId, TENANT_ID_ALLOWED)];
}

export function checkUserId(userId: string | undefined): FieldError[] {
  if (userId === undefined || USER_ID_PATTERN.test(userId)) return [];
  return [refused('userId', userId, USER_ID_ALLOWED)];
}

/**
 * An input key is taken as given, never resolved against anything: it must already be in normal
 * form (no `.` or `..` segment, no empty segment, no leading `/`, no backslash, no control
 * characters, no `s3://` or bucket in it) and lie under the tenant's prefix, or, without a tenant,
 * outside every tenant's prefix. The platform's own prefixes (jobs/, runs/) are never an input key.
 */
export function checkInputKey(inputKey: string | undefined, tenantId: string | undefined): FieldError[] {
  if (inputKey === undefined) return [];
  const confinement = tenantId !== undefined ? `a key under ${tenantPrefix(tenantId)}` : 'a key outside tenants/';
  const problem = inputKeyProblem(inputKey);
  if (problem) return [refused('inputKey', inputKey, `${confinement} of the input bucket in normal form (${problem})`)];
  if (PLATFORM_PREFIXES.some((p) => inputKey.startsWith(p))) {
    return [refused('inputKey', inputKey, `${confinement}; ${PLATFORM_PREFIXES.join(', ')} hold the platform's own objects`)];
  }
  if (tenantId !== undefined ? !inputKey.startsWith(tenantPrefix(tenantId)) : inputKey.startsWith('tenants/')) {
    return [refused('inputKey', inputKey, `${confinement} of the input bucket (other tenants' objects are out of reach)`)];
  }
  return [];
}

function inputKeyProblem(key: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(key)) return 'no control characters';
  if (/[^\x20-\x7e]/.test(key)) return 'printable ASCII only';
  if (key.includes('\\')) return 'no backslash';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(key) || key.startsWith('arn:')) return 'a key, not a URL or ARN: the bucket is the platform\'s input bucket';
  if (key.startsWith('/')) return 'no leading /';
  const segments = key.split('/');
  if (segments.some((s) => s === '.' || s === '..')) return 'no . or .. segments';
  if (segments.some((s, i) => s === '' && i < segments.length - 1) || key.endsWith('/')) return 'no empty segments, not a folder';
  return undefined;
}

/**
 * Callback URLs: https only, no user:password@ (credentials would travel in every job's environment),
 * no control characters (a CR/LF would smuggle a header into the worker's request), at most 2048 chars.
 */
export function checkCallbackUrl(callbackUrl: string | undefined): FieldError[] {
  if (callbackUrl === undefined) return [];
  const allowed = `an https:// URL without user:password@ and without control characters or spaces, at most ${MAX_CALLBACK_URL_CHARS} characters`;
  // Percent-encoded CR/LF too: a client that decodes the path before writing the request line would unfold them.
  // eslint-disable-next-line no-control-regex
  if (callbackUrl.length > MAX_CALLBACK_URL_CHARS || /[\u0000-\u0020\u007f-\u009f]|%0[ad]|%00/i.test(callbackUrl)) {
    return [refused('callbackUrl', callbackUrl, allowed)];
  }
  let url: URL;
  try {
    url = new URL(callbackUrl);
  } catch {
    return [refused('callbackUrl', callbackUrl, allowed)];
  }
  if (url.protocol !== 'https:' || url.username !== '' || url.password !== '' || callbackUrl.includes('@')) {
    return [refused('callbackUrl', callbackUrl, allowed)];
  }
  // A literal private/loopback/link-local address or a local name can never be a callback target at
  // submit; host names are resolved and every address checked again when the callback is made.
  const problem = staticUrlProblem(callbackUrl);
  if (problem) return [refused('callbackUrl', callbackUrl, `${allowed}, whose host is a public address or name (${problem})`)];
  return [];
}

/** `__proto__`, `constructor` and `prototype` anywhere in a submitted object (they reach prototypes when copied). */
export function checkPrototypeKeys(field: string, value: unknown, depth = 0): FieldError[] {
  if (value === null || typeof value !== 'object' || depth > 32) return [];
  const errors: FieldError[] = [];
  for (const key of Object.keys(value)) {
    const path = `${field}.${key}`;
    if (PROTOTYPE_KEYS.has(key)) errors.push(refused(path, key, 'keys other than __proto__, constructor and prototype'));
    else errors.push(...checkPrototypeKeys(path, (value as Record<string, unknown>)[key], depth + 1));
  }
  return errors;
}
