import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { addPlatformStacks } from '../../lib/stacks/platform-app';
import { STAGE_NAMES, stageConfig } from '../../lib/stacks/stage-config';
import { appWithCdkJson } from '../support/app';
import { cfnLintFindings, nagFindings } from '../support/compliance';

/**
 * Compliance of what `cdk synth -c stage=<name>` produces (cdk.json's feature flags included):
 * cdk-nag AwsSolutions with zero unacknowledged findings, then cfn-lint over every template.
 */
describe.each(STAGE_NAMES)('stage %s', (stage) => {
  let outdir: string;
  let findings: string[];
  beforeAll(() => {
    outdir = fs.mkdtempSync(path.join(os.tmpdir(), `cdk-batch-platform-${stage}-`));
    const app = appWithCdkJson({ stage }, { outdir });
    addPlatformStacks(app, stageConfig(stage));
    findings = nagFindings(app);
  });
  afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

  test('cdk-nag AwsSolutions reports zero unacknowledged findings', () => {
    expect(findings).toEqual([]);
  });

  test('cfn-lint reports nothing on every synthesized template', () => {
    const templates = fs.readdirSync(outdir).filter((f) => f.endsWith('.template.json'));
    expect(templates.sort()).toEqual([
      `BatchPlatform-${stage}.template.json`,
      `ChunkedProcessing-${stage}.template.json`,
      ...(stageConfig(stage).ocrApi ? [`OcrApi-${stage}.template.json`] : []),
      ...(stageConfig(stage).photoBundles ? [`PhotoBundles-${stage}.template.json`] : []),
      `RoadMetrics-${stage}.template.json`,
    ]);
    for (const file of templates) {
      const template = JSON.parse(fs.readFileSync(path.join(outdir, file), 'utf8'));
      expect({ file, findings: cfnLintFindings(template) }).toEqual({ file, findings: '' });
    }
  });
});

test('an unknown stage fails with the list of known stages', () => {
  expect(() => stageConfig('qa')).toThrow('context stage ("qa") is unknown; allowed: dev, prod');
});
