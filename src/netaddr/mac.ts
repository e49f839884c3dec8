/**
 * 48-bit Ethernet (EUI-48) MAC addresses.
 */

import { BugError, InvalidError } from '../errors.js';
import type { IP } from './ip.js';

// Six two-digit groups with one separator used throughout: "aa:bb:.." or "AA-BB-..".
const MAC_TEXT = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2}){4}$/;

/**
 * An immutable 48-bit MAC address.
 *
 * @example
 * MAC.parse('02-42-AC-11-00-02').toString(); // '02:42:ac:11:00:02'
 * MAC.fromIPv4(IP.parse('172.17.0.2')).toString(); // '02:42:ac:11:00:02'
 */
export class MAC {
  readonly #bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /**
   * Parses six hex octets separated by `:` or `-` (one kind throughout), any case.
   * @throws InvalidError MAC_INVALID
   * @example MAC.parse('02:42:AC:11:00:02');
   */
  static parse(s: string): MAC {
    if (typeof s !== 'string' || !MAC_TEXT.test(s)) {
      throw new InvalidError('MAC_INVALID', `Invalid MAC address "${s}"`);
    }
    return new MAC(Uint8Array.from(s.split(/[:-]/), (h) => parseInt(h, 16)));
  }

  /**
   * Like {@link MAC.parse} but returns `undefined` for a bad address.
   * @example MAC.tryParse('02:42'); // undefined
   */
  static tryParse(s: string): MAC | undefined {
    return typeof s === 'string' && MAC_TEXT.test(s) ? MAC.parse(s) : undefined;
  }

  /**
   * The MAC of six bytes (copied).
   * @throws InvalidError MAC_INVALID for any other length
   * @example MAC.fromBytes(new Uint8Array([2, 0x42, 0, 0, 0, 1]));
   */
  static fromBytes(bytes: Uint8Array): MAC {
    if (bytes.length !== 6) {
      throw new InvalidError('MAC_INVALID', `Invalid MAC address bytes: length "${bytes.length}"`);
    }
    return new MAC(Uint8Array.from(bytes));
  }

  /**
   * Docker's derived MAC: `02:42:` followed by the four bytes of an IPv4 address. The MAC
   * then follows the container's address, so neighbours' ARP caches stay right when an
   * address moves to a new container.
   * @throws InvalidError MAC_INVALID when `ip` is not IPv4
   * @example MAC.fromIPv4(IP.parse('172.17.0.2')).toString(); // '02:42:ac:11:00:02'
   */
  static fromIPv4(ip: IP): MAC {
    if (ip.family !== 4) {
      throw new InvalidError(
        'MAC_INVALID',
        `Cannot derive a MAC address from "${ip.toString()}": it is not an IPv4 address`,
      );
    }
    return new MAC(Uint8Array.from([0x02, 0x42, ...ip.bytes()]));
  }

  /**
   * A locally administered unicast MAC from six random bytes the caller supplies (this
   * module is pure, so it has no random source of its own).
   * @throws BugError when `bytes` is not six bytes long
   * @example MAC.random(crypto.getRandomValues(new Uint8Array(6))).isLocallyAdministered; // true
   */
  static random(bytes: Uint8Array): MAC {
    if (bytes.length !== 6) throw new BugError(`MAC.random needs 6 bytes, got "${bytes.length}"`);
    const out = Uint8Array.from(bytes);
    // Bit 1 of the first octet: locally administered, so it cannot collide with a vendor's
    // burned-in address. Bit 0: group (multicast); cleared so the address is unicast.
    out[0] = ((out[0] ?? 0) | 0x02) & 0xfe;
    return new MAC(out);
  }

  /**
   * Lower-case colon form.
   * @example MAC.parse('AA-BB-CC-DD-EE-FF').toString(); // 'aa:bb:cc:dd:ee:ff'
   */
  toString(): string {
    return Array.from(this.#bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
  }

  /** Same as {@link MAC.toString}, so `JSON.stringify` writes the text form. */
  toJSON(): string {
    return this.toString();
  }

  /** A fresh copy of the six bytes. */
  bytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  /**
   * True for the same six bytes.
   * @example MAC.parse('aa:bb:cc:dd:ee:ff').equals(MAC.parse('AA-BB-CC-DD-EE-FF')); // true
   */
  equals(other: MAC): boolean {
    return this.#bytes.every((b, i) => b === other.#bytes[i]);
  }

  /**
   * True when the group bit (bit 0 of the first octet) is clear.
   * @example MAC.parse('01:00:5e:00:00:01').isUnicast; // false
   */
  get isUnicast(): boolean {
    return ((this.#bytes[0] ?? 0) & 0x01) === 0;
  }

  /**
   * True when the local bit (bit 1 of the first octet) is set.
   * @example MAC.parse('02:42:ac:11:00:02').isLocallyAdministered; // true
   */
  get isLocallyAdministered(): boolean {
    return ((this.#bytes[0] ?? 0) & 0x02) !== 0;
  }
}
