import { App, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import {
  JOB_ID_TAG,
  RETENTION_TAG,
  StagingBuckets,
  StagingBucketsProps,
  UPLOAD_CORS_HEADERS,
  jobInputsKey,
  jobOutputPrefix,
  runPrefix,
} from '../../../lib/storage/staging-buckets';
import { cfnLintFindings, stackNagFindings } from '../../support/compliance';

function newStack(context: Record<string, unknown> = {}): Stack {
  return new Stack(new App({ context }), 'Stack');
}

function synth(props: StagingBucketsProps = {}) {
  const stack = newStack();
  const buckets = new StagingBuckets(stack, 'Staging', props);
  return { stack, buckets, template: Template.fromStack(stack) };
}

function logicalId(stack: Stack, bucket: s3.IBucket | kms.IKey): string {
  return stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
}

function jobRole(stack: Stack): iam.Role {
  return new iam.Role(stack, 'JobRole', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
}

/** Statements of the role's default policy. */
function policyStatements(template: Template): Array<Record<string, unknown>> {
  const policies = Object.values(template.findResources('AWS::IAM::Policy'));
  expect(policies).toHaveLength(1);
  return policies[0].Properties.PolicyDocument.Statement;
}

const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const objectsOf = (id: string, pattern: string) => ({ 'Fn::Join': ['', [arnOf(id), `/${pattern}`]] });

describe('StagingBuckets with defaults', () => {
  let stack: Stack;
  let buckets: StagingBuckets;
  let template: Template;
  let resources: Record<string, any>;
  beforeAll(() => {
    ({ stack, buckets, template } = synth());
    resources = template.toJSON().Resources;
  });
  const dataBucket = (which: 'inputBucket' | 'outputBucket') => resources[logicalId(stack, buckets[which])];
  const logsId = () => logicalId(stack, buckets.accessLogsBucket!);

  test('creates an input, an output and an access-logs bucket', () => {
    template.resourceCountIs('AWS::S3::Bucket', 3);
    expect(buckets.accessLogsBucket).toBeDefined();
    expect(new Set([buckets.inputBucket, buckets.outputBucket, buckets.accessLogsBucket]).size).toBe(3);
  });

  test.each(['inputBucket', 'outputBucket'] as const)('%s blocks all public access', (which) => {
    expect(dataBucket(which).Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
  });

  test.each(['inputBucket', 'outputBucket'] as const)('%s is encrypted with S3-managed keys', (which) => {
    expect(dataBucket(which).Properties.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    expect(buckets.encryptionKey).toBeUndefined();
    template.resourceCountIs('AWS::KMS::Key', 0);
  });

  test.each(['inputBucket', 'outputBucket'] as const)('%s is versioned', (which) => {
    expect(dataBucket(which).Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
  });

  test.each(['inputBucket', 'outputBucket'] as const)('%s enforces bucket-owner object ownership and has no CORS', (which) => {
    expect(dataBucket(which).Properties.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    expect(dataBucket(which).Properties.CorsConfiguration).toBeUndefined();
    expect(dataBucket(which).Properties.AccessControl).toBeUndefined();
  });

  test.each([
    ['inputBucket', 'input/'],
    ['outputBucket', 'output/'],
  ] as const)('%s sends server access logs to the logs bucket under %s', (which, prefix) => {
    expect(dataBucket(which).Properties.LoggingConfiguration).toEqual({
      DestinationBucketName: { Ref: logsId() },
      LogFilePrefix: prefix,
    });
  });

  test.each(['inputBucket', 'outputBucket'] as const)('%s denies requests without TLS and below TLS 1.2', (which) => {
    const id = logicalId(stack, buckets[which]);
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: id },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
        ]),
      },
    });
  });

  test.each(['inputBucket', 'outputBucket'] as const)('%s expires current objects by their retention-days tag', (which) => {
    const rules = dataBucket(which).Properties.LifecycleConfiguration.Rules;
    const tagRules = rules.filter((r: any) => r.TagFilters);
    expect(tagRules).toEqual(
      [1, 7, 30, 90, 365].map((days) => ({
        Id: `expire-retention-days-${days}`,
        Status: 'Enabled',
        TagFilters: [{ Key: 'retention-days', Value: String(days) }],
        ExpirationInDays: days,
      })),
    );
  });

  test.each(['inputBucket', 'outputBucket'] as const)(
    '%s deletes noncurrent versions after 7 days and aborts multipart uploads after 1 day',
    (which) => {
      const rules = dataBucket(which).Properties.LifecycleConfiguration.Rules;
      expect(rules).toContainEqual({
        Id: 'noncurrent-versions-and-uploads',
        Status: 'Enabled',
        NoncurrentVersionExpiration: { NoncurrentDays: 7 },
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
        ExpiredObjectDeleteMarker: true,
      });
    },
  );

  test('keeps untagged objects (no prefix expiry rule)', () => {
    const rules = dataBucket('inputBucket').Properties.LifecycleConfiguration.Rules;
    expect(rules.filter((r: any) => r.Prefix !== undefined)).toEqual([]);
    expect(rules).toHaveLength(6);
  });

  test('retains every bucket when the stack is deleted and adds no auto-delete custom resource', () => {
    for (const bucket of Object.values(template.findResources('AWS::S3::Bucket'))) {
      expect(bucket.DeletionPolicy).toBe('Retain');
      expect(bucket.UpdateReplacePolicy).toBe('Retain');
    }
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
    template.resourceCountIs('AWS::Lambda::Function', 0);
  });

  test('logs bucket is private, S3-managed encrypted and does not log to itself', () => {
    const logs = resources[logsId()].Properties;
    expect(logs.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault).toEqual({ SSEAlgorithm: 'AES256' });
    expect(logs.PublicAccessBlockConfiguration).toEqual(dataBucket('inputBucket').Properties.PublicAccessBlockConfiguration);
    expect(logs.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    expect(logs.LoggingConfiguration).toBeUndefined();
  });

  test('logs bucket expires logs after 90 days', () => {
    expect(resources[logsId()].Properties.LifecycleConfiguration.Rules).toEqual([
      { Id: 'expire-access-logs', Status: 'Enabled', ExpirationInDays: 90, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } },
    ]);
  });

  test('logs bucket is SSL-only and lets S3 logging write only under each bucket prefix', () => {
    const id = logsId();
    const policy = Object.values(template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: id } } }))[0];
    const statements = policy.Properties.PolicyDocument.Statement;
    expect(statements).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    for (const [which, prefix] of [['inputBucket', 'input/'], ['outputBucket', 'output/']] as const) {
      expect(statements).toContainEqual({
        Effect: 'Allow',
        Action: 's3:PutObject',
        Principal: { Service: 'logging.s3.amazonaws.com' },
        Resource: objectsOf(id, `${prefix}*`),
        Condition: {
          ArnLike: { 'aws:SourceArn': arnOf(logicalId(stack, buckets[which])) },
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
        },
      });
    }
  });
});

describe('StagingBuckets options', () => {
  test('KMS encryption creates a rotated key and uses it with a bucket key on both data buckets', () => {
    const { stack, buckets, template } = synth({ encryption: s3.BucketEncryption.KMS });
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    expect(buckets.encryptionKey).toBeDefined();
    const keyArn = arnOf(logicalId(stack, buckets.encryptionKey!));
    for (const which of ['inputBucket', 'outputBucket'] as const) {
      expect(template.toJSON().Resources[logicalId(stack, buckets[which])].Properties.BucketEncryption).toEqual({
        ServerSideEncryptionConfiguration: [
          { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyArn } },
        ],
      });
    }
  });

  test('KMS encryption leaves the access-logs bucket on S3-managed keys', () => {
    const { stack, buckets, template } = synth({ encryption: s3.BucketEncryption.KMS });
    const logs = template.toJSON().Resources[logicalId(stack, buckets.accessLogsBucket!)];
    expect(logs.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault).toEqual({
      SSEAlgorithm: 'AES256',
    });
  });

  test('encryptionKey uses the given key and creates none', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'OwnKey', { enableKeyRotation: true });
    const buckets = new StagingBuckets(stack, 'Staging', { encryptionKey: key });
    const template = Template.fromStack(stack);
    expect(buckets.encryptionKey).toBe(key);
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: arnOf(logicalId(stack, key)) } })],
      },
    });
  });

  test('retentionDaysValues replaces the tag rules, sorted', () => {
    const { stack, buckets, template } = synth({ retentionDaysValues: [14, 3] });
    expect(buckets.retentionDaysValues).toEqual([3, 14]);
    const rules = template.toJSON().Resources[logicalId(stack, buckets.inputBucket)].Properties.LifecycleConfiguration.Rules;
    expect(rules.filter((r: any) => r.TagFilters).map((r: any) => [r.TagFilters[0].Value, r.ExpirationInDays])).toEqual([
      ['3', 3],
      ['14', 14],
    ]);
  });

  test('objectRetentionDays is the stage default writers tag with, 30 unless set, and it gives the writers RETENTION_DAYS', () => {
    expect(synth({}).buckets.objectRetentionDays).toBe(30);
    const { buckets } = synth({ objectRetentionDays: 7 });
    expect(buckets.objectRetentionDays).toBe(7);
    expect(buckets.retentionEnvironment()).toEqual({ RETENTION_DAYS: '7' });
    expect(buckets.retentionEnvironment(365)).toEqual({ RETENTION_DAYS: '365' });
    expect(() => buckets.retentionEnvironment(2)).toThrow(/retentionEnvironment days \(2\) is invalid; allowed: one of retentionDaysValues \(1, 7, 30, 90, 365\)/);
  });

  test('objectRetentionDays without a lifecycle rule is refused (it would keep objects forever)', () => {
    expect(() => synth({ objectRetentionDays: 14 })).toThrow(/objectRetentionDays \(14\) is invalid; allowed: one of retentionDaysValues \(1, 7, 30, 90, 365\), which have lifecycle rules/);
  });

  test('custom rule values without 30: writers default to the longest one', () => {
    expect(synth({ retentionDaysValues: [14, 3] }).buckets.objectRetentionDays).toBe(14);
  });

  test('noncurrentVersionExpiration sets when old versions are deleted', () => {
    const { template } = synth({ noncurrentVersionExpiration: Duration.days(30) });
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 30 } })]) },
    });
  });

  test('defaultRetentionDays expires everything under jobs/ and runs/', () => {
    const { stack, buckets, template } = synth({ defaultRetentionDays: 400 });
    const rules = template.toJSON().Resources[logicalId(stack, buckets.outputBucket)].Properties.LifecycleConfiguration.Rules;
    expect(rules.filter((r: any) => r.Prefix !== undefined)).toEqual([
      { Id: 'expire-jobs-after-400', Status: 'Enabled', Prefix: 'jobs/', ExpirationInDays: 400 },
      { Id: 'expire-runs-after-400', Status: 'Enabled', Prefix: 'runs/', ExpirationInDays: 400 },
    ]);
  });

  test('accessLogRetentionDays sets the log expiry', () => {
    const { stack, buckets, template } = synth({ accessLogRetentionDays: 30 });
    const logs = template.toJSON().Resources[logicalId(stack, buckets.accessLogsBucket!)];
    expect(logs.Properties.LifecycleConfiguration.Rules[0].ExpirationInDays).toBe(30);
  });

  test('removalPolicy DESTROY with autoDeleteObjects deletes and empties all three buckets', () => {
    const { template } = synth({ removalPolicy: RemovalPolicy.DESTROY, autoDeleteObjects: true });
    for (const bucket of Object.values(template.findResources('AWS::S3::Bucket'))) {
      expect(bucket.DeletionPolicy).toBe('Delete');
    }
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 3);
  });

  test('autoDeleteObjects marks only the CDK provider handler to skip the redundant-DependsOn lint', () => {
    const { template } = synth({ removalPolicy: RemovalPolicy.DESTROY, autoDeleteObjects: true });
    const resources: Record<string, any> = template.toJSON().Resources;
    const marked = Object.keys(resources).filter((id) => resources[id].Metadata?.['cfn-lint'] !== undefined);
    expect(resources[marked[0]].Metadata['cfn-lint']).toEqual({ config: { ignore_checks: ['W3005'] } });
    expect(marked).toEqual([expect.stringMatching(/^CustomS3AutoDeleteObjectsCustomResourceProviderHandler/)]);
  });

  test('existingInputBucket is used as the input bucket and no input bucket is created', () => {
    const stack = newStack();
    const own = s3.Bucket.fromBucketName(stack, 'Own', 'my-inputs');
    const buckets = new StagingBuckets(stack, 'Staging', { existingInputBucket: own });
    expect(buckets.inputBucket).toBe(own);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::S3::Bucket', 2);
    expect(Object.keys(template.findResources('AWS::S3::Bucket')).some((id) => id.includes('InputBucket'))).toBe(false);
  });

  test('with both buckets brought nothing is created and there is no logs bucket', () => {
    const stack = newStack();
    const own = s3.Bucket.fromBucketName(stack, 'Own', 'my-staging');
    const buckets = new StagingBuckets(stack, 'Staging', { existingInputBucket: own, existingOutputBucket: own });
    // Inspected in the tree: a stack without resources would not synthesize cleanly.
    expect(stack.node.findAll().filter((c) => c instanceof s3.CfnBucket)).toEqual([]);
    expect(buckets.outputBucket).toBe(own);
    expect(buckets.accessLogsBucket).toBeUndefined();
  });

  test('delivers access logs by bucket policy even when the app turns the CDK flag off', () => {
    const stack = newStack({ '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': false });
    const buckets = new StagingBuckets(stack, 'Staging');
    const template = Template.fromStack(stack);
    const logs = template.toJSON().Resources[logicalId(stack, buckets.accessLogsBucket!)];
    expect(logs.Properties.AccessControl).toBeUndefined();
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Principal: { Service: 'logging.s3.amazonaws.com' } })]) },
    });
  });
});

describe('StagingBuckets.grantJobIo', () => {
  test('grants read on jobs/ of the input bucket and read-write on jobs/*/output/ of the output bucket by default', () => {
    const stack = newStack();
    const buckets = new StagingBuckets(stack, 'Staging');
    buckets.grantJobIo(jobRole(stack));
    const statements = policyStatements(Template.fromStack(stack)).map((s) => ({ ...s, Action: [...(s.Action as string[])].sort() }));
    const input = logicalId(stack, buckets.inputBucket);
    const output = logicalId(stack, buckets.outputBucket);
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['s3:GetBucket*', 's3:GetObject*', 's3:List*'],
      Resource: [arnOf(input), objectsOf(input, 'jobs/*')],
    });
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: [
        's3:Abort*',
        's3:DeleteObject*',
        's3:GetBucket*',
        's3:GetObject*',
        's3:List*',
        's3:PutObject',
        's3:PutObjectLegalHold',
        's3:PutObjectRetention',
        's3:PutObjectTagging',
        's3:PutObjectVersionTagging',
      ],
      Resource: [arnOf(output), objectsOf(output, 'jobs/*/output/*')],
    });
    expect(statements).toHaveLength(2);
  });

  test('scopes the grants to the given prefixes', () => {
    const stack = newStack();
    const buckets = new StagingBuckets(stack, 'Staging');
    buckets.grantJobIo(jobRole(stack), { inputPrefix: 'runs/', outputPrefix: 'runs/*/results/' });
    const resources = policyStatements(Template.fromStack(stack)).map((s) => s.Resource);
    expect(resources).toEqual([
      [arnOf(logicalId(stack, buckets.inputBucket)), objectsOf(logicalId(stack, buckets.inputBucket), 'runs/*')],
      [arnOf(logicalId(stack, buckets.outputBucket)), objectsOf(logicalId(stack, buckets.outputBucket), 'runs/*/results/*')],
    ]);
  });

  test('grants the key permissions with KMS encryption', () => {
    const stack = newStack();
    const buckets = new StagingBuckets(stack, 'Staging', { encryption: s3.BucketEncryption.KMS });
    buckets.grantJobIo(jobRole(stack));
    expect(policyStatements(Template.fromStack(stack))).toContainEqual(
      expect.objectContaining({
        Action: expect.arrayContaining(['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*']),
        Resource: arnOf(logicalId(stack, buckets.encryptionKey!)),
      }),
    );
  });

  test('grants on brought buckets', () => {
    const stack = newStack();
    const own = s3.Bucket.fromBucketName(stack, 'Own', 'my-inputs');
    const buckets = new StagingBuckets(stack, 'Staging', { existingInputBucket: own });
    buckets.grantJobIo(jobRole(stack));
    expect(policyStatements(Template.fromStack(stack))[0].Resource).toEqual([
      stack.resolve(own.bucketArn),
      stack.resolve(own.arnForObjects('jobs/*')),
    ]);
  });

  test.each([
    ['inputPrefix', '/jobs/'],
    ['outputPrefix', 'jobs'],
  ])('rejects %s %j', (prop, prefix) => {
    const stack = newStack();
    const buckets = new StagingBuckets(stack, 'Staging');
    expect(() => buckets.grantJobIo(jobRole(stack), { [prop]: prefix })).toThrow(
      `[Stack/Staging] ${prop} (${JSON.stringify(prefix)}) is invalid; allowed: a key prefix ending with "/" and not starting with "/"`,
    );
  });
});

describe('staging layout helpers', () => {
  test('name the job inputs, job output and run locations', () => {
    expect(jobInputsKey('job-42')).toBe('jobs/job-42/inputs.json');
    expect(jobOutputPrefix('job-42')).toBe('jobs/job-42/output/');
    expect(runPrefix('run-7')).toBe('runs/run-7/');
  });

  test('are also static members, with the tag names', () => {
    expect(StagingBuckets.jobInputsKey('a')).toBe(jobInputsKey('a'));
    expect(StagingBuckets.jobOutputPrefix('a')).toBe(jobOutputPrefix('a'));
    expect(StagingBuckets.runPrefix('a')).toBe(runPrefix('a'));
    expect([StagingBuckets.RETENTION_TAG, StagingBuckets.JOB_ID_TAG]).toEqual(['retention-days', 'job-id']);
    expect([RETENTION_TAG, JOB_ID_TAG]).toEqual(['retention-days', 'job-id']);
  });

  test.each(['', 'a/b'])('reject the id %j', (id) => {
    expect(() => jobInputsKey(id)).toThrow(/jobId .* must be non-empty and contain no "\/"/);
    expect(() => runPrefix(id)).toThrow(/runId .* must be non-empty and contain no "\/"/);
  });
});

describe('StagingBuckets validation', () => {
  const build = (props: StagingBucketsProps) => () => new StagingBuckets(newStack(), 'Staging', props);
  const RETENTION_ALLOWED = 'allowed: unique whole numbers from 1 to 3650, at most 20 values';

  test.each<[number[], string]>([
    [[], 'has 0 values'],
    [Array.from({ length: 21 }, (_, i) => i + 1), 'has 21 values'],
    [[0, 7], 'contains 0'],
    [[7, 3651], 'contains 3651'],
    [[1.5], 'contains 1.5'],
    [[7, 7], 'contains duplicates'],
  ])('rejects retentionDaysValues %j', (values, problem) => {
    expect(build({ retentionDaysValues: values })).toThrow(
      `[Stack/Staging] retentionDaysValues ([${values.join(', ')}]) ${problem}; ${RETENTION_ALLOWED}`,
    );
  });

  test.each([undefined, RemovalPolicy.RETAIN, RemovalPolicy.SNAPSHOT])('rejects autoDeleteObjects with removalPolicy %s', (removalPolicy) => {
    expect(build({ autoDeleteObjects: true, removalPolicy })).toThrow(
      `[Stack/Staging] autoDeleteObjects (true) conflicts with removalPolicy ${removalPolicy ?? RemovalPolicy.RETAIN}; allowed: true only with removalPolicy DESTROY`,
    );
  });

  test.each([0, 2.5, 3651])('rejects accessLogRetentionDays %d', (days) => {
    expect(build({ accessLogRetentionDays: days })).toThrow(
      `[Stack/Staging] accessLogRetentionDays (${days}) is invalid; allowed: a whole number from 1 to 3650`,
    );
  });

  test.each([
    [Duration.hours(36), '1 day 12 hours'],
    [Duration.days(0), '0 days'],
  ])('rejects noncurrentVersionExpiration %s', (duration, shown) => {
    expect(build({ noncurrentVersionExpiration: duration })).toThrow(
      `[Stack/Staging] noncurrentVersionExpiration ("${shown}") is invalid; allowed: whole days from 1 to 3650`,
    );
  });

  test('rejects a defaultRetentionDays shorter than the longest tag retention', () => {
    expect(build({ defaultRetentionDays: 30 })).toThrow(
      /^\[Stack\/Staging\] defaultRetentionDays \(30\) is invalid; allowed: a whole number from 365 \(the largest retentionDaysValues value/,
    );
  });

  test.each([s3.BucketEncryption.KMS_MANAGED, s3.BucketEncryption.DSSE_MANAGED, s3.BucketEncryption.UNENCRYPTED])(
    'rejects encryption %s',
    (encryption) => {
      expect(build({ encryption })).toThrow(`[Stack/Staging] encryption ("${encryption}") is invalid; allowed: S3_MANAGED or KMS`);
    },
  );

  test('rejects encryptionKey with S3_MANAGED encryption', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'Key');
    expect(() => new StagingBuckets(stack, 'Staging', { encryption: s3.BucketEncryption.S3_MANAGED, encryptionKey: key })).toThrow(
      '[Stack/Staging] encryption ("S3_MANAGED") conflicts with encryptionKey; allowed: KMS (or unset) when encryptionKey is given',
    );
  });

  test('rejects bucket settings when both buckets are brought', () => {
    const stack = newStack();
    const own = s3.Bucket.fromBucketName(stack, 'Own', 'mine');
    expect(
      () => new StagingBuckets(stack, 'Staging', { existingInputBucket: own, existingOutputBucket: own, retentionDaysValues: [3] }),
    ).toThrow('[Stack/Staging] retentionDaysValues ([3]) has no effect: both buckets are brought; allowed: only when at least one bucket is created here');
  });
});

describe('StagingBuckets compliance', () => {
  test('cdk-nag AwsSolutions reports nothing for the buckets', () => {
    expect(stackNagFindings((stack) => new StagingBuckets(stack, 'Staging'))).toEqual([]);
  });

  test('a grantJobIo grantee gets exactly the documented IAM5 findings', () => {
    const findings = stackNagFindings((stack) => {
      const buckets = new StagingBuckets(stack, 'Staging', { encryption: s3.BucketEncryption.KMS });
      const role = jobRole(stack);
      buckets.grantJobIo(role);
      const bucketRef = (bucket: s3.IBucket) => `<${logicalId(stack, bucket)}.Arn>`;
      const reason = 'Job I/O grant from StagingBuckets.grantJobIo: S3 action groups and key-prefix objects of the staging buckets only.';
      for (const finding of [
        'Action::s3:GetObject*',
        'Action::s3:GetBucket*',
        'Action::s3:List*',
        'Action::s3:DeleteObject*',
        'Action::s3:Abort*',
        'Action::kms:GenerateDataKey*',
        'Action::kms:ReEncrypt*',
        `Resource::${bucketRef(buckets.inputBucket)}/jobs/*`,
        `Resource::${bucketRef(buckets.outputBucket)}/jobs/*/output/*`,
      ]) {
        Validations.of(role.node.findChild('DefaultPolicy')).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason });
      }
    });
    expect(findings).toEqual([]);
  });

  test('cfn-lint reports nothing for S3-managed, KMS and auto-delete variants', () => {
    const stack = newStack();
    new StagingBuckets(stack, 'Default');
    const kmsBuckets = new StagingBuckets(stack, 'Kms', { encryption: s3.BucketEncryption.KMS, defaultRetentionDays: 365 });
    kmsBuckets.grantJobIo(jobRole(stack));
    new StagingBuckets(stack, 'Disposable', { removalPolicy: RemovalPolicy.DESTROY, autoDeleteObjects: true });
    expect(cfnLintFindings(Template.fromStack(stack).toJSON())).toBe('');
  });
});

describe('StagingBuckets uploadCorsOrigins (browser PUTs to presigned URLs of the input bucket)', () => {
  test('off by default: neither bucket has a CORS rule', () => {
    const { template } = synth();
    for (const bucket of Object.values(template.findResources('AWS::S3::Bucket'))) {
      expect(bucket.Properties.CorsConfiguration).toBeUndefined();
    }
  });

  test('the input bucket, and only it, allows PUT from the origins with the signed upload headers', () => {
    const { stack, buckets, template } = synth({ uploadCorsOrigins: ['https://app.example.com', 'http://localhost:5173'] });
    const resources = template.findResources('AWS::S3::Bucket');
    expect(resources[logicalId(stack, buckets.inputBucket)].Properties.CorsConfiguration).toEqual({
      CorsRules: [
        {
          Id: 'browser-upload',
          AllowedMethods: ['PUT'],
          AllowedOrigins: ['https://app.example.com', 'http://localhost:5173'],
          AllowedHeaders: ['content-type', 'x-amz-tagging'],
          ExposedHeaders: ['ETag'],
          MaxAge: 3600,
        },
      ],
    });
    expect(resources[logicalId(stack, buckets.outputBucket)].Properties.CorsConfiguration).toBeUndefined();
    // The headers a presigned upload of the OCR API carries besides content-length (which the browser sets itself).
    expect([...UPLOAD_CORS_HEADERS]).toEqual(['content-type', 'x-amz-tagging']);
  });

  test('a malformed origin, or a brought input bucket, is refused naming the prop and the value', () => {
    expect(() => synth({ uploadCorsOrigins: ['app.example.com'] })).toThrow(
      '[Stack/Staging] uploadCorsOrigins ("app.example.com") is invalid; allowed: origins like https://app.example.com (scheme, host, optional port; no path), or *',
    );
    const stack = newStack();
    const own = s3.Bucket.fromBucketName(stack, 'Own', 'my-inputs');
    expect(() => new StagingBuckets(stack, 'Staging', { existingInputBucket: own, uploadCorsOrigins: ['https://app.example.com'] })).toThrow(
      /\[Stack\/Staging\] uploadCorsOrigins \(\["https:\/\/app.example.com"\]\) cannot be applied; allowed: only when the input bucket is created here/,
    );
  });

  test('cdk-nag and cfn-lint report nothing with the CORS rule', () => {
    expect(stackNagFindings((stack) => new StagingBuckets(stack, 'Staging', { uploadCorsOrigins: ['https://app.example.com'] }))).toEqual([]);
    const { template } = synth({ uploadCorsOrigins: ['https://app.example.com', '*'] });
    expect(cfnLintFindings(template.toJSON())).toBe('');
  });
});
