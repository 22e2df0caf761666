import { execFileSync } from 'child_process';
import * as path from 'path';
import { loadRunner, missingRunnerDependencies, RunnerDependencyError } from '../../../lib/local/load-runner';

const ROOT = path.join(__dirname, '..', '..', '..');

describe('the local runner loads lazily', () => {
  // A fresh Node process (jest's module registry is not require.cache), running the TypeScript through tsx.
  const heavyModulesAfterRequiring = (file: string): string[] => {
    const script = `require(${JSON.stringify(file)});
const heavy = /node_modules[\\\\/](aws-local-stepfunctions|s3rver|koa)[\\\\/]/;
process.stdout.write(JSON.stringify([...new Set(Object.keys(require.cache).filter((k) => heavy.test(k)).map((k) => k.split(/node_modules[\\\\/]/).pop().split(/[\\\\/]/)[0]))].sort()));`;
    const out = execFileSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    return JSON.parse(out);
  };

  test('registering batchctl run-local loads neither aws-local-stepfunctions nor s3rver/koa', () => {
    expect(heavyModulesAfterRequiring('./lib/local/cli-run-local')).toEqual([]);
  });

  test('the runner itself does load them (so the check above can tell)', () => {
    expect(heavyModulesAfterRequiring('./lib/local/run-local')).toContain('aws-local-stepfunctions');
  });

  test('a missing optional peer fails with the npm command that installs it', async () => {
    const resolve = (id: string): string => {
      if (id === 's3rver') throw new Error(`Cannot find module '${id}'`);
      return `/node_modules/${id}/index.js`;
    };
    expect(missingRunnerDependencies(resolve)).toEqual(['s3rver']);
    await expect(loadRunner(resolve)).rejects.toThrow(RunnerDependencyError);
    await expect(loadRunner(resolve)).rejects.toThrow(
      'run-local needs s3rver, optional peer dependencies of cdk-batch-platform used only by the local runner; install them in your project: npm install --save-dev s3rver@^3',
    );
  });

  test('with the peers installed (as in this repository) it returns the runner', async () => {
    expect(missingRunnerDependencies()).toEqual([]);
    const runner = await loadRunner();
    expect(typeof runner.runLocal).toBe('function');
  });
});
