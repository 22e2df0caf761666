import { BlockList, isIP } from 'net';

/**
 * The address rules of callback URLs, without I/O: the submission policy applies staticUrlProblem
 * at submit; lib/client/callback.ts applies it again at call time and checks every resolved address.
 */

/** Addresses a callback may never reach unless the stage allows them: RFC 1918/6598, loopback, link-local, multicast, reserved. */
const FORBIDDEN_RANGES: readonly (readonly [string, number, 'ipv4' | 'ipv6'])[] = [
  ['0.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['224.0.0.0', 3, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['fc00::', 7, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
  ['64:ff9b::', 96, 'ipv6'],
];
const forbidden = new BlockList();
for (const [net, prefix, type] of FORBIDDEN_RANGES) forbidden.addSubnet(net, prefix, type);

/**
 * Parses `CIDR[,CIDR...]` (e.g. `127.0.0.0/8`): the private ranges a stage allows callbacks to reach
 * (a development stage with a receiver on loopback). Throws naming the bad entry.
 */
export function parseAllowedCidrs(cidrs: readonly string[], field = 'callbackAllowedCidrs'): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
    const type = m ? isIP(m[1]) : 0;
    const prefix = m ? Number(m[2]) : -1;
    if (!m || type === 0 || prefix > (type === 4 ? 32 : 128)) {
      throw new Error(`${field} (${JSON.stringify(cidr)}) is not a CIDR; allowed: an IPv4 or IPv6 network such as 127.0.0.0/8 or fd00::/8`);
    }
    list.addSubnet(m[1], prefix, type === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/** Why `address` may not be called, or undefined when it may. IPv4-mapped IPv6 is checked as IPv4. */
export function addressProblem(address: string, allowed?: BlockList): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const addr = mapped ? mapped[1] : address;
  const type = isIP(addr);
  if (type === 0) return `${address} is not an IP address`;
  const family = type === 4 ? 'ipv4' : 'ipv6';
  if (!forbidden.check(addr, family)) return undefined;
  if (allowed?.check(addr, family)) return undefined;
  return `${address} is a private, loopback, link-local or reserved address`;
}

/** Hostnames that name the local machine or cluster whatever DNS says. */
export function isLocalHostname(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.local') || h.endsWith('.internal');
}

/** The URL's bracket-free host when it is an IP literal, else undefined. */
export function literalAddress(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return isIP(host) ? host : undefined;
}

/**
 * The checks that need no DNS, shared by submit (lib/client/policy) and call time: https, no
 * credentials, no literal forbidden address, no local hostname. Returns the problem or undefined.
 */
export function staticUrlProblem(raw: string, allowed?: BlockList): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (url.protocol !== 'https:') return `scheme ${url.protocol} is not https:`;
  if (url.username || url.password) return 'carries user:password@';
  const literal = literalAddress(url);
  if (literal) return addressProblem(literal, allowed);
  if (isLocalHostname(url.hostname) && !allowed) return `host ${url.hostname} names a local machine`;
  return undefined;
}

