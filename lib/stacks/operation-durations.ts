import { Duration } from 'aws-cdk-lib';

/**
 * Expected duration of one job per worker operation, in minutes: the platform's P95 duration alarms
 * (BatchMonitoring `operationDurations`). The worker declares the same figures
 * (containers/worker/src/operations/declarations.ts `expectedDurationMinutes`); constructs do not import
 * runtime code, so test/lib/stacks/operation-durations.test.ts checks that both tables agree and that
 * every declared operation is here.
 */
export const EXPECTED_OPERATION_DURATION_MINUTES: Readonly<Record<string, number>> = {
  'aggregate-defects': 30,
  'transform-records': 30,
  'bundle-photos': 45,
  ocr: 15,
  reproject: 30,
  buffer: 30,
  simplify: 30,
  clip: 30,
  measure: 30,
  stats: 30,
  dissolve: 30,
};

/** The table as BatchMonitoring's `operationDurations`. */
export function expectedOperationDurations(): Record<string, Duration> {
  return Object.fromEntries(Object.entries(EXPECTED_OPERATION_DURATION_MINUTES).map(([op, min]) => [op, Duration.minutes(min)]));
}
