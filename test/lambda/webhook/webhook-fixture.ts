import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { motoClientConfig } from '../../support/moto';
import { createTestSigner, TestSigner } from './sns-signer';

/** The SNS topic the webhook tests allow and sign for. */
export const TEST_TOPIC_ARN = 'arn:aws:sns:eu-central-1:123456789012:job-notifications';

/** The path secret the webhook tests configure (48 letters and digits, as the construct generates). */
export const TEST_PATH_SECRET = 'Zq7Kx2mP9vLr4Tn8Bw3Yc6Hd1Jf5Gs0AeQuRiWoPlMkNbVcX';

export interface WebhookFixture {
  readonly signer: TestSigner;
  readonly ddb: DynamoDBClient;
}

/**
 * A throwaway SNS signer plus a moto DynamoDB client with the completions table `tableName`
 * (jobId HASH, status RANGE, as the CompletionWebhook construct creates it). Call `signer.cleanup()` after.
 */
export async function createWebhookFixture(tableName: string): Promise<WebhookFixture> {
  const signer = createTestSigner();
  const ddb = new DynamoDBClient(motoClientConfig());
  await ddb.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'jobId', AttributeType: 'S' },
        { AttributeName: 'status', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'jobId', KeyType: 'HASH' },
        { AttributeName: 'status', KeyType: 'RANGE' },
      ],
    }),
  );
  return { signer, ddb };
}
