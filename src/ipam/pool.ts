/**
 * Pools: one validated IPAM.Config entry (subnet, ip-range, gateway, aux addresses).
 */

import { InvalidError } from '../errors.js';
import { type Family, IP, Prefix } from '../netaddr/index.js';

/**
 * One entry of Docker's `IPAM.Config`, as text, before validation.
 * @example const cfg: PoolConfig = { subnet: '10.1.0.0/16', ipRange: '10.1.5.0/24' };
 */
export interface PoolConfig {
  subnet?: string;
  ipRange?: string;
  gateway?: string;
  auxAddresses?: Record<string, string>;
}

/**
 * A validated pool: every address is inside `subnet` and of its family.
 * `range` is where dynamic allocation happens (the subnet when no ip-range was given).
 */
export interface Pool {
  family: Family;
  subnet: Prefix;
  range: Prefix;
  gateway?: IP;
  /** Aux address name → address; these are never handed to containers. */
  aux: Map<string, IP>;
}

/**
 * True when `ip` is the network address of `subnet` or, for IPv4, its broadcast address:
 * addresses no endpoint may have. Point-to-point prefixes (IPv4 /31 and /32, RFC 3021;
 * IPv6 /127 and /128, RFC 6164) have neither, so every address there is usable. For IPv6
 * the first address is the subnet-router anycast address (RFC 4291 section 2.6.1).
 * @example isReservedAddress(Prefix.parse('10.0.0.0/24'), IP.parse('10.0.0.255')); // true
 */
export function isReservedAddress(subnet: Prefix, ip: IP): boolean {
  if (!subnet.contains(ip) || isPointToPoint(subnet)) return false;
  return ip.equals(subnet.first()) || (subnet.family === 4 && ip.equals(subnet.last()));
}

/**
 * True for IPv4 /31-/32 and IPv6 /127-/128: prefixes without network/broadcast addresses.
 * @example isPointToPoint(Prefix.parse('10.0.0.0/31')); // true
 */
export function isPointToPoint(subnet: Prefix): boolean {
  return subnet.bits > (subnet.family === 4 ? 30 : 126);
}

function familyName(family: Family): string {
  return `IPv${family}`;
}

function parseSubnet(text: string): Prefix {
  const loose = Prefix.tryParse(text);
  if (loose === undefined) {
    throw new InvalidError('SUBNET_INVALID', `Invalid subnet "${text}": it is not a valid CIDR`);
  }
  // dockerd (API 1.44+) refuses host bits rather than silently moving the network.
  if (!loose.ip.equals(IP.parse(text.slice(0, text.indexOf('/'))))) {
    throw new InvalidError(
      'SUBNET_INVALID',
      `Invalid subnet "${text}": host bits are set, it should be "${loose.toString()}"`,
    );
  }
  return loose;
}

function parseRange(text: string, subnet: Prefix): Prefix {
  const fail = (why: string): InvalidError =>
    new InvalidError('IP_RANGE_INVALID', `Invalid ip-range "${text}": ${why}`);
  const loose = Prefix.tryParse(text);
  if (loose === undefined) throw fail('it is not a valid CIDR');
  if (loose.family !== subnet.family) {
    throw fail(`subnet "${subnet.toString()}" is an ${familyName(subnet.family)} subnet`);
  }
  if (!loose.ip.equals(IP.parse(text.slice(0, text.indexOf('/'))))) {
    throw fail(`host bits are set, it should be "${loose.toString()}"`);
  }
  if (!subnet.containsPrefix(loose)) throw fail(`it is not within subnet "${subnet.toString()}"`);
  return loose;
}

/**
 * Parses an address that must lie in `subnet` and be usable by an endpoint.
 * `what` names the field in messages ('gateway', 'aux address "db"').
 */
function parseMember(text: string, subnet: Prefix, what: { code: string; label: string }): IP {
  const fail = (why: string): InvalidError =>
    new InvalidError(what.code, `Invalid ${what.label} "${text}": ${why}`);
  const ip = IP.tryParse(text);
  if (ip === undefined) throw fail('it is not a valid IP address');
  if (ip.family !== subnet.family) {
    throw fail(`subnet "${subnet.toString()}" is an ${familyName(subnet.family)} subnet`);
  }
  if (!subnet.contains(ip)) throw fail(`it is not within subnet "${subnet.toString()}"`);
  if (isReservedAddress(subnet, ip)) {
    const which = ip.equals(subnet.first()) ? 'network' : 'broadcast';
    throw fail(`it is the ${which} address of subnet "${subnet.toString()}"`);
  }
  return ip;
}

/**
 * Validates one IPAM.Config entry as dockerd does and returns the pool.
 *
 * - `subnet` must be a CIDR without host bits set.
 * - `ipRange` must be a CIDR without host bits, inside the subnet.
 * - `gateway` and every aux address must be in the subnet, of its family, and not its
 *   network or (IPv4) broadcast address; aux addresses must differ from each other and from
 *   the gateway.
 * - With `gateway: 'required'` (the default) the subnet must leave room for a gateway and a
 *   container, so IPv4 /31-/32 and IPv6 /127-/128 are refused; when no gateway is given the
 *   first usable address of the subnet (`10.0.0.1` in `10.0.0.0/24`) is chosen, skipping
 *   aux addresses. Like dockerd, the default comes from the subnet even with an ip-range.
 * - With `gateway: 'optional'` no gateway is invented; point-to-point subnets are allowed.
 *
 * @throws InvalidError SUBNET_INVALID, IP_RANGE_INVALID, GATEWAY_INVALID, AUX_ADDRESS_INVALID
 * @example
 * const pool = buildPool({ subnet: '10.1.0.0/16', ipRange: '10.1.5.0/24' });
 * pool.gateway?.toString(); // '10.1.0.1'
 */
export function buildPool(
  cfg: PoolConfig & { subnet: string },
  opts: { gateway?: 'required' | 'optional' } = {},
): Pool {
  const subnet = parseSubnet(cfg.subnet);
  const required = (opts.gateway ?? 'required') === 'required';
  if (required && isPointToPoint(subnet)) {
    const max = subnet.family === 4 ? 30 : 126;
    throw new InvalidError(
      'SUBNET_INVALID',
      `Invalid subnet "${cfg.subnet}": it has no room for a gateway and a container, use a /${max} or larger`,
    );
  }
  // dockerd treats an empty field as absent, and some clients send "" rather than omit it.
  const range = isBlank(cfg.ipRange) ? subnet : parseRange(cfg.ipRange, subnet);

  let gateway = isBlank(cfg.gateway)
    ? undefined
    : parseMember(cfg.gateway, subnet, { code: 'GATEWAY_INVALID', label: 'gateway' });

  const aux = new Map<string, IP>();
  const auxOwner = new Map<bigint, string>();
  for (const [name, text] of Object.entries(cfg.auxAddresses ?? {})) {
    const label = `aux address "${name}"`;
    const ip = parseMember(text, subnet, { code: 'AUX_ADDRESS_INVALID', label });
    const fail = (why: string): InvalidError =>
      new InvalidError('AUX_ADDRESS_INVALID', `Invalid ${label} "${text}": ${why}`);
    if (gateway?.equals(ip) === true) throw fail('it is the gateway');
    const other = auxOwner.get(ip.value);
    if (other !== undefined) throw fail(`it is also aux address "${other}"`);
    auxOwner.set(ip.value, name);
    aux.set(name, ip);
  }

  if (gateway === undefined && required) {
    gateway = defaultGateway(subnet, auxOwner);
  }
  return gateway === undefined
    ? { family: subnet.family, subnet, range, aux }
    : { family: subnet.family, subnet, range, gateway, aux };
}

function isBlank(text: string | undefined): text is undefined | '' {
  return text === undefined || text === '';
}

/** The first address after the network address that is not an aux address. */
function defaultGateway(subnet: Prefix, aux: Map<bigint, string>): IP {
  // Only aux addresses can be in the way, so at most aux.size + 1 steps are needed.
  for (let i = 1n; i < subnet.size(); i++) {
    const ip = subnet.nth(i);
    if (isReservedAddress(subnet, ip)) break;
    if (!aux.has(ip.value)) return ip;
  }
  throw new InvalidError(
    'GATEWAY_INVALID',
    `Cannot choose a gateway for subnet "${subnet.toString()}": every address is an aux address`,
  );
}
