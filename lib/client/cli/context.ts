import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Command, InvalidArgumentError } from 'commander';
import { BatchJobClient, BatchJobClientOptions } from '../batch-job-client';
import { resolveClientConfig } from '../config';
import { BatchClientError, EXIT_CODES, InvalidRequestError, toClientError } from '../errors';
import { parseQuotaConfig, quotaSettings } from '../quota';
import { parseJobRoutes } from '../routing';

/** batchctl exit codes (documented in `batchctl --help` and docs/submitting.md "Exit codes"). */
export const EXIT = EXIT_CODES;

export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** Everything a command touches outside itself: injected so tests run commands in-process. */
export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: NodeJS.ProcessEnv;
  /** Show a progress bar (stderr is a terminal). */
  readonly isTTY: boolean;
  /** Merged into every BatchJobClient the CLI builds (tests: SDK clients, retry timing). */
  readonly clientOptions?: Partial<BatchJobClientOptions>;
  /** Used for the quota table (tests: a client pointed at a local server). */
  readonly dynamodb?: DynamoDBClient;
  /** Used for `--stack` (tests: a client pointed at a local server). */
  readonly cloudFormation?: CloudFormationClient;
  /** Aborts a running `wait` (bin/batchctl.ts: SIGINT). */
  readonly signal?: AbortSignal;
  /** SDK clients of `batchctl runs` (tests: clients pointed at a local server). */
  readonly runsClients?: { readonly s3?: S3Client; readonly sfn?: SFNClient };
}

/** The global options every command sees through `cmd.optsWithGlobals()`. */
export interface GlobalOptions {
  readonly queue?: string;
  readonly jobDefinition?: string;
  readonly jobRoutes?: string;
  readonly inputBucket?: string;
  readonly outputBucket?: string;
  readonly region?: string;
  /** `--stack`, repeatable (later stacks win among them). */
  readonly stack?: string[];
  readonly json?: boolean;
}

/** A command module: `register(program, ctx)` adds one subcommand. */
export interface CommandModule {
  register(program: Command, ctx: CliContext): void;
}

export class CliContext {
  constructor(public readonly io: CliIo) {}

  /** Builds the client from flags, environment and `--stack` outputs; names what is missing. */
  public async client(cmd: Command, options: { needsJobDefinition?: boolean } = {}): Promise<BatchJobClient> {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    const config = await resolveClientConfig({
      flags: { jobQueue: g.queue, jobDefinition: g.jobDefinition, routes: g.jobRoutes, inputBucket: g.inputBucket, outputBucket: g.outputBucket, region: g.region },
      env: this.io.env,
      stackName: g.stack,
      cloudFormation: this.io.cloudFormation,
    });
    const missing = [
      ['jobQueue', '--queue', 'BATCH_JOB_QUEUE'],
      ['inputBucket', '--input-bucket', 'BATCH_INPUT_BUCKET'],
      ...(options.needsJobDefinition ? [['jobDefinition', '--job-definition', 'BATCH_JOB_DEFINITION']] : []),
    ].filter(([field]) => !config[field as keyof typeof config]);
    if (missing.length) {
      throw new InvalidRequestError(
        'missing configuration',
        missing.map(([field, flag, env]) => ({ field, message: `give ${flag}, set ${env}, or use --stack <name> of a deployed platform stack` })),
      );
    }
    return new BatchJobClient({
      jobQueue: config.jobQueue!,
      jobDefinition: config.jobDefinition,
      routes: parseJobRoutes(config.routes, g.jobRoutes ? '--job-routes' : 'routes (BATCH_JOB_ROUTES or the JobRoutes stack output)'),
      inputBucket: config.inputBucket!,
      outputBucket: config.outputBucket,
      region: config.region,
      // Quotas are enforced by the SDK too, so batchctl refuses what the API and the queue refuse (exit 7).
      quota: config.quotaTable
        ? quotaSettings({
          tableName: config.quotaTable,
          config: parseQuotaConfig(config.quotaLimits, 'quota limits (BATCH_QUOTA_LIMITS or the QuotaLimits stack output)'),
          dynamodb: this.io.dynamodb ?? new DynamoDBClient({ region: config.region }),
        })
        : undefined,
      ...this.io.clientOptions,
    });
  }

  public isJson(cmd: Command): boolean {
    return Boolean(cmd.optsWithGlobals<GlobalOptions>().json);
  }

  /** Prints `data` as one JSON line with --json, else the human lines. */
  public print(cmd: Command, data: unknown, text: () => string[]): void {
    if (this.isJson(cmd)) this.io.stdout.write(`${JSON.stringify(data)}\n`);
    else for (const line of text()) this.io.stdout.write(`${line}\n`);
  }

  /**
   * Reports an error (one JSON line `{"error":{code,message,hint,requestId,...}}` on stderr with
   * --json, else `batchctl: message` plus hint and request id lines) and returns its exit code.
   * An error that is not a BatchClientError (the network or a file under a command) counts as infrastructure.
   */
  public fail(err: unknown, json: boolean): number {
    const e = err instanceof BatchClientError ? err : toClientError(err, 'batchctl');
    if (json) {
      this.io.stderr.write(`${JSON.stringify({ error: e.toJSON() })}\n`);
    } else {
      this.io.stderr.write(`batchctl: ${e.message}\n`);
      if (e.hint) this.io.stderr.write(`  hint: ${e.hint}\n`);
      if (e.requestId) this.io.stderr.write(`  AWS request id: ${e.requestId}\n`);
    }
    return e.exitCode;
  }

  /** A commander usage error (unknown option, missing argument, bad value): exit 2, as JSON with --json. */
  public usage(message: string, json: boolean): number {
    if (json) this.io.stderr.write(`${JSON.stringify({ error: { code: 'USAGE', message } })}\n`);
    else this.io.stderr.write(message.endsWith('\n') ? message : `${message}\n`);
    return EXIT.USAGE;
  }
}

/** commander argument parser for whole numbers >= min (bad values exit 2). */
export function intArg(min: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number >= ${min}, got "${value}"`);
    return n;
  };
}

export function formatDate(d: Date | undefined): string {
  return d ? d.toISOString() : '-';
}
