import { Duration, Fn, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { handlerEntry, PlatformFunction } from '../common/node-function';
import { checkInteger, propError } from '../common/validation';
import { acknowledgeLambdaBasics } from '../monitoring/nag';

export const WEBHOOK_PATH = '/webhooks/batch-complete';
export const DEFAULT_WEBHOOK_RATE_LIMIT = 50;
export const DEFAULT_WEBHOOK_BURST_LIMIT = 100;

export interface CompletionWebhookProps {
  /**
   * Topics whose messages the webhook accepts (normally `JobNotifications.topic`). Any other topic is
   * refused even when correctly signed: anyone can create a topic and subscribe this URL.
   */
  readonly topics: sns.ITopic[];
  /**
   * Staging bucket; recorded result location is `s3://<bucket>/jobs/<jobId>/output/`.
   * @default - no result location is recorded
   */
  readonly outputBucket?: s3.IBucket;
  /**
   * Steady-state requests per second the API stage accepts.
   * @default 50
   */
  readonly throttlingRateLimit?: number;
  /**
   * Burst of requests the API stage accepts.
   * @default 100
   */
  readonly throttlingBurstLimit?: number;
  /**
   * Retention of the API access logs.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly accessLogRetention?: logs.RetentionDays;
  /**
   * What happens to the completions table when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly tableRemovalPolicy?: RemovalPolicy;
  /**
   * Retention of the log group of the webhook handler Lambda.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The HTTPS endpoint `POST /webhooks/batch-complete` (API Gateway REST API, regional) in front of a
 * Lambda that verifies every SNS signature, confirms subscriptions only after verification and
 * records each job's final status and result location once in a DynamoDB table.
 * Subscribe it with `notifications.addWebhook(webhook.url)`.
 */
export class CompletionWebhook extends Construct {
  public readonly api: apigw.RestApi;
  public readonly handler: PlatformFunction;
  /** jobId (partition) + status (sort): one item per job and final status. */
  public readonly table: dynamodb.Table;
  public readonly accessLogGroup: logs.LogGroup;
  /** Full URL of `POST /webhooks/batch-complete`. */
  public readonly url: string;

  constructor(scope: Construct, id: string, props: CompletionWebhookProps) {
    super(scope, id);
    if (!props.topics || props.topics.length === 0) {
      throw propError(this, 'topics', props.topics ?? [], 'at least one SNS topic (the JobNotifications topic)', 'is empty');
    }
    checkInteger(this, 'throttlingRateLimit', props.throttlingRateLimit, 1);
    checkInteger(this, 'throttlingBurstLimit', props.throttlingBurstLimit, 1);

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'jobId', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'status', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: props.tableRemovalPolicy ?? RemovalPolicy.RETAIN,
    });

    this.handler = new PlatformFunction(this, 'Handler', {
      entry: handlerEntry('webhook/index.ts'),
      description: 'Verifies SNS-signed Batch job notifications and records job completions',
      timeout: Duration.seconds(10),
      logRetention: props.logRetention,
      environment: {
        TABLE_NAME: this.table.tableName,
        ALLOWED_TOPIC_ARNS: Fn.join(',', props.topics.map((t) => t.topicArn)),
        ...(props.outputBucket ? { OUTPUT_BUCKET: props.outputBucket.bucketName } : {}),
      },
    });
    acknowledgeLambdaBasics(this.handler);
    // PutItem only: the handler never reads, updates or deletes.
    this.table.grant(this.handler, 'dynamodb:PutItem');

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.api = new apigw.RestApi(this, 'Api', {
      description: 'Receives SNS notifications of finished Batch jobs',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      // The account-wide API Gateway CloudWatch role is shared by every API of the account: not ours to overwrite.
      cloudWatchRole: false,
      deployOptions: {
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
        throttlingRateLimit: props.throttlingRateLimit ?? DEFAULT_WEBHOOK_RATE_LIMIT,
        throttlingBurstLimit: props.throttlingBurstLimit ?? DEFAULT_WEBHOOK_BURST_LIMIT,
        tracingEnabled: true,
        metricsEnabled: true,
      },
    });
    const resource = this.api.root.addResource('webhooks').addResource('batch-complete');
    // No request model: API Gateway validates a body only against a model of its content type, so SNS's
    // text/plain JSON passes to the handler, which answers malformed bodies with 400 itself.
    const method = resource.addMethod('POST', new apigw.LambdaIntegration(this.handler), {
      requestValidatorOptions: { validateRequestBody: true, validateRequestParameters: true },
    });
    this.url = this.api.urlForPath(WEBHOOK_PATH);

    Validations.of(method).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: 'SNS HTTPS subscriptions cannot present IAM or Cognito credentials; every request is authenticated by its SNS signature (certificate pinned to SNS hosts) and topic allow-list in the handler.',
    });
    Validations.of(method).acknowledge({
      id: 'AwsSolutions-COG4',
      reason: 'Caller is Amazon SNS, which cannot use a Cognito user pool; requests are authenticated by SNS message signature.',
    });
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG3',
      reason: 'One POST route whose every request is cryptographically verified and stage-throttled; a WAF web ACL can be associated by the deployer when required.',
    });
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG6',
      reason: 'Access logs are on (JSON, standard fields); execution logging needs the account-wide API Gateway CloudWatch role, which this construct deliberately does not overwrite.',
    });
  }
}
