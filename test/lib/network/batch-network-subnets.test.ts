import { App, Stack } from 'aws-cdk-lib';
import { BatchNetwork } from '../../../lib/network/batch-network';
import { expectPropErrorAt, isolatedVpc } from '../../support/stacks';

describe('BatchNetwork with a brought VPC: subnet selection', () => {
  test('an unknown subnetGroupName fails naming the prop and the groups the VPC has (not a "no NAT route" warning)', () => {
    const stack = new Stack(new App(), 'Stack');
    const vpc = isolatedVpc(stack);
    expectPropErrorAt('Stack/Network', () => new BatchNetwork(stack, 'Network', { vpc, vpcSubnets: { subnetGroupName: 'Batch' } }),
      'vpcSubnets ({"subnetGroupName":"Batch"}) selects no subnet', 'Available names: private');
  });

  test('an empty subnets list fails', () => {
    const stack = new Stack(new App(), 'Stack');
    const vpc = isolatedVpc(stack);
    expectPropErrorAt('Stack/Network', () => new BatchNetwork(stack, 'Network', { vpc, vpcSubnets: { subnets: [] } }),
      'vpcSubnets.subnets ([]) is empty');
  });

  test('a known subnet group is used as the selection', () => {
    const stack = new Stack(new App(), 'Stack');
    const vpc = isolatedVpc(stack);
    const network = new BatchNetwork(stack, 'Network', { vpc, vpcSubnets: { subnetGroupName: 'private' }, createEndpoints: true });
    expect(vpc.selectSubnets(network.subnetSelection).subnets).toHaveLength(vpc.isolatedSubnets.length);
    expect(network.subnetSelection).toEqual({ subnetGroupName: 'private' });
  });
});
