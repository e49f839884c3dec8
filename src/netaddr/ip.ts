/**
 * IPv4 and IPv6 addresses as immutable values over a `bigint`.
 *
 * A `bigint` holds every address of both families exactly, so arithmetic (`add`, prefix
 * `nth`, allocator cursors) is one code path for 32 and 128 bits and never loses precision
 * the way `number` would past 2^53.
 */

import { BugError, InvalidError } from '../errors.js';

/**
 * Address family: 4 for IPv4, 6 for IPv6.
 * @example const f: Family = IP.parse('::1').family; // 6
 */
export type Family = 4 | 6;

/**
 * Number of bits in an address of `family`.
 * @example familyBits(4); // 32
 */
export function familyBits(family: Family): 32 | 128 {
  return family === 4 ? 32 : 128;
}

/** Largest address value of `family`: 2^32 - 1 or 2^128 - 1. */
function maxValue(family: Family): bigint {
  return (1n << BigInt(familyBits(family))) - 1n;
}

// One decimal octet: "0" or 1-3 digits without a leading zero. A leading zero is refused
// because inet_aton reads "010" as octal 8 while other parsers read 10; Go's netip refuses
// it for the same reason, so dockerd does too.
const OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

/** Parses colon-separated groups; the last one may be a dotted IPv4 address (two groups). */
function parseGroups(part: string, allowV4Tail: boolean): number[] | undefined {
  if (part === '') return [];
  const texts = part.split(':');
  const groups: number[] = [];
  for (const [i, text] of texts.entries()) {
    if (allowV4Tail && i === texts.length - 1 && text.includes('.')) {
      const v4 = parseV4(text);
      if (v4 === undefined) return undefined;
      groups.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
    } else if (HEXTET.test(text)) {
      groups.push(parseInt(text, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}

function parseV6(s: string): bigint | undefined {
  // Zones ("fe80::1%eth0") name an interface, not an address; an address value has none.
  if (s.includes('%')) return undefined;
  const gap = s.indexOf('::');
  let groups: number[];
  if (gap === -1) {
    const all = parseGroups(s, true);
    if (all === undefined || all.length !== 8) return undefined;
    groups = all;
  } else {
    // A second "::" (or ":::") would make the zero run ambiguous.
    if (s.indexOf('::', gap + 1) !== -1) return undefined;
    const head = parseGroups(s.slice(0, gap), false);
    const tail = parseGroups(s.slice(gap + 2), true);
    if (head === undefined || tail === undefined) return undefined;
    // "::" stands for at least one zero group (RFC 4291 section 2.2).
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return value;
}

function formatV4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** RFC 5952 section 4: lower case, no leading zeros, the longest (then first) zero run as "::". */
function formatV6(value: bigint): string {
  // RFC 5952 section 5: IPv4-mapped addresses keep the dotted quad.
  if (value >> 32n === 0xffffn) return `::ffff:${formatV4(value & 0xffffffffn)}`;
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  // A single zero group is written as "0", never "::" (RFC 5952 section 4.2.2).
  if (bestLen < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/**
 * An immutable IPv4 or IPv6 address.
 *
 * @example
 * const ip = IP.parse('2001:0db8::0001');
 * ip.toString(); // '2001:db8::1'
 * IP.parse('10.0.0.255').add(1).toString(); // '10.0.1.0'
 */
export class IP {
  readonly #family: Family;
  readonly #value: bigint;

  private constructor(family: Family, value: bigint) {
    this.#family = family;
    this.#value = value;
  }

  /**
   * Parses a dotted-quad IPv4 or an RFC 4291 IPv6 address (with `::` and a trailing
   * dotted quad such as `::ffff:1.2.3.4`). Zones (`%eth0`) and IPv4 octets with leading
   * zeros are refused.
   * @throws InvalidError IP_INVALID
   * @example IP.parse('::ffff:1.2.3.4').toString(); // '::ffff:1.2.3.4'
   */
  static parse(s: string): IP {
    const ip = IP.tryParse(s);
    if (ip === undefined) throw new InvalidError('IP_INVALID', `Invalid IP address "${s}"`);
    return ip;
  }

  /**
   * Like {@link IP.parse} but returns `undefined` for a bad address.
   * @example IP.tryParse('300.1.1.1'); // undefined
   */
  static tryParse(s: string): IP | undefined {
    if (typeof s !== 'string') return undefined;
    if (s.includes(':')) {
      const v6 = parseV6(s);
      return v6 === undefined ? undefined : new IP(6, v6);
    }
    const v4 = parseV4(s);
    return v4 === undefined ? undefined : new IP(4, v4);
  }

  /**
   * The address of `family` whose numeric value is `value`.
   * @throws InvalidError IP_INVALID when `value` does not fit the family
   * @example IP.fromValue(4, 0x0a000001n).toString(); // '10.0.0.1'
   */
  static fromValue(family: Family, value: bigint): IP {
    if (value < 0n || value > maxValue(family)) {
      throw new InvalidError('IP_INVALID', `Invalid IPv${family} address value "${value}"`);
    }
    return new IP(family, value);
  }

  /**
   * The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
   * @throws InvalidError IP_INVALID for any other length
   * @example IP.fromBytes(new Uint8Array([127, 0, 0, 1])).toString(); // '127.0.0.1'
   */
  static fromBytes(bytes: Uint8Array): IP {
    if (bytes.length !== 4 && bytes.length !== 16) {
      throw new InvalidError(
        'IP_INVALID',
        `Invalid IP address bytes: length "${bytes.length}" is not 4 or 16`,
      );
    }
    let value = 0n;
    for (const b of bytes) value = (value << 8n) | BigInt(b);
    return new IP(bytes.length === 4 ? 4 : 6, value);
  }

  /** 4 or 6. */
  get family(): Family {
    return this.#family;
  }

  /** The address as an unsigned integer (network byte order, most significant bit first). */
  get value(): bigint {
    return this.#value;
  }

  /**
   * Dotted quad for IPv4; RFC 5952 canonical text for IPv6.
   * @example IP.parse('2001:DB8:0:0:1:0:0:1').toString(); // '2001:db8::1:0:0:1'
   */
  toString(): string {
    return this.#family === 4 ? formatV4(this.#value) : formatV6(this.#value);
  }

  /** Same as {@link IP.toString}, so `JSON.stringify` writes the text form. */
  toJSON(): string {
    return this.toString();
  }

  /**
   * True for the same family and value. `1.2.3.4` and `::ffff:1.2.3.4` differ.
   * @example IP.parse('::1').equals(IP.parse('0::1')); // true
   */
  equals(other: IP): boolean {
    return this.#family === other.#family && this.#value === other.#value;
  }

  /**
   * Orders IPv4 before IPv6, then by value; suits `Array.prototype.sort`.
   * @example ips.sort((a, b) => a.compare(b));
   */
  compare(other: IP): -1 | 0 | 1 {
    if (this.#family !== other.#family) return this.#family < other.#family ? -1 : 1;
    if (this.#value === other.#value) return 0;
    return this.#value < other.#value ? -1 : 1;
  }

  /**
   * The address `n` after this one (`n` may be negative), in the same family.
   * @throws InvalidError IP_OVERFLOW when the result leaves the family's address space
   * @example IP.parse('10.0.0.255').add(1).toString(); // '10.0.1.0'
   */
  add(n: bigint | number): IP {
    const step = toBigInt(n);
    const value = this.#value + step;
    if (value < 0n || value > maxValue(this.#family)) {
      throw new InvalidError(
        'IP_OVERFLOW',
        `Cannot add "${step}" to address "${this.toString()}": the result is not an IPv${this.#family} address`,
      );
    }
    return new IP(this.#family, value);
  }

  /**
   * For an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) the IPv4 address; otherwise itself.
   * @example IP.parse('::ffff:10.0.0.1').unmap().toString(); // '10.0.0.1'
   */
  unmap(): IP {
    if (this.#family === 6 && this.#value >> 32n === 0xffffn) {
      return new IP(4, this.#value & 0xffffffffn);
    }
    return this;
  }

  // The predicates below look through IPv4-mapped addresses, as Go's netip does, so
  // `::ffff:127.0.0.1` is a loopback address wherever dockerd would say so.

  /**
   * True for 127.0.0.0/8 and ::1.
   * @example IP.parse('127.1.2.3').isLoopback; // true
   */
  get isLoopback(): boolean {
    const ip = this.unmap();
    return ip.#family === 4 ? ip.#value >> 24n === 127n : ip.#value === 1n;
  }

  /**
   * True for 0.0.0.0 and ::.
   * @example IP.parse('::').isUnspecified; // true
   */
  get isUnspecified(): boolean {
    return this.#value === 0n;
  }

  /**
   * True for link-local unicast: 169.254.0.0/16 and fe80::/10.
   * @example IP.parse('fe80::1').isLinkLocal; // true
   */
  get isLinkLocal(): boolean {
    const ip = this.unmap();
    return ip.#family === 4 ? ip.#value >> 16n === 0xa9fen : ip.#value >> 118n === 0x3fan;
  }

  /**
   * True for 224.0.0.0/4 and ff00::/8.
   * @example IP.parse('ff02::1').isMulticast; // true
   */
  get isMulticast(): boolean {
    const ip = this.unmap();
    return ip.#family === 4 ? ip.#value >> 28n === 0xen : ip.#value >> 120n === 0xffn;
  }

  /**
   * A fresh copy of the address in network byte order (4 or 16 bytes).
   * @example IP.parse('10.0.0.1').bytes(); // Uint8Array [10, 0, 0, 1]
   */
  bytes(): Uint8Array {
    const length = this.#family === 4 ? 4 : 16;
    const out = new Uint8Array(length);
    let v = this.#value;
    for (let i = length - 1; i >= 0; i--) {
      out[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return out;
  }
}

/** Converts an integer step to bigint; a fractional or unsafe number is a caller bug. */
export function toBigInt(n: bigint | number): bigint {
  if (typeof n === 'bigint') return n;
  if (!Number.isSafeInteger(n)) throw new BugError(`Expected a safe integer, got "${n}"`);
  return BigInt(n);
}
