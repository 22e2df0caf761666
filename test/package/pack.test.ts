import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * The package is a real construct library: `npm pack` builds a tarball with compiled JS and .d.ts,
 * and a CDK app outside this repository installs it and synthesizes a stack from the exports.
 */
const ROOT = path.join(__dirname, '..', '..');
const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

describe('npm pack tarball', () => {
  let work: string;
  let tarball: string;
  let files: string[];

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-batch-platform-pack-'));
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const info = JSON.parse(out.slice(out.indexOf('[')))[0];
    tarball = path.join(work, info.filename);
    files = info.files.map((f: { path: string }) => f.path);
  }, 300000);

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('ships compiled JavaScript and type declarations of the public API, not the tests', () => {
    expect(files).toEqual(expect.arrayContaining(['dist/lib/index.js', 'dist/lib/index.d.ts', 'containers/worker/Dockerfile']));
    expect(files.filter((f) => f.startsWith('test/') || f.endsWith('.test.ts'))).toEqual([]);
  });

  test('a CDK app outside the repository installs the tarball and synthesizes a stack from its exports', () => {
    const app = path.join(work, 'consumer');
    fs.mkdirSync(app);
    fs.writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2),
    );
    // Installs from npm's cache where it can: the same versions were installed for this repo.
    execFileSync(
      'npm',
      [
        'install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts',
        tarball,
        `aws-cdk-lib@${rootPkg.devDependencies['aws-cdk-lib']}`,
        `constructs@${rootPkg.devDependencies.constructs}`,
        `esbuild@${rootPkg.devDependencies.esbuild}`,
      ],
      { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    fs.writeFileSync(
      path.join(app, 'app.js'),
      `
const { App, Stack } = require('aws-cdk-lib');
const lib = require('cdk-batch-platform');
const app = new App({ outdir: 'cdk.out' });
const stack = new Stack(app, 'Consumer', { env: { account: '123456789012', region: 'eu-west-1' } });
const network = new lib.BatchNetwork(stack, 'Network');
const buckets = new lib.StagingBuckets(stack, 'Staging');
const spot = new lib.Ec2ComputeEnvironment(stack, 'Spot', {
  vpc: network.vpc, vpcSubnets: network.subnetSelection, securityGroups: [network.batchSecurityGroup],
});
const queue = new lib.BatchJobQueue(stack, 'Queue', { computeEnvironments: [spot] });
new lib.WorkerJobDefinition(stack, 'Worker', { inputBucket: buckets.inputBucket, outputBucket: buckets.outputBucket });
console.log(JSON.stringify(Object.keys(lib).sort()));
app.synth();
`,
    );
    const exported = JSON.parse(execFileSync('node', ['app.js'], { cwd: app, encoding: 'utf8' }).trim().split('\n').pop()!);
    expect(exported).toEqual(expect.arrayContaining(['BatchNetwork', 'StagingBuckets', 'Ec2ComputeEnvironment', 'BatchJobQueue', 'WorkerJobDefinition', 'BatchPlatformStack']));
    const template = JSON.parse(fs.readFileSync(path.join(app, 'cdk.out', 'Consumer.template.json'), 'utf8'));
    const types = Object.values(template.Resources as Record<string, { Type: string }>).map((r) => r.Type);
    expect(types).toEqual(expect.arrayContaining(['AWS::Batch::JobQueue', 'AWS::Batch::ComputeEnvironment', 'AWS::Batch::JobDefinition', 'AWS::EC2::VPC']));
    // The default worker image is the Dockerfile shipped in the package, staged as a Docker asset.
    const assets = JSON.parse(fs.readFileSync(path.join(app, 'cdk.out', 'Consumer.assets.json'), 'utf8'));
    expect(Object.keys(assets.dockerImages ?? {})).toHaveLength(1);
  }, 600000);
});
