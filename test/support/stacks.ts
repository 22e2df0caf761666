import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';

/** A VPC without NAT gateways and with one tier of isolated subnets, named 'private': the Batch test fixture. */
export function isolatedVpc(scope: Construct, id = 'Vpc'): ec2.Vpc {
  return new ec2.Vpc(scope, id, {
    natGateways: 0,
    subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
  });
}

/** Stack 'Stack' in a new App, with an isolatedVpc 'Vpc'. */
export function stackWithVpc(): { stack: Stack; vpc: ec2.Vpc } {
  const stack = new Stack(new App(), 'Stack');
  return { stack, vpc: isolatedVpc(stack) };
}

/** Asserts that `fn` throws a propError naming the construct `path`, the prop and what is allowed (`parts`). */
export function expectPropErrorAt(path: string, fn: () => unknown, ...parts: string[]): void {
  let message = '';
  try {
    fn();
  } catch (error) {
    message = (error as Error).message;
  }
  expect(message).toContain(`[${path}]`);
  for (const part of parts) expect(message).toContain(part);
}
