import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { IConstruct } from 'constructs';

/**
 * Builds the one error shape every construct of this library throws for a bad prop:
 * `[<construct path>] <prop> (<value>) <problem>; allowed: <allowed>`.
 */
export function propError(scope: IConstruct, prop: string, value: unknown, allowed: string, problem = 'is invalid'): Error {
  return new Error(`[${scope.node.path}] ${prop} (${formatValue(value)}) ${problem}; allowed: ${allowed}`);
}

/** Throws a propError unless `min <= value <= max`; unresolved tokens are skipped. */
export function checkRange(scope: IConstruct, prop: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isFinite(value) || value < min || value > max) {
    throw propError(scope, prop, value, `${min} to ${max}`, 'is out of range');
  }
}

/** Throws a propError unless value is a whole number >= min (tokens skipped). */
export function checkInteger(scope: IConstruct, prop: string, value: number | undefined, min: number): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min) {
    throw propError(scope, prop, value, `a whole number >= ${min}`);
  }
}

/** Throws a propError unless every entry is a browser origin (scheme, host, optional port; no path) or `*`. */
export function checkCorsOrigins(scope: IConstruct, prop: string, origins: readonly string[]): void {
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(origin)) {
      throw propError(scope, prop, origin, 'origins like https://app.example.com (scheme, host, optional port; no path), or *');
    }
  }
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(formatValue).join(', ')}]`;
  if (value === undefined) return 'undefined';
  try {
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  } catch {
    return String(value);
  }
}

/**
 * Checks a subnet selection against its VPC at construction, so a mistake names the prop instead of
 * surfacing later as an empty `Subnets: []` or a misleading network warning: an explicit empty
 * `subnets` list, and a selection (e.g. an unknown `subnetGroupName`) that selects no subnet.
 */
export function checkSubnetSelection(scope: IConstruct, prop: string, vpc: ec2.IVpc, selection: ec2.SubnetSelection | undefined): void {
  if (selection === undefined) return;
  if (selection.subnets !== undefined && selection.subnets.length === 0) {
    throw propError(scope, `${prop}.subnets`, [], 'at least one subnet, or leave vpcSubnets unset to use the VPC\'s private subnets', 'is empty');
  }
  let selected: ec2.ISubnet[];
  try {
    selected = vpc.selectSubnets(selection).subnets;
  } catch (err) {
    throw propError(scope, prop, describeSelection(selection), `a selection that matches subnets of ${vpc.node.path} (${(err as Error).message})`, 'selects no subnet');
  }
  if (selected.length === 0) {
    throw propError(scope, prop, describeSelection(selection), `a selection that matches subnets of ${vpc.node.path}`, 'selects no subnet');
  }
}

function describeSelection(selection: ec2.SubnetSelection): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (selection.subnetGroupName !== undefined) out.subnetGroupName = selection.subnetGroupName;
  if (selection.subnetType !== undefined) out.subnetType = selection.subnetType;
  if (selection.availabilityZones !== undefined) out.availabilityZones = selection.availabilityZones;
  if (selection.subnets !== undefined) out.subnets = `${selection.subnets.length} subnets`;
  return out;
}
