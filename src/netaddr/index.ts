/**
 * IPv4/IPv6 addresses, CIDR prefixes and MAC addresses as immutable values (pure).
 * @example
 * import { IP, Prefix, MAC } from '../netaddr/index.js';
 */

export { type Family, IP, familyBits } from './ip.js';
export { Prefix } from './prefix.js';
export { MAC } from './mac.js';
