import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Token, Validations } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { grantJobClient, jobClientEnvironment, JobRouteTargets } from '../../api/grants';
import { DEFAULT_CLEANUP_RATE, JobCleanup } from '../../cleanup/job-cleanup';
import { jobDefinitionArnAllRevisions, jobDefinitionNameOf } from '../../common/job-definition-name';
import { handlerEntry, PlatformFunction } from '../../common/node-function';
import { checkCorsOrigins, checkInteger, checkRange, propError } from '../../common/validation';
import { METRIC_NAMESPACE as JOB_METRIC_NAMESPACE } from '../../monitoring/batch-monitoring';
import { acknowledgeLambdaBasics, acknowledgeWildcardResource } from '../../monitoring/nag';

/** The ocr operation's placement key (containers/worker/src/operations/placement.ts): its jobs' route. */
export const OCR_ROUTE_KEY = 'FARGATE:ocr';
/** Batch job names are `ocr-<jobId>` (lambda/ocr-api/shared.ts OCR_JOB_NAME_PREFIX). */
export const OCR_JOB_NAME_PREFIX = 'ocr';
/**
 * The EMF the ocr operation prints (containers/worker/src/ocr/emf.ts; constructs do not import runtime
 * code, so test/lib/workloads/ocr-api checks these names against that module).
 */
export const OCR_METRIC_NAMESPACE = 'CdkBatchPlatform/Worker';
export const OCR_PAGES_METRIC = 'OcrPages';
export const OCR_CONFIDENCE_METRIC = 'OcrMeanConfidence';
export const OCR_METRIC_DIMENSIONS = { Operation: 'ocr' } as const;

export const DEFAULT_OCR_API_RATE_LIMIT = 10;
export const DEFAULT_OCR_API_BURST_LIMIT = 20;
export const DEFAULT_OCR_SUBMIT_RATE_LIMIT = 5;
export const DEFAULT_OCR_SUBMIT_BURST_LIMIT = 10;
export const DEFAULT_OCR_API_STAGE = 'v1';
export const DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024;
export const DEFAULT_UPLOAD_EXPIRY = Duration.minutes(5);
export const DEFAULT_OCR_RETENTION_DAYS = 7;
export const DEFAULT_MAX_INLINE_TEXT_BYTES = 256 * 1024;
/** The staging buckets' lifecycle expires objects tagged with these retention-days values only (StagingBuckets default). */
const RETENTION_VALUES = [1, 7, 30, 90, 365];

export interface OcrApiStackProps extends StackProps {
  /** Stage name, for names and descriptions. */
  readonly stage: string;
  /** The platform's Fargate queue (Fargate Spot first): where `ocr` jobs run. */
  readonly jobQueue: batch.IJobQueue;
  /** The platform's `OcrJob` definition (Fargate, 2 vCPU / 4 GiB, the `ocr` image target). */
  readonly jobDefinition: batch.IJobDefinition;
  /** The platform's input bucket: uploads (`tenants/<tenant>/ocr-uploads/`) and callers' own keys (`tenants/<tenant>/`). */
  readonly inputBucket: s3.IBucket;
  /** The platform's output bucket: results under `jobs/<jobId>/output/`. @default - the input bucket */
  readonly outputBucket?: s3.IBucket;
  /** Where alarms go (the platform's operations topic). @default - alarms without actions */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Browser origins allowed to call the API (CORS preflight and `access-control-allow-origin`), e.g.
   * `['https://app.example.com']`. Browser uploads to the presigned URL also need a CORS rule on the input
   * bucket: `StagingBuckets` `uploadCorsOrigins` (`BatchPlatformStack` sets it from the stage's OCR API origins).
   * @default - none: no CORS (server-side callers only)
   */
  readonly corsAllowedOrigins?: readonly string[];
  /** Stage throttling, requests per second. @default 10 */
  readonly throttlingRateLimit?: number;
  /** Stage throttling, burst. @default 20 */
  readonly throttlingBurstLimit?: number;
  /** Throttling of the two methods that create jobs (`POST /ocr`, `POST /ocr/{id}/start`), requests per second. @default 5 */
  readonly submitThrottlingRateLimit?: number;
  /** Burst of the two methods that create jobs. @default 10 */
  readonly submitThrottlingBurstLimit?: number;
  /** @default 'v1' */
  readonly stageName?: string;
  /** Largest image an upload URL is signed for, bytes. @default 20 MiB */
  readonly maxUploadBytes?: number;
  /** How long an upload URL is valid. @default Duration.minutes(5) */
  readonly uploadExpiry?: Duration;
  /**
   * Days uploads, results and job records are kept: the `retention-days` tag on uploads, the jobs'
   * retentionDays and the records' TTL. One of 1, 7, 30, 90, 365 (the staging buckets' lifecycle rules).
   * @default 7
   */
  readonly retentionDays?: number;
  /** Above this many bytes of text, GET /ocr/{id} returns a presigned link instead of the text. @default 256 KiB */
  readonly maxInlineTextBytes?: number;
  /** Point-in-time recovery of the job table. @default true */
  readonly pointInTimeRecovery?: boolean;
  /** @default RemovalPolicy.RETAIN */
  readonly tableRemovalPolicy?: RemovalPolicy;
  /**
   * The cleanup schedule (stuck OCR jobs terminated, old OcrJob revisions deregistered): on or off.
   * Off leaves the function and a disabled rule, so it can be switched back on without a replacement.
   * @default true
   */
  readonly cleanup?: boolean;
  /** @default Duration.hours(6) */
  readonly cleanupRate?: Duration;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * `OcrApi-<stage>`: image in, text out. `POST /ocr` (a presigned upload URL, or a key the caller already
 * has in the input bucket), `POST /ocr/{id}/start` (after the upload), `GET /ocr/{id}` (status; the text
 * when done), IAM-authorized like the submit API, throttled per stage and per submitting method, CORS only
 * for the origins given. Jobs go through the SDK's placement routing to the platform's Fargate queue with
 * the OcrJob definition; requests are recorded in a DynamoDB table (TTL, PITR). Adds a cleanup schedule
 * with an on/off switch, Lambda alarms and a dashboard.
 */
export class OcrApiStack extends Stack {
  public readonly table: dynamodb.Table;
  public readonly api: apigateway.RestApi;
  public readonly accessLogGroup: logs.LogGroup;
  public readonly requestValidator: apigateway.RequestValidator;
  public readonly createFunction: PlatformFunction;
  public readonly startFunction: PlatformFunction;
  public readonly statusFunction: PlatformFunction;
  public readonly cleanup: JobCleanup;
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly alarms: cloudwatch.Alarm[] = [];
  public readonly corsAllowedOrigins: readonly string[];
  private readonly jobQueue: batch.IJobQueue;
  private readonly jobDefinition: batch.IJobDefinition;

  constructor(scope: Construct, id: string, props: OcrApiStackProps) {
    super(scope, id, props);
    this.jobQueue = props.jobQueue;
    this.jobDefinition = props.jobDefinition;
    const rate = props.throttlingRateLimit ?? DEFAULT_OCR_API_RATE_LIMIT;
    const burst = props.throttlingBurstLimit ?? DEFAULT_OCR_API_BURST_LIMIT;
    const submitRate = props.submitThrottlingRateLimit ?? DEFAULT_OCR_SUBMIT_RATE_LIMIT;
    const submitBurst = props.submitThrottlingBurstLimit ?? DEFAULT_OCR_SUBMIT_BURST_LIMIT;
    const stageName = props.stageName ?? DEFAULT_OCR_API_STAGE;
    const maxUploadBytes = props.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
    const uploadExpiry = props.uploadExpiry ?? DEFAULT_UPLOAD_EXPIRY;
    const retentionDays = props.retentionDays ?? DEFAULT_OCR_RETENTION_DAYS;
    const maxInline = props.maxInlineTextBytes ?? DEFAULT_MAX_INLINE_TEXT_BYTES;
    checkRange(this, 'throttlingRateLimit', rate, 1, 10000);
    checkInteger(this, 'throttlingBurstLimit', burst, 1);
    checkRange(this, 'submitThrottlingRateLimit', submitRate, 1, 10000);
    checkInteger(this, 'submitThrottlingBurstLimit', submitBurst, 1);
    if (!Token.isUnresolved(submitRate) && !Token.isUnresolved(rate) && submitRate > rate) {
      throw propError(this, 'submitThrottlingRateLimit', submitRate, `at most throttlingRateLimit (${rate}): the stage limit caps every method`);
    }
    if (!Token.isUnresolved(stageName) && !/^[A-Za-z0-9_]{1,128}$/.test(stageName)) throw propError(this, 'stageName', stageName, 'letters, digits and _ (1-128)');
    checkInteger(this, 'maxUploadBytes', maxUploadBytes, 1);
    // A Lambda holds the image's result in memory and S3 takes single PUTs up to 5 GB; OCR of more than 100 MB is a batch job, not an API call.
    checkRange(this, 'maxUploadBytes', maxUploadBytes, 1, 100 * 1024 * 1024);
    const expirySeconds = uploadExpiry.toSeconds();
    checkRange(this, 'uploadExpiry (seconds)', expirySeconds, 60, 3600);
    if (!RETENTION_VALUES.includes(retentionDays)) throw propError(this, 'retentionDays', retentionDays, `one of ${RETENTION_VALUES.join(', ')} (the staging buckets' lifecycle rules)`);
    // Lambda answers at most 6 MB; the text appears twice (full and per page).
    checkRange(this, 'maxInlineTextBytes', maxInline, 1, 2 * 1024 * 1024);
    this.corsAllowedOrigins = props.corsAllowedOrigins ?? [];
    checkCorsOrigins(this, 'corsAllowedOrigins', this.corsAllowedOrigins);

    // Job records: one item per request, deleted by TTL when its objects expire.
    const pitr = props.pointInTimeRecovery ?? true;
    this.table = new dynamodb.Table(this, 'Jobs', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiresAt',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: pitr },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: props.tableRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    if (!pitr) {
      Validations.of(this.table).acknowledge({
        id: 'AwsSolutions-DDB3',
        reason: `pointInTimeRecovery is off in stage ${props.stage}: the records only say where a request is and expire after ${retentionDays} days; results live in S3`,
      });
    }

    // The API: IAM (SigV4) like the submit API, JSON access logs, X-Ray, stage + method throttling.
    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', { retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    const submitThrottle = { throttlingRateLimit: submitRate, throttlingBurstLimit: submitBurst };
    this.api = new apigateway.RestApi(this, 'Api', {
      description: `cdk-batch-platform OCR API (${props.stage}): POST /ocr, POST /ocr/{id}/start, GET /ocr/{id}`,
      endpointTypes: [apigateway.EndpointType.REGIONAL],
      cloudWatchRole: false,
      deployOptions: {
        stageName,
        tracingEnabled: true,
        metricsEnabled: true,
        throttlingRateLimit: rate,
        throttlingBurstLimit: burst,
        methodOptions: { '/ocr/POST': submitThrottle, '/ocr/{id}/start/POST': submitThrottle },
        accessLogDestination: new apigateway.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigateway.AccessLogFormat.jsonWithStandardFields({
          caller: true, httpMethod: true, ip: true, protocol: true, requestTime: true, resourcePath: true, responseLength: true, status: true, user: true,
        }),
      },
      defaultMethodOptions: { authorizationType: apigateway.AuthorizationType.IAM },
      defaultCorsPreflightOptions: this.corsAllowedOrigins.length
        ? { allowOrigins: [...this.corsAllowedOrigins], allowMethods: ['GET', 'POST', 'OPTIONS'], allowHeaders: apigateway.Cors.DEFAULT_HEADERS, maxAge: Duration.hours(1) }
        : undefined,
    });
    this.api.addGatewayResponse('BadRequestBody', {
      type: apigateway.ResponseType.BAD_REQUEST_BODY,
      statusCode: '400',
      templates: { 'application/json': '{"errors":[{"field":"(body)","message":"$util.escapeJavaScript($context.error.validationErrorString)"}]}' },
    });
    this.requestValidator = new apigateway.RequestValidator(this, 'RequestValidator', { restApi: this.api, validateRequestBody: true, validateRequestParameters: true });
    const model = new apigateway.Model(this, 'CreateOcrModel', {
      restApi: this.api,
      contentType: 'application/json',
      description: 'POST /ocr body (the handler validates every field and names what is allowed)',
      schema: {
        schema: apigateway.JsonSchemaVersion.DRAFT4,
        type: apigateway.JsonSchemaType.OBJECT,
        properties: {
          upload: {
            type: apigateway.JsonSchemaType.OBJECT,
            properties: { contentType: { type: apigateway.JsonSchemaType.STRING, maxLength: 64 }, contentLength: { type: apigateway.JsonSchemaType.INTEGER } },
          },
          key: { type: apigateway.JsonSchemaType.STRING, maxLength: 1024 },
        },
      },
    });

    // Handlers: thin adapters over BatchJobClient (placement routing) + the job table.
    const routes: JobRouteTargets = { [OCR_ROUTE_KEY]: { jobQueue: props.jobQueue, jobDefinition: props.jobDefinition } };
    const target = { jobQueue: props.jobQueue, jobDefinition: props.jobDefinition, inputBucket: props.inputBucket, outputBucket: props.outputBucket, routes };
    const environment = {
      ...jobClientEnvironment({ ...target, jobNamePrefix: OCR_JOB_NAME_PREFIX }),
      OCR_TABLE: this.table.tableName,
      MAX_UPLOAD_BYTES: String(maxUploadBytes),
      UPLOAD_EXPIRES_SECONDS: String(expirySeconds),
      RETENTION_DAYS: String(retentionDays),
      MAX_INLINE_TEXT_BYTES: String(maxInline),
      ...(this.corsAllowedOrigins.length ? { CORS_ALLOWED_ORIGINS: this.corsAllowedOrigins.join(',') } : {}),
    };
    const fn = (fnId: string, file: string, description: string) =>
      new PlatformFunction(this, fnId, { entry: handlerEntry(`ocr-api/${file}`), description, environment, logRetention: props.logRetention });
    this.createFunction = fn('CreateFunction', 'create.ts', 'POST /ocr: records an OCR request and returns a presigned upload URL, or submits a key at once');
    this.startFunction = fn('StartFunction', 'start.ts', 'POST /ocr/{id}/start: submits the OCR job of an arrived upload');
    this.statusFunction = fn('StatusFunction', 'status.ts', 'GET /ocr/{id}: status of an OCR request and, when done, its text');
    const grant = { jobQueue: props.jobQueue, jobDefinition: props.jobDefinition, routes, inputBucket: props.inputBucket };
    grantJobClient(this, this.createFunction, { ...grant, submit: true });
    grantJobClient(this, this.startFunction, { ...grant, submit: true });
    grantJobClient(this, this.statusFunction, grant);
    // Presigning signs with the function's own credentials: it needs the PUT (and tagging) it hands out.
    props.inputBucket.grantPut(this.createFunction, 'tenants/*/ocr-uploads/*');
    props.inputBucket.grantRead(this.createFunction, 'tenants/*');
    props.inputBucket.grantRead(this.startFunction, 'tenants/*/ocr-uploads/*');
    (props.outputBucket ?? props.inputBucket).grantRead(this.statusFunction, 'jobs/*/output/*');
    this.table.grantReadWriteData(this.createFunction);
    this.table.grantReadWriteData(this.startFunction);
    this.table.grantReadWriteData(this.statusFunction);
    this.acknowledgeGrants(props);

    const ocr = this.api.root.addResource('ocr');
    ocr.addMethod('POST', new apigateway.LambdaIntegration(this.createFunction), { requestValidator: this.requestValidator, requestModels: { 'application/json': model } });
    const one = ocr.addResource('{id}');
    const idParam = { requestValidator: this.requestValidator, requestParameters: { 'method.request.path.id': true } };
    one.addMethod('GET', new apigateway.LambdaIntegration(this.statusFunction), idParam);
    one.addResource('start').addMethod('POST', new apigateway.LambdaIntegration(this.startFunction), idParam);
    const v = Validations.of(this.api);
    v.acknowledge({ id: 'AwsSolutions-COG4', reason: 'IAM (SigV4) authorization instead of a Cognito user pool, as the submit API: callers are AWS principals (browsers through an identity pool)' });
    v.acknowledge({ id: 'AwsSolutions-APIG3', reason: 'WAF is a per-deployment choice (web ACLs cost per rule); the API is IAM-authorized, validated and throttled per stage and method' });
    v.acknowledge({
      id: 'AwsSolutions-APIG6',
      reason: 'JSON access logs are always on; execution logging needs the account-level API Gateway CloudWatch role, which this library does not own',
    });
    if (this.corsAllowedOrigins.length) {
      v.acknowledge(
        { id: 'AwsSolutions-APIG4', reason: 'Only the CORS preflight (OPTIONS, a mock integration that answers with the allowed origins) is unauthenticated: browsers send preflights without credentials' },
        { id: 'AwsSolutions-COG4', reason: 'The CORS preflight (OPTIONS) cannot carry credentials; every other method is IAM-authorized' },
      );
    }

    this.cleanup = new JobCleanup(this, 'Cleanup', {
      jobQueues: [props.jobQueue],
      jobDefinitions: [props.jobDefinition],
      rate: props.cleanupRate ?? DEFAULT_CLEANUP_RATE,
      enabled: props.cleanup ?? true,
      logRetention: props.logRetention,
    });

    this.dashboard = this.buildDashboard(props);
    new CfnOutput(this, 'OcrApiUrl', { value: this.api.url, description: 'OCR API (IAM auth): POST /ocr, POST /ocr/{id}/start, GET /ocr/{id}' });
    new CfnOutput(this, 'OcrJobTableName', { value: this.table.tableName, description: 'OCR request records (TTL expiresAt)' });
    new CfnOutput(this, 'DashboardName', { value: this.dashboard.dashboardName, description: 'OCR API dashboard' });
  }

  /** Platform job metrics (lambda/job-metrics EMF) of the OCR job definition in the Fargate queue. */
  public metricJobs(metricName: 'JobsSubmitted' | 'JobsSucceeded' | 'JobsFailed', options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: JOB_METRIC_NAMESPACE,
      metricName,
      dimensionsMap: { JobQueue: this.jobQueue.jobQueueName, JobDefinition: jobDefinitionNameOf(this.jobDefinition.jobDefinitionArn) },
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(5),
      ...options,
    });
  }

  /** Jobs of the Fargate queue in RUNNABLE or RUNNING (the platform's backlog probe, one value per probe). */
  public metricQueueGauge(metricName: 'RunnableJobs' | 'RunningJobs', options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: JOB_METRIC_NAMESPACE,
      metricName,
      dimensionsMap: { JobQueue: this.jobQueue.jobQueueName },
      statistic: cloudwatch.Stats.MAXIMUM,
      period: Duration.minutes(5),
      ...options,
    });
  }

  /** An EMF metric of the ocr operation (`OcrPages`, `OcrMeanConfidence`). */
  public metricOcr(metricName: typeof OCR_PAGES_METRIC | typeof OCR_CONFIDENCE_METRIC, options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: OCR_METRIC_NAMESPACE,
      metricName,
      dimensionsMap: { ...OCR_METRIC_DIMENSIONS },
      statistic: metricName === OCR_PAGES_METRIC ? cloudwatch.Stats.SUM : cloudwatch.Stats.AVERAGE,
      period: Duration.minutes(1),
      ...options,
    });
  }

  private buildDashboard(props: OcrApiStackProps): cloudwatch.Dashboard {
    const functions = [this.createFunction, this.startFunction, this.statusFunction];
    const names = ['POST /ocr', 'POST /ocr/{id}/start', 'GET /ocr/{id}'];
    for (const [i, f] of functions.entries()) {
      const a = new cloudwatch.Alarm(this, `${['Create', 'Start', 'Status'][i]}ErrorsAlarm`, {
        metric: f.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `The ${names[i]} handler of the OCR API (${props.stage}) failed: callers got 500s.`,
      });
      if (props.alarmTopic) a.addAlarmAction(new cwActions.SnsAction(props.alarmTopic));
      this.alarms.push(a);
    }
    const five = { period: Duration.minutes(5) };
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.days(1) });
    dashboard.addWidgets(new cloudwatch.TextWidget({ markdown: `## OCR API (${props.stage})`, width: 24, height: 1 }));
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'API requests', left: [this.api.metricCount({ ...five, label: 'requests' })], width: 6 }),
      new cloudwatch.GraphWidget({ title: 'API 4xx / 5xx', left: [this.api.metricClientError({ ...five, label: '4xx' }), this.api.metricServerError({ ...five, label: '5xx' })], width: 6 }),
      new cloudwatch.GraphWidget({
        title: 'API latency (p50, p90, p99)',
        left: ['p50', 'p90', 'p99'].map((s) => this.api.metricLatency({ ...five, statistic: s, label: `latency ${s} (ms)` })),
        width: 6,
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 6 }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Lambda invocations', left: functions.map((f, i) => f.metricInvocations({ ...five, label: names[i] })), width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Lambda errors', left: functions.map((f, i) => f.metricErrors({ ...five, label: names[i] })), width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Lambda duration (p90)', left: functions.map((f, i) => f.metricDuration({ ...five, statistic: 'p90', label: names[i] })), width: 8 }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'OCR jobs submitted / succeeded / failed',
        left: [this.metricJobs('JobsSubmitted', { label: 'submitted' }), this.metricJobs('JobsSucceeded', { label: 'succeeded' }), this.metricJobs('JobsFailed', { label: 'failed' })],
        width: 6,
      }),
      new cloudwatch.GraphWidget({
        title: 'Fargate queue: runnable / running jobs',
        left: [this.metricQueueGauge('RunnableJobs', { label: 'runnable' }), this.metricQueueGauge('RunningJobs', { label: 'running' })],
        width: 6,
      }),
      new cloudwatch.GraphWidget({ title: 'OCR pages per minute', left: [this.metricOcr(OCR_PAGES_METRIC, { label: 'pages / minute' })], width: 6 }),
      new cloudwatch.GraphWidget({
        title: 'OCR mean confidence',
        left: [this.metricOcr(OCR_CONFIDENCE_METRIC, { period: Duration.minutes(5), label: 'mean confidence (0-100)' })],
        leftYAxis: { min: 0, max: 100 },
        width: 6,
      }),
    );
    return dashboard;
  }

  /**
   * The wildcards of the grants above, acknowledged one ARN at a time. The buckets are the platform
   * stack's and resolve to their Fn::ImportValue only after the prepare phase, so this happens at
   * validation time (as in PhotoBundlesStack).
   */
  private acknowledgeGrants(props: OcrApiStackProps): void {
    this.node.addValidation({
      validate: () => {
        const input = props.inputBucket;
        const output = props.outputBucket ?? props.inputBucket;
        const all = [this.createFunction, this.startFunction, this.statusFunction];
        for (const f of all) {
          const role = f.role!;
          acknowledgeLambdaBasics(f, 'batch:DescribeJobs/ListJobs/DescribeJobQueues/DescribeJobDefinitions support no resource-level permissions');
          acknowledgeWildcardResource(role, input.arnForObjects('jobs/*'), 'BatchJobClient stages and reads each job under jobs/{jobId}/, one folder per job.');
          acknowledgeWildcardResource(role, `${this.table.tableArn}/index/*`, 'grantReadWriteData includes the indexes of the job table (it has none today).');
        }
        for (const f of [this.createFunction, this.startFunction]) {
          acknowledgeWildcardResource(f.role!, input.arnForObjects('jobs/*/submit.lock'), 'The idempotency lock of each job (deleted only there).');
        }
        // The OcrJob definition of another stack: its name:* ARN resolves through Fn::ImportValue only now.
        const everyRevision = jobDefinitionArnAllRevisions(this, props.jobDefinition);
        for (const role of [this.createFunction.role!, this.startFunction.role!]) {
          acknowledgeWildcardResource(role, everyRevision, 'SubmitJob on every revision (name:*) of the OcrJob definition, so a new revision never breaks submitters.');
        }
        acknowledgeWildcardResource(this.cleanup.function.role!, everyRevision, 'Every revision (name:*) of the OcrJob definition: old revisions are exactly what the cleanup deregisters.');
        acknowledgeWildcardResource(this.createFunction.role!, input.arnForObjects('tenants/*/ocr-uploads/*'), 'Upload URLs are signed for tenants/<caller tenant>/ocr-uploads/<request id>; tenants and ids exist only at run time.');
        acknowledgeWildcardResource(this.createFunction.role!, input.arnForObjects('tenants/*'), "A request may name an image under the caller's tenants/<tenant>/ prefix; the handler's submission policy refuses every other tenant's key before reading.");
        acknowledgeWildcardResource(this.startFunction.role!, input.arnForObjects('tenants/*/ocr-uploads/*'), 'Start checks that the upload of its request arrived (HeadObject).');
        acknowledgeWildcardResource(this.statusFunction.role!, output.arnForObjects('jobs/*/output/*'), 'Reads the result of the OCR job of a request; job ids exist only at run time.');
        for (const f of all) {
          Validations.of(f.role!).acknowledge(
            { id: 'AwsSolutions-IAM5[Action::s3:GetObject*]', reason: 'grantRead includes the version/tagging variants of GetObject.' },
            { id: 'AwsSolutions-IAM5[Action::s3:GetBucket*]', reason: 'Bucket metadata reads that bucket.grantRead includes.' },
            { id: 'AwsSolutions-IAM5[Action::s3:List*]', reason: 'grantRead includes List, scoped to the bucket; a missing object is then a 404, not a 403.' },
            { id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]', reason: "Bucket grants on a KMS-encrypted bucket, when it has a key." },
            { id: 'AwsSolutions-IAM5[Action::kms:ReEncrypt*]', reason: "Bucket grants on a KMS-encrypted bucket, when it has a key." },
            { id: 'AwsSolutions-IAM5[Action::s3:Abort*]', reason: 'grantPut includes aborting its own multipart uploads.' },
            { id: 'AwsSolutions-IAM5[Action::s3:DeleteObject*]', reason: 'Only on jobs/*/submit.lock, the idempotency lock BatchJobClient deletes.' },
          );
        }
        return [];
      },
    });
  }
}
