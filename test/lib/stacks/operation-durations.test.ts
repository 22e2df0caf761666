import { declaredExpectedDurations, declaredOperationNames, DEFAULT_EXPECTED_DURATION_MINUTES } from '../../../containers/worker/src/operations/declarations';
import { EXPECTED_OPERATION_DURATION_MINUTES } from '../../../lib/stacks/operation-durations';

test('the stack alarms on every declared operation with the duration the worker declares', () => {
  expect(EXPECTED_OPERATION_DURATION_MINUTES).toEqual(declaredExpectedDurations());
  expect(Object.keys(EXPECTED_OPERATION_DURATION_MINUTES).sort()).toEqual(declaredOperationNames().sort());
});

test('an operation without a declared duration expects the default, and the slow ones say more', () => {
  const d = declaredExpectedDurations();
  expect(d['transform-records']).toBe(DEFAULT_EXPECTED_DURATION_MINUTES);
  expect(d['bundle-photos']).toBeGreaterThan(DEFAULT_EXPECTED_DURATION_MINUTES);
});
