import { z } from 'zod';
import {
  AggregateDefectsConfig,
  AggregateDefectsResult,
  init,
  merge,
  parseOffset,
  restore,
  serialize,
  step,
} from './aggregate-defects-core';
import { AggregateDefectsState, DEPTH_SUM_UM_MAX } from './aggregate-defects-state';
import { scanLinesDefect } from './aggregate-defects-scan';
import type { RecordOperation } from './types';

/**
 * Nightly road-defect statistics and heatmap (the rules: ./aggregate-defects-core; the byte-level path:
 * ./aggregate-defects-scan). This module adds what needs zod: the config and result-document schemas.
 */
export {
  DEPTH_MM_MAX,
  DEPTH_SUM_UM_MAX,
  HEATMAP_CELL_DEG,
  SEVERITIES,
  YEAR_MAX,
  YEAR_MIN,
} from './aggregate-defects-state';
export type { AggregateDefectsState, Severity } from './aggregate-defects-state';
export { parseDetectedAt, parseOffset, utcDay } from './aggregate-defects-core';
export type { AggregateDefectsConfig, AggregateDefectsResult } from './aggregate-defects-core';

const configSchema = z
  .object({
    /**
     * Offset applied to `detectedAt` values that carry none, e.g. "+02:00" or "Z". Without it such
     * values are rejected: the machine's time zone never decides a day.
     */
    defaultUtcOffset: z
      .string()
      .refine((v) => parseOffset(v) !== undefined, 'must be "Z" or an offset from -12:00 to +14:00 such as "+02:00"')
      .optional(),
  })
  .strict();


const count = z.number().int().nonnegative();
const documentSchema = z.object({
  operation: z.literal('aggregate-defects'),
  records: count,
  rejected: count,
  segments: z.record(
    z.string(),
    z.object({
      count,
      severity: z.object({ low: count, medium: count, high: count, critical: count }),
      depthMm: z.object({
        count,
        sum: z.number(),
        sumUm: count.max(DEPTH_SUM_UM_MAX).optional(),
        mean: z.number().nullable(),
        max: z.number().nullable(),
      }),
    }),
  ),
  days: z.record(z.string().regex(/^\d{4}-\d{2}-\d{2}$/), count),
  heatmap: z.object({ cellDeg: z.number(), cells: z.record(z.string().regex(/^-?\d+:-?\d+$/), count) }),
});

/** Checks the document's shape (a chunk result or a checkpoint's state), then rebuilds Maps from its own keys. */
function deserialize(doc: unknown): AggregateDefectsState {
  const checked = documentSchema.safeParse(doc);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new Error(`not an aggregate-defects result document: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  // Entries of the input, not of zod's output: zod copies records into plain objects by assignment.
  return restore(doc as AggregateDefectsResult);
}

export const aggregateDefects: RecordOperation<AggregateDefectsState, AggregateDefectsConfig> = {
  name: 'aggregate-defects',
  kind: 'records',
  output: 'document',
  parseConfig(raw) {
    const parsed = configSchema.safeParse(raw ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(
        `aggregate-defects config: ${issue.path.join('.') || '(root)'}: ${issue.message}; expected an object such as {"defaultUtcOffset":"+02:00"} or none`,
      );
    }
    return parsed.data;
  },
  scanLines: scanLinesDefect,
  init,
  step,
  merge,
  serialize,
  deserialize,
  restore: (doc) => restore(doc as unknown as AggregateDefectsResult),
};
