import { App, Duration, Size, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { METRIC_NAMESPACE as WORKER_METRIC_NAMESPACE } from '../../../../containers/worker/src/log';
import { emfOcrLine, OCR_CONFIDENCE_METRIC, OCR_PAGES_METRIC } from '../../../../containers/worker/src/ocr/emf';
import { placementKey, placementOf } from '../../../../containers/worker/src/operations/placement';
import { getOperation } from '../../../../containers/worker/src/operations/registry';
import { corsHeaders, UPLOAD_CONTENT_TYPES } from '../../../../lambda/ocr-api/shared';
import { FargateComputeEnvironment } from '../../../../lib/compute/fargate-compute-environment';
import { WorkerJobDefinition } from '../../../../lib/jobs/worker-job-definition';
import { BatchNetwork } from '../../../../lib/network/batch-network';
import { BatchJobQueue } from '../../../../lib/queue/batch-job-queue';
import * as ocrApi from '../../../../lib/workloads/ocr-api/ocr-api-stack';
import { OcrApiStack, OcrApiStackProps } from '../../../../lib/workloads/ocr-api/ocr-api-stack';
import { cfnLintFindings, nagFindings } from '../../../support/compliance';

/** A small platform stack with what OcrApiStack consumes: a Fargate queue, the OcrJob definition, the buckets. */
function build(overrides: Partial<OcrApiStackProps> = {}, app = new App()): { app: App; stack: OcrApiStack; template: Template } {
  const platform = new Stack(app, 'Platform');
  const network = new BatchNetwork(platform, 'Net');
  const ce = new FargateComputeEnvironment(platform, 'Fargate', { vpc: network.vpc, vpcSubnets: network.subnetSelection, securityGroups: [network.batchSecurityGroup], spot: true, maxvCpus: 16 });
  const queue = new BatchJobQueue(platform, 'Queue', { computeEnvironments: [ce] });
  const input = new s3.Bucket(platform, 'Input', { enforceSSL: true });
  const output = new s3.Bucket(platform, 'Output', { enforceSSL: true });
  const job = new WorkerJobDefinition(platform, 'OcrJob', { platform: 'FARGATE', imageTarget: 'ocr', cpu: 2, memory: Size.mebibytes(4096), inputBucket: input, outputBucket: output });
  const stack = new OcrApiStack(app, 'OcrApi-test', {
    stage: 'test',
    jobQueue: queue.jobQueue,
    jobDefinition: job.jobDefinition,
    inputBucket: input,
    outputBucket: output,
    ...overrides,
  });
  return { app, stack, template: Template.fromStack(stack) };
}

const VARIANT: Partial<OcrApiStackProps> = {
  corsAllowedOrigins: ['https://app.example.com'],
  pointInTimeRecovery: false,
  cleanup: false,
  throttlingRateLimit: 50,
  throttlingBurstLimit: 100,
  submitThrottlingRateLimit: 20,
  submitThrottlingBurstLimit: 40,
};
let built: ReturnType<typeof build>;
/** Every switch away from its default (each Lambda bundle costs seconds, so one stack serves every variant test). */
let variant: ReturnType<typeof build>;
beforeAll(() => {
  built = build();
  variant = build(VARIANT);
});

/** The dashboard body as one string (CloudFormation joins its tokens). */
function dashboardBody(template: Template): string {
  const body = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0].Properties.DashboardBody;
  const join = body['Fn::Join'][1] as unknown[];
  return join.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('');
}

test('the handlers route ocr to FARGATE:ocr (the operation\'s placement) with the OcrJob definition and find the job table', () => {
  expect(placementKey(placementOf(getOperation('ocr')))).toBe(ocrApi.OCR_ROUTE_KEY);
  const fns = built.template.findResources('AWS::Lambda::Function', { Properties: { Environment: { Variables: Match.objectLike({ OCR_TABLE: Match.anyValue() }) } } });
  expect(Object.keys(fns)).toHaveLength(3);
  for (const fn of Object.values(fns)) {
    const vars = fn.Properties.Environment.Variables;
    expect(JSON.stringify(vars.JOB_ROUTES)).toContain('FARGATE:ocr');
    expect(vars).toMatchObject({ JOB_NAME_PREFIX: 'ocr', MAX_UPLOAD_BYTES: String(20 * 1024 * 1024), UPLOAD_EXPIRES_SECONDS: '300', RETENTION_DAYS: '7', MAX_INLINE_TEXT_BYTES: String(256 * 1024) });
    expect(vars.CORS_ALLOWED_ORIGINS).toBeUndefined();
  }
});

test('job records: PAY_PER_REQUEST, TTL on expiresAt, point-in-time recovery on by default and switchable per stage', () => {
  built.template.hasResourceProperties('AWS::DynamoDB::Table', {
    BillingMode: 'PAY_PER_REQUEST',
    TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
  });
  variant.template.hasResourceProperties('AWS::DynamoDB::Table', { PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false } });
});

test('POST /ocr, GET /ocr/{id} and POST /ocr/{id}/start, every one IAM-authorized and validated; no CORS preflight by default', () => {
  const methods = built.template.findResources('AWS::ApiGateway::Method');
  const list = Object.values(methods).map((m) => `${m.Properties.HttpMethod} ${m.Properties.AuthorizationType} ${m.Properties.RequestValidatorId ? 'validated' : 'unvalidated'}`);
  expect(list.sort()).toEqual(['GET AWS_IAM validated', 'POST AWS_IAM validated', 'POST AWS_IAM validated']);
  built.template.resourceCountIs('AWS::ApiGateway::Resource', 3);
  built.template.hasResourceProperties('AWS::ApiGateway::Model', { Schema: Match.objectLike({ properties: Match.objectLike({ key: Match.anyValue(), upload: Match.anyValue() }) }) });
});

test('throttling: stage rate and burst, and a lower limit on the two methods that create jobs', () => {
  built.template.hasResourceProperties('AWS::ApiGateway::Stage', {
    StageName: 'v1',
    TracingEnabled: true,
    MethodSettings: Match.arrayWith([
      Match.objectLike({ HttpMethod: '*', ResourcePath: '/*', ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 }),
      Match.objectLike({ HttpMethod: 'POST', ResourcePath: '/~1ocr', ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 }),
      Match.objectLike({ HttpMethod: 'POST', ResourcePath: '/~1ocr~1{id}~1start', ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 }),
    ]),
  });
  variant.template.hasResourceProperties('AWS::ApiGateway::Stage', {
    MethodSettings: Match.arrayWith([Match.objectLike({ HttpMethod: 'POST', ResourcePath: '/~1ocr', ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 })]),
  });
});

test('CORS for the origins given: preflight answers with them and the handlers echo an allowed Origin', () => {
  const { template } = variant;
  const options = Object.values(template.findResources('AWS::ApiGateway::Method', { Properties: { HttpMethod: 'OPTIONS' } }));
  expect(options.length).toBeGreaterThanOrEqual(3);
  expect(JSON.stringify(options[0].Properties.Integration)).toContain("'https://app.example.com'");
  template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ CORS_ALLOWED_ORIGINS: 'https://app.example.com' }) } });
  const withOrigin = (origin: string) => ({ headers: { Origin: origin } }) as unknown as Parameters<typeof corsHeaders>[0];
  expect(corsHeaders(withOrigin('https://app.example.com'), ['https://app.example.com'])).toEqual({ 'access-control-allow-origin': 'https://app.example.com', vary: 'Origin' });
  expect(corsHeaders(withOrigin('https://evil.example.net'), ['https://app.example.com'])).toEqual({});
  expect(corsHeaders(withOrigin('https://app.example.com'), [])).toEqual({});
});

test('the cleanup runs every 6 hours on the Fargate queue and can be switched off (rule kept, disabled)', () => {
  built.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(6 hours)', State: 'ENABLED' });
  built.template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ JOB_QUEUES: Match.anyValue(), JOB_DEFINITION_NAMES: Match.anyValue() }) } });
  variant.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(6 hours)', State: 'DISABLED' });
});

test('dashboard: API requests/4xx/5xx/latency, each Lambda, OCR jobs, queue gauges, pages per minute and confidence', () => {
  const body = dashboardBody(built.template);
  for (const name of ['"Count"', '"4XXError"', '"5XXError"', '"Latency"', '"Invocations"', '"Errors"', '"Duration"']) expect(body).toContain(name);
  for (const name of ['JobsSubmitted', 'JobsSucceeded', 'JobsFailed', 'RunnableJobs', 'RunningJobs']) expect(body).toContain(`"CdkBatchPlatform","${name}"`);
  expect(body).toContain(`"${WORKER_METRIC_NAMESPACE}","${OCR_PAGES_METRIC}","Operation","ocr"`);
  expect(body).toContain(`"${WORKER_METRIC_NAMESPACE}","${OCR_CONFIDENCE_METRIC}","Operation","ocr"`);
  expect(body).toMatch(/"OCR pages per minute".*"period":60,"stat":"Sum"|"stat":"Sum","period":60/);
  // Three Lambdas, each on the three Lambda widgets.
  expect(body.match(/"AWS\/Lambda","Invocations"/g)).toHaveLength(3);
  expect(body.match(/"AWS\/Lambda","Duration"/g)).toHaveLength(3);
  for (const t of ['API requests', 'API 4xx / 5xx', 'API latency (p50, p90, p99)', 'OCR jobs submitted / succeeded / failed', 'OCR pages per minute', 'OCR mean confidence']) {
    expect(body).toContain(`"title":"${t}"`);
  }
});

test("the OCR metric names are the ones the worker's EMF line carries", () => {
  const line = JSON.parse(emfOcrLine({ pages: 2, meanConfidence: 91, durationMs: 10 }));
  const m = line._aws.CloudWatchMetrics[0];
  expect(m.Namespace).toBe(ocrApi.OCR_METRIC_NAMESPACE);
  expect(m.Dimensions).toEqual([Object.keys(ocrApi.OCR_METRIC_DIMENSIONS)]);
  expect(line.Operation).toBe(ocrApi.OCR_METRIC_DIMENSIONS.Operation);
  expect(m.Metrics.map((x: { Name: string }) => x.Name)).toEqual(expect.arrayContaining([ocrApi.OCR_PAGES_METRIC, ocrApi.OCR_CONFIDENCE_METRIC]));
});

test('upload content types the handler accepts are the formats the ocr operation reads', () => {
  expect(Object.keys(UPLOAD_CONTENT_TYPES)).toEqual(['image/png', 'image/jpeg', 'image/tiff']);
});

test('bad props fail at construction, naming the prop, the value and what is allowed', () => {
  expect(() => build({ retentionDays: 5 })).toThrow(/retentionDays \(5\) is invalid; allowed: one of 1, 7, 30, 90, 365/);
  expect(() => build({ corsAllowedOrigins: ['https://app.example.com/path'] })).toThrow(/corsAllowedOrigins \("https:\/\/app.example.com\/path"\) is invalid; allowed: origins like/);
  expect(() => build({ throttlingRateLimit: 5, submitThrottlingRateLimit: 8 })).toThrow(/submitThrottlingRateLimit \(8\) is invalid; allowed: at most throttlingRateLimit \(5\)/);
  expect(() => build({ uploadExpiry: Duration.hours(2) })).toThrow(/uploadExpiry \(seconds\) \(7200\) is out of range; allowed: 60 to 3600/);
  expect(() => build({ maxUploadBytes: 0 })).toThrow(/maxUploadBytes \(0\) is invalid/);
});

test('compliance: cdk-nag AwsSolutions and cfn-lint clean, with defaults and with every switch flipped', () => {
  const app = new App();
  const defaults = build({}, app).stack;
  const flipped = new App();
  const other = build(VARIANT, flipped).stack;
  expect(nagFindings(app)).toEqual([]);
  expect(nagFindings(flipped)).toEqual([]);
  expect(cfnLintFindings(app.synth().getStackByName(defaults.stackName).template)).toBe('');
  expect(cfnLintFindings(flipped.synth().getStackByName(other.stackName).template)).toBe('');
});
