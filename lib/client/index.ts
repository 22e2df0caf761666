export * from './batch-job-client';
export * from './errors';
export { classify as classifyRetryError, isThrottle, sdkRetryStrategy, withRetry, DEFAULT_MAX_RETRIES } from './retry';
export type { RetryMode } from './retry';
export { submitRequestSchema, parseSubmitRequest, issuesToFieldErrors, CONTRACT_ENV_NAMES, DEFAULT_RETENTION_DAYS } from './schema';
export type { SubmitRequest, SubmitRequestInput } from './schema';
export { resolveClientConfig, stackOutputsToConfig, STACK_OUTPUT_KEYS } from './config';
export type { ClientConfig } from './config';
export { checkSubmissionPolicy, validateSubmitRequest, requestHash, neverSettable, tenantPrefix, CONTRACT_NAMES, MAX_OPERATION_CONFIG_BYTES, TENANT_ID_PATTERN, USER_ID_PATTERN } from './policy';
