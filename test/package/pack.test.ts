import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cfnLintFindings } from '../support/compliance';

/**
 * The consumer check: `npm pack`, then a CDK app outside this repository, shaped like
 * `cdk init app --language typescript` (own package.json, strict tsconfig, the recommended feature
 * flags with weak cross-stack references), installs the tarball, type-checks under CommonJS and
 * NodeNext resolution, composes every exported construct and the platform stacks of each stage,
 * applies cdk-nag AwsSolutions and synthesizes with no credentials and no Docker; cfn-lint then reads
 * every template. One npm install (from npm's cache where it can), one synth.
 */
const ROOT = path.join(__dirname, '..', '..');
const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc');

/** The recommended flags of this repository's cdk.json, with the recommended weak cross-stack references. */
function consumerContext(): Record<string, unknown> {
  const context = JSON.parse(fs.readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')).context;
  return {
    ...context,
    '@aws-cdk/core:defaultCrossStackReferences': 'weak',
    // What cdk.context.json holds after the first `cdk synth` with an account (the lookup is cached there).
    'availability-zones:account=123456789012:region=eu-west-1': ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
  };
}

const STRICT = {
  target: 'ES2022', lib: ['es2022'], declaration: true, strict: true, noImplicitAny: true, strictNullChecks: true,
  noImplicitThis: true, alwaysStrict: true, noUnusedLocals: true, noUnusedParameters: true, noImplicitReturns: true,
  noFallthroughCasesInSwitch: false, inlineSourceMap: true, inlineSources: true, experimentalDecorators: true,
  strictPropertyInitialization: false, typeRoots: ['./node_modules/@types'],
  // zod's own declarations (a dependency's, reached through the SDK's schema types) need it.
  esModuleInterop: true,
};

/** Runs a command; on failure the error carries its output so the test report says why. */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`.slice(0, 20000));
  return r.stdout;
}

describe('the package as a consumer installs it', () => {
  let work: string;
  let app: string;
  let files: string[];

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-batch-platform-pack-'));
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const info = JSON.parse(out.slice(out.indexOf('[')))[0];
    files = info.files.map((f: { path: string }) => f.path);
    app = path.join(work, 'consumer');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '0.1.0', private: true, bin: { consumer: 'bin/consumer.js' } }, null, 2));
    // Only what `cdk init` gives an app (plus the tarball): esbuild and cdk-nag come with the package.
    run('npm', [
      'install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts',
      path.join(work, info.filename),
      `aws-cdk-lib@${rootPkg.devDependencies['aws-cdk-lib']}`,
      `constructs@${rootPkg.devDependencies.constructs}`,
      `@types/node@${rootPkg.devDependencies['@types/node']}`,
    ], app);
    fs.mkdirSync(path.join(app, 'bin'));
    fs.copyFileSync(path.join(__dirname, 'consumer', 'app.ts.template'), path.join(app, 'bin', 'consumer.ts'));
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...STRICT, module: 'commonjs', moduleResolution: 'node' }, exclude: ['node_modules', 'cdk.out'] }));
    fs.writeFileSync(path.join(app, 'tsconfig.nodenext.json'), JSON.stringify({ compilerOptions: { ...STRICT, module: 'nodenext', moduleResolution: 'nodenext', noEmit: true, inlineSourceMap: false, inlineSources: false }, exclude: ['node_modules', 'cdk.out'] }));
    fs.writeFileSync(path.join(app, 'client.ts'), "import { BatchJobClient, BatchJobClientOptions } from 'cdk-batch-platform/client';\nexport const make = (options: BatchJobClientOptions): BatchJobClient => new BatchJobClient(options);\n");
  }, 600000);

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('ships compiled JavaScript, declarations, the handlers and the SDK sources they import, not the tests', () => {
    expect(files).toEqual(expect.arrayContaining([
      'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/client/index.js', 'dist/bin/batchctl.js',
      'lambda/submit-api/submit.ts', 'lambda/queue-submit/index.ts', 'lib/client/index.ts', 'containers/worker/Dockerfile',
    ]));
    expect(files.filter((f) => f.startsWith('test/') || f.endsWith('.test.ts'))).toEqual([]);
  });

  test('the app type-checks with CommonJS (node10) resolution', () => {
    expect(run(TSC, ['-p', 'tsconfig.json'], app)).toBe('');
  });

  test('the app type-checks with NodeNext resolution', () => {
    expect(run(TSC, ['-p', 'tsconfig.nodenext.json'], app)).toBe('');
  });

  test("cdk-batch-platform/client works where aws-cdk-lib and constructs cannot be resolved", () => {
    // Makes every require of aws-cdk-lib/constructs fail, as in an application without them installed.
    const script = `const Module = require('module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (/^(aws-cdk-lib|constructs)(\\/|$)/.test(request)) throw new Error('not installed: ' + request);
  return resolve.call(this, request, ...rest);
};
const client = require('cdk-batch-platform/client');
process.stdout.write(JSON.stringify([typeof client.BatchJobClient, Object.keys(require.cache).filter((k) => k.includes('node_modules/aws-cdk-lib/')).length]));`;
    expect(JSON.parse(run(process.execPath, ['-e', script], app))).toEqual(['function', 0]);
  });

  test('importing the constructs loads no AWS SDK client and no local runner', () => {
    const script = `require('cdk-batch-platform');
const loaded = Object.keys(require.cache);
process.stdout.write(JSON.stringify(loaded.filter((k) => /node_modules\\/(@aws-sdk\\/client-|aws-local-stepfunctions|s3rver|koa|cdk-nag)/.test(k))));`;
    expect(JSON.parse(run(process.execPath, ['-e', script], app))).toEqual([]);
  });

  describe('synthesized with every construct, both stages, cdk-nag, no credentials and no Docker', () => {
    let outdir: string;
    beforeAll(() => {
      outdir = path.join(app, 'cdk.out');
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: os.tmpdir(),
        // What `cdk synth` hands the app: context (cdk.json) and outdir; the account the CLI would
        // resolve from credentials is given explicitly, so stacks have an env (weak references need one).
        CDK_CONTEXT_JSON: JSON.stringify(consumerContext()),
        CDK_OUTDIR: outdir,
        CDK_DEFAULT_ACCOUNT: '123456789012',
        CDK_DEFAULT_REGION: 'eu-west-1',
        DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      };
      run(process.execPath, ['bin/consumer.js'], app, env);
    }, 600000);

    test('every stack of both stages and the consumer stack is synthesized', () => {
      const templates = fs.readdirSync(outdir).filter((f) => f.endsWith('.template.json')).sort();
      expect(templates).toEqual([
        'BatchPlatform-dev.template.json', 'BatchPlatform-prod.template.json',
        'ChunkedProcessing-dev.template.json', 'ChunkedProcessing-prod.template.json', 'Consumer.template.json',
        'OcrApi-dev.template.json', 'PhotoBundles-dev.template.json', 'RoadMetrics-dev.template.json', 'RoadMetrics-prod.template.json',
      ]);
    });

    test('the Lambdas were bundled from the tarball (handlers that import lib/client included)', () => {
      const bundles = fs.readdirSync(outdir).filter((f) => f.startsWith('asset.') && fs.existsSync(path.join(outdir, f, 'index.js')));
      const submit = bundles.map((b) => fs.readFileSync(path.join(outdir, b, 'index.js'), 'utf8')).filter((js) => js.includes('BatchJobClient') || js.includes('submit.lock'));
      expect(submit.length).toBeGreaterThan(0);
    });

    test('cross-stack references are weak (no Fn::ImportValue)', () => {
      const workflow = fs.readFileSync(path.join(outdir, 'ChunkedProcessing-prod.template.json'), 'utf8');
      expect(workflow).not.toContain('Fn::ImportValue');
    });

    test('cfn-lint reports nothing on any template', () => {
      for (const file of fs.readdirSync(outdir).filter((f) => f.endsWith('.template.json'))) {
        const template = JSON.parse(fs.readFileSync(path.join(outdir, file), 'utf8'));
        // W3010: a stack with an explicit env gets literal AZ names from the (cached) lookup; that is
        // how CDK places subnets of env-specific stacks, so only that check is skipped here.
        // E1022: cfn-lint 1.51 does not know the Fn::GetStackOutput intrinsic that weak cross-stack
        // references emit ("is not of type 'string'"); see docs/deploy.md. E1017: the same, inside Fn::Select
        // (OcrApi-<stage> takes the OcrJob definition's name out of its imported ARN).
        expect({ file, findings: cfnLintFindings(template, { ignoreChecks: ['W3010', 'E1022', 'E1017'] }) }).toEqual({ file, findings: '' });
      }
    });
  });
});
