import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { Command, InvalidArgumentError } from 'commander';
import { BatchJobClient, BatchJobClientOptions } from '../batch-job-client';
import { resolveClientConfig } from '../config';
import { BatchClientError, InvalidRequestError } from '../errors';

/** batchctl exit codes (documented in `batchctl --help` and README). */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, NOT_FOUND: 3, TIMEOUT: 4, CONFLICT: 5 } as const;

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
  /** Used for `--stack` (tests: a client pointed at a local server). */
  readonly cloudFormation?: CloudFormationClient;
}

/** The global options every command sees through `cmd.optsWithGlobals()`. */
export interface GlobalOptions {
  readonly queue?: string;
  readonly jobDefinition?: string;
  readonly inputBucket?: string;
  readonly outputBucket?: string;
  readonly region?: string;
  readonly stack?: string;
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
      flags: { jobQueue: g.queue, jobDefinition: g.jobDefinition, inputBucket: g.inputBucket, outputBucket: g.outputBucket, region: g.region },
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
      inputBucket: config.inputBucket!,
      outputBucket: config.outputBucket,
      region: config.region,
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

  /** Reports an error and returns the exit code it maps to. */
  public fail(err: unknown, json: boolean): number {
    const known = err instanceof BatchClientError;
    const code = known ? (err as BatchClientError).exitCode : EXIT.FAILED;
    if (json) {
      const e = err as BatchClientError & { errors?: unknown };
      this.io.stderr.write(`${JSON.stringify({ error: { code: known ? e.code : 'ERROR', message: e.message, errors: e.errors } })}\n`);
    } else {
      this.io.stderr.write(`batchctl: ${(err as Error).message ?? String(err)}\n`);
    }
    return code;
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
