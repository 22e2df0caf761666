import { Annotations, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct, IConstruct } from 'constructs';
import { nagResourceFindingId } from '../common/nag';
import { handlerEntry, PlatformFunction } from '../common/node-function';
import { checkInteger, checkRange, propError } from '../common/validation';
import { checkRouteKeys, grantJobClient, jobClientEnvironment, JobRouteTargets, JobSizingLimits, sizingEnvironment } from './grants';
import { QuotaTable } from './quota-table';

/** How callers of the submit API authenticate. */
export type SubmitApiAuthorization = 'IAM' | 'API_KEY';

export const DEFAULT_SUBMIT_API_RATE_LIMIT = 25;
export const DEFAULT_SUBMIT_API_BURST_LIMIT = 50;
export const DEFAULT_SUBMIT_API_STAGE = 'v1';
/** AWS Batch accepts about 50 SubmitJob calls per second per account. */
const SUBMIT_JOB_TPS = 50;

export interface SubmitApiProps {
  /** Queue the jobs go to. */
  readonly jobQueue: batch.IJobQueue;
  /** Job definition of the worker. */
  readonly jobDefinition: batch.IJobDefinition;
  /**
   * Queues and job definitions of operations placed elsewhere than the default (EC2, streaming worker),
   * by placement key `<EC2|FARGATE>:<image>`, e.g. `{ 'FARGATE:ocr': { jobQueue, jobDefinition } }`:
   * the handlers send each operation to its placement's route and find its jobs there.
   * @default - none: operations placed elsewhere are refused with an error naming the route they need
   */
  readonly routes?: JobRouteTargets;
  /** Bucket that receives `jobs/{jobId}/inputs.json`. */
  readonly inputBucket: s3.IBucket;
  /** Bucket the worker writes outputs to. @default - the input bucket */
  readonly outputBucket?: s3.IBucket;
  /**
   * `IAM`: SigV4-signed requests; the tenant is the caller's IAM principal.
   * `API_KEY`: an API key with a usage plan; the tenant is the key.
   * @default 'IAM'
   */
  readonly authorization?: SubmitApiAuthorization;
  /** Stage throttling, requests per second (steady state). @default 25 */
  readonly throttlingRateLimit?: number;
  /** Stage throttling, burst. @default 50 */
  readonly throttlingBurstLimit?: number;
  /** Monthly request quota per API key (API_KEY only). @default - no quota */
  readonly monthlyQuota?: number;
  /** @default 'v1' */
  readonly stageName?: string;
  /** Retention of the access logs. @default logs.RetentionDays.ONE_MONTH */
  readonly accessLogRetention?: logs.RetentionDays;
  /**
   * API Gateway execution logging. It needs the account-level API Gateway CloudWatch role, which
   * this library does not own (one per account and region).
   * @default - off (access logs are always on)
   */
  readonly executionLoggingLevel?: apigateway.MethodLoggingLevel;
  /** Whether the queue uses fair-share scheduling. @default - true if the queue has a scheduling policy, else detected at run time */
  readonly fairShare?: boolean;
  /** Batch job names are `<prefix>-<jobId>`. @default 'job' */
  readonly jobNamePrefix?: string;
  /**
   * Retention of the log group of each of the three handler Lambdas (submit, status, cancel).
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The stack's ceiling on `vcpus` / `memoryMiB` a request may ask for (on top of each operation's
   * declared bounds); the handlers read it as MAX_JOB_VCPUS / MAX_JOB_MEMORY_MIB.
   * @default - only the operations' bounds
   */
  readonly sizingLimits?: JobSizingLimits;
  /** Per-tenant quotas (active jobs, submissions per minute): POST /jobs answers 429 + Retry-After above them. @default - no quotas */
  readonly quota?: QuotaTable;
}

/**
 * HTTP API for submitting and following jobs: `POST /jobs`, `GET /jobs/{id}`, `DELETE /jobs/{id}`, each a
 * thin Lambda over BatchJobClient. IAM authorization by default, stage throttling, JSON access logs,
 * X-Ray tracing, request validation. Tenants only see and cancel their own jobs.
 */
export class SubmitApi extends Construct {
  public readonly api: apigateway.RestApi;
  public readonly accessLogGroup: logs.LogGroup;
  public readonly requestValidator: apigateway.RequestValidator;
  public readonly submitJobModel: apigateway.Model;
  public readonly submitFunction: PlatformFunction;
  public readonly statusFunction: PlatformFunction;
  public readonly cancelFunction: PlatformFunction;
  /** The API key (API_KEY authorization only). */
  public readonly apiKey?: apigateway.IApiKey;
  /** The usage plan (API_KEY authorization only). */
  public readonly usagePlan?: apigateway.UsagePlan;
  public readonly authorization: SubmitApiAuthorization;

  constructor(scope: Construct, id: string, props: SubmitApiProps) {
    super(scope, id);
    this.authorization = props.authorization ?? 'IAM';
    const rate = props.throttlingRateLimit ?? DEFAULT_SUBMIT_API_RATE_LIMIT;
    const burst = props.throttlingBurstLimit ?? DEFAULT_SUBMIT_API_BURST_LIMIT;
    const stageName = props.stageName ?? DEFAULT_SUBMIT_API_STAGE;
    if (!['IAM', 'API_KEY'].includes(this.authorization)) throw propError(this, 'authorization', this.authorization, "'IAM' or 'API_KEY'");
    checkRouteKeys(this, props.routes);
    checkRange(this, 'throttlingRateLimit', rate, 1, 10000);
    checkInteger(this, 'throttlingBurstLimit', burst, 1);
    checkInteger(this, 'monthlyQuota', props.monthlyQuota, 1);
    if (props.monthlyQuota !== undefined && this.authorization !== 'API_KEY') {
      throw propError(this, 'monthlyQuota', props.monthlyQuota, "only with authorization 'API_KEY'", 'needs API keys');
    }
    if (!Token.isUnresolved(stageName) && !/^[A-Za-z0-9_]{1,128}$/.test(stageName)) {
      throw propError(this, 'stageName', stageName, 'letters, digits and _ (1-128)');
    }
    if (!Token.isUnresolved(rate) && rate > SUBMIT_JOB_TPS) {
      Annotations.of(this).addWarningV2(
        'cdk-batch-platform:submitApiAboveSubmitJobQuota',
        `throttlingRateLimit (${rate}) is above what AWS Batch's SubmitJob accepts (about ${SUBMIT_JOB_TPS} per second per account); callers will wait on retries and see 429s`,
      );
    }

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const iamAuth = this.authorization === 'IAM';
    this.api = new apigateway.RestApi(this, 'Api', {
      description: 'cdk-batch-platform submit API: POST /jobs, GET /jobs/{id}, DELETE /jobs/{id}',
      endpointTypes: [apigateway.EndpointType.REGIONAL],
      cloudWatchRole: false,
      deployOptions: {
        stageName,
        tracingEnabled: true,
        metricsEnabled: true,
        throttlingRateLimit: rate,
        throttlingBurstLimit: burst,
        loggingLevel: props.executionLoggingLevel,
        accessLogDestination: new apigateway.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigateway.AccessLogFormat.jsonWithStandardFields({
          caller: true,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: true,
        }),
      },
      defaultMethodOptions: {
        authorizationType: iamAuth ? apigateway.AuthorizationType.IAM : apigateway.AuthorizationType.NONE,
        apiKeyRequired: !iamAuth,
      },
    });
    // The gateway rejects only malformed bodies (not an object, wrong types); the handler's zod check
    // reports every field error. Both answer in the same `{ errors: [...] }` shape.
    this.api.addGatewayResponse('BadRequestBody', {
      type: apigateway.ResponseType.BAD_REQUEST_BODY,
      statusCode: '400',
      templates: { 'application/json': '{"errors":[{"field":"(body)","message":"$util.escapeJavaScript($context.error.validationErrorString)"}]}' },
    });
    this.requestValidator = new apigateway.RequestValidator(this, 'RequestValidator', {
      restApi: this.api,
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    this.submitJobModel = new apigateway.Model(this, 'SubmitJobModel', {
      restApi: this.api,
      contentType: 'application/json',
      description: 'POST /jobs body (the handler validates every field)',
      schema: {
        schema: apigateway.JsonSchemaVersion.DRAFT4,
        type: apigateway.JsonSchemaType.OBJECT,
        required: ['operation'],
        properties: {
          operation: { type: apigateway.JsonSchemaType.STRING, maxLength: 64 },
          callbackUrl: { type: apigateway.JsonSchemaType.STRING, maxLength: 2048 },
          retentionDays: { type: apigateway.JsonSchemaType.INTEGER },
          shareIdentifier: { type: apigateway.JsonSchemaType.STRING },
          schedulingPriority: { type: apigateway.JsonSchemaType.INTEGER },
          operationConfig: { type: apigateway.JsonSchemaType.OBJECT },
          clientToken: { type: apigateway.JsonSchemaType.STRING, maxLength: 256 },
          timeoutSeconds: { type: apigateway.JsonSchemaType.INTEGER },
          vcpus: { type: apigateway.JsonSchemaType.NUMBER },
          memoryMiB: { type: apigateway.JsonSchemaType.INTEGER },
        },
      },
    });

    const environment = jobClientEnvironment(props);
    const fn = (fnId: string, file: string, description: string, extra: Record<string, string> = {}) =>
      new PlatformFunction(this, fnId, { entry: handlerEntry(`submit-api/${file}`), description, environment: { ...environment, ...extra }, logRetention: props.logRetention });
    // Only the submit function sizes and admits jobs.
    const submitEnvironment = { ...sizingEnvironment(this, props.sizingLimits), ...(props.quota?.environment ?? {}) };
    this.submitFunction = fn('SubmitFunction', 'submit.ts', 'POST /jobs: validates, stages the input and submits a Batch job', submitEnvironment);
    this.statusFunction = fn('StatusFunction', 'status.ts', "GET /jobs/{id}: a tenant's job status and result location");
    this.cancelFunction = fn('CancelFunction', 'cancel.ts', "DELETE /jobs/{id}: cancels a tenant's job");
    const grantProps = { jobQueue: props.jobQueue, jobDefinition: props.jobDefinition, routes: props.routes, inputBucket: props.inputBucket };
    grantJobClient(this, this.submitFunction, { ...grantProps, submit: true });
    props.quota?.grantAdmit(this.submitFunction);
    grantJobClient(this, this.statusFunction, grantProps);
    grantJobClient(this, this.cancelFunction, { ...grantProps, terminate: true });

    const jobs = this.api.root.addResource('jobs');
    jobs.addMethod('POST', new apigateway.LambdaIntegration(this.submitFunction), {
      requestValidator: this.requestValidator,
      requestModels: { 'application/json': this.submitJobModel },
    });
    const job = jobs.addResource('{id}');
    const idParam = { requestValidator: this.requestValidator, requestParameters: { 'method.request.path.id': true } };
    job.addMethod('GET', new apigateway.LambdaIntegration(this.statusFunction), idParam);
    job.addMethod('DELETE', new apigateway.LambdaIntegration(this.cancelFunction), idParam);

    if (!iamAuth) {
      this.apiKey = this.api.addApiKey('ApiKey', { description: 'cdk-batch-platform submit API key (one tenant)' });
      this.usagePlan = this.api.addUsagePlan('UsagePlan', {
        description: 'cdk-batch-platform submit API',
        throttle: { rateLimit: rate, burstLimit: burst },
        quota: props.monthlyQuota ? { limit: props.monthlyQuota, period: apigateway.Period.MONTH } : undefined,
      });
      this.usagePlan.addApiStage({ stage: this.api.deploymentStage });
      this.usagePlan.addApiKey(this.apiKey);
      Validations.of(this.api).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason: "authorization 'API_KEY' was chosen: each API key (with its usage plan) identifies one tenant; the default 'IAM' signs every request",
      });
    }
    const v = Validations.of(this.api);
    v.acknowledge({
      id: 'AwsSolutions-COG4',
      reason: iamAuth ? 'IAM (SigV4) authorization instead of a Cognito user pool: callers are AWS principals' : 'API keys identify tenants; no Cognito user pool',
    });
    v.acknowledge({
      id: 'AwsSolutions-APIG3',
      reason: 'WAF is a per-deployment choice (web ACLs cost per rule); the API is authorized, validated and throttled per stage',
    });
    if (props.executionLoggingLevel === undefined) {
      v.acknowledge({
        id: 'AwsSolutions-APIG6',
        reason: 'JSON access logs are always on; execution logging needs the account-level API Gateway CloudWatch role, which this library does not own (set executionLoggingLevel once it exists)',
      });
    }
  }

  /** The invoke URL of the stage, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com/v1/`. */
  public get url(): string {
    return this.api.url;
  }

  /**
   * Lets a principal call the API (IAM authorization): every method of `/jobs` and `/jobs/{id}` on
   * this API's stage. Acknowledges the two AwsSolutions-IAM5 findings this grant causes on the
   * grantee (the method and the job id are wildcards by design), and only those.
   */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    const stage = this.api.deploymentStage.stageName;
    const arns = [this.api.arnForExecuteApi('*', '/jobs', stage), this.api.arnForExecuteApi('*', '/jobs/*', stage)];
    const grant = iam.Grant.addToPrincipal({ grantee, actions: ['execute-api:Invoke'], resourceArns: arns });
    const principal = grantee.grantPrincipal as unknown as Partial<IConstruct>;
    if (principal.node !== undefined) {
      const stack = Stack.of(this);
      Validations.of(principal as IConstruct).acknowledge(
        ...arns.map((arn) => ({
          id: `AwsSolutions-IAM5[Resource::${nagResourceFindingId(stack, arn)}]`,
          reason: 'Invoking the submit API: any method (POST, GET, DELETE) of /jobs and /jobs/{id} of this API stage; job ids exist only at run time.',
        })),
      );
    }
    return grant;
  }
}
