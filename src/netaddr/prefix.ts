/**
 * CIDR prefixes (`10.0.0.0/24`, `fd00::/64`): a network address and a length.
 */

import { InvalidError } from '../errors.js';
import { type Family, IP, familyBits, toBigInt } from './ip.js';

// Prefix lengths are decimal without leading zeros: "/08" is refused as Go's netip does.
const BITS = /^(?:0|[1-9][0-9]{0,2})$/;

/**
 * An immutable CIDR prefix. `ip` is always the network address (host bits zero).
 *
 * @example
 * const p = Prefix.parse('10.1.2.3/16'); // host bits are dropped unless `strict`
 * p.toString(); // '10.1.0.0/16'
 * p.contains(IP.parse('10.1.200.7')); // true
 * p.last().toString(); // '10.1.255.255'
 */
export class Prefix {
  readonly #ip: IP;
  readonly #bits: number;

  private constructor(ip: IP, bits: number) {
    this.#ip = ip;
    this.#bits = bits;
  }

  /**
   * Parses `address/bits`. By default host bits are cleared (`10.0.0.1/24` → `10.0.0.0/24`,
   * what older dockerd did); with `strict: true` they are refused, as dockerd does for
   * `--subnet` since API 1.44.
   * @throws InvalidError PREFIX_INVALID
   * @example Prefix.parse('10.0.0.1/24', { strict: true }); // throws: host bits are set
   */
  static parse(s: string, opts: { strict?: boolean } = {}): Prefix {
    const fail = (why: string): InvalidError =>
      new InvalidError('PREFIX_INVALID', `Invalid prefix "${s}": ${why}`);
    const slash = typeof s === 'string' ? s.indexOf('/') : -1;
    if (slash === -1) throw fail('it is not in CIDR notation');
    const ip = IP.tryParse(s.slice(0, slash));
    if (ip === undefined) throw fail('it has an invalid address');
    const bitsText = s.slice(slash + 1);
    const bits = Number(bitsText);
    if (!BITS.test(bitsText) || bits > familyBits(ip.family)) {
      throw fail('it has an invalid prefix length');
    }
    const prefix = Prefix.fromIP(ip, bits);
    if (opts.strict === true && !prefix.#ip.equals(ip)) throw fail('host bits are set');
    return prefix;
  }

  /**
   * Like {@link Prefix.parse} but returns `undefined` for a bad prefix.
   * @example Prefix.tryParse('10.0.0.0/33'); // undefined
   */
  static tryParse(s: string, opts: { strict?: boolean } = {}): Prefix | undefined {
    try {
      return Prefix.parse(s, opts);
    } catch {
      return undefined;
    }
  }

  /**
   * The prefix of length `bits` that holds `ip` (host bits cleared).
   * @throws InvalidError PREFIX_INVALID when `bits` is not 0..32 (IPv4) or 0..128 (IPv6)
   * @example Prefix.fromIP(IP.parse('192.168.1.77'), 24).toString(); // '192.168.1.0/24'
   */
  static fromIP(ip: IP, bits: number): Prefix {
    if (!Number.isInteger(bits) || bits < 0 || bits > familyBits(ip.family)) {
      throw new InvalidError(
        'PREFIX_INVALID',
        `Invalid prefix length "${bits}" for address "${ip.toString()}"`,
      );
    }
    const host = BigInt(familyBits(ip.family) - bits);
    return new Prefix(IP.fromValue(ip.family, (ip.value >> host) << host), bits);
  }

  /** The network address (host bits zero). */
  get ip(): IP {
    return this.#ip;
  }

  /** The prefix length. */
  get bits(): number {
    return this.#bits;
  }

  /** The address family of the prefix. */
  get family(): Family {
    return this.#ip.family;
  }

  /** Number of host bits: 32 or 128 minus {@link Prefix.bits}. */
  get #hostBits(): bigint {
    return BigInt(familyBits(this.family) - this.#bits);
  }

  /**
   * `network/bits` with the canonical address text.
   * @example Prefix.parse('2001:DB8::/32').toString(); // '2001:db8::/32'
   */
  toString(): string {
    return `${this.#ip.toString()}/${this.#bits}`;
  }

  /** Same as {@link Prefix.toString}, so `JSON.stringify` writes the text form. */
  toJSON(): string {
    return this.toString();
  }

  /**
   * True for the same family, network address and length.
   * @example Prefix.parse('10.0.0.9/8').equals(Prefix.parse('10.0.0.0/8')); // true
   */
  equals(other: Prefix): boolean {
    return this.#bits === other.#bits && this.#ip.equals(other.#ip);
  }

  /**
   * True when `ip` is in this prefix; an address of the other family never is.
   * @example Prefix.parse('10.0.0.0/8').contains(IP.parse('10.9.9.9')); // true
   */
  contains(ip: IP): boolean {
    if (ip.family !== this.family) return false;
    const host = this.#hostBits;
    return ip.value >> host === this.#ip.value >> host;
  }

  /**
   * True when every address of `p` is in this prefix (a prefix contains itself).
   * @example Prefix.parse('10.0.0.0/8').containsPrefix(Prefix.parse('10.1.0.0/16')); // true
   */
  containsPrefix(p: Prefix): boolean {
    return p.family === this.family && p.#bits >= this.#bits && this.contains(p.#ip);
  }

  /**
   * True when the two prefixes share at least one address. Two CIDR prefixes overlap
   * exactly when one contains the other.
   * @example Prefix.parse('172.17.0.0/16').overlaps(Prefix.parse('172.16.0.0/12')); // true
   */
  overlaps(p: Prefix): boolean {
    return this.containsPrefix(p) || p.containsPrefix(this);
  }

  /**
   * The network address, same as {@link Prefix.ip}.
   * @example Prefix.parse('10.0.0.0/24').first().toString(); // '10.0.0.0'
   */
  first(): IP {
    return this.#ip;
  }

  /**
   * The last address: the broadcast address of an IPv4 prefix.
   * @example Prefix.parse('10.0.0.0/24').last().toString(); // '10.0.0.255'
   */
  last(): IP {
    return IP.fromValue(this.family, this.#ip.value + this.size() - 1n);
  }

  /**
   * Number of addresses, `2^(32 - bits)` or `2^(128 - bits)`.
   * @example Prefix.parse('fd00::/64').size(); // 18446744073709551616n
   */
  size(): bigint {
    return 1n << this.#hostBits;
  }

  /**
   * The address at offset `n` from the network address, `0 <= n < size()`.
   * @throws InvalidError IP_OVERFLOW when `n` is outside the prefix
   * @example Prefix.parse('10.0.0.0/24').nth(1n).toString(); // '10.0.0.1'
   */
  nth(n: bigint | number): IP {
    const i = toBigInt(n);
    if (i < 0n || i >= this.size()) {
      throw new InvalidError(
        'IP_OVERFLOW',
        `Cannot take address "${i}" of prefix "${this.toString()}": it has "${this.size()}" addresses`,
      );
    }
    return IP.fromValue(this.family, this.#ip.value + i);
  }

  /**
   * The netmask as an address.
   * @example Prefix.parse('10.0.0.0/20').mask().toString(); // '255.255.240.0'
   */
  mask(): IP {
    const all = (1n << BigInt(familyBits(this.family))) - 1n;
    return IP.fromValue(this.family, all ^ (this.size() - 1n));
  }
}
