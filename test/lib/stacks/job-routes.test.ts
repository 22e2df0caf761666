import * as fs from 'fs';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { OCR_PLACEMENT } from '../../../containers/worker/src/operations/placement';
import { BatchPlatformStack } from '../../../lib/stacks/batch-platform-stack';
import { addPlatformStacks } from '../../../lib/stacks/platform-app';
import { STAGES } from '../../../lib/stacks/stage-config';
import { appWithCdkJson } from '../../support/app';

const platform: BatchPlatformStack = addPlatformStacks(appWithCdkJson({ stage: 'dev' }), STAGES.dev).platform;
const template = Template.fromStack(platform);
const logicalId = (construct: { node: { defaultChild?: unknown } }) => platform.getLogicalId(construct.node.defaultChild as never);

describe('operation-to-queue routing in the platform stack', () => {
  test('the OCR job definition is a Fargate job of the ocr placement size, built from the Dockerfile ocr target', () => {
    const ocrJob = platform.ocrJobDefinition!;
    expect(ocrJob.platform).toBe(OCR_PLACEMENT.runsOn);
    const cfn = template.toJSON().Resources[platform.getLogicalId(ocrJob.jobDefinition.node.defaultChild as never)];
    const requirements = Object.fromEntries(cfn.Properties.ContainerProperties.ResourceRequirements.map((r: { Type: string; Value: string }) => [r.Type, Number(r.Value)]));
    expect(requirements).toEqual({ VCPU: OCR_PLACEMENT.vcpus, MEMORY: OCR_PLACEMENT.memoryMiB });
    expect(cfn.Properties.PlatformCapabilities).toEqual(['FARGATE']);
    // The image asset's build target: the assets manifest of the synthesized stack.
    const assembly = (platform.node.root as App).synth();
    const manifest = JSON.parse(fs.readFileSync(path.join(assembly.directory, `${platform.artifactId}.assets.json`), 'utf8')) as {
      dockerImages: Record<string, { source: { directory: string; dockerBuildTarget?: string } }>;
    };
    const targets = Object.values(manifest.dockerImages).map((i) => i.source.dockerBuildTarget ?? '(last stage)').sort();
    expect(targets).toEqual(['(last stage)', 'ocr']);
  });

  test('the submit handlers get JOB_ROUTES sending FARGATE:ocr to the Fargate queue with the OCR job definition', () => {
    const fn = platform.resolve((platform.submitApi.submitFunction.node.defaultChild as unknown as { environment: unknown }).environment) as { variables: Record<string, unknown> };
    const routes = JSON.stringify(fn.variables.JOB_ROUTES);
    expect(routes).toContain('FARGATE:ocr');
    const ocrRoute = routes.slice(routes.indexOf('FARGATE:ocr'));
    expect(ocrRoute).toContain(`"Fn::GetAtt":["${logicalId(platform.fargateJobQueue!.jobQueue)}","JobQueueArn"]`);
    expect(ocrRoute).toContain(`"Ref":"${logicalId(platform.ocrJobDefinition!.jobDefinition)}"`);
  });

  test('the submit function may submit to the Fargate queue and every revision of the OCR job definition', () => {
    const role = logicalId(platform.submitApi.submitFunction.role as never);
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: role }]));
    const submit = policies
      .flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[])
      .find((st) => st.Action === 'batch:SubmitJob');
    expect(JSON.stringify(submit?.Resource)).toContain(logicalId(platform.fargateJobQueue!.jobQueue));
    expect(JSON.stringify(submit?.Resource)).toContain(`job-definition/`);
    expect(JSON.stringify(submit?.Resource)).toContain(logicalId(platform.ocrJobDefinition!.jobDefinition));
  });

  test('the JobRoutes output is what batchctl --stack reads as its route table', () => {
    template.hasOutput('JobRoutes', { Value: Match.anyValue() });
  });
});
