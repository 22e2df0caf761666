import { Template } from 'aws-cdk-lib/assertions';
import { STACK_OUTPUT_KEYS } from '../../../lib/client';
import { BatchPlatformStack } from '../../../lib/stacks/batch-platform-stack';
import { STAGES } from '../../../lib/stacks/stage-config';
import { appWithCdkJson } from '../../support/app';

test('with the quota prop the platform stack builds a QuotaTable for both queues, wires it into the submit paths and outputs it for batchctl', () => {
  const app = appWithCdkJson({ stage: 'dev' });
  const stack = new BatchPlatformStack(app, 'QuotaPlatform', {
    config: STAGES.dev,
    env: { account: '123456789012', region: 'eu-west-1' },
    quota: { defaultLimits: { maxActiveJobs: 3, submissionsPerMinute: 10 } },
  });
  const template = Template.fromStack(stack);
  const json = template.toJSON();
  expect(Object.keys(json.Outputs)).toEqual(expect.arrayContaining(['QuotaTableName', 'QuotaLimits']));
  // The outputs are the ones batchctl --stack reads into its config.
  expect(STACK_OUTPUT_KEYS).toMatchObject({ QuotaTableName: 'quotaTable', QuotaLimits: 'quotaLimits' });
  const rule = Object.values(json.Resources as Record<string, { Type: string; Properties: { EventPattern?: { detail?: { status?: string[]; jobQueue?: unknown[] } } } }>).find(
    (r) => r.Type === 'AWS::Events::Rule' && r.Properties.EventPattern?.detail?.status?.includes('SUCCEEDED'),
  );
  expect(rule?.Properties.EventPattern?.detail?.jobQueue).toHaveLength(stack.fargateJobQueue ? 2 : 1);
  const env = (fn: { node: { defaultChild?: unknown } }) => json.Resources[stack.getLogicalId(fn.node.defaultChild as never)].Properties.Environment.Variables;
  expect(env(stack.submitApi.submitFunction).QUOTA_TABLE).toEqual({ Ref: stack.getLogicalId(stack.quota!.table.node.defaultChild as never) });
  expect(env(stack.queueTriggeredJobs.submitFunction).QUOTA_TABLE).toEqual({ Ref: stack.getLogicalId(stack.quota!.table.node.defaultChild as never) });
});
