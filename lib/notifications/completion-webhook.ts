import { Duration, Fn, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { handlerEntry, PlatformFunction } from '../common/node-function';
import { checkInteger, checkRange, propError } from '../common/validation';
import { acknowledgeLambdaBasics, acknowledgeWildcardResource } from '../monitoring/nag';

export const WEBHOOK_PATH = '/webhooks/batch-complete';
export const DEFAULT_WEBHOOK_RATE_LIMIT = 50;
export const DEFAULT_WEBHOOK_BURST_LIMIT = 100;
export const DEFAULT_CONFIRMATION_MAX_AGE = Duration.hours(1);
export const DEFAULT_NOTIFICATION_MAX_AGE = Duration.hours(24);
/** Length of the generated path secret (letters and digits: about 285 bits). */
export const PATH_SECRET_LENGTH = 48;
/** Length of the generated HMAC key of job callbacks (letters and digits: about 380 bits). */
export const CALLBACK_SECRET_LENGTH = 64;

/**
 * Completion of finished jobs: record the result in `jobs/{jobId}/completion.json` and call the
 * job's CALLBACK_URL, HMAC-signed (docs/workloads/geoprocessing.md, "Executor").
 */
export interface CompletionCallbacksOptions {
  /** Staging bucket of job inputs: the completion record copies the input's retention-days tag. */
  readonly inputBucket: s3.IBucket;
  /**
   * Private ranges (CIDR) callbacks of this stage may reach, e.g. a receiver inside the VPC. Every
   * other private, loopback, link-local or reserved address a callback host resolves to is refused.
   * @default - none
   */
  readonly allowedCidrs?: readonly string[];
}

export interface CompletionWebhookProps {
  /**
   * Topics whose messages the webhook accepts (normally `JobNotifications.topic`). Any other topic is
   * refused even when correctly signed: anyone can create a topic and subscribe this URL.
   */
  readonly topics: sns.ITopic[];
  /**
   * `retention-days` tag of a completion record whose job input carries none (RETENTION_DAYS).
   * @default - the handler's fallback, 30
   */
  readonly retentionDays?: number;
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
   * Also accept SignatureVersion 1 (SHA1withRSA). Only needed for a topic of your own that still
   * signs with version 1; the JobNotifications topic signs with version 2.
   * @default false
   */
  readonly acceptSignatureVersion1?: boolean;
  /**
   * Oldest `Timestamp` a SubscriptionConfirmation or UnsubscribeConfirmation may carry: a replayed
   * confirmation is refused without fetching its SubscribeURL (1 second to 24 hours).
   * @default Duration.hours(1)
   */
  readonly confirmationMaxAge?: Duration;
  /**
   * Oldest `Timestamp` a Notification may carry; must exceed the subscription's retry time (1 minute to 14 days).
   * @default Duration.hours(24)
   */
  readonly notificationMaxAge?: Duration;
  /**
   * Requests per client IP per 5 minutes above which an AWS WAF rate-based rule blocks that IP
   * (10 to 2,000,000). Setting it creates a regional web ACL associated with the API stage; WAF
   * evaluates before API Gateway throttling, so one noisy caller cannot use up the stage budget
   * that SNS deliveries need. WAF costs a monthly fee per web ACL and rule plus per request.
   * @default - no web ACL
   */
  readonly wafRateLimitPerIp?: number;
  /**
   * Retention of the log group of the webhook handler Lambda.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Complete finished jobs: record result location, size and summary and call their CALLBACK_URL
   * (signed with `callbackSecret`; undeliverable callbacks go to `callbackDeadLetterQueue`).
   * Needs `outputBucket`.
   * @default - job statuses are recorded, nothing is called
   */
  readonly callbacks?: CompletionCallbacksOptions;
}

/**
 * The HTTPS endpoint `POST /webhooks/batch-complete/{secret}` (API Gateway REST API, regional) in
 * front of a Lambda that refuses every request without the generated path secret, verifies every SNS signature, confirms subscriptions only after verification and
 * records each job's final status and result location once in a DynamoDB table.
 * Subscribe it with `notifications.addWebhook(webhook.url)`.
 */
export class CompletionWebhook extends Construct {
  public readonly api: apigw.RestApi;
  public readonly handler: PlatformFunction;
  /** jobId (partition) + status (sort): one item per job and final status. */
  public readonly table: dynamodb.Table;
  public readonly accessLogGroup: logs.LogGroup;
  /**
   * The URL to subscribe: `<stage>/webhooks/batch-complete/<secret>`, the secret as a CloudFormation
   * dynamic reference (`{{resolve:secretsmanager:...}}`) that CloudFormation resolves at deploy time,
   * so the value is in no template. Use it only as an SNS subscription endpoint (dynamic references
   * do not resolve in Outputs).
   */
  public readonly url: string;
  /** `<stage>/webhooks/batch-complete` without the secret (every request to it is refused). */
  public readonly baseUrl: string;
  /** The generated per-subscription secret of the webhook path. */
  public readonly pathSecret: secretsmanager.Secret;
  /** Present when `wafRateLimitPerIp` is set. */
  public readonly webAcl?: wafv2.CfnWebACL;
  /** HMAC-SHA256 key of job callbacks; receivers verify with it. Present with `callbacks`. */
  public readonly callbackSecret?: secretsmanager.Secret;
  /** Callbacks refused or failed after their retries, with body and reason. Present with `callbacks`. */
  public readonly callbackDeadLetterQueue?: sqs.Queue;

  constructor(scope: Construct, id: string, props: CompletionWebhookProps) {
    super(scope, id);
    if (!props.topics || props.topics.length === 0) {
      throw propError(this, 'topics', props.topics ?? [], 'at least one SNS topic (the JobNotifications topic)', 'is empty');
    }
    checkInteger(this, 'throttlingRateLimit', props.throttlingRateLimit, 1);
    checkInteger(this, 'throttlingBurstLimit', props.throttlingBurstLimit, 1);
    checkInteger(this, 'wafRateLimitPerIp', props.wafRateLimitPerIp, 10);
    checkRange(this, 'wafRateLimitPerIp', props.wafRateLimitPerIp, 10, 2_000_000);
    const confirmationMaxAge = props.confirmationMaxAge ?? DEFAULT_CONFIRMATION_MAX_AGE;
    const notificationMaxAge = props.notificationMaxAge ?? DEFAULT_NOTIFICATION_MAX_AGE;
    checkRange(this, 'confirmationMaxAge (seconds)', confirmationMaxAge.toSeconds(), 1, 86_400);
    checkRange(this, 'notificationMaxAge (seconds)', notificationMaxAge.toSeconds(), 60, 14 * 86_400);
    if (props.callbacks && !props.outputBucket) {
      throw propError(this, 'callbacks', 'set', 'callbacks together with outputBucket (the result is listed there)', 'is set without outputBucket');
    }
    for (const cidr of props.callbacks?.allowedCidrs ?? []) {
      if (!/^(\d{1,3}(\.\d{1,3}){3}\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/.test(cidr)) {
        throw propError(this, 'callbacks.allowedCidrs', cidr, 'IPv4 or IPv6 CIDRs such as 10.0.0.0/16', 'contains a value that is not a CIDR');
      }
    }

    this.pathSecret = new secretsmanager.Secret(this, 'PathSecret', {
      description: 'Secret last path segment of the completion webhook URL subscribed to SNS',
      // Letters and digits only: the value is a URL path segment and must need no escaping.
      generateSecretString: { passwordLength: PATH_SECRET_LENGTH, excludePunctuation: true, includeSpace: false, requireEachIncludedType: true },
    });
    Validations.of(this.pathSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'The value is part of the SNS subscription endpoint; rotating it means resubscribing, which a redeploy with a new secret does. A rotation Lambda would break delivery until then.',
    });

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
      // With callbacks: 3 attempts of at most 5 s plus backoff; SNS's own retry finds the job recorded.
      timeout: Duration.seconds(props.callbacks ? 45 : 10),
      logRetention: props.logRetention,
      environment: {
        TABLE_NAME: this.table.tableName,
        ALLOWED_TOPIC_ARNS: Fn.join(',', props.topics.map((t) => t.topicArn)),
        PATH_SECRET_ARN: this.pathSecret.secretArn,
        SIGNATURE_VERSIONS: props.acceptSignatureVersion1 ? '1,2' : '2',
        CONFIRMATION_MAX_AGE_SECONDS: String(confirmationMaxAge.toSeconds()),
        NOTIFICATION_MAX_AGE_SECONDS: String(notificationMaxAge.toSeconds()),
        ...(props.outputBucket ? { OUTPUT_BUCKET: props.outputBucket.bucketName } : {}),
        ...(props.retentionDays !== undefined ? { RETENTION_DAYS: String(props.retentionDays) } : {}),
      },
    });
    if (props.callbacks && props.outputBucket) {
      const callbacks = this.enableCallbacks(props.callbacks, props.outputBucket);
      this.callbackSecret = callbacks.secret;
      this.callbackDeadLetterQueue = callbacks.deadLetterQueue;
    }
    acknowledgeLambdaBasics(this.handler, props.callbacks ? 'batch:DescribeJobs supports none either (completion reads the finished job\'s own description)' : undefined);
    // PutItem only: the handler never reads, updates or deletes the table.
    this.table.grant(this.handler, 'dynamodb:PutItem');
    this.pathSecret.grantRead(this.handler);

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
    // The secret is a path parameter, checked by the handler before anything else; a literal path
    // part would put the value into the template and the API's resource list.
    const resource = this.api.root.addResource('webhooks').addResource('batch-complete').addResource('{secret}');
    // No request model: API Gateway validates a body only against a model of its content type, so SNS's
    // text/plain JSON passes to the handler, which answers malformed bodies with 400 itself.
    const method = resource.addMethod('POST', new apigw.LambdaIntegration(this.handler), {
      requestValidatorOptions: { validateRequestBody: true, validateRequestParameters: true },
    });
    this.baseUrl = this.api.urlForPath(WEBHOOK_PATH);
    this.url = Fn.join('', [this.baseUrl, '/', this.pathSecret.secretValue.unsafeUnwrap()]);

    if (props.wafRateLimitPerIp !== undefined) {
      this.webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
        scope: 'REGIONAL',
        defaultAction: { allow: {} },
        visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: 'CompletionWebhook', sampledRequestsEnabled: true },
        rules: [
          {
            name: 'RatePerIp',
            priority: 0,
            action: { block: {} },
            statement: { rateBasedStatement: { limit: props.wafRateLimitPerIp, aggregateKeyType: 'IP', evaluationWindowSec: 300 } },
            visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: 'CompletionWebhookRatePerIp', sampledRequestsEnabled: true },
          },
        ],
      });
      new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', {
        resourceArn: this.api.deploymentStage.stageArn,
        webAclArn: this.webAcl.attrArn,
      });
    }

    Validations.of(method).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: 'SNS HTTPS subscriptions cannot present IAM or Cognito credentials; every request is authenticated by the secret path segment (constant-time, first), then its SNS signature (certificate pinned to SNS hosts) and topic allow-list in the handler.',
    });
    Validations.of(method).acknowledge({
      id: 'AwsSolutions-COG4',
      reason: 'Caller is Amazon SNS, which cannot use a Cognito user pool; requests are authenticated by SNS message signature.',
    });
    if (!this.webAcl) {
      Validations.of(this.api).acknowledge({
        id: 'AwsSolutions-APIG3',
        reason: 'WAF is opt-in (wafRateLimitPerIp) for its cost: without the path secret a request costs one hash and a 403; with it, every request is SNS-signature verified and stage-throttled.',
      });
    }
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG6',
      reason: 'Access logs are on (JSON, standard fields); execution logging needs the account-wide API Gateway CloudWatch role, which this construct deliberately does not overwrite.',
    });
  }

  private enableCallbacks(options: CompletionCallbacksOptions, outputBucket: s3.IBucket): { secret: secretsmanager.Secret; deadLetterQueue: sqs.Queue } {
    const secret = new secretsmanager.Secret(this, 'CallbackSecret', {
      description: 'HMAC-SHA256 key of job callbacks (x-batch-platform-signature); receivers verify with it',
      generateSecretString: { passwordLength: CALLBACK_SECRET_LENGTH, excludePunctuation: true, includeSpace: false },
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'Receivers hold a copy of the key to verify callbacks; rotating means handing them the new key first, which is an operator step (docs/security.md), not a rotation Lambda.',
    });
    const dlq = new sqs.Queue(this, 'CallbackDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(dlq).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead-letter queue of job callbacks: the webhook sends undeliverable callbacks here with their body and reason.',
    });
    secret.grantRead(this.handler);
    dlq.grantSendMessages(this.handler);
    // Lists jobs/{jobId}/output/ and creates jobs/{jobId}/completion.json with its tags; nothing else.
    this.handler.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [outputBucket.bucketArn], conditions: { StringLike: { 's3:prefix': 'jobs/*' } } }));
    const records = outputBucket.arnForObjects('jobs/*/completion.json');
    this.handler.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:PutObjectTagging'], resources: [records] }));
    outputBucket.encryptionKey?.grantEncrypt(this.handler);
    acknowledgeWildcardResource(this.handler.role!, records, 'One completion record per job: jobs/{jobId}/completion.json, any job id.');
    // Reads the retention-days tag of the job's input, which may be any key a tenant was allowed to name.
    const inputs = options.inputBucket.arnForObjects('*');
    this.handler.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObjectTagging'], resources: [inputs] }));
    acknowledgeWildcardResource(this.handler.role!, inputs, 'GetObjectTagging only: a job input may be any key of the input bucket a tenant was allowed to name; the completion copies its retention-days tag.');
    // No resource-level permission exists for DescribeJobs (acknowledged with X-Ray's in acknowledgeLambdaBasics).
    this.handler.addToRolePolicy(new iam.PolicyStatement({ actions: ['batch:DescribeJobs'], resources: ['*'] }));
    this.handler.addEnvironment('CALLBACK_SECRET_ARN', secret.secretArn);
    this.handler.addEnvironment('CALLBACK_DLQ_URL', dlq.queueUrl);
    if (options.allowedCidrs?.length) this.handler.addEnvironment('CALLBACK_ALLOWED_CIDRS', options.allowedCidrs.join(','));
    return { secret, deadLetterQueue: dlq };
  }
}
