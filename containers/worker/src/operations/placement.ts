/**
 * Where an operation's jobs run. An operation module may declare `placement`; one without runs where
 * every job ran before placements existed: the EC2 queue with the streaming worker's job definition.
 * The submit paths (submit API, SDK, batchctl, workload APIs) call `placementOf` to choose the queue
 * and job definition, so routing is one small function rather than a branch per caller.
 */
export type ComputeKind = 'EC2' | 'FARGATE';

export interface Placement {
  /** The queue family: 'FARGATE' jobs go to the Fargate queue (Fargate Spot first, then on-demand). */
  readonly runsOn: ComputeKind;
  /** vCPUs of one job; for Fargate one of 0.25, 0.5, 1, 2, 4, 8, 16. */
  readonly vcpus: number;
  /** Memory of one job in MiB; for Fargate a size valid for `vcpus`. */
  readonly memoryMiB: number;
  /**
   * The worker image target the job definition uses ('worker' is the streaming worker; a heavier
   * operation names its own target of the same Dockerfile, which runs the same entrypoint).
   */
  readonly image: 'worker' | 'ocr';
}

export const DEFAULT_PLACEMENT: Placement = { runsOn: 'EC2', vcpus: 1, memoryMiB: 2048, image: 'worker' };

/** The placement an operation module declares, or the default one. */
export function placementOf(op: object): Placement {
  const declared = (op as { placement?: Placement }).placement;
  return declared ?? DEFAULT_PLACEMENT;
}
