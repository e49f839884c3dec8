/**
 * Netlink framing: nlmsghdr, nlattr (flat and nested), dump replies and NLMSG_ERROR with
 * extended ack. Pure: works on Uint8Array, knows nothing about sockets.
 */
import {
  NLA_F_NESTED,
  NLA_TYPE_MASK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSGERR_ATTR_MSG,
} from './constants.js';

/** Size of struct nlmsghdr. */
export const NLMSG_HDRLEN = 16;

/** Rounds up to netlink's 4-byte alignment. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Builds one netlink message: header, a fixed family header, then attributes. Little-endian
 * host order is assumed (x86_64, arm64), except where an attribute says network order.
 *
 * @example
 * const m = new MessageBuilder(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
 * m.struct(16, () => {}); m.str(IFLA_IFNAME, 'eth0'); const bytes = m.finish(1);
 */
export class MessageBuilder {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #len = NLMSG_HDRLEN;
  #nests: number[] = [];

  constructor(type: number, flags: number) {
    this.#view.setUint16(4, type, true);
    this.#view.setUint16(6, flags, true);
  }

  #reserve(n: number): number {
    const at = this.#len;
    const need = at + align4(n);
    if (need > this.#buf.length) {
      const bigger = new Uint8Array(Math.max(need, this.#buf.length * 2));
      bigger.set(this.#buf);
      this.#buf = bigger;
      this.#view = new DataView(bigger.buffer);
    }
    this.#len = need;
    return at;
  }

  /**
   * Appends a zeroed fixed header of `size` bytes and lets `fill` write it. A callback rather
   * than a returned view: the buffer may be reallocated by later appends.
   */
  struct(size: number, fill: (view: DataView) => void): this {
    const at = this.#reserve(size);
    fill(new DataView(this.#buf.buffer, at, size));
    return this;
  }

  /** Appends an attribute with raw bytes. */
  bytes(type: number, value: Uint8Array): this {
    const at = this.#reserve(4 + value.length);
    this.#view.setUint16(at, 4 + value.length, true);
    this.#view.setUint16(at + 2, type, true);
    this.#buf.set(value, at + 4);
    return this;
  }

  /** Appends a NUL-terminated string attribute. */
  str(type: number, value: string): this {
    const text = encoder.encode(value);
    const withNul = new Uint8Array(text.length + 1);
    withNul.set(text);
    return this.bytes(type, withNul);
  }

  u8(type: number, value: number): this {
    return this.bytes(type, Uint8Array.of(value));
  }

  u16(type: number, value: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value, true);
    return this.bytes(type, b);
  }

  /** A u16 in network byte order (e.g. IFLA_VXLAN_PORT). */
  u16be(type: number, value: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value, false);
    return this.bytes(type, b);
  }

  u32(type: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    return this.bytes(type, b);
  }

  s32(type: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, value, true);
    return this.bytes(type, b);
  }

  /** Opens a nested attribute; close it with `end()`. */
  begin(type: number, nestedFlag = false): this {
    const at = this.#reserve(4);
    this.#view.setUint16(at + 2, nestedFlag ? type | NLA_F_NESTED : type, true);
    this.#nests.push(at);
    return this;
  }

  /** Closes the innermost nested attribute. */
  end(): this {
    const at = this.#nests.pop();
    if (at === undefined) throw new Error('Cannot end a nested attribute: none is open');
    this.#view.setUint16(at, this.#len - at, true);
    return this;
  }

  /** Writes length and sequence number and returns the message bytes. */
  finish(seq: number): Uint8Array {
    if (this.#nests.length > 0) throw new Error('Cannot finish a message: a nest is still open');
    this.#view.setUint32(0, this.#len, true);
    this.#view.setUint32(8, seq >>> 0, true);
    return this.#buf.slice(0, this.#len);
  }
}

/** Overwrites the sequence number of an encoded message. */
export function setSeq(message: Uint8Array, seq: number): void {
  new DataView(message.buffer, message.byteOffset).setUint32(8, seq >>> 0, true);
}

/** One netlink message read from a buffer. `payload` is a view, not a copy. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Uint8Array;
}

/**
 * Splits a datagram into its netlink messages.
 * @throws Error when a length field runs past the buffer
 */
export function parseMessages(data: Uint8Array): NlMessage[] {
  const out: NlMessage[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  while (at + NLMSG_HDRLEN <= data.length) {
    const len = view.getUint32(at, true);
    if (len < NLMSG_HDRLEN || at + len > data.length) {
      throw new Error(`Cannot parse netlink message: length ${len} at offset ${at} is invalid`);
    }
    out.push({
      type: view.getUint16(at + 4, true),
      flags: view.getUint16(at + 6, true),
      seq: view.getUint32(at + 8, true),
      pid: view.getUint32(at + 12, true),
      payload: data.subarray(at + NLMSG_HDRLEN, at + len),
    });
    at += align4(len);
  }
  return out;
}

/** Attributes by type (flag bits masked off); a repeated type keeps its last value. */
export type Attrs = Map<number, Uint8Array>;

/** Parses consecutive nlattrs starting at `offset`. Truncated tails are ignored. */
export function parseAttrs(data: Uint8Array, offset = 0): Attrs {
  const attrs: Attrs = new Map();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = offset;
  while (at + 4 <= data.length) {
    const len = view.getUint16(at, true);
    if (len < 4 || at + len > data.length) break;
    attrs.set(view.getUint16(at + 2, true) & NLA_TYPE_MASK, data.subarray(at + 4, at + len));
    at += align4(len);
  }
  return attrs;
}

/** Reads typed values out of attribute payloads. */
export const attr = {
  u8: (v: Uint8Array | undefined): number | undefined => (v && v.length >= 1 ? v[0] : undefined),
  u16: (v: Uint8Array | undefined): number | undefined =>
    v && v.length >= 2 ? new DataView(v.buffer, v.byteOffset, 2).getUint16(0, true) : undefined,
  u16be: (v: Uint8Array | undefined): number | undefined =>
    v && v.length >= 2 ? new DataView(v.buffer, v.byteOffset, 2).getUint16(0, false) : undefined,
  u32: (v: Uint8Array | undefined): number | undefined =>
    v && v.length >= 4 ? new DataView(v.buffer, v.byteOffset, 4).getUint32(0, true) : undefined,
  s32: (v: Uint8Array | undefined): number | undefined =>
    v && v.length >= 4 ? new DataView(v.buffer, v.byteOffset, 4).getInt32(0, true) : undefined,
  /** A string, stopping at the first NUL. */
  str: (v: Uint8Array | undefined): string | undefined => {
    if (!v) return undefined;
    const nul = v.indexOf(0);
    return decoder.decode(nul >= 0 ? v.subarray(0, nul) : v);
  },
};

/** What an NLMSG_ERROR or NLMSG_DONE said: errno 0 is a plain ACK. */
export interface NlStatus {
  /** Positive errno, 0 for success. */
  errno: number;
  /** Extended-ack text (NLMSGERR_ATTR_MSG), when the kernel gave one. */
  extack?: string;
}

/**
 * Decodes an NLMSG_ERROR (ACK or error, with extended-ack TLVs) or the status int of an
 * NLMSG_DONE. Returns undefined for any other message type.
 */
export function parseStatus(msg: NlMessage): NlStatus | undefined {
  if (msg.type !== NLMSG_ERROR && msg.type !== NLMSG_DONE) return undefined;
  const p = msg.payload;
  if (p.length < 4) return { errno: 0 };
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  // `0 - x`, not `-x`: an ACK must read as 0, not -0.
  const errno = 0 - view.getInt32(0, true);
  const status: NlStatus = { errno };
  if (!(msg.flags & NLM_F_ACK_TLVS)) return status;
  let tlvAt = 4;
  if (msg.type === NLMSG_ERROR) {
    // The echoed request: just its header when capped (NETLINK_CAP_ACK), else the whole thing.
    const innerLen = p.length >= 8 ? view.getUint32(4, true) : NLMSG_HDRLEN;
    tlvAt += msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(innerLen);
  }
  const text = attr.str(parseAttrs(p, tlvAt).get(NLMSGERR_ATTR_MSG));
  if (text) status.extack = text;
  return status;
}

/** Lower-case hex of bytes (fixtures and debugging). */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Bytes from hex; whitespace and newlines are ignored. */
export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}
