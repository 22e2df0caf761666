import { lookup } from 'dns/promises';
import ipaddr from 'ipaddr.js';
import { isIP } from 'net';
import { PRIVATE_RANGES, RANGE_WORDS, specialRange } from '../../net/address';

/**
 * Photo URLs come from a submitter: they are untrusted, and a worker that fetched whatever they name
 * would be a proxy into its own network (the instance metadata service at 169.254.169.254, VPC
 * endpoints, databases on private addresses). So before every request, and again on every redirect,
 * the host is resolved (all of its addresses), every address must be a public unicast address, and
 * the connection is then made to one of those checked addresses (download.ts pins them through the
 * request's `lookup`), so a second DNS answer cannot swap in another address between check and connect.
 *
 * Classification of addresses is ipaddr.js's `range()` (IANA special-purpose registries, IPv4-mapped
 * IPv6 unwrapped first): anything but `unicast` is refused. An operator (never a submitter: the
 * variable is not in bundle-photos' settable environment) may set PHOTOS_ALLOW_PRIVATE_HOSTS=true (or
 * a list of networks) to allow loopback, private, unique-local and carrier-grade-NAT addresses, for
 * photo hosts inside the VPC or local tests; link-local (the metadata service, fe80::/10), unspecified, multicast, broadcast
 * and reserved addresses stay refused even then.
 */
export const ALLOW_PRIVATE_HOSTS_ENV = 'PHOTOS_ALLOW_PRIVATE_HOSTS';

export interface HostPolicy {
  /**
   * Loopback, private (RFC 1918), unique-local (fc00::/7) and carrier-grade NAT (100.64/10) addresses
   * allowed: none, all of them, or those inside the listed networks.
   */
  readonly allowPrivate: 'none' | 'all' | readonly [ipaddr.IPv4 | ipaddr.IPv6, number][];
}

export const PUBLIC_ONLY: HostPolicy = { allowPrivate: 'none' };

/**
 * The policy the operator set in the worker's own environment: unset or `false` (public hosts only),
 * `true` (also private and loopback hosts), or a comma-separated list of networks (`10.20.0.0/16,fd00::/8`):
 * only private addresses inside them. Anything else is an error naming the variable.
 */
export function hostPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): HostPolicy {
  const raw = (env[ALLOW_PRIVATE_HOSTS_ENV] ?? '').trim();
  if (raw === '' || raw === 'false') return PUBLIC_ONLY;
  if (raw === 'true') return { allowPrivate: 'all' };
  const networks = raw.split(',').map((cidr) => {
    try {
      return ipaddr.parseCIDR(cidr.trim());
    } catch {
      throw new Error(
        `${ALLOW_PRIVATE_HOSTS_ENV}: ${JSON.stringify(cidr.trim())} is not a network; allowed: true, false, or networks in CIDR ` +
          'notation separated by commas (10.20.0.0/16,fd00::/8); it is set by the operator, default false',
      );
    }
  });
  return { allowPrivate: networks };
}

/** A URL the worker will not fetch. Never retried. */
export class RefusedUrl extends Error {}

/** Why `address` may not be connected to under `policy`, or undefined when it may. */
export function addressRefusal(address: string, policy: HostPolicy): string | undefined {
  const range = specialRange(address);
  if (range === undefined) return undefined;
  if (range === 'invalid') return 'not an IP address';
  if (PRIVATE_RANGES.has(range)) {
    // IPv4-mapped IPv6 (::ffff:127.0.0.1) is the IPv4 address it wraps.
    const ip = ipaddr.process(address);
    const allow = policy.allowPrivate;
    if (allow === 'all') return undefined;
    if (allow !== 'none' && allow.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits))) return undefined;
  }
  return RANGE_WORDS[range] ?? `special-purpose (${range})`;
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/**
 * The addresses to connect to for `url`, every one of them checked; throws RefusedUrl for a scheme
 * other than http/https or any refused address (one bad address among several refuses the host: the
 * client might pick it).
 */
export async function resolveAllowed(url: URL, policy: HostPolicy): Promise<ResolvedAddress[]> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RefusedUrl(`${url.href} refused: only http:// and https:// URLs are fetched (not ${url.protocol})`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const family = isIP(host);
  const addresses: ResolvedAddress[] = family ? [{ address: host, family }] : await lookup(host, { all: true, verbatim: true });
  if (addresses.length === 0) throw new Error(`${host}: no addresses`);
  for (const a of addresses) {
    const why = addressRefusal(a.address, policy);
    if (why) {
      const resolved = family ? '' : ` resolves to ${a.address}, which`;
      throw new RefusedUrl(
        `${url.href} refused: host ${host}${resolved} is ${/^[aeiou]/.test(why) ? 'an' : 'a'} ${why} address; photo URLs must name public hosts` +
          (PRIVATE_RANGES.has(specialRange(a.address) ?? '') ? ` (an operator may allow private hosts with ${ALLOW_PRIVATE_HOSTS_ENV}=true)` : ''),
      );
    }
  }
  return addresses;
}
