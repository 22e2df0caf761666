import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import {
  INSTANCE_PRESETS,
  architectureOf,
  checkSingleArchitecture,
  isGpuInstance,
  isUnsupportedGpuInstance,
} from '../../../lib/compute/instance-presets';

test('general preset is c6i, m6i, r6i, c7i, m7i on x86 and c7g, m7g, r7g on ARM', () => {
  expect(INSTANCE_PRESETS.GENERAL.X86_64).toEqual(['c6i', 'm6i', 'r6i', 'c7i', 'm7i']);
  expect(INSTANCE_PRESETS.GENERAL.ARM64).toEqual(['c7g', 'm7g', 'r7g']);
});

test('network-optimised preset is the n families of each architecture', () => {
  expect(INSTANCE_PRESETS.NETWORK_OPTIMIZED.X86_64).toEqual(['c5n', 'm5n', 'c6in', 'm6in', 'r6in']);
  expect(INSTANCE_PRESETS.NETWORK_OPTIMIZED.ARM64).toEqual(['c6gn', 'c7gn']);
});

test('every preset family is of the architecture it is listed under', () => {
  for (const preset of Object.values(INSTANCE_PRESETS)) {
    for (const [arch, families] of Object.entries(preset)) {
      for (const family of families) expect([family, architectureOf(family)]).toEqual([family, arch]);
    }
  }
});

test('GPU preset families are NVIDIA GPU families and none exists for ARM', () => {
  expect(INSTANCE_PRESETS.GPU.X86_64.length).toBeGreaterThan(0);
  expect(INSTANCE_PRESETS.GPU.X86_64.every((family) => isGpuInstance(family))).toBe(true);
  expect(INSTANCE_PRESETS.GPU.ARM64).toEqual([]);
});

test('recognises GPU instance types and the ones AL2023 NVIDIA cannot run', () => {
  expect(isGpuInstance(new ec2.InstanceType('g5.xlarge'))).toBe(true);
  expect(isGpuInstance(new ec2.InstanceType('p4d.24xlarge'))).toBe(true);
  expect(isGpuInstance(new ec2.InstanceType('c6i.large'))).toBe(false);
  expect(isGpuInstance(new ec2.InstanceType('m7g.large'))).toBe(false);
  expect(isUnsupportedGpuInstance(new ec2.InstanceType('p3.2xlarge'))).toBe(true);
  expect(isUnsupportedGpuInstance(new ec2.InstanceType('g5.xlarge'))).toBe(false);
});

test('checkSingleArchitecture returns the common architecture of the instance types', () => {
  const stack = new Stack();
  expect(checkSingleArchitecture(stack, 'instanceTypes', [new ec2.InstanceType('m7g.large'), new ec2.InstanceType('c7gn.xlarge')])).toBe('ARM64');
  expect(checkSingleArchitecture(stack, 'instanceTypes', [new ec2.InstanceType('c6in.large')])).toBe('X86_64');
});

test('checkSingleArchitecture rejects x86 and ARM mixed, listing the types of each', () => {
  const stack = new Stack(undefined, 'Arch');
  expect(() => checkSingleArchitecture(stack, 'instanceTypes', [new ec2.InstanceType('c6i.large'), new ec2.InstanceType('m7g.large')]))
    .toThrow('[Arch] instanceTypes (["c6i.large", "m7g.large"]) mixes X86_64 (c6i.large) and ARM64 (m7g.large); allowed: instance types of one architecture');
});

test('checkSingleArchitecture rejects types of another architecture than the expected one', () => {
  const stack = new Stack(undefined, 'Arch');
  expect(() => checkSingleArchitecture(stack, 'instanceTypes', [new ec2.InstanceType('c6i.large')], 'ARM64'))
    .toThrow('[Arch] instanceTypes (["c6i.large"]) are X86_64, but architecture is ARM64; allowed: ARM64 instance types');
});
