import { BlockList, isIP } from 'net';
import { specialRange } from '../../containers/worker/src/net/address';

/**
 * The address rules of callback URLs, without I/O: the submission policy applies staticUrlProblem
 * at submit; lib/client/callback.ts applies it again at call time and checks every resolved address.
 */

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
  // Anything but public unicast (private, loopback, link-local, multicast, reserved, NAT64, ...): the
  // same classification the worker applies to photo URLs.
  if (specialRange(addr) === undefined) return undefined;
  if (allowed?.check(addr, type === 4 ? 'ipv4' : 'ipv6')) return undefined;
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

