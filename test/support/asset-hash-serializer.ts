/**
 * Snapshot serializer that masks asset hashes (64 hex characters, as in S3Key "abc...def.zip" and
 * image tags), so a snapshot changes when the template's shape changes, not when a handler does.
 */
const HASH = /[0-9a-f]{64}/g;

export function test(val: unknown): boolean {
  return typeof val === 'string' && /[0-9a-f]{64}/.test(val);
}

export function serialize(val: string): string {
  return JSON.stringify(val.replace(HASH, '[ASSET-HASH]'));
}
