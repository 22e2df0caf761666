import { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';

/**
 * S3 clients for the worker. Input uses the SDK's standard endpoint resolution (AWS_ENDPOINT_URL /
 * AWS_ENDPOINT_URL_S3); output may live on another S3-compatible store (Cloudflare R2, MinIO...) named
 * by OUTPUT_S3_ENDPOINT with its own credentials.
 */
export interface OutputStoreOptions {
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle?: boolean;
}

export function inputS3Client(overrides: S3ClientConfig = {}): S3Client {
  return new S3Client({ forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true', ...overrides });
}

export function outputS3Client(options: OutputStoreOptions = {}, overrides: S3ClientConfig = {}): S3Client {
  const config: S3ClientConfig = {
    forcePathStyle: options.forcePathStyle ?? process.env.S3_FORCE_PATH_STYLE === 'true',
    ...overrides,
  };
  if (options.endpoint) config.endpoint = options.endpoint;
  if (options.region) config.region = options.region;
  if (options.accessKeyId && options.secretAccessKey) {
    config.credentials = { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey };
  }
  return new S3Client(config);
}
