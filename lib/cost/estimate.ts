import { PRICE_TABLE, PriceTable } from './prices';

/** The parts of a CloudFormation template the estimate reads. */
export interface CfnTemplate {
  readonly Resources?: Record<string, { readonly Type: string; readonly Properties?: Record<string, unknown> }>;
}

/** One line of a monthly estimate. */
export interface CostLine {
  /** The stack (template) the resources are in. */
  readonly stack: string;
  readonly item: string;
  /** The CloudFormation type the line counts, or `assumption` for usage the template cannot show. */
  readonly resourceType: string;
  readonly quantity: number;
  readonly unit: string;
  readonly unitPrice: number;
  readonly monthly: number;
}

export interface MonthlyEstimate {
  readonly region: string;
  readonly currency: string;
  readonly asOf: string;
  readonly lines: readonly CostLine[];
  readonly total: number;
}

/** Usage a template cannot show; each one is printed with the estimate. */
export interface UsageAssumptions {
  /** Log data ingested per stage and month, in GB (job logs, Lambda logs, VPC flow logs). @default 2 */
  readonly logGbPerMonth?: number;
  /** Data through the VPC's AWS endpoints (or NAT) per month, in GB (image pulls, logs, API calls). @default 20 */
  readonly endpointTrafficGbPerMonth?: number;
  /** Mean duration of a scheduled Lambda invocation, in seconds. @default 1 */
  readonly scheduledLambdaSeconds?: number;
}

export const DEFAULT_ASSUMPTIONS: Required<UsageAssumptions> = {
  logGbPerMonth: 2,
  endpointTrafficGbPerMonth: 20,
  scheduledLambdaSeconds: 1,
};

type Resource = { readonly Type: string; readonly Properties?: Record<string, unknown> };

const round = (n: number): number => Math.round(n * 100) / 100;

function resourcesOf(template: CfnTemplate, type: string): Array<[string, Resource]> {
  return Object.entries(template.Resources ?? {}).filter(([, r]) => r.Type === type);
}

/** Endpoint-AZ pairs of a template's interface endpoints (one subnet per AZ, as BatchNetwork places them). */
export function interfaceEndpointAzs(template: CfnTemplate): { endpoints: number; endpointAzs: number } {
  let endpoints = 0;
  let endpointAzs = 0;
  for (const [, r] of resourcesOf(template, 'AWS::EC2::VPCEndpoint')) {
    if (r.Properties?.VpcEndpointType !== 'Interface') continue;
    endpoints += 1;
    const subnets = r.Properties?.SubnetIds;
    endpointAzs += Array.isArray(subnets) ? subnets.length : 1;
  }
  return { endpoints, endpointAzs };
}

/** A standard alarm bills per metric it reads: one, or each MetricStat of a metric-math alarm. */
function alarmMetrics(r: Resource): number {
  const metrics = r.Properties?.Metrics;
  if (!Array.isArray(metrics)) return 1;
  return metrics.filter((m) => m && typeof m === 'object' && 'MetricStat' in m).length;
}

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const MINUTES: Record<string, number> = { minute: 1, minutes: 1, hour: 60, hours: 60, day: 1440, days: 1440 };

/** Invocations per month of a `rate(...)` schedule; undefined for cron (its count depends on the fields). */
export function invocationsPerMonth(expression: unknown, hoursPerMonth: number): number | undefined {
  if (typeof expression !== 'string') return undefined;
  const m = RATE.exec(expression);
  if (!m) return undefined;
  return (hoursPerMonth * 60) / (Number(m[1]) * MINUTES[m[2]]);
}

function lambdaMemoryMb(template: CfnTemplate, target: unknown): number | undefined {
  const arn = (target as { Arn?: unknown })?.Arn as { 'Fn::GetAtt'?: [string, string] } | undefined;
  const id = arn?.['Fn::GetAtt']?.[0];
  const fn = id ? template.Resources?.[id] : undefined;
  if (!fn || fn.Type !== 'AWS::Lambda::Function') return undefined;
  return Number(fn.Properties?.MemorySize ?? 128);
}

/**
 * The fixed monthly cost of one synthesized stack: what it costs while no job runs. Resources with no
 * standing charge (Batch queues, job definitions, compute environments scaled to 0, SNS, SQS, DynamoDB
 * on demand, Step Functions, API Gateway) cost nothing until used and are not listed.
 */
export function estimateStackMonthly(
  stack: string,
  template: CfnTemplate,
  assumptions: UsageAssumptions = {},
  prices: PriceTable = PRICE_TABLE,
): CostLine[] {
  const a = { ...DEFAULT_ASSUMPTIONS, ...assumptions };
  const h = prices.hoursPerMonth;
  const lines: CostLine[] = [];
  const add = (item: string, resourceType: string, quantity: number, unit: string, unitPrice: number): void => {
    if (quantity > 0) lines.push({ stack, item, resourceType, quantity: round(quantity), unit, unitPrice, monthly: round(quantity * unitPrice) });
  };

  const { endpointAzs } = interfaceEndpointAzs(template);
  add('interface VPC endpoints (per endpoint per AZ)', 'AWS::EC2::VPCEndpoint', endpointAzs * h, 'endpoint-AZ-hours', prices.vpc.interfaceEndpointHour);
  const nats = resourcesOf(template, 'AWS::EC2::NatGateway').length;
  add('NAT gateways', 'AWS::EC2::NatGateway', nats * h, 'gateway-hours', prices.vpc.natGatewayHour);
  add('public IPv4 addresses', 'AWS::EC2::EIP', resourcesOf(template, 'AWS::EC2::EIP').length * h, 'address-hours', prices.vpc.publicIpv4Hour);
  if (endpointAzs > 0 || nats > 0) {
    const perGb = nats > 0 ? prices.vpc.natGatewayGb : prices.vpc.interfaceEndpointGb;
    add(`data through ${nats > 0 ? 'NAT' : 'endpoints'} (assumed ${a.endpointTrafficGbPerMonth} GB/month)`, 'assumption', a.endpointTrafficGbPerMonth, 'GB', perGb);
  }

  const alarmMetricCount = resourcesOf(template, 'AWS::CloudWatch::Alarm').reduce((n, [, r]) => n + alarmMetrics(r), 0);
  add('CloudWatch alarms (per metric)', 'AWS::CloudWatch::Alarm', alarmMetricCount, 'alarm-metrics', prices.cloudwatch.alarmMetricMonth);
  add('CloudWatch dashboards', 'AWS::CloudWatch::Dashboard', resourcesOf(template, 'AWS::CloudWatch::Dashboard').length, 'dashboards', prices.cloudwatch.dashboardMonth);
  add('KMS customer managed keys', 'AWS::KMS::Key', resourcesOf(template, 'AWS::KMS::Key').length, 'keys', prices.kms.keyMonth);
  add('Secrets Manager secrets', 'AWS::SecretsManager::Secret', resourcesOf(template, 'AWS::SecretsManager::Secret').length, 'secrets', prices.secretsManager.secretMonth);
  for (const [, acl] of resourcesOf(template, 'AWS::WAFv2::WebACL')) {
    const rules = Array.isArray(acl.Properties?.Rules) ? (acl.Properties!.Rules as unknown[]).length : 0;
    add('WAF web ACL', 'AWS::WAFv2::WebACL', 1, 'web ACLs', prices.waf.webAclMonth);
    add('WAF rules', 'AWS::WAFv2::WebACL', rules, 'rules', prices.waf.ruleMonth);
  }

  // Compute environments bill only for instances they keep: minvCpus > 0 is a standing cost.
  for (const [, ce] of resourcesOf(template, 'AWS::Batch::ComputeEnvironment')) {
    const cr = ce.Properties?.ComputeResources as { MinvCpus?: number; Type?: string } | undefined;
    const min = Number(cr?.MinvCpus ?? 0);
    if (!(min > 0) || cr?.Type?.startsWith('FARGATE')) continue;
    const od = prices.ec2.families[0].vcpuHour;
    const spot = cr?.Type === 'SPOT';
    add(`Batch minvCpus kept running (${spot ? 'Spot' : 'On-Demand'})`, 'AWS::Batch::ComputeEnvironment', min * h, 'vCPU-hours', spot ? od * (1 - prices.ec2.spotDiscount) : od);
  }

  // Scheduled Lambdas (backlog probe, cleanup) run whether or not jobs do.
  let invocations = 0;
  let gbSeconds = 0;
  for (const [, rule] of resourcesOf(template, 'AWS::Events::Rule')) {
    const perMonth = invocationsPerMonth(rule.Properties?.ScheduleExpression, h);
    if (perMonth === undefined) continue;
    for (const target of (rule.Properties?.Targets as unknown[]) ?? []) {
      const memory = lambdaMemoryMb(template, target);
      if (memory === undefined) continue;
      invocations += perMonth;
      gbSeconds += perMonth * a.scheduledLambdaSeconds * (memory / 1024);
    }
  }
  add('scheduled Lambda requests', 'AWS::Events::Rule', invocations / 1e6, 'million requests', prices.lambda.requestMillion);
  add(`scheduled Lambda duration (assumed ${a.scheduledLambdaSeconds} s each)`, 'AWS::Lambda::Function', gbSeconds, 'GB-seconds', prices.lambda.gbSecondX86);
  return lines;
}

/** The fixed monthly cost of a stage: every stack's lines, the log assumption once, and the total. */
export function estimateMonthly(
  templates: Record<string, CfnTemplate>,
  assumptions: UsageAssumptions = {},
  prices: PriceTable = PRICE_TABLE,
): MonthlyEstimate {
  const a = { ...DEFAULT_ASSUMPTIONS, ...assumptions };
  const lines = Object.entries(templates).flatMap(([stack, t]) => estimateStackMonthly(stack, t, a, prices));
  if (a.logGbPerMonth > 0) {
    lines.push({
      stack: '*',
      item: `log ingestion (assumed ${a.logGbPerMonth} GB/month)`,
      resourceType: 'assumption',
      quantity: a.logGbPerMonth,
      unit: 'GB',
      unitPrice: prices.cloudwatch.logIngestionGb,
      monthly: round(a.logGbPerMonth * prices.cloudwatch.logIngestionGb),
    });
  }
  return { region: prices.region, currency: prices.currency, asOf: prices.asOf, lines, total: round(lines.reduce((s, l) => s + l.monthly, 0)) };
}

/** One way to give private Batch workers their AWS APIs, priced per month. */
export interface NetworkLayout {
  readonly layout: string;
  readonly monthly: number;
  readonly note: string;
}

/**
 * Prices the network choices for a template's set of interface endpoints: the endpoints in every AZ
 * it uses (the default), the endpoints in one AZ (cheaper; an AZ outage stops the stage), and a NAT
 * design instead of interface endpoints, with one NAT gateway or one per AZ (the S3 and DynamoDB
 * gateway endpoints are free in every design).
 */
export function compareNetworkLayouts(
  template: CfnTemplate,
  assumptions: UsageAssumptions = {},
  prices: PriceTable = PRICE_TABLE,
): NetworkLayout[] {
  const a = { ...DEFAULT_ASSUMPTIONS, ...assumptions };
  const h = prices.hoursPerMonth;
  const { endpoints, endpointAzs } = interfaceEndpointAzs(template);
  const azs = endpoints > 0 ? Math.max(1, Math.round(endpointAzs / endpoints)) : 1;
  const endpointTraffic = a.endpointTrafficGbPerMonth * prices.vpc.interfaceEndpointGb;
  const natTraffic = a.endpointTrafficGbPerMonth * prices.vpc.natGatewayGb;
  const nat = (n: number): number => round(n * h * (prices.vpc.natGatewayHour + prices.vpc.publicIpv4Hour) + natTraffic);
  return [
    { layout: `${endpoints} interface endpoints in ${azs} AZs (this template)`, monthly: round(endpointAzs * h * prices.vpc.interfaceEndpointHour + endpointTraffic), note: 'no internet route; survives an AZ outage' },
    { layout: `${endpoints} interface endpoints in 1 AZ`, monthly: round(endpoints * h * prices.vpc.interfaceEndpointHour + endpointTraffic), note: 'cheapest private layout; an AZ outage stops jobs (fine for dev)' },
    { layout: '1 NAT gateway, no interface endpoints', monthly: nat(1), note: 'internet egress for all AZs through one AZ' },
    { layout: `${azs} NAT gateways (one per AZ), no interface endpoints`, monthly: nat(azs), note: 'internet egress that survives an AZ outage' },
  ];
}

/** Where a job runs, for the per-job estimate. */
export type CapacityKind = 'EC2_SPOT' | 'EC2_ON_DEMAND' | 'FARGATE' | 'FARGATE_SPOT';

export interface JobSize {
  readonly vcpus: number;
  readonly memoryMiB: number;
  /** Run time of the job (Fargate bills at least one minute). */
  readonly seconds: number;
  /** @default 'x86' */
  readonly architecture?: 'x86' | 'arm';
}

export interface JobCost {
  readonly capacity: CapacityKind;
  readonly cost: number;
  readonly basis: string;
}

function requireNumber(field: string, value: number, min: number): void {
  if (!Number.isFinite(value) || value < min) throw new Error(`${field} (${value}) must be a number >= ${min}`);
}

/**
 * What one job costs on each kind of capacity. EC2: the share of an instance of the cheapest family whose
 * memory per vCPU fits the job (Batch packs jobs onto instances; an idle remainder is not counted).
 * Fargate: vCPU and memory per second, one-minute minimum.
 */
export function estimateJobCost(size: JobSize, prices: PriceTable = PRICE_TABLE): JobCost[] {
  requireNumber('vcpus', size.vcpus, 0.25);
  requireNumber('memoryMiB', size.memoryMiB, 512);
  requireNumber('seconds', size.seconds, 0);
  const gib = size.memoryMiB / 1024;
  const hours = size.seconds / 3600;
  const perVcpu = gib / size.vcpus;
  const family = prices.ec2.families.find((f) => f.gibPerVcpu >= perVcpu) ?? prices.ec2.families[prices.ec2.families.length - 1];
  const vcpuShare = Math.max(size.vcpus, gib / family.gibPerVcpu);
  const onDemand = vcpuShare * family.vcpuHour * hours;
  const f = prices.fargate[size.architecture ?? 'x86'];
  const fargateHours = Math.max(size.seconds, prices.fargate.minimumSeconds) / 3600;
  const fargate = (size.vcpus * f.vcpuHour + gib * f.gbHour) * fargateHours;
  const basis = `${size.vcpus} vCPU, ${gib} GiB, ${size.seconds} s`;
  return [
    { capacity: 'EC2_SPOT', cost: onDemand * (1 - prices.ec2.spotDiscount), basis: `${basis} on ${family.family} Spot (assumed ${prices.ec2.spotDiscount * 100} % off)` },
    { capacity: 'EC2_ON_DEMAND', cost: onDemand, basis: `${basis} on ${family.family}` },
    { capacity: 'FARGATE', cost: fargate, basis: `${basis}, one-minute minimum` },
    { capacity: 'FARGATE_SPOT', cost: fargate * (1 - prices.fargate.spotDiscount), basis: `${basis}, Fargate Spot (assumed ${prices.fargate.spotDiscount * 100} % off)` },
  ];
}
