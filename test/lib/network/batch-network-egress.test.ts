import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { BatchNetwork, BatchNetworkProps } from '../../../lib/network/batch-network';
import { cfnLintFindings, stackNagFindings } from '../../support/compliance';

const ENV = { account: '123456789012', region: 'us-east-1' };
const AZ_CONTEXT = {
  [`availability-zones:account=${ENV.account}:region=${ENV.region}`]: ['us-east-1a', 'us-east-1b', 'us-east-1c'],
};

function synth(props: BatchNetworkProps = {}): { stack: Stack; network: BatchNetwork; template: Template } {
  const app = new App({ context: AZ_CONTEXT });
  const stack = new Stack(app, 'Stack', { env: ENV });
  const network = new BatchNetwork(stack, 'Net', props);
  return { stack, network, template: Template.fromStack(stack) };
}

/** Logical ids of the route tables of the subnets in one selection. */
function routeTableIds(stack: Stack, network: BatchNetwork, selection: ec2.SubnetSelection): string[] {
  return network.vpc.selectSubnets(selection).subnets.map((s) => stack.getLogicalId(s.node.findChild('RouteTable') as ec2.CfnRouteTable));
}

/** Route table logical ids that have a 0.0.0.0/0 route through a NAT gateway. */
function natRoutedTables(template: Template): string[] {
  return Object.values(template.findResources('AWS::EC2::Route', { Properties: { DestinationCidrBlock: '0.0.0.0/0', NatGatewayId: Match.anyValue() } })).map(
    (r) => (r.Properties.RouteTableId as { Ref: string }).Ref,
  );
}

describe('BatchNetwork egress mode', () => {
  test('without egress: no NAT gateway, no egress security group, no egress subnets', () => {
    const { network, template } = synth();
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    expect(network.egressSecurityGroup).toBeUndefined();
    expect(network.egressSubnetSelection).toBeUndefined();
    expect(network.natGatewayCount).toBe(0);
  });

  test("natGateways 'ONE' creates one NAT gateway that only the BatchEgress subnets route through", () => {
    const { stack, network, template } = synth({ maxAzs: 2, egress: { natGateways: 'ONE' } });
    template.resourceCountIs('AWS::EC2::NatGateway', 1);
    expect(network.natGatewayCount).toBe(1);
    const routed = natRoutedTables(template).sort();
    expect(routed).toEqual(routeTableIds(stack, network, network.egressSubnetSelection!).sort());
    for (const isolated of routeTableIds(stack, network, network.subnetSelection)) expect(routed).not.toContain(isolated);
    expect(network.vpc.selectSubnets(network.subnetSelection).subnets).toHaveLength(2);
    expect(network.vpc.selectSubnets(network.egressSubnetSelection!).subnets).toHaveLength(2);
  });

  test("natGateways 'PER_AZ' creates one NAT gateway per AZ", () => {
    const { network, template } = synth({ maxAzs: 3, egress: { natGateways: 'PER_AZ' } });
    template.resourceCountIs('AWS::EC2::NatGateway', 3);
    expect(network.natGatewayCount).toBe(3);
  });

  test('the egress security group allows HTTPS out only and nothing in', () => {
    const { stack, network, template } = synth({ egress: { natGateways: 'ONE' } });
    const id = stack.getLogicalId(network.egressSecurityGroup!.node.defaultChild as ec2.CfnSecurityGroup);
    const group = template.toJSON().Resources[id];
    expect(group.Properties.SecurityGroupIngress).toBeUndefined();
    expect(group.Properties.SecurityGroupEgress).toEqual([
      { CidrIp: '0.0.0.0/0', Description: 'HTTPS to the internet, the VPC endpoints and S3', FromPort: 443, IpProtocol: 'tcp', ToPort: 443 },
    ]);
  });

  test('the S3 gateway endpoint serves the egress subnets too (S3 traffic never pays NAT)', () => {
    const { stack, network, template } = synth({ egress: { natGateways: 'ONE' } });
    const tables = [...routeTableIds(stack, network, network.subnetSelection), ...routeTableIds(stack, network, network.egressSubnetSelection!)];
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      RouteTableIds: Match.arrayWith(tables.map((t) => ({ Ref: t }))),
    });
  });

  test('refuses an unknown NAT gateway mode, naming the value and the allowed ones', () => {
    expect(() => synth({ egress: { natGateways: 'TWO' as never } })).toThrow(/egress\.natGateways \("TWO"\) is invalid; allowed: 'ONE' or 'PER_AZ'/);
  });

  test('refuses egress together with natGateways > 0', () => {
    expect(() => synth({ natGateways: 2, egress: { natGateways: 'ONE' } })).toThrow(/natGateways \(2\) conflicts with egress/);
  });

  test('refuses egress with a brought VPC', () => {
    const app = new App();
    const stack = new Stack(app, 'S');
    const vpc = new ec2.Vpc(stack, 'Own', { natGateways: 0, subnetConfiguration: [{ name: 'P', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
    expect(() => new BatchNetwork(stack, 'Net', { vpc, egress: { natGateways: 'ONE' } })).toThrow(/egress .* conflicts with a brought vpc/);
  });

  test('cdk-nag AwsSolutions and cfn-lint report nothing with egress', () => {
    expect(stackNagFindings((stack) => new BatchNetwork(stack, 'Net', { egress: { natGateways: 'PER_AZ' } }))).toEqual([]);
    // Env-agnostic, as the stages synthesize (a concrete env hard-codes AZ names, cfn-lint W3010).
    const stack = new Stack(new App(), 'Agnostic');
    new BatchNetwork(stack, 'Net', { egress: { natGateways: 'ONE' } });
    expect(cfnLintFindings(Template.fromStack(stack).toJSON())).toBe('');
  });
});
