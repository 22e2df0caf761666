import { Command, CommanderError } from 'commander';
import { COMMANDS } from './commands';
import { CliContext, CliIo, CommandModule, EXIT } from './context';

const EXIT_CODES_HELP = `
Configuration (flags win over environment, environment over --stack):
  --queue / BATCH_JOB_QUEUE, --job-definition / BATCH_JOB_DEFINITION,
  --input-bucket / BATCH_INPUT_BUCKET, --output-bucket / BATCH_OUTPUT_BUCKET, --region / AWS_REGION,
  --stack <name>: the outputs JobQueueArn, JobDefinitionArn, InputBucketName, OutputBucketName.
  runs: --runs-bucket / BATCH_RUNS_BUCKET (else RunsBucketName, else the output bucket: the platform's
  OutputBucketName is the workflow's work bucket), --state-machine / BATCH_STATE_MACHINE_ARN (StateMachineArn
  of the workflow stack): batchctl --stack BatchPlatform-<stage> --stack ChunkedProcessing-<stage> runs list

Exit codes (--json: errors are one JSON line {"error":{"code",...}} on stderr):
  0    ok
  1    the job ended FAILED (wait, submit --wait, result)
  2    usage, configuration, validation or input-file error (nothing was submitted)
  3    not found: no such job in the queue, or a SUCCEEDED job wrote no output
  4    timeout (wait)
  5    infrastructure: AWS or network error, credentials, region, missing bucket, throttled after retries
  6    conflict with the job's state: cancel of a finished job, result of an unfinished job, --job-id already taken, or --client-token used with another request (nothing submitted)
  7    quota: the tenant is at its active-jobs or per-minute quota (nothing was submitted; retry after retryAfterSeconds)
  130  interrupted (Ctrl-C) while waiting
`;

/** Builds the batchctl program; every command is registered by its own module. */
export function buildProgram(ctx: CliContext, commands: readonly CommandModule[] = COMMANDS, usageErrors?: string[]): Command {
  const program = new Command('batchctl')
    .description('Submit and follow AWS Batch jobs of a cdk-batch-platform deployment')
    .option('--queue <nameOrArn>', 'job queue')
    .option('--job-definition <nameOrArn>', 'job definition (submit)')
    .option('--job-routes <json>', 'queues and job definitions of operations placed elsewhere, e.g. {"FARGATE:ocr":{"jobQueue":...,"jobDefinition":...}}')
    .option('--input-bucket <name>', 'bucket for staged inputs')
    .option('--output-bucket <name>', 'bucket for outputs (default: the input bucket)')
    .option('--region <region>', 'AWS region')
    .option('--stack <name>', 'read the settings above from the outputs of this deployed stack (repeatable; later stacks win)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--json', 'machine-readable output (one JSON document per line)')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => (usageErrors ? usageErrors.push(s) : ctx.io.stderr.write(s)),
    });
  for (const command of commands) command.register(program, ctx);
  // Subcommands inherit exitOverride/configureOutput only when added after them; make sure of it.
  for (const sub of program.commands) {
    sub.exitOverride().configureOutput(program.configureOutput());
  }
  return program;
}

/**
 * Runs batchctl with `argv` (without node and script) and returns the exit code. `commands` lets
 * bin/batchctl.ts add `run-local`, which lives in lib/local (it synthesizes stacks), not in the SDK.
 */
export async function runCli(argv: readonly string[], io: Partial<CliIo> = {}, commands: readonly CommandModule[] = COMMANDS): Promise<number> {
  const ctx = new CliContext({
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    isTTY: io.isTTY ?? Boolean(process.stderr.isTTY),
    clientOptions: io.clientOptions,
    cloudFormation: io.cloudFormation,
    dynamodb: io.dynamodb,
    signal: io.signal,
    runsClients: io.runsClients,
  });
  const json = argv.includes('--json');
  // commander's own messages (usage errors) are held back, to be printed as JSON with --json.
  const usageErrors: string[] = [];
  const program = buildProgram(ctx, commands, usageErrors);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return EXIT.OK;
      if (json) return ctx.usage(err.message, true);
      ctx.io.stderr.write(usageErrors.join(''));
      return EXIT.USAGE;
    }
    return ctx.fail(err, json);
  }
}
