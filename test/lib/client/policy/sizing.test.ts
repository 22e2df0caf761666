import type { OperationDeclaration } from '../../../../containers/worker/src/operations/declarations';
import { operationDeclaration } from '../../../../containers/worker/src/operations/declarations';
import { checkSizing, FARGATE_SIZES, sizingLimitsFromEnv, validateSubmitRequest } from '../../../../lib/client';

/** A Fargate-placed operation that may be resized (no such worker operation yet; the rule is the policy's). */
const fargateOp: OperationDeclaration = {
  ...operationDeclaration('ocr')!,
  name: 'fargate-op',
  sizing: { vcpus: { min: 0.25, max: 16 }, memoryMiB: { min: 512, max: 122880 } },
};

describe('sizing policy', () => {
  test('Fargate: every documented vCPU/memory pair is accepted, and a pair Fargate does not offer is refused with the valid range', () => {
    for (const [vcpus, memories] of FARGATE_SIZES) for (const memoryMiB of memories) expect(checkSizing({ vcpus, memoryMiB }, fargateOp)).toEqual([]);
    expect(checkSizing({ vcpus: 1, memoryMiB: 1024 }, fargateOp)).toEqual([
      expect.objectContaining({ field: 'memoryMiB', value: '1024', message: expect.stringContaining('with 1 vCPU on Fargate (fargate-op): 2048 to 8192 MiB in steps of 1024') }),
    ]);
    expect(checkSizing({ vcpus: 3 }, fargateOp)).toEqual([
      expect.objectContaining({ field: 'vcpus', value: '3', message: expect.stringContaining("one of Fargate's vCPU values 0.25, 0.5, 1, 2, 4, 8, 16") }),
    ]);
  });

  test('Fargate: a lone memoryMiB is checked against the placement\'s vCPUs (ocr: 2 vCPU)', () => {
    expect(checkSizing({ memoryMiB: 16384 }, fargateOp)).toEqual([]);
    expect(checkSizing({ memoryMiB: 20480 }, fargateOp)[0]).toMatchObject({ field: 'memoryMiB', message: expect.stringContaining('with 2 vCPU on Fargate') });
  });

  test('EC2: vCPUs are whole numbers', () => {
    expect(checkSizing({ vcpus: 1.5 }, operationDeclaration('measure')!)[0]).toMatchObject({ field: 'vcpus', message: expect.stringContaining('a whole number of vCPUs') });
  });

  test('the schema refuses non-numbers and non-positive values before the policy runs', () => {
    expect(() => validateSubmitRequest({ operation: 'measure', input: [], vcpus: '4', memoryMiB: -1 })).toThrow(
      expect.objectContaining({
        errors: expect.arrayContaining([
          expect.objectContaining({ field: 'vcpus', message: 'vcpus must be a number' }),
          expect.objectContaining({ field: 'memoryMiB', message: 'memoryMiB must be > 0' }),
        ]),
      }),
    );
  });

  test('the stack ceiling comes from MAX_JOB_VCPUS / MAX_JOB_MEMORY_MIB; a malformed value is a deployment error', () => {
    expect(sizingLimitsFromEnv({ MAX_JOB_VCPUS: '8', MAX_JOB_MEMORY_MIB: '16384' })).toEqual({ maxVcpus: 8, maxMemoryMiB: 16384 });
    expect(sizingLimitsFromEnv({})).toEqual({ maxVcpus: undefined, maxMemoryMiB: undefined });
    expect(() => sizingLimitsFromEnv({ MAX_JOB_VCPUS: 'lots' })).toThrow(/MAX_JOB_VCPUS \("lots"\) must be a positive number/);
  });
});
