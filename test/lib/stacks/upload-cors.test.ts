import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Template } from 'aws-cdk-lib/assertions';
import { addPlatformStacks } from '../../../lib/stacks/platform-app';
import { STAGES, StageConfig } from '../../../lib/stacks/stage-config';
import { appWithCdkJson } from '../../support/app';
import { cfnLintFindings, nagFindings } from '../../support/compliance';

/**
 * Browser uploads of the OCR API: the presigned PUT goes to the platform's input bucket, so a stage whose
 * OCR API allows browser origins gets the same origins in a PUT CORS rule on that bucket. The whole stage is
 * synthesized as `cdk synth` does, then checked by cdk-nag and cfn-lint.
 */
jest.setTimeout(300_000);

const ORIGINS = ['https://ocr.example.com', 'http://localhost:5173'];

const corsRulesOf = (template: Template): unknown[] =>
  Object.values(template.findResources('AWS::S3::Bucket')).flatMap((b) => b.Properties.CorsConfiguration?.CorsRules ?? []);

test('dev with OCR API CORS on: the input bucket allows PUT from exactly the OCR API origins; cdk-nag and cfn-lint clean', () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'upload-cors-'));
  try {
    const config: StageConfig = { ...STAGES.dev, ocrApi: { ...STAGES.dev.ocrApi!, corsAllowedOrigins: ORIGINS } };
    const app = appWithCdkJson({ stage: 'dev' }, { outdir });
    const stacks = addPlatformStacks(app, config);
    expect(stacks.ocrApi!.corsAllowedOrigins).toEqual(ORIGINS);
    const platform = Template.fromStack(stacks.platform);
    const inputId = stacks.platform.getLogicalId(stacks.platform.buckets.inputBucket.node.defaultChild as never);
    expect(platform.findResources('AWS::S3::Bucket')[inputId].Properties.CorsConfiguration.CorsRules).toEqual([
      expect.objectContaining({ AllowedMethods: ['PUT'], AllowedOrigins: ORIGINS, AllowedHeaders: ['content-type', 'x-amz-tagging'] }),
    ]);
    // Only that bucket: outputs, access logs and the other stacks' buckets stay without CORS.
    expect(corsRulesOf(platform)).toHaveLength(1);
    expect(nagFindings(app)).toEqual([]);
    expect(cfnLintFindings(JSON.parse(fs.readFileSync(path.join(outdir, `${stacks.platform.stackName}.template.json`), 'utf8')))).toBe('');
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
});

test('off by default: the stages as configured have no OCR API origins, so no input bucket CORS rule', () => {
  // The stage compliance and snapshot tests synthesize these stages; the wiring is the one tested above.
  for (const config of Object.values(STAGES)) expect(config.ocrApi?.corsAllowedOrigins ?? []).toEqual([]);
});
