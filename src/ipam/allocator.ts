/**
 * Address allocation inside one pool.
 *
 * Used addresses live in a `Set<bigint>`, so the cost depends on how many addresses are in
 * use, never on the size of the pool: an IPv6 /64 works as well as an IPv4 /24.
 */

import { BugError, ConflictError, InvalidError } from '../errors.js';
import { IP } from '../netaddr/index.js';
import { type Pool, isReservedAddress } from './pool.js';

/**
 * Hands out addresses of one {@link Pool}, as dockerd's default IPAM driver does:
 *
 * - a requested address (`--ip`) may be anywhere in the subnet, even outside the ip-range;
 * - otherwise the next free address in the ip-range after the last one handed out,
 *   wrapping around once, so a released address is reused last rather than at once (a
 *   new container does not inherit a departed container's address while peers still have
 *   it cached);
 * - the network and (IPv4) broadcast addresses, the gateway and aux addresses are never
 *   handed out.
 *
 * The state worth persisting is {@link AddressAllocator.usedAddresses} and
 * {@link AddressAllocator.cursor}; pass both back to the constructor to restore.
 *
 * @example
 * const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/24' }));
 * alloc.allocate().toString(); // '10.0.0.2' (10.0.0.1 is the gateway)
 * alloc.allocate(IP.parse('10.0.0.9')).toString(); // '10.0.0.9'
 */
export class AddressAllocator {
  readonly #pool: Pool;
  readonly #used = new Set<bigint>();
  /** Addresses never handed out (gateway, aux, network, broadcast), value → why. */
  readonly #reserved = new Map<bigint, string>();
  /** How many reserved addresses lie in the range; fixed after construction. */
  readonly #reservedInRange: bigint;
  /** How many used addresses lie in the range, to detect exhaustion without a scan. */
  #usedInRange = 0n;
  #cursor: IP | undefined;

  /**
   * @param pool a pool from {@link buildPool}
   * @param state restored state: addresses in use and the last address handed out.
   *   Used addresses that are reserved (say, a gateway saved by an older version) are
   *   ignored, since they can never be handed out anyway.
   * @throws InvalidError ADDRESS_OUT_OF_RANGE when a used address is outside the subnet
   */
  constructor(pool: Pool, state: { used?: Iterable<IP>; cursor?: IP } = {}) {
    this.#pool = pool;
    const { subnet, range } = pool;
    if (!subnet.containsPrefix(range)) {
      throw new BugError(`Pool range "${range.toString()}" is outside "${subnet.toString()}"`);
    }
    // Point-to-point subnets have no network or broadcast address (see isReservedAddress).
    for (const ip of [subnet.first(), subnet.last()]) {
      if (isReservedAddress(subnet, ip)) {
        this.#reserved.set(ip.value, ip.equals(subnet.first()) ? 'network' : 'broadcast');
      }
    }
    if (pool.gateway !== undefined) this.#reserved.set(pool.gateway.value, 'gateway');
    for (const [name, ip] of pool.aux) this.#reserved.set(ip.value, `aux:${name}`);
    let inRange = 0n;
    for (const value of this.#reserved.keys()) {
      if (range.contains(IP.fromValue(pool.family, value))) inRange++;
    }
    this.#reservedInRange = inRange;

    for (const ip of state.used ?? []) {
      this.#checkInSubnet(ip);
      if (this.#reserved.has(ip.value) || this.#used.has(ip.value)) continue;
      this.#markUsed(ip);
    }
    if (state.cursor !== undefined && range.contains(state.cursor)) this.#cursor = state.cursor;
  }

  /** The last address handed out without a request, where the next search starts. */
  get cursor(): IP | undefined {
    return this.#cursor;
  }

  /** Number of addresses in use (gateway and aux addresses are not counted). */
  get usedCount(): number {
    return this.#used.size;
  }

  /**
   * Addresses in use, in ascending order; persist these with {@link AddressAllocator.cursor}.
   * @example alloc.usedAddresses().map(String); // ['10.0.0.2', '10.0.0.3']
   */
  usedAddresses(): IP[] {
    return [...this.#used]
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map((v) => IP.fromValue(this.#pool.family, v));
  }

  /**
   * True when `ip` was handed out (or restored as used) and not released since. Gateway
   * and aux addresses are reserved, not used.
   * @example alloc.isUsed(IP.parse('10.0.0.2')); // true
   */
  isUsed(ip: IP): boolean {
    return ip.family === this.#pool.family && this.#used.has(ip.value);
  }

  /**
   * Takes `want`, or the next free address in the range after the cursor.
   * @throws InvalidError ADDRESS_OUT_OF_RANGE when `want` is not in the subnet
   * @throws InvalidError ADDRESS_RESERVED when `want` is the network or broadcast address
   * @throws ConflictError ADDRESS_IN_USE when `want` is used, the gateway or an aux address
   * @throws ConflictError POOL_EXHAUSTED when the range has no free address
   * @example alloc.allocate(); alloc.allocate(IP.parse('10.0.0.50'));
   */
  allocate(want?: IP): IP {
    return want === undefined ? this.#allocateNext() : this.#allocateWanted(want);
  }

  /**
   * Returns `ip` to the pool. It will be handed out again only after every other free
   * address in the range (the cursor does not move back).
   * @returns false, changing nothing, when `ip` was not in use
   * @example alloc.release(IP.parse('10.0.0.2')); // true
   */
  release(ip: IP): boolean {
    if (!this.isUsed(ip)) return false;
    this.#used.delete(ip.value);
    if (this.#pool.range.contains(ip)) this.#usedInRange--;
    return true;
  }

  #allocateWanted(want: IP): IP {
    this.#checkInSubnet(want);
    const why = this.#reserved.get(want.value);
    if (why === 'network' || why === 'broadcast') {
      throw new InvalidError(
        'ADDRESS_RESERVED',
        `Cannot allocate address "${want.toString()}": it is the ${why} address of subnet "${this.#pool.subnet.toString()}"`,
      );
    }
    if (why === 'gateway') {
      throw new ConflictError(
        'ADDRESS_IN_USE',
        `Address "${want.toString()}" is already in use by the gateway`,
      );
    }
    if (why !== undefined) {
      throw new ConflictError(
        'ADDRESS_IN_USE',
        `Address "${want.toString()}" is already in use by aux address "${why.slice('aux:'.length)}"`,
      );
    }
    if (this.#used.has(want.value)) {
      throw new ConflictError('ADDRESS_IN_USE', `Address "${want.toString()}" is already in use`);
    }
    // A requested address does not move the cursor: dynamic allocation carries on where it
    // was, as in dockerd.
    this.#markUsed(want);
    return want;
  }

  #allocateNext(): IP {
    const { range, family } = this.#pool;
    const size = range.size();
    if (this.#usedInRange + this.#reservedInRange >= size) {
      throw new ConflictError(
        'POOL_EXHAUSTED',
        `No available addresses in subnet "${this.#pool.subnet.toString()}"`,
      );
    }
    const first = range.first().value;
    const offset = this.#cursor === undefined ? 0n : this.#cursor.value - first + 1n;
    // A free address exists, and each step past a taken one is a step past a member of
    // #used or #reserved, so the loop ends within (used + reserved + 1) steps, however
    // large the range.
    for (let i = 0n; i < size; i++) {
      const value = first + ((offset + i) % size);
      if (this.#used.has(value) || this.#reserved.has(value)) continue;
      const ip = IP.fromValue(family, value);
      this.#markUsed(ip);
      this.#cursor = ip;
      return ip;
    }
    throw new BugError(`Range "${range.toString()}" has free addresses but none was found`);
  }

  #markUsed(ip: IP): void {
    this.#used.add(ip.value);
    if (this.#pool.range.contains(ip)) this.#usedInRange++;
  }

  #checkInSubnet(ip: IP): void {
    if (!this.#pool.subnet.contains(ip)) {
      throw new InvalidError(
        'ADDRESS_OUT_OF_RANGE',
        `Cannot allocate address "${ip.toString()}": it is not in subnet "${this.#pool.subnet.toString()}"`,
      );
    }
  }
}
