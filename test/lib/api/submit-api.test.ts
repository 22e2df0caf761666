import { App, Size, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { QueueTriggeredJobs, SubmitApi } from '../../../lib/api';
import { cfnLintFindings, nagFindings } from '../../support/compliance';
import { apiTestStack } from './api-test-stack';

describe('SubmitApi', () => {
  test('uses IAM authorization on every method by default', () => {
    const t = apiTestStack();
    new SubmitApi(t.stack, 'SubmitApi', t);
    const template = Template.fromStack(t.stack);
    const methods = template.findResources('AWS::ApiGateway::Method');
    expect(Object.values(methods).map((m) => m.Properties.HttpMethod).sort()).toEqual(['DELETE', 'GET', 'POST']);
    for (const m of Object.values(methods)) expect(m.Properties.AuthorizationType).toBe('AWS_IAM');
  });

  test('throttles the stage, traces with X-Ray and writes JSON access logs to a log group with retention', () => {
    const t = apiTestStack();
    new SubmitApi(t.stack, 'SubmitApi', { ...t, throttlingRateLimit: 10, throttlingBurstLimit: 20 });
    const template = Template.fromStack(t.stack);
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'v1',
      TracingEnabled: true,
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('"status"') },
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20, HttpMethod: '*', ResourcePath: '/*' })],
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  test('validates POST /jobs bodies against a JSON schema model and answers 400 in the handler shape', () => {
    const t = apiTestStack();
    new SubmitApi(t.stack, 'SubmitApi', t);
    const template = Template.fromStack(t.stack);
    template.hasResourceProperties('AWS::ApiGateway::RequestValidator', { ValidateRequestBody: true, ValidateRequestParameters: true });
    template.hasResourceProperties('AWS::ApiGateway::Model', { ContentType: 'application/json', Schema: Match.objectLike({ required: ['operation'] }) });
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'POST',
      RequestValidatorId: Match.anyValue(),
      RequestModels: { 'application/json': Match.anyValue() },
    });
    template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'BAD_REQUEST_BODY',
      ResponseTemplates: { 'application/json': Match.stringLikeRegexp('"errors"') },
    });
  });

  test('gives the submit function SubmitJob on the queue and every revision of the job definition', () => {
    const t = apiTestStack();
    new SubmitApi(t.stack, 'SubmitApi', t);
    Template.fromStack(t.stack).hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'batch:SubmitJob',
            Resource: [
              'arn:aws:batch:eu-west-1:123456789012:job-queue/platform-queue',
              { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':batch:eu-west-1:123456789012:job-definition/worker:*']] },
            ],
          }),
        ]),
      },
    });
  });

  test('lets only the cancel function terminate jobs', () => {
    const t = apiTestStack();
    new SubmitApi(t.stack, 'SubmitApi', t);
    const policies = Template.fromStack(t.stack).findResources('AWS::IAM::Policy');
    const withTerminate = Object.entries(policies).filter(([, p]) => JSON.stringify(p).includes('batch:TerminateJob'));
    expect(withTerminate.map(([id]) => id)).toEqual([expect.stringMatching(/CancelFunction/)]);
  });

  test('passes queue, job definition and buckets to the handlers', () => {
    const t = apiTestStack();
    new SubmitApi(t.stack, 'SubmitApi', { ...t, fairShare: true });
    Template.fromStack(t.stack).hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Environment: {
        Variables: Match.objectLike({
          JOB_QUEUE: 'arn:aws:batch:eu-west-1:123456789012:job-queue/platform-queue',
          JOB_DEFINITION: 'arn:aws:batch:eu-west-1:123456789012:job-definition/worker:3',
          INPUT_BUCKET: 'platform-staging',
          FAIR_SHARE: 'true',
        }),
      },
    });
  });

  test('API_KEY authorization requires a key on every method and creates a usage plan with the stage throttling and quota', () => {
    const t = apiTestStack();
    const api = new SubmitApi(t.stack, 'SubmitApi', { ...t, authorization: 'API_KEY', monthlyQuota: 100000 });
    const template = Template.fromStack(t.stack);
    for (const m of Object.values(template.findResources('AWS::ApiGateway::Method'))) {
      expect(m.Properties).toMatchObject({ AuthorizationType: 'NONE', ApiKeyRequired: true });
    }
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Throttle: { RateLimit: 25, BurstLimit: 50 },
      Quota: { Limit: 100000, Period: 'MONTH' },
    });
    template.resourceCountIs('AWS::ApiGateway::ApiKey', 1);
    expect(api.apiKey).toBeDefined();
  });

  test('grantInvoke allows execute-api:Invoke on the jobs routes', () => {
    const t = apiTestStack();
    const api = new SubmitApi(t.stack, 'SubmitApi', t);
    const role = new iam.Role(t.stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    api.grantInvoke(role);
    Template.fromStack(t.stack).hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('Caller') }],
      PolicyDocument: { Statement: [Match.objectLike({ Action: 'execute-api:Invoke' })] },
    });
  });

  test('rejects a throttling rate out of range', () => {
    const t = apiTestStack();
    expect(() => new SubmitApi(t.stack, 'SubmitApi', { ...t, throttlingRateLimit: 0 })).toThrow(
      /\[ApiTest\/SubmitApi\] throttlingRateLimit \(0\) is out of range; allowed: 1 to 10000/,
    );
  });

  test('rejects a monthly quota without API keys', () => {
    const t = apiTestStack();
    expect(() => new SubmitApi(t.stack, 'SubmitApi', { ...t, monthlyQuota: 10 })).toThrow(/\[ApiTest\/SubmitApi\] monthlyQuota \(10\) needs API keys/);
  });

  test('rejects a bad stage name', () => {
    const t = apiTestStack();
    expect(() => new SubmitApi(t.stack, 'SubmitApi', { ...t, stageName: 'v 1' })).toThrow(/\[ApiTest\/SubmitApi\] stageName \("v 1"\) is invalid/);
  });

  test('warns when the stage allows more requests per second than SubmitJob accepts', () => {
    const t = apiTestStack();
    new SubmitApi(t.stack, 'SubmitApi', { ...t, throttlingRateLimit: 200 });
    Annotations.fromStack(t.stack).hasWarning('/ApiTest/SubmitApi', Match.stringLikeRegexp('cdk-batch-platform:submitApiAboveSubmitJobQuota'));
  });
});

describe('compliance', () => {
  function complianceApp(): { app: App; stack: Stack } {
    const app = new App();
    const t = apiTestStack(app);
    // One stack with an owned bucket too, so finding ids built from tokens are acknowledged as well.
    const owned = new s3.Bucket(t.stack, 'OwnedBucket', { enforceSSL: true, serverAccessLogsBucket: s3.Bucket.fromBucketName(t.stack, 'Logs', 'logs') });
    new SubmitApi(t.stack, 'IamApi', t);
    new SubmitApi(t.stack, 'KeyApi', { ...t, inputBucket: owned, authorization: 'API_KEY' });
    new QueueTriggeredJobs(t.stack, 'QueueJobs', { ...t, inputBucket: owned });
    return { app, stack: t.stack };
  }

  test('cdk-nag AwsSolutions reports no unacknowledged finding', () => {
    const { app } = complianceApp();
    expect(nagFindings(app)).toEqual([]);
  });

  test('cfn-lint passes on the synthesized template', () => {
    const { app, stack } = complianceApp();
    const template = app.synth().getStackByName(stack.stackName).template;
    // W3005 (DependsOn the role next to a GetAtt of it) comes from the aws-lambda L2 for every function,
    // not from these constructs; reported to the lead for lib/common/node-function.ts.
    expect(cfnLintFindings(template, { ignoreChecks: ['W3005'] })).toBe('');
  });
});

describe('grants with a job definition built in the same stack', () => {
  test('grant SubmitJob on name:* (not name:revision:*) when the job definition ARN is a token', () => {
    const t = apiTestStack();
    const jobDefinition = new batch.EcsJobDefinition(t.stack, 'Owned', {
      container: new batch.EcsFargateContainerDefinition(t.stack, 'Container', { image: ecs.ContainerImage.fromRegistry('worker'), cpu: 1, memory: Size.gibibytes(2) }),
    });
    new SubmitApi(t.stack, 'SubmitApi', { ...t, jobDefinition });
    const policies = JSON.stringify(Template.fromStack(t.stack).findResources('AWS::IAM::Policy'));
    expect(policies).toMatch(/"Fn::Split":\[":",\{"Fn::Select":\[1,\{"Fn::Split":\["\/",\{"Ref":"Owned/);
    expect(policies).toMatch(/"batch:CreateAction":"SubmitJob"/);
  });
});
