import type { OperationDeclaration } from '../../../containers/worker/src/operations/declarations';
import { DEFAULT_PLACEMENT } from '../../../containers/worker/src/operations/placement';
import { FieldError } from '../errors';
import { refused } from './fields';

/**
 * Sizing per submit: a request may name `vcpus` and/or `memoryMiB`; they must lie within the bounds
 * the operation declares (declarations.ts `sizing`, else only its placement's values) and within the
 * stack's ceiling (SizingLimits, from the submit Lambdas' environment), and for a Fargate-placed
 * operation form one of Fargate's valid vCPU/memory pairs. Applied as containerOverrides.resourceRequirements.
 */
export interface SizingLimits {
  /** Most vCPUs one job may ask for. @default - no ceiling beyond the operation's bounds */
  readonly maxVcpus?: number;
  /** Most memory (MiB) one job may ask for. @default - no ceiling beyond the operation's bounds */
  readonly maxMemoryMiB?: number;
}

/** What the job runs with. */
export interface JobSize {
  readonly vcpus: number;
  readonly memoryMiB: number;
}

/**
 * Fargate's task sizes (https://docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html):
 * vCPU -> valid memory values in MiB.
 */
export const FARGATE_SIZES: ReadonlyMap<number, readonly number[]> = new Map([
  [0.25, [512, 1024, 2048]],
  [0.5, range(1024, 4096, 1024)],
  [1, range(2048, 8192, 1024)],
  [2, range(4096, 16384, 1024)],
  [4, range(8192, 30720, 1024)],
  [8, range(16384, 61440, 4096)],
  [16, range(32768, 122880, 8192)],
]);

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

/** Environment variables the submit Lambdas read the stack's ceiling from (SubmitApi / QueueTriggeredJobs `sizingLimits`). */
export const SIZING_ENV = { maxVcpus: 'MAX_JOB_VCPUS', maxMemoryMiB: 'MAX_JOB_MEMORY_MIB' } as const;

/** The stack's ceiling from the environment; a set but malformed value is a deployment error. */
export function sizingLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): SizingLimits {
  const read = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} (${JSON.stringify(raw)}) must be a positive number: the construct's sizingLimits sets it`);
    return n;
  };
  return { maxVcpus: read(SIZING_ENV.maxVcpus), maxMemoryMiB: read(SIZING_ENV.maxMemoryMiB) };
}

/**
 * Field errors of a request's `vcpus` / `memoryMiB`, each naming the field, the value and the allowed
 * range (the tighter of the operation's bounds and the stack's ceiling).
 */
export function checkSizing(req: { vcpus?: number; memoryMiB?: number }, declaration: OperationDeclaration, limits: SizingLimits = {}): FieldError[] {
  if (req.vcpus === undefined && req.memoryMiB === undefined) return [];
  const placement = declaration.placement ?? DEFAULT_PLACEMENT;
  const bounds = declaration.sizing ?? { vcpus: { min: placement.vcpus, max: placement.vcpus }, memoryMiB: { min: placement.memoryMiB, max: placement.memoryMiB } };
  const errors: FieldError[] = [];
  const check = (field: 'vcpus' | 'memoryMiB', value: number | undefined, b: { min: number; max: number }, ceiling: number | undefined, unit: string) => {
    if (value === undefined) return;
    const max = ceiling === undefined ? b.max : Math.min(b.max, ceiling);
    if (value < b.min || value > max) {
      const why = declaration.sizing ? '' : ` (${declaration.name} declares no sizing: only its placement's value)`;
      const capped = ceiling !== undefined && ceiling < b.max ? ` (the stack allows at most ${ceiling})` : '';
      errors.push(refused(field, value, `${b.min} to ${max} ${unit} for ${declaration.name}${why}${capped}`));
    }
  };
  check('vcpus', req.vcpus, bounds.vcpus, limits.maxVcpus, 'vCPUs');
  check('memoryMiB', req.memoryMiB, bounds.memoryMiB, limits.maxMemoryMiB, 'MiB');
  if (req.vcpus !== undefined && placement.runsOn === 'EC2' && !Number.isInteger(req.vcpus)) {
    errors.push(refused('vcpus', req.vcpus, `a whole number of vCPUs: ${declaration.name} runs on EC2 (fractions are Fargate's)`));
  }
  if (errors.length === 0 && placement.runsOn === 'FARGATE') {
    const size = jobSize(req, declaration);
    const valid = FARGATE_SIZES.get(size.vcpus);
    if (!valid) {
      errors.push(refused('vcpus', size.vcpus, `one of Fargate's vCPU values ${[...FARGATE_SIZES.keys()].join(', ')} (${declaration.name} runs on Fargate)`));
    } else if (!valid.includes(size.memoryMiB)) {
      errors.push(
        refused('memoryMiB', size.memoryMiB, `with ${size.vcpus} vCPU on Fargate (${declaration.name}): ${valid[0]} to ${valid[valid.length - 1]} MiB in steps of ${valid[1] - valid[0]}`),
      );
    }
  }
  return errors;
}

/** The size a job runs with: the request's values, the placement's for what it leaves out. */
export function jobSize(req: { vcpus?: number; memoryMiB?: number }, declaration: OperationDeclaration): JobSize {
  const placement = declaration.placement ?? DEFAULT_PLACEMENT;
  return { vcpus: req.vcpus ?? placement.vcpus, memoryMiB: req.memoryMiB ?? placement.memoryMiB };
}
