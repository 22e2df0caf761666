import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { CfnResource, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/**
 * Root of this package (the folder of its package.json), found from this file whether it runs as
 * TypeScript from the checkout (lib/common) or compiled from the tarball (dist/lib/common).
 * Handler entries and the worker's Dockerfile are named by path from here: constructs never import them.
 */
export const PACKAGE_ROOT = findPackageRoot(__dirname);

function findPackageRoot(start: string): string {
  let dir = start;
  while (path.dirname(dir) !== dir) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, 'utf8')).name === 'cdk-batch-platform') return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`cdk-batch-platform: cannot find the package root above ${start}`);
}

/** Absolute path of a handler entry file, e.g. `handlerEntry('cleanup/index.ts')` -> `<root>/lambda/cleanup/index.ts`. */
export function handlerEntry(relative: string): string {
  return path.join(PACKAGE_ROOT, 'lambda', relative);
}

export interface PlatformFunctionProps {
  /** Absolute path of the handler entry file (use `handlerEntry`). */
  readonly entry: string;
  /** What the function does (shown in the console). */
  readonly description: string;
  /** @default - none */
  readonly environment?: Record<string, string>;
  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default RemovalPolicy.DESTROY (logs of a deleted function are not kept) */
  readonly logRemovalPolicy?: RemovalPolicy;
  /** @default - no reserved concurrency */
  readonly reservedConcurrentExecutions?: number;
  /** VPC to run in (e.g. to reach Amazon MSK brokers). @default - not in a VPC */
  readonly vpc?: ec2.IVpc;
  /** @default - the VPC's private subnets */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** @default - a new security group with all outbound allowed */
  readonly securityGroups?: ec2.ISecurityGroup[];
}

/**
 * The one place that decides how this library's Lambdas are built: Node.js 22 on ARM64, bundled by
 * the local esbuild (never Docker), an explicit log group with retention, X-Ray tracing on, and
 * the AWS SDK v3 taken from the runtime. `fn.logGroup` is that log group.
 */
export class PlatformFunction extends nodejs.NodejsFunction {
  constructor(scope: Construct, id: string, props: PlatformFunctionProps) {
    checkEsbuild(scope, id, props.entry);
    const logGroup = new logs.LogGroup(scope, `${id}LogGroup`, {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    super(scope, id, {
      entry: props.entry,
      handler: 'handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(30),
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
      tracing: lambda.Tracing.ACTIVE,
      logGroup,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      vpc: props.vpc,
      vpcSubnets: props.vpc ? props.vpcSubnets : undefined,
      securityGroups: props.vpc ? props.securityGroups : undefined,
      ...bundlingRoot(),
      bundling: {
        minify: true,
        sourceMap: true,
        target: 'node22',
        externalModules: ['@aws-sdk/*'],
        forceDockerBundling: false,
      },
    });
    this.acknowledgeShared();
  }

  /**
   * Findings every PlatformFunction shares, acknowledged once here on the narrowest construct.
   * Wildcard findings (`AwsSolutions-IAM5[Resource::*]`, e.g. X-Ray) are NOT acknowledged here:
   * each construct names its own, so a new wildcard never hides behind a blanket reason.
   */
  private acknowledgeShared(): void {
    // aws-lambda makes the function DependsOn its role besides the GetAtt; cfn-lint reports the
    // redundant DependsOn as W3005. Harmless, so skipped on this resource only.
    (this.node.defaultChild as CfnResource).addMetadata('cfn-lint', { config: { ignore_checks: ['W3005'] } });
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Runtime chosen once for the whole library (lib/common/node-function.ts): Node.js 22, the LTS the handlers and the worker engine are built and tested for.',
    });
    if (this.role && this.isBoundToVpc) {
      Validations.of(this.role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason: 'AWS-managed VPC execution policy (network interfaces of a function in a VPC); kept managed so AWS maintains it.',
      });
    }
    if (this.role) {
      Validations.of(this.role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'AWS-managed basic execution policy: CloudWatch Logs writes only; kept managed so AWS maintains it.',
      });
    }
  }
}

/** How aws-lambda-nodejs finds esbuild: `esbuild/package.json` resolvable from aws-cdk-lib, or `esbuild` on PATH. */
export function esbuildAvailable(
  resolve: (id: string) => string = (id) => require.resolve(id, { paths: [path.dirname(require.resolve('aws-cdk-lib/package.json'))] }),
  onPath: () => boolean = () => spawnSync('esbuild', ['--version']).status === 0,
): boolean {
  try {
    resolve('esbuild/package.json');
    return true;
  } catch {
    return onPath();
  }
}

let esbuildFound: boolean | undefined;

/**
 * esbuild is a dependency of this package, so npm installs it next to aws-cdk-lib. Where it is still
 * missing (a non-hoisting layout, --omit), aws-lambda-nodejs would fall back to Docker and fail far
 * from the cause ("Cannot connect to the Docker daemon"): fail here instead, naming the fix.
 */
export function checkEsbuild(scope: Construct, id: string, entry: string, available?: boolean): void {
  if (available === undefined) esbuildFound ??= esbuildAvailable();
  if (!(available ?? esbuildFound)) {
    throw new Error(
      `[${scope.node.path}/${id}] cannot bundle ${path.basename(path.dirname(entry))}/${path.basename(entry)}: esbuild is not installed where ` +
        'aws-cdk-lib looks for it (this library never bundles with Docker); run `npm install --save-dev esbuild` in the CDK app',
    );
  }
}

/**
 * esbuild bundles from a project root that must contain both the lock file and the handler: the
 * synthesizing app's root when this package is installed inside it (node_modules), else this
 * repository's own root.
 */
function bundlingRoot(): { depsLockFilePath?: string; projectRoot?: string } {
  for (const root of [process.cwd(), PACKAGE_ROOT]) {
    const lock = path.join(root, 'package-lock.json');
    if (fs.existsSync(lock) && PACKAGE_ROOT.startsWith(root)) return { depsLockFilePath: lock, projectRoot: root };
  }
  return {};
}
