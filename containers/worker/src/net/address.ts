import ipaddr from 'ipaddr.js';

/**
 * Which addresses are public, in one place for every outbound request whose target comes from outside
 * (photo URLs in the worker, job callback URLs in lib/client): ipaddr.js's `range()` over the IANA
 * special-purpose registries, IPv4-mapped IPv6 (`::ffff:127.0.0.1`) unwrapped to the IPv4 address first.
 * Only `unicast` is public. No I/O and no AWS imports, so the SDK and the Lambda bundles can use it too.
 */

/** ipaddr.js range names, in words for error messages and failure lists. */
export const RANGE_WORDS: Readonly<Record<string, string>> = {
  loopback: 'loopback',
  linkLocal: 'link-local (includes the instance metadata address)',
  private: 'private',
  uniqueLocal: 'private (unique local)',
  carrierGradeNat: 'private (carrier-grade NAT)',
  unspecified: 'unspecified',
  multicast: 'multicast',
  broadcast: 'broadcast',
  reserved: 'reserved',
};

/** The ranges an operator or a stage may choose to allow (hosts inside their own network). */
export const PRIVATE_RANGES: ReadonlySet<string> = new Set(['loopback', 'private', 'uniqueLocal', 'carrierGradeNat']);

/**
 * The special-purpose range `address` is in (an ipaddr.js range name such as `private`, `loopback`,
 * `linkLocal`, `rfc6052`), `invalid` when it is no IP address, or undefined when it is public unicast.
 */
export function specialRange(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return 'invalid';
  const range = ipaddr.process(address).range();
  return range === 'unicast' ? undefined : range;
}
