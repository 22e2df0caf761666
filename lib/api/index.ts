export * from './submit-api';
export * from './queue-triggered-jobs';
export { grantJobClient, jobClientEnvironment, jobRoutesJson } from './grants';
export type { JobRouteTarget, JobRouteTargets } from './grants';
export type { JobClientGrantProps } from './grants';
