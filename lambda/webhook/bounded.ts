import { createLogger, Logger, LogSink } from '../shared/log';

/**
 * Size bounds for everything an unauthenticated caller controls: a value quoted in an error or a
 * log line never costs more than a few hundred characters, whatever was sent (a 5 MB MessageId
 * gives a short line, not a 5 MB one).
 */
export const MAX_QUOTED_CHARS = 200;
export const MAX_LOG_FIELD_CHARS = 256;

/** `value` for an error message: strings as JSON cut to `max` characters plus how many were left out; other types by kind. */
export function preview(value: unknown, max = MAX_QUOTED_CHARS): string {
  if (typeof value === 'string') {
    if (value.length <= max) return JSON.stringify(value);
    return `${JSON.stringify(value.slice(0, max))}…(+${value.length - max} chars)`;
  }
  if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return Array.isArray(value) ? `an array of ${value.length}` : `a ${typeof value}`;
}

/** The own property `key` of a parsed JSON object; never one inherited from Object.prototype. */
export function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** One log field cut to `max` characters: strings keep their head, other non-scalars become a preview. */
export function boundField(value: unknown, max = MAX_LOG_FIELD_CHARS): unknown {
  if (typeof value === 'string') return value.length <= max ? value : `${value.slice(0, max)}…(+${value.length - max} chars)`;
  if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  return preview(value, max);
}

/** A structured logger (lambda/shared/log) whose every field is bounded by boundField. */
export function createBoundedLogger(base: Record<string, unknown>, sink?: LogSink): Logger {
  const inner = createLogger(base, sink);
  const bound = (fields: Record<string, unknown> = {}): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) out[k] = boundField(v);
    return out;
  };
  return {
    log: (level, m, f) => inner.log(level, m, bound(f)),
    info: (m, f) => inner.info(m, bound(f)),
    warn: (m, f) => inner.warn(m, bound(f)),
    error: (m, f) => inner.error(m, bound(f)),
  };
}
