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

/**
 * Where `ocr` runs: Fargate, 2 vCPU / 4 GiB: the engine is single-threaded WebAssembly per page, and a
 * second vCPU keeps decoding, S3 and the Node event loop off the recognizing core; 4 GiB covers the
 * largest page (50 MP grey = 50 MB, the engine's working set a few hundred MB) with room for a large
 * input object. Here rather than in ocr.ts so the submission side (declarations.ts) can name it
 * without loading the operation.
 */
export const OCR_PLACEMENT: Placement = { runsOn: 'FARGATE', vcpus: 2, memoryMiB: 4096, image: 'ocr' };

/**
 * The key a submitter's route table uses for a placement: `<runsOn>:<image>` (e.g. `FARGATE:ocr`).
 * vCPUs and memory are properties of the job definition the route names, so they are not part of it.
 */
export function placementKey(placement: Placement): string {
  return `${placement.runsOn}:${placement.image}`;
}

export const DEFAULT_PLACEMENT_KEY = placementKey(DEFAULT_PLACEMENT);

/** Whether two placements are the same. */
export function samePlacement(a: Placement, b: Placement): boolean {
  return a.runsOn === b.runsOn && a.vcpus === b.vcpus && a.memoryMiB === b.memoryMiB && a.image === b.image;
}

/** The placement an operation module declares, or the default one. */
export function placementOf(op: object): Placement {
  const declared = (op as { placement?: Placement }).placement;
  return declared ?? DEFAULT_PLACEMENT;
}
