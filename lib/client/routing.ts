import { z } from 'zod';
import { declaredPlacement } from '../../containers/worker/src/operations/declarations';
import { DEFAULT_PLACEMENT_KEY, placementKey } from '../../containers/worker/src/operations/placement';
import { InvalidRequestError } from './errors';
import { issuesToFieldErrors } from './schema';

/** A job queue and the job definition submitted to it (names or ARNs). */
export interface JobTarget {
  readonly jobQueue: string;
  readonly jobDefinition: string;
}

/**
 * Where each placement's jobs go, keyed by `<runsOn>:<image>` (containers/worker/src/operations/placement.ts
 * `placementKey`), e.g. `{ 'FARGATE:ocr': { jobQueue: <Fargate queue>, jobDefinition: <OCR job definition> } }`.
 * The client's own jobQueue/jobDefinition serve `EC2:worker` (the default placement) unless a route names it.
 * The platform stack sets this as JSON in `JOB_ROUTES` on its handlers and in the `JobRoutes` output.
 */
export type JobRoutes = Readonly<Record<string, JobTarget>>;

const ROUTE_KEY = /^(EC2|FARGATE):[a-z][a-z0-9-]{0,31}$/;

const routesSchema = z.record(
  z.string(),
  z.strictObject({ jobQueue: z.string().min(1, 'jobQueue must not be empty'), jobDefinition: z.string().min(1, 'jobDefinition must not be empty') }),
);

/**
 * Parses a route table given as JSON (the `JOB_ROUTES` variable, `batchctl --job-routes`, the `JobRoutes`
 * stack output); `source` names where it came from in the error.
 */
export function parseJobRoutes(json: string | undefined, source: string): JobRoutes | undefined {
  if (json === undefined || json === '') return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new InvalidRequestError(`${source} is not JSON`, [{ field: source, message: `must be a JSON object of routes: ${(err as Error).message}` }]);
  }
  return checkJobRoutes(raw, source);
}

/** Validates a route table (an object); every problem is one field error under `source`. */
export function checkJobRoutes(raw: unknown, source = 'routes'): JobRoutes {
  const parsed = routesSchema.safeParse(raw);
  // Keys are checked here: zod reports a bad record key only as "Invalid key in record".
  const keyErrors =
    raw !== null && typeof raw === 'object' && !Array.isArray(raw)
      ? Object.keys(raw)
        .filter((key) => !ROUTE_KEY.test(key))
        .map((key) => ({ field: `${source}.${key}`, message: 'route keys are "<EC2|FARGATE>:<image>", e.g. "FARGATE:ocr"', value: key }))
      : [];
  if (keyErrors.length) throw new InvalidRequestError(`invalid ${source}`, keyErrors);
  if (parsed.success) return Object.freeze(Object.assign(Object.create(null) as Record<string, JobTarget>, parsed.data));
  const errors = issuesToFieldErrors(parsed.error.issues, raw).map((e) => ({ ...e, field: e.field === '(body)' ? source : `${source}.${e.field}` }));
  throw new InvalidRequestError(`invalid ${source}`, errors);
}

/**
 * The queue and job definition an operation's jobs go to: its declared placement's route, the client's
 * own queue and job definition for the default placement. An operation placed elsewhere with no route
 * is refused rather than sent to a queue or image it cannot run on.
 */
export function routeOperation(operation: string, fallback: Partial<JobTarget>, routes: JobRoutes | undefined): Partial<JobTarget> & { readonly placement: string } {
  const placement = declaredPlacement(operation);
  const key = placement ? placementKey(placement) : DEFAULT_PLACEMENT_KEY;
  const route = routes && Object.prototype.hasOwnProperty.call(routes, key) ? routes[key] : undefined;
  if (route) return { ...route, placement: key };
  if (key === DEFAULT_PLACEMENT_KEY) return { ...fallback, placement: key };
  throw new InvalidRequestError(`operation ${operation} runs on ${key}, and this client has no route for it`, [
    {
      field: 'operation',
      value: operation,
      message: `runs on ${key} (${placement!.vcpus} vCPU, ${placement!.memoryMiB} MiB); configure a route for "${key}" (BatchJobClient routes, JOB_ROUTES, batchctl --job-routes or a platform stack with its JobRoutes output)`,
    },
  ]);
}

/** Every queue the client may submit to: its own and each route's, without duplicates. */
export function routedQueues(jobQueue: string, routes: JobRoutes | undefined): string[] {
  return [...new Set([jobQueue, ...Object.values(routes ?? {}).map((r) => r.jobQueue)])];
}
