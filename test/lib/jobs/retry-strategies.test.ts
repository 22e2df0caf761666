import { Stack } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import {
  MAX_RETRY_RULES,
  RetryPresets,
  checkRetryAttempts,
  checkRetryStrategies,
} from '../../../lib/jobs/retry-strategies';

function render(strategies: batch.RetryStrategy[]): Record<string, string>[] {
  return strategies.map((s) => ({ action: s.action, ...(s.on as Record<string, string>) }));
}

test('infrastructureOnly retries EC2 host loss, Fargate Spot interruption and image pull failures, then exits on the rest', () => {
  expect(render(RetryPresets.infrastructureOnly())).toEqual([
    { action: 'RETRY', onStatusReason: 'Host EC2*' },
    { action: 'RETRY', onStatusReason: 'Your Spot Task was interrupted*' },
    { action: 'RETRY', onReason: 'CannotPullContainerError:*' },
    { action: 'EXIT', onStatusReason: '*' },
  ]);
});

test('infrastructureOnly leaves room for one rule of your own within Batch\'s limit of 5', () => {
  expect(RetryPresets.infrastructureOnly().length).toBe(MAX_RETRY_RULES - 1);
});

test('infrastructureOnly returns a fresh array each call', () => {
  const first = RetryPresets.infrastructureOnly();
  first.pop();
  expect(RetryPresets.infrastructureOnly()).toHaveLength(4);
});

test('checkRetryStrategies accepts 5 rules', () => {
  const stack = new Stack(undefined, 'Retry');
  const five = [...RetryPresets.infrastructureOnly(), batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.custom({ onExitCode: '75' }))];
  expect(() => checkRetryStrategies(stack, five)).not.toThrow();
});

test('checkRetryStrategies rejects more than 5 rules', () => {
  const stack = new Stack(undefined, 'Retry');
  const six = [...RetryPresets.infrastructureOnly(), ...RetryPresets.infrastructureOnly().slice(0, 2)];
  expect(() => checkRetryStrategies(stack, six))
    .toThrow('[Retry] retryStrategies ("6 rules") has too many rules; allowed: at most 5 rules (Batch\'s limit)');
});

test('checkRetryAttempts rejects attempts outside 1 to 10', () => {
  const stack = new Stack(undefined, 'Retry');
  expect(() => checkRetryAttempts(stack, 0)).toThrow('[Retry] attempts (0) is out of range; allowed: 1 to 10');
  expect(() => checkRetryAttempts(stack, 11)).toThrow('[Retry] attempts (11) is out of range; allowed: 1 to 10');
});

test('checkRetryAttempts rejects fractional attempts', () => {
  const stack = new Stack(undefined, 'Retry');
  expect(() => checkRetryAttempts(stack, 2.5)).toThrow('[Retry] attempts (2.5) is invalid; allowed: a whole number from 1 to 10');
});
