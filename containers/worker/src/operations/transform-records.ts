import { exactNumber, isExactNumber } from '../engine/exact-json';
import { TRANSFORM_FIELD_TYPES as FIELD_TYPES, transformRecordsConfigSchema } from './declarations';
import type { RecordCounts, RecordOperation, StepContext } from './types';

/**
 * The record-update job: OPERATION_CONFIG `{"require":["k"],"types":{"k":"integer"},"rename":{"old":"new"},
 * "drop":["k"],"set":{"k":v}}` applied in that order: records missing a `require`d field (an own field
 * that is not null) are rejected, declared `types` convert input fields (a value that does not convert
 * is a reject), then fields are renamed, dropped, and set. Writes one JSON line per accepted record.
 *
 * Values the job does not change are written as they were read: the engine gives this operation JSON
 * numbers as their source text (so 12345678901234567890 stays 12345678901234567890) and CSV fields as
 * strings (so the zip code 02134 stays "02134"), unless `types` declares otherwise. Field names are data:
 * they are handled as own properties only, so `__proto__` or `constructor` are fields like any other.
 */
type FieldType = (typeof FIELD_TYPES)[number];

const configSchema = transformRecordsConfigSchema;

/** The parsed configuration: lists of pairs built from the raw object's own keys, never looked up by name on an object. */
export interface TransformConfig {
  rename: [string, string][];
  set: [string, unknown][];
  drop: string[];
  require: string[];
  types: [string, FieldType][];
}

interface TransformState extends RecordCounts {
  config: TransformConfig;
}

const EMPTY_CONFIG: TransformConfig = { rename: [], set: [], drop: [], require: [], types: [] };

export interface TransformSummary {
  operation: 'transform-records';
  records: number;
  rejected: number;
}

/** Entries of a plain object from JSON; zod's parsed copy is not used for names, as it assigns keys (a `__proto__` key would be lost). */
function ownEntries(raw: unknown, key: string): [string, unknown][] {
  const v = (raw as Record<string, unknown> | undefined)?.[key];
  return v === undefined ? [] : Object.entries(v as Record<string, unknown>);
}

function defineOwn(record: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(record, name, { value, enumerable: true, writable: true, configurable: true });
}

const NUMBER_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** A JSON number with the same value as the text (`02134` -> 2134, `+.5` -> 0.5), or undefined when it is not a number. */
function numberFromText(text: string, integer: boolean): unknown {
  const m = NUMBER_TEXT.exec(text.trim());
  if (!m || (m[2] === '' && (m[3] === undefined || m[3] === ''))) return undefined;
  if (integer && ((m[3] !== undefined && !/^0*$/.test(m[3])) || m[4] !== undefined)) return undefined;
  const intPart = m[2].replace(/^0+(?=\d)/, '') || '0';
  const frac = integer ? '' : (m[3] ?? '');
  const exp = integer ? '' : m[4] !== undefined ? `e${m[4]}` : '';
  const sign = m[1] === '-' && !/^0*$/.test(intPart + frac) ? '-' : '';
  return exactNumber(`${sign}${intPart}${frac ? '.' + frac : ''}${exp}`);
}

/** Converts one field to its declared type; a string reason when it cannot. */
function convert(value: unknown, type: FieldType, field: string): { value: unknown } | string {
  const shown = () => JSON.stringify(isExactNumber(value) ? String(value) : value)?.slice(0, 60);
  switch (type) {
    case 'string':
      if (typeof value === 'string') return { value };
      if (isExactNumber(value) || typeof value === 'number' || typeof value === 'boolean') return { value: String(value) };
      return `field ${field}: ${shown()} cannot be a string`;
    case 'boolean':
      if (typeof value === 'boolean') return { value };
      if (value === 'true' || value === 'false') return { value: value === 'true' };
      return `field ${field}: ${shown()} is not a boolean (true or false)`;
    case 'number':
    case 'integer': {
      const integer = type === 'integer';
      const text = isExactNumber(value) ? String(value) : typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;
      const n = text === undefined ? undefined : numberFromText(text, integer);
      if (n === undefined) return `field ${field}: ${shown()} is not ${integer ? 'an integer' : 'a number'}`;
      return { value: n };
    }
  }
}

export const transformRecords: RecordOperation<TransformState, TransformConfig> = {
  name: 'transform-records',
  kind: 'records',
  output: 'records',
  values: 'exact',
  parseConfig(raw) {
    const parsed = configSchema.safeParse(raw ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(
        `transform-records config: ${issue.path.join('.') || '(root)'}: ${issue.message}; expected ` +
          `{"require":[...],"types":{"field":"string|number|integer|boolean"},"rename":{"from":"to"},"drop":[...],"set":{"field":value}}`,
      );
    }
    return {
      rename: ownEntries(raw, 'rename') as [string, string][],
      set: ownEntries(raw, 'set'),
      drop: parsed.data.drop,
      require: parsed.data.require,
      types: ownEntries(raw, 'types') as [string, FieldType][],
    };
  },
  init(config) {
    return { records: 0, rejected: 0, config };
  },
  step(state, record, ctx: StepContext) {
    const { config } = state;
    for (const field of config.require) {
      if (!Object.hasOwn(record, field) || record[field] === null) return `missing required field ${field}`;
    }
    for (const [field, type] of config.types) {
      if (!Object.hasOwn(record, field) || record[field] === null) continue;
      const converted = convert(record[field], type, field);
      if (typeof converted === 'string') return converted;
      defineOwn(record, field, converted.value);
    }
    for (const [from, to] of config.rename) {
      if (Object.hasOwn(record, from)) {
        const value = record[from];
        delete record[from];
        defineOwn(record, to, value);
      }
    }
    for (const field of config.drop) delete record[field];
    for (const [field, value] of config.set) defineOwn(record, field, value);
    ctx.emit(record);
    return undefined;
  },
  merge(a, b) {
    return { config: a.config, records: a.records + b.records, rejected: a.rejected + b.rejected };
  },
  serialize(state) {
    const summary: TransformSummary = { operation: 'transform-records', records: state.records, rejected: state.rejected };
    return summary as unknown as Record<string, unknown>;
  },
  deserialize(doc) {
    const d = doc as TransformSummary;
    if (!d || d.operation !== 'transform-records' || !Number.isInteger(d.records) || !Number.isInteger(d.rejected)) {
      throw new Error('not a transform-records summary document');
    }
    return { records: d.records, rejected: d.rejected, config: EMPTY_CONFIG };
  },
};
