import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Template } from 'aws-cdk-lib/assertions';
import { CommanderError } from 'commander';
import { CliContext } from '../../../lib/client/cli/context';
import { buildProgram } from '../../../lib/client/cli/program';
import * as costCommand from '../../../lib/cost/cli-cost';
import { synthesizeStageTemplates } from '../../../lib/cost/synth';
import { CfnTemplate, compareNetworkLayouts, estimateJobCost, estimateMonthly, estimateStackMonthly, invocationsPerMonth } from '../../../lib/cost/estimate';

/**
 * A fixed template with one resource of every kind that carries a standing charge; the expected figures
 * below are worked out by hand from the list prices (us-east-1, 730 hours a month).
 */
const FIXTURE: CfnTemplate = {
  Resources: {
    Logs: { Type: 'AWS::EC2::VPCEndpoint', Properties: { VpcEndpointType: 'Interface', SubnetIds: ['a', 'b', 'c'] } },
    Ecr: { Type: 'AWS::EC2::VPCEndpoint', Properties: { VpcEndpointType: 'Interface', SubnetIds: ['a', 'b', 'c'] } },
    S3: { Type: 'AWS::EC2::VPCEndpoint', Properties: { VpcEndpointType: 'Gateway' } },
    Nat: { Type: 'AWS::EC2::NatGateway', Properties: {} },
    Eip: { Type: 'AWS::EC2::EIP', Properties: {} },
    Plain: { Type: 'AWS::CloudWatch::Alarm', Properties: { MetricName: 'Errors' } },
    Math: {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: { Metrics: [{ Id: 'a', MetricStat: {} }, { Id: 'b', MetricStat: {} }, { Id: 'c', MetricStat: {} }, { Id: 'e', Expression: 'a+b+c' }] },
    },
    Dashboard: { Type: 'AWS::CloudWatch::Dashboard', Properties: {} },
    Key: { Type: 'AWS::KMS::Key', Properties: {} },
    Secret: { Type: 'AWS::SecretsManager::Secret', Properties: {} },
    Acl: { Type: 'AWS::WAFv2::WebACL', Properties: { Rules: [{}, {}] } },
    Warm: { Type: 'AWS::Batch::ComputeEnvironment', Properties: { ComputeResources: { Type: 'SPOT', MinvCpus: 4 } } },
    Cold: { Type: 'AWS::Batch::ComputeEnvironment', Properties: { ComputeResources: { Type: 'EC2', MinvCpus: 0 } } },
    Fargate: { Type: 'AWS::Batch::ComputeEnvironment', Properties: { ComputeResources: { Type: 'FARGATE_SPOT', MinvCpus: 8 } } },
    Probe: { Type: 'AWS::Lambda::Function', Properties: { MemorySize: 512 } },
    Every5: { Type: 'AWS::Events::Rule', Properties: { ScheduleExpression: 'rate(5 minutes)', Targets: [{ Arn: { 'Fn::GetAtt': ['Probe', 'Arn'] } }] } },
    Nightly: { Type: 'AWS::Events::Rule', Properties: { ScheduleExpression: 'cron(0 2 * * ? *)', Targets: [{ Arn: { 'Fn::GetAtt': ['Probe', 'Arn'] } }] } },
    Queue: { Type: 'AWS::SQS::Queue', Properties: {} },
  },
};

function line(lines: ReturnType<typeof estimateStackMonthly>, resourceType: string, item?: RegExp) {
  const found = lines.filter((l) => l.resourceType === resourceType && (!item || item.test(l.item)));
  expect(found).toHaveLength(1);
  return found[0];
}

describe('fixed monthly cost of a template', () => {
  const lines = estimateStackMonthly('Fixture', FIXTURE);

  test('interface endpoints bill per endpoint per AZ; gateway endpoints are free', () => {
    expect(line(lines, 'AWS::EC2::VPCEndpoint')).toMatchObject({ quantity: 2 * 3 * 730, monthly: 43.8 });
  });

  test('a NAT gateway bills its hours, its public address and the data it processes', () => {
    expect(line(lines, 'AWS::EC2::NatGateway').monthly).toBe(32.85);
    expect(line(lines, 'AWS::EC2::EIP').monthly).toBe(3.65);
    // With a NAT in the template the traffic assumption is priced at the NAT's $0.045/GB.
    expect(line(lines, 'assumption', /data through NAT/)).toMatchObject({ quantity: 20, monthly: 0.9 });
  });

  test('alarms bill per metric they read: one, or each MetricStat of a metric-math alarm', () => {
    expect(line(lines, 'AWS::CloudWatch::Alarm')).toMatchObject({ quantity: 4, monthly: 0.4 });
  });

  test('dashboards, keys, secrets and WAF rules are counted from the template', () => {
    expect(line(lines, 'AWS::CloudWatch::Dashboard').monthly).toBe(3);
    expect(line(lines, 'AWS::KMS::Key').monthly).toBe(1);
    expect(line(lines, 'AWS::SecretsManager::Secret').monthly).toBe(0.4);
    expect(line(lines, 'AWS::WAFv2::WebACL', /web ACL/).monthly).toBe(5);
    expect(line(lines, 'AWS::WAFv2::WebACL', /rules/).monthly).toBe(2);
  });

  test('only EC2 compute environments that keep minvCpus above 0 have a standing cost', () => {
    // 4 vCPUs x 730 h x $0.0425 x (1 - 0.65) Spot = $43.435
    expect(line(lines, 'AWS::Batch::ComputeEnvironment')).toMatchObject({ quantity: 2920 });
    expect(line(lines, 'AWS::Batch::ComputeEnvironment').monthly).toBeCloseTo(43.44, 1);
  });

  test('scheduled Lambdas: rate() schedules are counted, cron schedules are not guessed', () => {
    expect(invocationsPerMonth('rate(5 minutes)', 730)).toBe(8760);
    expect(invocationsPerMonth('rate(1 hour)', 730)).toBe(730);
    expect(invocationsPerMonth('cron(0 2 * * ? *)', 730)).toBeUndefined();
    // 8,760 invocations x 1 s x 0.5 GB = 4,380 GB-s x $0.0000166667
    expect(line(lines, 'AWS::Lambda::Function')).toMatchObject({ quantity: 4380, monthly: 0.07 });
  });

  test('the stage total adds every line and the log assumption once', () => {
    const est = estimateMonthly({ A: FIXTURE, B: { Resources: { K: { Type: 'AWS::KMS::Key' } } } }, { logGbPerMonth: 10 });
    const sum = est.lines.reduce((s, l) => s + l.monthly, 0);
    expect(est.total).toBeCloseTo(sum, 2);
    expect(est.lines.filter((l) => /log ingestion/.test(l.item))).toEqual([expect.objectContaining({ stack: '*', monthly: 5 })]);
    expect(est.lines.filter((l) => l.stack === 'B')).toEqual([expect.objectContaining({ resourceType: 'AWS::KMS::Key', monthly: 1 })]);
  });
});

describe('network layouts', () => {
  test('prices the endpoints in every AZ, in one AZ, and NAT designs for 1 and N AZs', () => {
    const [current, oneAz, oneNat, natPerAz] = compareNetworkLayouts(FIXTURE, { endpointTrafficGbPerMonth: 0 });
    expect(current.monthly).toBe(43.8); // 2 endpoints x 3 AZs x 730 h x $0.01
    expect(oneAz.monthly).toBe(14.6); // 2 endpoints x 730 h x $0.01
    expect(oneNat.monthly).toBe(36.5); // 730 h x ($0.045 + $0.005 public IPv4)
    expect(natPerAz).toMatchObject({ layout: expect.stringContaining('3 NAT gateways'), monthly: 109.5 });
  });
});

describe('one job', () => {
  test('Fargate bills vCPU and memory per second with a one-minute minimum; Spot 70 % off', () => {
    const costs = Object.fromEntries(estimateJobCost({ vcpus: 1, memoryMiB: 2048, seconds: 30 }).map((c) => [c.capacity, c.cost]));
    const perMinute = (0.04048 + 2 * 0.004445) / 60;
    expect(costs.FARGATE).toBeCloseTo(perMinute, 8);
    expect(costs.FARGATE_SPOT).toBeCloseTo(perMinute * 0.3, 8);
  });

  test('EC2 picks the cheapest family whose memory per vCPU fits the job', () => {
    const [, compute] = estimateJobCost({ vcpus: 2, memoryMiB: 4096, seconds: 3600 });
    expect(compute.basis).toContain('c6i');
    expect(compute.cost).toBeCloseTo(2 * 0.0425, 8);
    const [, memoryHeavy] = estimateJobCost({ vcpus: 1, memoryMiB: 8192, seconds: 3600 });
    expect(memoryHeavy.basis).toContain('r6i');
    expect(memoryHeavy.cost).toBeCloseTo(0.063, 8);
  });

  test('a size outside what Batch accepts is refused with the field and value', () => {
    expect(() => estimateJobCost({ vcpus: 0, memoryMiB: 2048, seconds: 1 })).toThrow('vcpus (0) must be a number >= 0.25');
    expect(() => estimateJobCost({ vcpus: 1, memoryMiB: 100, seconds: 1 })).toThrow('memoryMiB (100) must be a number >= 512');
  });
});

describe('the synthesized stages', () => {
  const dev = synthesizeStageTemplates('dev', path.join(__dirname, '..', '..', '..'));
  const prod = synthesizeStageTemplates('prod', path.join(__dirname, '..', '..', '..'));

  test('the dev estimate prices exactly the interface endpoints and the one NAT gateway (photo-bundle egress) the templates hold', () => {
    const platform = dev['BatchPlatform-dev'];
    const endpoints = Template.fromJSON(platform as Record<string, unknown>).findResources('AWS::EC2::VPCEndpoint', { Properties: { VpcEndpointType: 'Interface' } });
    const endpointAzs = Object.values(endpoints).reduce((n, r) => n + (r.Properties.SubnetIds as unknown[]).length, 0);
    expect(endpointAzs).toBeGreaterThan(0);
    const lines = estimateMonthly(dev).lines;
    expect(lines.find((l) => l.resourceType === 'AWS::EC2::VPCEndpoint')?.quantity).toBe(endpointAzs * 730);
    const nats = Object.values(dev).reduce((n, t) => n + Object.keys(Template.fromJSON(t as Record<string, unknown>).findResources('AWS::EC2::NatGateway')).length, 0);
    expect(nats).toBe(1);
    expect(lines.find((l) => l.resourceType === 'AWS::EC2::NatGateway')?.quantity).toBe(nats * 730);
  });

  test('prod prices more interface-endpoint hours than dev: it adds the Session Manager endpoints', () => {
    // (Totals are not compared: dev carries the photo-bundle NAT gateway and the OCR API, prod neither.)
    const endpointHours = (templates: typeof dev): number =>
      estimateMonthly(templates).lines.find((l) => l.resourceType === 'AWS::EC2::VPCEndpoint')?.quantity ?? 0;
    expect(endpointHours(prod)).toBeGreaterThan(endpointHours(dev));
  });
});

describe('batchctl cost', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'batchctl-cost-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  async function batchctl(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const ctx = new CliContext({ stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: process.env, isTTY: false });
    const program = buildProgram(ctx, [costCommand]);
    let code = 0;
    try {
      await program.parseAsync(argv, { from: 'user' });
    } catch (err) {
      code = err instanceof CommanderError ? 2 : ctx.fail(err, argv.includes('--json'));
    }
    return { code, stdout, stderr };
  }

  test('reads a cdk.out folder and prints the lines, the total and the per-job figures as JSON', async () => {
    fs.writeFileSync(path.join(tmp, 'Fixture.template.json'), JSON.stringify(FIXTURE));
    const r = await batchctl(['--json', 'cost', '--cdk-out', tmp, '--log-gb', '0', '--job-vcpus', '1', '--job-memory', '2048', '--job-seconds', '30']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.total).toBeCloseTo(estimateMonthly({ Fixture: FIXTURE }, { logGbPerMonth: 0 }).total, 2);
    expect(report.perJob.map((j: { capacity: string }) => j.capacity)).toEqual(['EC2_SPOT', 'EC2_ON_DEMAND', 'FARGATE', 'FARGATE_SPOT']);
    expect(report.network[0].stack).toBe('Fixture');
    expect(report.sources).toContain('https://aws.amazon.com/privatelink/pricing/');
  });

  test('prints a readable table without --json', async () => {
    const r = await batchctl(['cost', '--cdk-out', tmp]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/interface VPC endpoints .* = +\$43\.80/);
    expect(r.stdout).toMatch(/total: \$\d+\.\d\d per month/);
  });

  test('usage errors exit 2 and name the problem', async () => {
    expect((await batchctl(['cost', '--stage', 'dev', '--cdk-out', tmp])).stderr).toContain('give --stage or --cdk-out, not both');
    const unknown = await batchctl(['cost', '--stage', 'qa']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('context stage ("qa") is unknown; allowed: dev, prod');
    expect((await batchctl(['cost', '--cdk-out', path.join(tmp, 'none')])).stderr).toContain('does not exist');
    expect((await batchctl(['cost', '--log-gb', '-1'])).code).toBe(2);
  });
});
