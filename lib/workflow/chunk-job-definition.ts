import { Size, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { WorkerJobDefinition, WorkerJobDefinitionProps } from '../jobs/worker-job-definition';

/** The seed's chunk job: 4 vCPU / 8 GiB. */
export const DEFAULT_CHUNK_JOB_VCPUS = 4;
export const DEFAULT_CHUNK_JOB_MEMORY = Size.gibibytes(8);
/** Memory per vCPU below which the engine's threads (one ring of 1 MiB slots and one heap each) crowd out the batch. */
const MIN_MEMORY_MIB_PER_VCPU = 512;

export interface ChunkJobDefinitionProps extends Omit<WorkerJobDefinitionProps, 'platform' | 'cpu' | 'memory'> {
  /**
   * vCPUs of one chunk job (a whole number). The worker runs that many engine threads on the chunk
   * (`WORKER_THREADS`), each over its own sub-range of the chunk's bytes.
   * @default 4
   */
  readonly vCpus?: number;
  /**
   * Memory of one chunk job; at least 512 MiB per vCPU.
   * @default Size.gibibytes(8)
   */
  readonly memory?: Size;
}

/**
 * The worker job definition the chunked workflow submits Batch-route chunks to: EC2, sized for a chunk
 * (default 4 vCPU / 8 GiB) and with `WORKER_THREADS` set to its vCPUs, so the engine cuts each chunk into
 * that many sub-ranges and parses them in worker threads (containers/worker/src/engine/threads.ts).
 *
 * Why set it rather than let the worker count CPUs: on EC2, Batch turns the job's vCPUs into CPU shares,
 * not a CPU quota, so inside the container every core of the instance is visible; threads sized by that
 * count would fight the other jobs packed on the instance.
 */
export class ChunkJobDefinition extends WorkerJobDefinition {
  /** vCPUs per chunk job, which is also the number of engine threads per chunk. */
  public readonly vCpus: number;

  constructor(scope: Construct, id: string, props: ChunkJobDefinitionProps = {}) {
    const vCpus = props.vCpus ?? DEFAULT_CHUNK_JOB_VCPUS;
    const memory = props.memory ?? DEFAULT_CHUNK_JOB_MEMORY;
    // Checked before the base class builds anything, so the error names this construct's props.
    const path = `${scope.node.path}/${id}`;
    const given = props.environment?.WORKER_THREADS;
    if (!Token.isUnresolved(vCpus)) {
      if (!Number.isInteger(vCpus) || vCpus < 1) throw new Error(`[${path}] vCpus (${vCpus}) is invalid; allowed: a whole number >= 1`);
      if (given !== undefined && given !== String(vCpus)) {
        throw new Error(`[${path}] environment.WORKER_THREADS (${JSON.stringify(given)}) would disagree with the job's vCPUs; allowed: unset (it is set to vCpus, ${vCpus})`);
      }
      const memoryMiB = memory.toMebibytes();
      if (!Token.isUnresolved(memoryMiB) && memoryMiB < vCpus * MIN_MEMORY_MIB_PER_VCPU) {
        throw new Error(
          `[${path}] memory (${memoryMiB} MiB) is too small for ${vCpus} engine threads; allowed: at least ${MIN_MEMORY_MIB_PER_VCPU} MiB per vCPU (${vCpus * MIN_MEMORY_MIB_PER_VCPU} MiB)`,
        );
      }
    }
    super(scope, id, {
      ...props,
      platform: 'EC2',
      cpu: vCpus,
      memory,
      environment: { ...props.environment, WORKER_THREADS: Token.isUnresolved(vCpus) ? Token.asString(vCpus) : String(vCpus) },
    });
    this.vCpus = vCpus;
  }
}
