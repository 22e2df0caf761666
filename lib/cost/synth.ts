import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { addPlatformStacks } from '../stacks/platform-app';
import { stageConfig } from '../stacks/stage-config';
import type { CfnTemplate } from './estimate';

/**
 * Synthesizes one stage's stacks in-process, as `cdk synth -c stage=<stage>` would (Lambda bundling
 * skipped: the estimate reads resources, not code), with the feature flags of a cdk.json in `cwd` if any.
 */
export function synthesizeStageTemplates(stage: string, cwd: string = process.cwd()): Record<string, CfnTemplate> {
  const config = stageConfig(stage);
  const cdkJson = path.join(cwd, 'cdk.json');
  const flags = fs.existsSync(cdkJson) ? (JSON.parse(fs.readFileSync(cdkJson, 'utf8')).context ?? {}) : {};
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchctl-cost-'));
  try {
    const app = new App({ outdir, context: { ...flags, stage, 'aws:cdk:bundling-stacks': [] } });
    addPlatformStacks(app, config);
    const assembly = app.synth();
    return Object.fromEntries(assembly.stacks.map((s) => [s.stackName, s.template as CfnTemplate]));
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}
