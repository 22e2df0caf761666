import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { IConstruct } from 'constructs';
import { propError } from '../common/validation';

/** CPU architecture of a compute environment's instances (and of a Fargate job's runtime platform). */
export type ComputeArchitecture = 'X86_64' | 'ARM64';

/**
 * Named instance family sets.
 * - `GENERAL`: current compute / general / memory optimised families.
 * - `NETWORK_OPTIMIZED`: the `n` families (up to 200 Gbit/s) for download-heavy jobs.
 * - `GPU`: NVIDIA GPU families (x86 only); the environment then runs the AL2023 NVIDIA AMI.
 */
export type InstancePreset = 'GENERAL' | 'NETWORK_OPTIMIZED' | 'GPU';

/**
 * Explicit instance families per preset and architecture. Batch picks the sizes. These replace the
 * implicit `optimal` class (c4/m4/r4 on x86: old, scarce on Spot and unavailable in newer regions).
 */
export const INSTANCE_PRESETS: Readonly<Record<InstancePreset, Readonly<Record<ComputeArchitecture, readonly ec2.InstanceClass[]>>>> = {
  GENERAL: {
    X86_64: [ec2.InstanceClass.C6I, ec2.InstanceClass.M6I, ec2.InstanceClass.R6I, ec2.InstanceClass.C7I, ec2.InstanceClass.M7I],
    ARM64: [ec2.InstanceClass.C7G, ec2.InstanceClass.M7G, ec2.InstanceClass.R7G],
  },
  NETWORK_OPTIMIZED: {
    X86_64: [ec2.InstanceClass.C5N, ec2.InstanceClass.M5N, ec2.InstanceClass.C6IN, ec2.InstanceClass.M6IN, ec2.InstanceClass.R6IN],
    ARM64: [ec2.InstanceClass.C6GN, ec2.InstanceClass.C7GN],
  },
  GPU: {
    // ECS_AL2023_NVIDIA supports NVIDIA GPUs on x86 only (not Graviton, not p3/g3).
    X86_64: [ec2.InstanceClass.G5, ec2.InstanceClass.G6, ec2.InstanceClass.G6E, ec2.InstanceClass.P4D],
    ARM64: [],
  },
};

/** Instance families with NVIDIA GPUs: environments using them need the `ECS_AL2023_NVIDIA` AMI. */
const GPU_FAMILY = /^(g4dn|g5|g6|g6e|gr6|p4d|p4de|p5|p5e|p5en|p6)$/;
/** GPU families the AL2023 NVIDIA AMI does not support. */
const UNSUPPORTED_GPU_FAMILY = /^(g3|g3s|p3|p3dn)$/;

/** The family part of an instance type or class name (`c6i.large` -> `c6i`). */
export function instanceFamily(instance: ec2.InstanceType | string): string {
  return instance.toString().split('.')[0].toLowerCase();
}

/** Whether an instance type or class has NVIDIA GPUs (so needs the AL2023 NVIDIA AMI). */
export function isGpuInstance(instance: ec2.InstanceType | string): boolean {
  return GPU_FAMILY.test(instanceFamily(instance));
}

/** Whether an instance type or class is a GPU family the AL2023 NVIDIA AMI cannot run. */
export function isUnsupportedGpuInstance(instance: ec2.InstanceType | string): boolean {
  return UNSUPPORTED_GPU_FAMILY.test(instanceFamily(instance));
}

/** The architecture of one instance type or class (`m7g` -> ARM64). */
export function architectureOf(instance: ec2.InstanceType | string): ComputeArchitecture {
  // A family without a size (`new ec2.InstanceType('c6i')`, `ec2.InstanceClass.C6I`) is valid for
  // Batch, but InstanceType.architecture only parses `<family>.<size>`: ask with a size added.
  const name = instance.toString();
  const type = new ec2.InstanceType(name.includes('.') ? name : `${name}.large`);
  return type.architecture === ec2.InstanceArchitecture.ARM_64 ? 'ARM64' : 'X86_64';
}

/**
 * Checks that all instance types share one architecture (and, when `expected` is given, that it is
 * that one): an environment that mixes x86 and ARM runs an image on the wrong CPU half the time.
 * Throws a propError on `prop` listing the offending types; returns the common architecture.
 */
export function checkSingleArchitecture(
  scope: IConstruct,
  prop: string,
  instances: readonly (ec2.InstanceType | string)[],
  expected?: ComputeArchitecture,
): ComputeArchitecture | undefined {
  if (instances.length === 0) return expected;
  const names = instances.map((i) => i.toString());
  const byArch = (arch: ComputeArchitecture) => names.filter((_, i) => architectureOf(instances[i]) === arch);
  const x86 = byArch('X86_64');
  const arm = byArch('ARM64');
  if (x86.length > 0 && arm.length > 0) {
    throw propError(scope, prop, names, 'instance types of one architecture (all X86_64 or all ARM64)',
      `mixes X86_64 (${x86.join(', ')}) and ARM64 (${arm.join(', ')})`);
  }
  const actual: ComputeArchitecture = arm.length > 0 ? 'ARM64' : 'X86_64';
  if (expected !== undefined && actual !== expected) {
    throw propError(scope, prop, names, `${expected} instance types (the architecture prop)`,
      `are ${actual}, but architecture is ${expected}`);
  }
  return actual;
}
