import { ConditionalCheckFailedException, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';

/** A job's final state as the webhook records it: one item per (jobId, status). */
export interface CompletionRecord {
  readonly jobId: string;
  readonly status: string;
  readonly jobName?: string;
  readonly jobQueue?: string;
  readonly statusReason?: string;
  readonly exitCode?: number;
  readonly tenantId?: string;
  readonly stoppedAt?: number;
  /** `s3://<outputBucket>/jobs/<jobId>/output/` (the staging layout). */
  readonly resultLocation?: string;
  /** The platform job id (JOB_ID), when the job was completed (completeJob). */
  readonly platformJobId?: string;
  /** Objects and bytes under the result location at completion. */
  readonly resultObjects?: number;
  readonly resultBytes?: number;
  /** 'true' / 'false' when the job had a CALLBACK_URL. */
  readonly callbackDelivered?: string;
  readonly messageId: string;
  readonly topicArn: string;
  readonly recordedAt: string;
}

export type RecordOutcome = 'recorded' | 'duplicate';

export interface CompletionStore {
  record(rec: CompletionRecord): Promise<RecordOutcome>;
}

/**
 * DynamoDB store keyed by jobId (partition) + status (sort). The write is conditional on the item not
 * existing, so a redelivered SNS message, a retried EventBridge delivery (new MessageId, same event)
 * and two concurrent deliveries all leave exactly one item, first writer wins.
 */
export class DynamoCompletionStore implements CompletionStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async record(rec: CompletionRecord): Promise<RecordOutcome> {
    const item: Record<string, { S: string } | { N: string }> = {};
    for (const [k, v] of Object.entries(rec)) {
      if (typeof v === 'string' && v !== '') item[k] = { S: v };
      else if (typeof v === 'number' && Number.isFinite(v)) item[k] = { N: String(v) };
    }
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(jobId)',
        }),
      );
      return 'recorded';
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException || (err as { name?: string }).name === 'ConditionalCheckFailedException') return 'duplicate';
      throw err;
    }
  }
}
