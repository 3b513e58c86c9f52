/**
 * The key per-client caps count under: an IPv4 address as is, an IPv6 address by its network
 * prefix (default /64). One IPv6 subscriber usually gets a whole /64 and may pick any address in
 * it (privacy extensions rotate them), so counting exact addresses would let one client multiply
 * its caps at will. Pure; the address is parsed by the WHATWG URL parser (validation,
 * canonical form, IPv4-mapped addresses), not by hand.
 */
import { isIPv6 } from 'node:net';

/** `address` as the caps count it: IPv4 unchanged, IPv6 masked to `ipv6PrefixBits` (1-128) and written `<hex groups>::/<bits>`. */
export function clientKeyOf(address: string, ipv6PrefixBits: number): string {
  if (!isIPv6(address)) return address;
  const groups = ipv6Groups(address);
  if (!groups) return address; // a zone id (fe80::1%eth0): the exact address
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    // IPv4-mapped (::ffff:a.b.c.d, how a dual-stack socket reports IPv4 clients): the IPv4 address.
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  const bits = Math.min(128, Math.max(1, Math.trunc(ipv6PrefixBits)));
  const masked = groups.map((g, i) => {
    const keep = Math.min(16, Math.max(0, bits - i * 16));
    return keep === 0 ? 0 : g & (0xffff << (16 - keep)) & 0xffff;
  });
  if (bits === 128) return masked.map((g) => g.toString(16)).join(':');
  const used = Math.ceil(bits / 16);
  return `${masked.slice(0, used).map((g) => g.toString(16)).join(':')}::/${bits}`;
}

/** The eight 16-bit groups of a valid IPv6 address, or null when the URL parser refuses it. */
function ipv6Groups(address: string): number[] | null {
  let host: string;
  try {
    host = new URL(`http://[${address}]/`).hostname.slice(1, -1); // canonical: lower case, '::' compressed, IPv4 tail in hex
  } catch {
    return null;
  }
  const [head, tail] = host.includes('::') ? host.split('::') : [host, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  const groups = [...left, ...fill, ...right].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g)) ? groups : null;
}
