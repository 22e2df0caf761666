import { createHash, timingSafeEqual } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/**
 * The per-subscription secret in the webhook path (`POST /webhooks/batch-complete/{secret}`).
 * The CompletionWebhook construct generates it in Secrets Manager (48 letters and digits) and
 * subscribes the URL through a CloudFormation dynamic reference, so its value is in neither the
 * template nor the Lambda configuration; the handler reads it once per cold start.
 */
export const PATH_SECRET_PATTERN = /^[A-Za-z0-9]{32,128}$/;

export async function loadPathSecret(client: SecretsManagerClient, secretId: string): Promise<string> {
  const res = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  const value = res.SecretString;
  if (value === undefined || !PATH_SECRET_PATTERN.test(value)) {
    // Never quote the value: it is the secret.
    throw new Error(`webhook: secret ${secretId} must be a string of 32 to 128 letters and digits (${value === undefined ? 'it has no SecretString' : `it has ${value.length} characters of another form`})`);
  }
  return value;
}

/**
 * Constant-time comparison against `expected`: both sides are hashed first, so neither the content
 * nor the length of a guess changes the time it takes to refuse it.
 */
export function createSecretCheck(expected: string): (given: unknown) => boolean {
  if (!PATH_SECRET_PATTERN.test(expected)) throw new Error('webhook: the path secret must be 32 to 128 letters and digits');
  const want = createHash('sha256').update(expected, 'utf8').digest();
  return (given) => {
    if (typeof given !== 'string') return false;
    const got = createHash('sha256').update(given, 'utf8').digest();
    return timingSafeEqual(want, got);
  };
}
