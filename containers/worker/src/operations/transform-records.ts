import { z } from 'zod';
import { transformRecordsConfigSchema } from './declarations';
import type { RecordCounts, RecordOperation, StepContext } from './types';

/**
 * The record-update job: OPERATION_CONFIG `{"rename":{"old":"new"},"set":{"k":v},"drop":["k"],
 * "require":["k"]}` applied in that order: records missing a `require`d field (checked on the input)
 * are rejected, then fields are renamed, dropped, and set. Writes one JSON line per accepted record.
 */
const configSchema = transformRecordsConfigSchema;

export type TransformConfig = z.infer<typeof configSchema>;

interface TransformState extends RecordCounts {
  config: TransformConfig;
  renames: [string, string][];
  sets: [string, unknown][];
}

export interface TransformSummary {
  operation: 'transform-records';
  records: number;
  rejected: number;
}

export const transformRecords: RecordOperation<TransformState, TransformConfig> = {
  name: 'transform-records',
  kind: 'records',
  output: 'records',
  parseConfig(raw) {
    const parsed = configSchema.safeParse(raw ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`transform-records config: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    return parsed.data;
  },
  init(config) {
    return {
      records: 0,
      rejected: 0,
      config,
      renames: Object.entries(config.rename),
      sets: Object.entries(config.set),
    };
  },
  step(state, record, ctx: StepContext) {
    const { config } = state;
    for (const field of config.require) {
      if (record[field] === undefined || record[field] === null) return `missing required field ${field}`;
    }
    for (const [from, to] of state.renames) {
      if (from in record) {
        record[to] = record[from];
        delete record[from];
      }
    }
    for (const field of config.drop) delete record[field];
    for (const [field, value] of state.sets) record[field] = value;
    ctx.emit(record);
    return undefined;
  },
  merge(a, b) {
    return { ...a, records: a.records + b.records, rejected: a.rejected + b.rejected };
  },
  serialize(state) {
    const summary: TransformSummary = { operation: 'transform-records', records: state.records, rejected: state.rejected };
    return summary as unknown as Record<string, unknown>;
  },
  deserialize(doc) {
    const d = doc as TransformSummary;
    if (!d || d.operation !== 'transform-records') throw new Error('not a transform-records summary document');
    const state = transformRecords.init(transformRecords.parseConfig({}));
    state.records = d.records;
    state.rejected = d.rejected;
    return state;
  },
};
