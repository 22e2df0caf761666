import { CreateTableCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { BatchClient, SubmitJobCommandInput } from '@aws-sdk/client-batch';
import { QuotaConfig, quotaSettings, QuotaSettings } from '../../../lib/client';
import { motoClientConfig } from '../../support/moto';

/** A quota table in moto with the QuotaTable construct's key schema, named after the suite. */
export async function createQuotaTable(suite: string): Promise<{ dynamodb: DynamoDBClient; tableName: string }> {
  const dynamodb = new DynamoDBClient({ ...motoClientConfig(), maxAttempts: 1 });
  const tableName = `${suite}-quota-${Date.now().toString(36)}`;
  await dynamodb.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
  return { dynamodb, tableName };
}

/** Quota settings on that table with a clock the test moves. */
export function settingsWithClock(t: { dynamodb: DynamoDBClient; tableName: string }, config: QuotaConfig, start = Date.parse('2026-11-28T12:00:10Z')) {
  const clock = { ms: start };
  const settings: QuotaSettings = quotaSettings({ tableName: t.tableName, config, dynamodb: t.dynamodb, now: () => clock.ms, leaseSeconds: 3600 });
  return { settings, clock };
}

/** The tenant's active-jobs counter as stored. */
export async function activeCount(t: { dynamodb: DynamoDBClient; tableName: string }, tenantId: string): Promise<number> {
  const res = await t.dynamodb.send(new GetItemCommand({ TableName: t.tableName, Key: { pk: { S: `tenant#${tenantId}` }, sk: { S: 'active' } }, ConsistentRead: true }));
  return Number(res.Item?.n?.N ?? '0');
}

/**
 * A Batch client for moto that records every SubmitJob request it sends (the request still goes to
 * moto). moto 5.2's DescribeJobs reports the job definition's vcpus/memory and ignores
 * containerOverrides.resourceRequirements, so the overrides are checked on the request Batch received.
 */
export function recordingBatch(): { batch: BatchClient; submitted: SubmitJobCommandInput[] } {
  const batch = new BatchClient({ ...motoClientConfig(), maxAttempts: 1 });
  const submitted: SubmitJobCommandInput[] = [];
  batch.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'SubmitJobCommand') submitted.push(args.input as SubmitJobCommandInput);
      return next(args);
    },
    { step: 'initialize', name: 'recordSubmitJob' },
  );
  return { batch, submitted };
}
