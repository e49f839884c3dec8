/**
 * Choosing subnets for networks created without `--subnet`, and overlap checks.
 */

import { BugError, ConflictError, InvalidError } from '../errors.js';
import { IP, Prefix } from '../netaddr/index.js';

/**
 * dockerd's default local address pools: 172.17.0.0/16 to 172.31.0.0/16 as /16s, then
 * 192.168.0.0/16 split into /20s (31 subnets in all). `size` is the prefix length of each
 * subnet cut from `base`.
 * @example DEFAULT_POOLS[0]; // { base: '172.17.0.0/16', size: 16 }
 */
export const DEFAULT_POOLS: readonly { base: string; size: number }[] = Object.freeze([
  ...Array.from({ length: 15 }, (_, i) =>
    Object.freeze({ base: `172.${17 + i}.0.0/16`, size: 16 }),
  ),
  Object.freeze({ base: '192.168.0.0/16', size: 20 }),
]);

function parsePool(pool: { base: string; size: number }): Prefix {
  let base: Prefix;
  try {
    base = Prefix.parse(pool.base, { strict: true });
  } catch (cause) {
    throw new InvalidError('POOL_INVALID', `Invalid address pool base "${pool.base}"`, { cause });
  }
  const max = base.family === 4 ? 32 : 128;
  if (!Number.isInteger(pool.size) || pool.size < base.bits || pool.size > max) {
    throw new InvalidError(
      'POOL_INVALID',
      `Invalid address pool "${pool.base}": size "${pool.size}" is not between "${base.bits}" and "${max}"`,
    );
  }
  return base;
}

/**
 * Every subnet the pools offer, in order: each base split into prefixes of its `size`.
 * Lazy, so a pool like `fd00::/8` split into /64s costs nothing until iterated.
 * @throws InvalidError POOL_INVALID for a bad base or size
 * @example [...candidateSubnets()].slice(0, 2).map(String); // ['172.17.0.0/16', '172.18.0.0/16']
 */
export function* candidateSubnets(
  pools: readonly { base: string; size: number }[] = DEFAULT_POOLS,
): Generator<Prefix> {
  for (const pool of pools) {
    const base = parsePool(pool);
    const step = 1n << BigInt((base.family === 4 ? 32 : 128) - pool.size);
    const count = 1n << BigInt(pool.size - base.bits);
    for (let i = 0n; i < count; i++) {
      yield Prefix.fromIP(IP.fromValue(base.family, base.ip.value + i * step), pool.size);
    }
  }
}

/**
 * The first candidate subnet that overlaps nothing in `inUse`, or `undefined`.
 *
 * `inUse` should hold the subnets of other networks and the routes and addresses of the
 * daemon's namespace, so a new bridge never shadows a host route.
 *
 * `skipFirst` leaves the very first candidate (172.17.0.0/16 with the default pools) to the
 * default `bridge` network: dockerd creates that network without `skipFirst` and every
 * user network with it, so user networks start at 172.18.0.0/16 even while the default
 * bridge is absent or disabled.
 *
 * Candidates covered by a large `inUse` prefix are skipped in one step, so a huge IPv6 pool
 * is never enumerated.
 *
 * @throws InvalidError POOL_INVALID for a bad pool
 * @example
 * chooseSubnet([Prefix.parse('172.18.0.0/16')], { skipFirst: true })?.toString();
 * // '172.19.0.0/16'
 */
export function chooseSubnet(
  inUse: Iterable<Prefix>,
  opts: { pools?: readonly { base: string; size: number }[]; skipFirst?: boolean } = {},
): Prefix | undefined {
  const taken = [...inUse];
  let skip = opts.skipFirst === true;
  for (const pool of opts.pools ?? DEFAULT_POOLS) {
    const base = parsePool(pool);
    const family = base.family;
    const hostBits = BigInt((family === 4 ? 32 : 128) - pool.size);
    const end = base.ip.value + base.size(); // one past the pool
    let next = base.ip.value;
    if (skip) {
      next += 1n << hostBits;
      skip = false;
    }
    while (next < end) {
      const candidate = Prefix.fromIP(IP.fromValue(family, next), pool.size);
      const hit = taken.find((p) => p.overlaps(candidate));
      if (hit === undefined) return candidate;
      // Skip to the first candidate past both the candidate and what it collided with.
      const past = hit.last().value > candidate.last().value ? hit.last() : candidate.last();
      next = ((past.value >> hostBits) + 1n) << hostBits;
    }
  }
  return undefined;
}

/**
 * An RFC 4193 unique local /64: `fd` + the 40-bit global ID from `random` + subnet ID 0.
 * The caller supplies the random bytes (this module is pure).
 * @throws BugError when `random` is not five bytes long
 * @example ulaSubnet(new Uint8Array([1, 2, 3, 4, 5])).toString(); // 'fd01:203:405::/64'
 */
export function ulaSubnet(random: Uint8Array): Prefix {
  if (random.length !== 5) throw new BugError(`ulaSubnet needs 5 bytes, got "${random.length}"`);
  const bytes = new Uint8Array(16);
  bytes[0] = 0xfd;
  bytes.set(random, 1);
  return Prefix.fromIP(IP.fromBytes(bytes), 64);
}

/**
 * The first entry of `others` whose prefix overlaps `p`, or `undefined`. Prefixes of the
 * other family never overlap.
 * @example
 * findOverlap(Prefix.parse('10.0.0.0/24'), [{ prefix: Prefix.parse('10.0.0.0/16'), owner: 'web' }])
 *   ?.owner; // 'web'
 */
export function findOverlap<T extends { prefix: Prefix; owner: string }>(
  p: Prefix,
  others: Iterable<T>,
): T | undefined {
  for (const other of others) if (other.prefix.overlaps(p)) return other;
  return undefined;
}

/**
 * The error for a subnet that overlaps another network's. The message is dockerd's, word
 * for word, since clients and scripts match it; the detail goes into `cause`, which logs
 * show through `describeError`.
 * @example throw overlapError(subnet, hit);
 */
export function overlapError(
  subnet: Prefix,
  other: { prefix: Prefix; owner: string },
): ConflictError {
  const cause = new Error(
    `Subnet "${subnet.toString()}" overlaps subnet "${other.prefix.toString()}" of "${other.owner}"`,
  );
  return new ConflictError('SUBNET_OVERLAP', 'Pool overlaps with other one on this address space', {
    cause,
  });
}
