import { CloudFormationClient, DescribeStacksCommand, Output } from '@aws-sdk/client-cloudformation';
import { InvalidRequestError } from './errors';

/** What batchctl (and any script) needs to build a BatchJobClient. */
export interface ClientConfig {
  readonly jobQueue?: string;
  readonly jobDefinition?: string;
  /** Routes of operations placed elsewhere, as JSON (routing.ts JobRoutes). */
  readonly routes?: string;
  readonly inputBucket?: string;
  readonly outputBucket?: string;
  readonly region?: string;
  readonly submitApiUrl?: string;
  readonly notificationTopicArn?: string;
  /** DynamoDB table of the per-tenant quotas (QuotaTable). */
  readonly quotaTable?: string;
  /** The quota limits as JSON (QuotaTable.limitsJson). */
  readonly quotaLimits?: string;
  /** Bucket holding the chunked workflow's `runs/` (`batchctl runs`). */
  readonly runsBucket?: string;
  /** The chunked workflow's state machine (`batchctl runs`). */
  readonly stateMachineArn?: string;
}

/**
 * The CloudFormation OutputKeys batchctl reads, and the config field each one fills: the platform stack's
 * (`BatchPlatform-<stage>`, for jobs) and the workflow stack's (`ChunkedProcessing-<stage>`, for `runs`).
 */
export const STACK_OUTPUT_KEYS = {
  JobQueueArn: 'jobQueue',
  JobDefinitionArn: 'jobDefinition',
  JobRoutes: 'routes',
  InputBucketName: 'inputBucket',
  OutputBucketName: 'outputBucket',
  SubmitApiUrl: 'submitApiUrl',
  NotificationTopicArn: 'notificationTopicArn',
  QuotaTableName: 'quotaTable',
  QuotaLimits: 'quotaLimits',
  RunsBucketName: 'runsBucket',
  StateMachineArn: 'stateMachineArn',
} as const satisfies Record<string, keyof ClientConfig>;

/** Environment variables batchctl reads, and the config field each one fills. */
export const CONFIG_ENV_VARS = {
  BATCH_JOB_QUEUE: 'jobQueue',
  BATCH_JOB_DEFINITION: 'jobDefinition',
  BATCH_JOB_ROUTES: 'routes',
  BATCH_INPUT_BUCKET: 'inputBucket',
  BATCH_OUTPUT_BUCKET: 'outputBucket',
  BATCH_QUOTA_TABLE: 'quotaTable',
  BATCH_QUOTA_LIMITS: 'quotaLimits',
  BATCH_RUNS_BUCKET: 'runsBucket',
  BATCH_STATE_MACHINE_ARN: 'stateMachineArn',
  AWS_REGION: 'region',
} as const satisfies Record<string, keyof ClientConfig>;

/** DescribeStacks outputs -> config (unknown keys ignored). */
export function stackOutputsToConfig(outputs: readonly Output[]): ClientConfig {
  const config: Record<string, string> = {};
  for (const o of outputs) {
    const field = (STACK_OUTPUT_KEYS as Record<string, string>)[o.OutputKey ?? ''];
    if (field && o.OutputValue) config[field] = o.OutputValue;
  }
  return config;
}

export interface ResolveConfigOptions {
  /** Values given as command-line flags (win over everything). */
  readonly flags?: ClientConfig;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Read the outputs of this deployed stack, or of these stacks (later ones win among them; lowest precedence). */
  readonly stackName?: string | readonly string[];
  /** @default - a new client in the resolved region */
  readonly cloudFormation?: CloudFormationClient;
}

/**
 * Resolves the client config: flags, then environment variables, then the outputs of a deployed
 * stack (`--stack`), so a user never copies ARNs by hand.
 */
export async function resolveClientConfig(options: ResolveConfigOptions = {}): Promise<ClientConfig> {
  const env = options.env ?? process.env;
  const fromEnv: Record<string, string> = {};
  for (const [name, field] of Object.entries(CONFIG_ENV_VARS)) if (env[name]) fromEnv[field] = env[name]!;
  let fromStack: ClientConfig = {};
  const stackNames = typeof options.stackName === 'string' ? [options.stackName] : (options.stackName ?? []);
  for (const stackName of stackNames) {
    const region = options.flags?.region ?? fromEnv.region;
    const cfn = options.cloudFormation ?? new CloudFormationClient({ region });
    let outputs: Output[];
    try {
      const res = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
      outputs = res.Stacks?.[0]?.Outputs ?? [];
    } catch (err) {
      if ((err as Error).name === 'ValidationError') {
        throw new InvalidRequestError(`stack ${stackName} not found`, [{ field: 'stack', message: (err as Error).message, value: stackName }]);
      }
      throw err;
    }
    fromStack = { ...fromStack, ...dropUndefined(stackOutputsToConfig(outputs)) };
  }
  return { ...dropUndefined(fromStack), ...fromEnv, ...dropUndefined(options.flags ?? {}) };
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as Partial<T>;
}
