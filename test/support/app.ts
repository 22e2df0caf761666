import * as fs from 'fs';
import * as path from 'path';
import { App, AppProps } from 'aws-cdk-lib';

/** The feature flags of cdk.json: tests of whole stacks synthesize with them, as `cdk synth` does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'cdk.json'), 'utf8'));
  return cdkJson.context ?? {};
}

/** An App with cdk.json's context plus `context`. */
export function appWithCdkJson(context: Record<string, unknown> = {}, props: AppProps = {}): App {
  return new App({ ...props, context: { ...cdkJsonContext(), ...context } });
}
