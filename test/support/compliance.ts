import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';

interface Violation {
  ruleName: string;
  description: string;
  violatingConstructs: { constructPath: string }[];
}

/**
 * cdk-nag AwsSolutions findings of `app`: adds the checks as a validation plugin, synthesizes and
 * returns one line per finding, `RULE at PATH: description`, read from the validation report;
 * [] when clean. An error of synthesis that is not a validation failure is rethrown.
 */
export function nagFindings(app: App): string[] {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const report = path.join(app.outdir, 'validation-report.json');
  fs.rmSync(report, { force: true });
  try {
    app.synth();
    return [];
  } catch (err) {
    if (!fs.existsSync(report)) throw err;
    const parsed = JSON.parse(fs.readFileSync(report, 'utf8')) as { pluginReports: { violations: Violation[] }[] };
    const lines = parsed.pluginReports.flatMap((p) =>
      p.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} at ${c.constructPath}: ${v.description}`)),
    );
    // A failed validation always has findings; never let an empty list pass for a failure.
    return lines.length > 0 ? lines : [String((err as Error).message ?? err)];
  }
}

/** nagFindings of a new App with one Stack ('Stack') that `build` fills. */
export function stackNagFindings(build: (stack: Stack) => void): string[] {
  const app = new App();
  build(new Stack(app, 'Stack'));
  return nagFindings(app);
}

export interface CfnLintOptions {
  /** Rules passed to `--ignore-checks`. */
  readonly ignoreChecks?: string[];
}

/**
 * Runs `cfn-lint` on `template` (written to a temporary directory, removed afterwards) and returns
 * what it printed; '' when clean. A non-zero exit without output (or a missing cfn-lint) is
 * reported too, so a failure never reads as clean.
 */
export function cfnLintFindings(template: object, options: CfnLintOptions = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfn-lint-'));
  const file = path.join(dir, 'template.json');
  try {
    fs.writeFileSync(file, JSON.stringify(template));
    const ignore = options.ignoreChecks?.length ? ['--ignore-checks', ...options.ignoreChecks] : [];
    const result = spawnSync('cfn-lint', [...ignore, '--', file], { encoding: 'utf8' });
    if (result.error) return `cfn-lint did not run: ${String(result.error)}`;
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    return output || (result.status === 0 ? '' : `cfn-lint exited with status ${result.status} and no output`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
