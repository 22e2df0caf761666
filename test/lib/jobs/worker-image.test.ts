import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { WorkerImage, WorkerImageProps } from '../../../lib/jobs/worker-image';
import { WorkerJobDefinition } from '../../../lib/jobs/worker-job-definition';
import { cfnLintFindings, nagFindings } from '../../support/compliance';
import { expectPropErrorAt } from '../../support/stacks';

function setup(props: WorkerImageProps = {}): { app: App; stack: Stack; image: WorkerImage; template: () => Template } {
  const app = new App();
  const stack = new Stack(app, 'Stack');
  const image = new WorkerImage(stack, 'Image', props);
  return { app, stack, image, template: () => Template.fromStack(stack) };
}

function lifecyclePolicy(template: Template): { rules: Record<string, any>[] } {
  const [repository] = Object.values(template.findResources('AWS::ECR::Repository'));
  return JSON.parse(repository.Properties.LifecyclePolicy.LifecyclePolicyText);
}

describe('the repository', () => {
  test('scans on push, refuses to overwrite tags and encrypts with KMS', () => {
    setup().template().hasResourceProperties('AWS::ECR::Repository', {
      ImageScanningConfiguration: { ScanOnPush: true },
      ImageTagMutability: 'IMMUTABLE',
      EncryptionConfiguration: { EncryptionType: 'KMS' },
    });
  });

  test('lifecycle: untagged images expire after a day, the last 10 tagged ones are kept', () => {
    const { rules } = lifecyclePolicy(setup().template());
    expect(rules).toEqual([
      expect.objectContaining({
        rulePriority: 1,
        selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countNumber: 1, countUnit: 'days' },
        action: { type: 'expire' },
      }),
      expect.objectContaining({
        rulePriority: 2,
        selection: { tagStatus: 'tagged', tagPatternList: ['*'], countType: 'imageCountMoreThan', countNumber: 10 },
        action: { type: 'expire' },
      }),
    ]);
  });

  test('keptImages sets how many tagged images stay', () => {
    const { rules } = lifecyclePolicy(setup({ keptImages: 3 }).template());
    expect(rules[1].selection.countNumber).toBe(3);
  });

  test('a customer key encrypts when given', () => {
    const app = new App();
    const stack = new Stack(app, 'Stack');
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    new WorkerImage(stack, 'Image', { encryptionKey: key });
    Template.fromStack(stack).hasResourceProperties('AWS::ECR::Repository', {
      EncryptionConfiguration: { EncryptionType: 'KMS', KmsKey: { 'Fn::GetAtt': [stack.getLogicalId(key.node.defaultChild as kms.CfnKey), 'Arn'] } },
    });
  });

  test('retained by default; DESTROY deletes it with its images', () => {
    setup().template().hasResource('AWS::ECR::Repository', { DeletionPolicy: 'Retain', Properties: Match.objectLike({ EmptyOnDelete: false }) });
    setup({ removalPolicy: RemovalPolicy.DESTROY }).template()
      .hasResource('AWS::ECR::Repository', { DeletionPolicy: 'Delete', Properties: Match.objectLike({ EmptyOnDelete: true }) });
  });

  test('bad props name the field, the value and what is allowed', () => {
    expectPropErrorAt('Stack/Image', () => setup({ keptImages: 0 }), 'keptImages', '0');
    expectPropErrorAt('Stack/Image', () => setup({ keptImages: 2.5 }), 'keptImages', '2.5');
    expectPropErrorAt('Stack/Image', () => setup({ keptImages: 20_000 }), 'keptImages', '20000', '1 to 10000');
    expectPropErrorAt('Stack/Image', () => setup({ target: 'ocr; rm -rf' }), 'target', 'ocr; rm -rf', 'Dockerfile stage name');
    expectPropErrorAt('Stack/Image', () => setup({ architecture: 'MIPS' as never }), 'architecture', 'MIPS', "'X86_64' or 'ARM64'");
  });
});

describe('the deploy-time copy', () => {
  test('copies the asset into the repository under its hash, for the image architecture', () => {
    const { stack, image, template } = setup({ architecture: 'ARM64', target: 'ocr' });
    const repositoryId = stack.getLogicalId(image.repository.node.defaultChild as never);
    const [copy] = Object.values(template().findResources('Custom::CDKECRDeployment'));
    const source = copy.Properties.SrcImage['Fn::Join'][1] as unknown[];
    expect(source[0]).toBe('docker://');
    // The source is the image as cdk deploy pushes it: the bootstrap asset repository, tagged with the hash.
    expect(source[1]).toEqual({ 'Fn::Sub': expect.stringMatching(new RegExp(`/cdk-hnb659fds-container-assets-.+:${image.asset.imageTag}$`)) });
    template().hasResourceProperties('Custom::CDKECRDeployment', {
      DestImage: {
        'Fn::Join': ['', Match.arrayWith([
          { 'Fn::Select': [4, { 'Fn::Split': [':', { 'Fn::GetAtt': [repositoryId, 'Arn'] }] }] },
          { Ref: repositoryId },
          `:${image.tag}`,
        ])],
      },
      ImageArch: 'arm64',
    });
    expect(image.tag).toBe(image.asset.assetHash);
  });

  test('different Dockerfile targets are different images with different tags', () => {
    const app = new App();
    const stack = new Stack(app, 'Stack');
    const worker = new WorkerImage(stack, 'Worker');
    const ocr = new WorkerImage(stack, 'Ocr', { target: 'ocr' });
    expect(ocr.tag).not.toBe(worker.tag);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::ECR::Repository', 2);
    template.resourceCountIs('Custom::CDKECRDeployment', 2);
    // One copy Lambda and one role per stack.
    template.resourceCountIs('AWS::Lambda::Function', 1);
    template.resourceCountIs('AWS::IAM::Role', 1);
  });

  test('the copy role pulls only from the asset repository and pushes only to ours (no ecr:* on *)', () => {
    const { stack, image, template } = setup();
    const repositoryId = stack.getLogicalId(image.repository.node.defaultChild as never);
    const statements = Object.values(template().findResources('AWS::IAM::Policy'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Record<string, any>[]);
    const onEverything = statements.filter((s) => s.Resource === '*');
    expect(onEverything.flatMap((s) => [s.Action].flat())).toEqual(['ecr:GetAuthorizationToken']);
    expect(statements).toContainEqual(expect.objectContaining({
      Action: expect.arrayContaining(['ecr:PutImage', 'ecr:CompleteLayerUpload']),
      Resource: { 'Fn::GetAtt': [repositoryId, 'Arn'] },
    }));
    const pushTargets = statements.filter((s) => [s.Action].flat().includes('ecr:PutImage')).map((s) => s.Resource);
    expect(pushTargets).toEqual([{ 'Fn::GetAtt': [repositoryId, 'Arn'] }]);
    expect(statements.flatMap((s) => [s.Action].flat())).not.toContain('s3:GetObject');
  });

  test('the copy waits for its role policy; a job definition waits for the copy', () => {
    const { stack, image, template } = setup();
    const job = new WorkerJobDefinition(stack, 'Job', { workerImage: image });
    const resources = template().toJSON().Resources as Record<string, { Type: string; DependsOn?: string[] }>;
    const [copyId] = Object.entries(resources).find(([, r]) => r.Type === 'Custom::CDKECRDeployment')!;
    const [policyId] = Object.entries(resources).find(([id, r]) => r.Type === 'AWS::IAM::Policy' && id.startsWith('WorkerImageCopyRoleDefaultPolicy'))!;
    expect(resources[copyId].DependsOn).toEqual(expect.arrayContaining([policyId]));
    const jobId = stack.getLogicalId(job.jobDefinition.node.defaultChild as never);
    expect(resources[jobId].DependsOn).toEqual(expect.arrayContaining([copyId]));
  });
});

describe('job definitions on a WorkerImage', () => {
  test('use our repository with the immutable tag, and pull from it', () => {
    const { stack, image, template } = setup();
    new WorkerJobDefinition(stack, 'Job', { workerImage: image, platform: 'FARGATE' });
    const repositoryId = stack.getLogicalId(image.repository.node.defaultChild as never);
    const [definition] = Object.values(template().findResources('AWS::Batch::JobDefinition'));
    const imageParts = JSON.stringify(definition.Properties.ContainerProperties.Image);
    expect(imageParts).toContain(`{"Ref":"${repositoryId}"}`);
    expect(imageParts).toContain(`:${image.tag}`);
    expect(imageParts).not.toContain('cdk-hnb659fds-container-assets');
    template().hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: Match.arrayWith(['ecr:BatchGetImage']), Resource: { 'Fn::GetAtt': [repositoryId, 'Arn'] } }),
        ]),
      },
      Roles: [{ Ref: Match.stringLikeRegexp('^JobExecutionRole') }],
    });
  });

  test('an image of another architecture is refused, naming it', () => {
    const { stack, image } = setup({ architecture: 'ARM64' });
    expectPropErrorAt('Stack/Job', () => new WorkerJobDefinition(stack, 'Job', { workerImage: image }), 'workerImage', 'Stack/Image (ARM64)', 'X86_64');
  });
});

test('cdk-nag and cfn-lint are clean on a stack with two images and their job definitions', () => {
  const app = new App();
  const stack = new Stack(app, 'Stack');
  const worker = new WorkerImage(stack, 'Worker', { removalPolicy: RemovalPolicy.DESTROY });
  const ocr = new WorkerImage(stack, 'Ocr', { target: 'ocr' });
  new WorkerJobDefinition(stack, 'WorkerJob', { workerImage: worker });
  new WorkerJobDefinition(stack, 'OcrJob', { workerImage: ocr, platform: 'FARGATE' });
  expect(nagFindings(app)).toEqual([]);
  expect(cfnLintFindings(Template.fromStack(stack).toJSON())).toBe('');
});
