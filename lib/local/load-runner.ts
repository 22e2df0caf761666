/**
 * The local runner's heavy dependencies (aws-local-stepfunctions, s3rver with koa, the S3 client and
 * the handlers) load here, on the first `run-local`, never when batchctl or the constructs are imported.
 * aws-local-stepfunctions and s3rver are optional peer dependencies of the package: only `run-local`
 * needs them, and aws-local-stepfunctions 3 declares Node.js >= 22 (the runner adds the one API it
 * misses on Node.js 20), which would make every consumer's install warn EBADENGINE.
 */
export const RUNNER_PEER_DEPENDENCIES = ['aws-local-stepfunctions', 's3rver'] as const;

/** Peers of the local runner that `resolve` cannot find. */
export function missingRunnerDependencies(resolve: (id: string) => string = require.resolve): string[] {
  return RUNNER_PEER_DEPENDENCIES.filter((name) => {
    try {
      resolve(name);
      return false;
    } catch {
      return true;
    }
  });
}

/** Thrown when the runner's optional peers are not installed; the message names the command that fixes it. */
export class RunnerDependencyError extends Error {
  constructor(public readonly missing: readonly string[]) {
    super(
      `run-local needs ${missing.join(' and ')}, optional peer dependencies of cdk-batch-platform used only by the local runner; ` +
        `install them in your project: npm install --save-dev ${missing.map((m) => `${m}@^3`).join(' ')}`,
    );
    this.name = 'RunnerDependencyError';
  }
}

/** Loads lib/local/run-local after checking its peers. */
export async function loadRunner(resolve?: (id: string) => string): Promise<typeof import('./run-local')> {
  const missing = missingRunnerDependencies(resolve);
  if (missing.length > 0) throw new RunnerDependencyError(missing);
  return import('./run-local');
}
