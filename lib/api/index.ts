export * from './submit-api';
export * from './queue-triggered-jobs';
export * from './quota-table';
export { grantJobClient, jobClientEnvironment, jobRoutesJson } from './grants';
export type { JobRouteTarget, JobRouteTargets } from './grants';
export type { JobClientGrantProps, JobSizingLimits } from './grants';
