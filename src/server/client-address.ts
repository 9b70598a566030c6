/**
 * @module
 * Which "client" a connection counts against for the per-address cap. IPv4 addresses count one
 * by one; an IPv6 host usually owns a whole /64 (SLAAC, privacy addresses), so IPv6 addresses
 * count by their /64 prefix: one host cannot dodge the cap by rotating addresses.
 */
import { isIPv6 } from 'node:net';

/** The key a connection from `address` counts against (`unknown` when the socket has none). */
export function clientKeyOf(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  // A dual-stack listener reports IPv4 clients as IPv4-mapped IPv6 addresses.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as lower-case hex without leading zeros. */
function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]?.split('::') ?? [];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = Array.from({ length: Math.max(0, 8 - left.length - right.length) }, () => '0');
  return [...left, ...zeros, ...right].map((group) => Number.parseInt(group, 16).toString(16));
}
