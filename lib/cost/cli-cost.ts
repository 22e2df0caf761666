import * as fs from 'fs';
import * as path from 'path';
import { Command, InvalidArgumentError } from 'commander';
import { CliContext } from '../client/cli/context';
import { InvalidRequestError } from '../client/errors';
import { CfnTemplate, compareNetworkLayouts, estimateJobCost, estimateMonthly } from './estimate';
import { PRICE_TABLE } from './prices';

interface CostOptions {
  stage?: string;
  cdkOut?: string;
  logGb?: number;
  trafficGb?: number;
  jobVcpus?: number;
  jobMemory?: number;
  jobSeconds?: number;
}

function numberArg(min: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`expected a number >= ${min}, got "${value}"`);
    return n;
  };
}

/** Reads every `*.template.json` of a `cdk synth` output folder. */
export function readCdkOut(dir: string): Record<string, CfnTemplate> {
  if (!fs.existsSync(dir)) throw new InvalidRequestError(`cost: --cdk-out ${dir} does not exist (run \`cdk synth -o ${dir}\` first)`);
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.template.json'));
  if (files.length === 0) throw new InvalidRequestError(`cost: --cdk-out ${dir} holds no *.template.json`);
  return Object.fromEntries(files.map((f) => [f.replace(/\.template\.json$/, ''), JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CfnTemplate]));
}

/** Dollars with cents, or with four significant digits for the tiny unit prices (GB-seconds). */
const usd = (n: number): string => (n !== 0 && Math.abs(n) < 0.01 ? `$${n.toPrecision(4)}` : `$${n.toFixed(2)}`);

/** `batchctl cost`: the fixed monthly cost of a stage, the network alternatives and a per-job estimate. */
export function register(program: Command, ctx?: CliContext): void {
  program
    .command('cost')
    .description(`estimate what a stage costs per month before deploying it, and what one job costs (${PRICE_TABLE.region} list prices of ${PRICE_TABLE.asOf})`)
    .option('--stage <name>', 'stage to synthesize in-process (default dev)')
    .option('--cdk-out <dir>', 'read the templates of an existing `cdk synth -o <dir>` instead')
    .option('--log-gb <n>', 'log data ingested per month, GB (default 2)', numberArg(0))
    .option('--traffic-gb <n>', 'data through the VPC endpoints or NAT per month, GB (default 20)', numberArg(0))
    .option('--job-vcpus <n>', 'per-job estimate: vCPUs (default 4)', numberArg(0.25))
    .option('--job-memory <MiB>', 'per-job estimate: memory in MiB (default 8192)', numberArg(512))
    .option('--job-seconds <n>', 'per-job estimate: run time in seconds (default 600)', numberArg(0))
    .action((opts: CostOptions, cmd: Command) => {
      if (opts.stage && opts.cdkOut) throw new InvalidRequestError('cost: give --stage or --cdk-out, not both');
      let templates: Record<string, CfnTemplate>;
      try {
        // aws-cdk-lib loads only when a stage is synthesized: the other batchctl commands never pay for it.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        templates = opts.cdkOut ? readCdkOut(path.resolve(opts.cdkOut)) : (require('./synth') as typeof import('./synth')).synthesizeStageTemplates(opts.stage ?? 'dev');
      } catch (err) {
        if ((err as Error).message.startsWith('context stage')) throw new InvalidRequestError(`cost: ${(err as Error).message}`);
        throw err;
      }
      const assumptions = { logGbPerMonth: opts.logGb, endpointTrafficGbPerMonth: opts.trafficGb };
      const defined = Object.fromEntries(Object.entries(assumptions).filter(([, v]) => v !== undefined));
      const monthly = estimateMonthly(templates, defined);
      const network = Object.entries(templates)
        .filter(([, t]) => Object.values(t.Resources ?? {}).some((r) => r.Type === 'AWS::EC2::VPCEndpoint'))
        .map(([stack, t]) => ({ stack, layouts: compareNetworkLayouts(t, defined) }));
      const job = { vcpus: opts.jobVcpus ?? 4, memoryMiB: opts.jobMemory ?? 8192, seconds: opts.jobSeconds ?? 600 };
      const perJob = estimateJobCost(job);
      const report = { ...monthly, network, job, perJob, sources: collectSources() };
      const print = ctx ? (lines: () => string[]): void => ctx.print(cmd, report, lines) : (lines: () => string[]): void => void process.stdout.write(`${lines().join('\n')}\n`);
      print(() => [
        `fixed monthly cost (${monthly.region}, list prices of ${monthly.asOf}, ${monthly.currency}):`,
        ...monthly.lines.map((l) => `  ${l.stack.padEnd(26)} ${l.item.padEnd(58)} ${String(l.quantity).padStart(9)} ${l.unit.padEnd(18)} x ${usd(l.unitPrice).padStart(9)} = ${usd(l.monthly).padStart(9)}`),
        `  total: ${usd(monthly.total)} per month`,
        ...network.flatMap((n) => [`network layouts (${n.stack}):`, ...n.layouts.map((l) => `  ${l.layout.padEnd(50)} ${usd(l.monthly).padStart(9)}/month  ${l.note}`)]),
        `one job (${job.vcpus} vCPU, ${job.memoryMiB} MiB, ${job.seconds} s):`,
        ...perJob.map((j) => `  ${j.capacity.padEnd(14)} $${j.cost.toFixed(4).padStart(8)}  ${j.basis}`),
      ]);
    });
}

function collectSources(): string[] {
  const out = new Set<string>();
  for (const v of Object.values(PRICE_TABLE)) {
    if (v && typeof v === 'object' && 'sources' in v) for (const s of (v as { sources: readonly string[] }).sources) out.add(s);
  }
  return [...out];
}
