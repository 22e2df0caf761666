export * from './submit-api';
export * from './queue-triggered-jobs';
export { grantJobClient, jobClientEnvironment } from './grants';
export type { JobClientGrantProps } from './grants';
