export * from './batch-job-client';
export * from './errors';
export { backoffDelay, isThrottle, isTransient, withRetry } from './retry';
export type { RetryPolicy } from './retry';
export { submitRequestSchema, parseSubmitRequest, issuesToFieldErrors, CONTRACT_ENV_NAMES, DEFAULT_RETENTION_DAYS } from './schema';
export type { SubmitRequest, SubmitRequestInput } from './schema';
export { resolveClientConfig, stackOutputsToConfig, STACK_OUTPUT_KEYS } from './config';
export type { ClientConfig } from './config';
export { checkSubmissionPolicy, validateSubmitRequest, requestHash, neverSettable, tenantPrefix, CONTRACT_NAMES, MAX_OPERATION_CONFIG_BYTES, TENANT_ID_PATTERN, USER_ID_PATTERN } from './policy';
