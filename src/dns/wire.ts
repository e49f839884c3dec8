/**
 * The DNS wire format on the hot path: parsing one query and building the answers cnm gives from
 * its own name table. Hand-written rather than through dns-packet because a local answer is a
 * copy of the question plus fixed-size records: no object graph, no name compression table, a
 * few allocations per query. dns-packet stays in use where whole messages must be understood
 * (forwarded answers in the cache).
 */

/** Query types cnm answers itself. */
export const QTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  AAAA: 28,
  OPT: 41,
  ANY: 255,
} as const;

/** Response codes cnm sets. */
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

/** Largest answer over UDP without EDNS (RFC 1035). */
export const UDP_PLAIN_MAX = 512;
/** Largest UDP answer cnm sends even when a client's EDNS allows more (DNS flag day 2020). */
export const UDP_EDNS_MAX = 1232;
/** Largest query cnm accepts; a real query is far smaller (a name is at most 255 bytes). */
export const QUERY_MAX = 4096;

/** A parsed query: enough to answer it or to forward it. */
export interface Query {
  id: number;
  /** Recursion desired, copied into the answer. */
  rd: boolean;
  /** Lower-cased, without the trailing dot; `''` for the root. */
  name: string;
  type: number;
  cls: number;
  /** Offset just past the question section: `buf.subarray(12, questionEnd)` is the question. */
  questionEnd: number;
  /** The client's EDNS UDP payload size, or 0 when the query has no OPT record. */
  ednsSize: number;
}

/** Why a message is not a query cnm can handle: drop it, or answer with this rcode. */
export type QueryError = { drop: true } | { drop: false; id: number; rd: boolean; rcode: number };

/**
 * Parses a query message.
 *
 * @returns the query, or what to do with a message that is not one: messages too short for a
 *   header and responses are dropped (answering a response invites reflection loops), anything
 *   else that is malformed gets FORMERR and an unknown opcode NOTIMP
 */
export function parseQuery(buf: Uint8Array): Query | QueryError {
  if (buf.length < 12 || buf.length > QUERY_MAX) return { drop: true };
  const b0 = buf[2]!;
  if ((b0 & 0x80) !== 0) return { drop: true };
  const id = (buf[0]! << 8) | buf[1]!;
  const rd = (b0 & 0x01) !== 0;
  const fail = (rcode: number): QueryError => ({ drop: false, id, rd, rcode });
  if (((b0 >> 3) & 0x0f) !== 0) return fail(RCODE.NOTIMP);
  const qd = (buf[4]! << 8) | buf[5]!;
  const an = (buf[6]! << 8) | buf[7]!;
  const ns = (buf[8]! << 8) | buf[9]!;
  const ar = (buf[10]! << 8) | buf[11]!;
  if (qd !== 1 || an !== 0 || ns !== 0) return fail(RCODE.FORMERR);
  let off = 12;
  let name = '';
  for (;;) {
    if (off >= buf.length) return fail(RCODE.FORMERR);
    const len = buf[off]!;
    if (len === 0) {
      off++;
      break;
    }
    // Compression pointers have no business in a question; 0x40/0x80 label types are obsolete.
    if (len > 63 || off + 1 + len > buf.length) return fail(RCODE.FORMERR);
    let label = '';
    for (let i = off + 1; i <= off + len; i++) {
      let c = buf[i]!;
      // A dot or a NUL inside a label cannot be a container name; keep it from aliasing one.
      if (c === 0x2e || c === 0) return fail(RCODE.FORMERR);
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      label += String.fromCharCode(c);
    }
    name = name.length === 0 ? label : `${name}.${label}`;
    off += 1 + len;
    if (off - 12 > 255) return fail(RCODE.FORMERR);
  }
  if (off + 4 > buf.length) return fail(RCODE.FORMERR);
  const type = (buf[off]! << 8) | buf[off + 1]!;
  const cls = (buf[off + 2]! << 8) | buf[off + 3]!;
  const questionEnd = off + 4;
  let ednsSize = 0;
  if (ar > 0) {
    // Only an OPT record (root name, 11 bytes) is expected; anything else is ignored, not fatal.
    const p = questionEnd;
    if (p + 11 <= buf.length && buf[p] === 0 && ((buf[p + 1]! << 8) | buf[p + 2]!) === QTYPE.OPT) {
      ednsSize = Math.max(UDP_PLAIN_MAX, (buf[p + 3]! << 8) | buf[p + 4]!);
    }
  }
  return { id, rd, name, type, cls, questionEnd, ednsSize };
}

/** Tells a parsed query from a parse failure. */
export function isQuery(q: Query | QueryError): q is Query {
  return 'questionEnd' in q;
}

/** One record of a local answer; the owner is always the question's name. */
export interface LocalRecord {
  type: number;
  /** A: 4 bytes, AAAA: 16 bytes, PTR: an encoded domain name ({@link encodeName}). */
  data: Uint8Array;
}

/** Encodes a dotted name (no trailing dot needed) as uncompressed labels. */
export function encodeName(name: string): Uint8Array {
  const labels = name.split('.').filter((l) => l.length > 0);
  const out = new Uint8Array(labels.reduce((n, l) => n + 1 + Buffer.byteLength(l), 1));
  let off = 0;
  for (const l of labels) {
    const bytes = Buffer.from(l);
    out[off++] = Math.min(bytes.length, 63);
    out.set(bytes.subarray(0, 63), off);
    off += Math.min(bytes.length, 63);
  }
  out[off] = 0;
  return out.subarray(0, off + 1);
}

/** Where an answer goes: the limit on its size. */
export function sizeLimit(q: Query, transport: 'udp' | 'tcp'): number {
  if (transport === 'tcp') return 65535;
  return q.ednsSize > 0 ? Math.min(q.ednsSize, UDP_EDNS_MAX) : UDP_PLAIN_MAX;
}

/**
 * Builds an answer to `q` from `query` (the raw message it was parsed from): the question copied,
 * then the records, each owned by the question's name (a compression pointer to offset 12).
 * Records that do not fit in `limit` are left out and TC is set, so the client retries over TCP.
 */
export function buildAnswer(
  query: Uint8Array,
  q: Query,
  opts: { rcode: number; records: readonly LocalRecord[]; ttl: number; limit: number },
): Buffer {
  const opt = q.ednsSize > 0 ? 11 : 0;
  const qlen = q.questionEnd - 12;
  let size = 12 + qlen + opt;
  let count = 0;
  for (const r of opts.records) {
    const n = 12 + r.data.length;
    if (size + n > opts.limit) break;
    size += n;
    count++;
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = q.id >> 8;
  out[1] = q.id & 0xff;
  // QR, AA (cnm is the authority for its names), TC when cut, RD copied; RA: cnm recurses.
  out[2] = 0x84 | (count < opts.records.length ? 0x02 : 0) | (q.rd ? 0x01 : 0);
  out[3] = 0x80 | (opts.rcode & 0x0f);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(count, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(opt > 0 ? 1 : 0, 10);
  out.set(query.subarray(12, q.questionEnd), 12);
  let off = q.questionEnd;
  for (let i = 0; i < count; i++) {
    const r = opts.records[i]!;
    out[off] = 0xc0;
    out[off + 1] = 0x0c;
    out.writeUInt16BE(r.type, off + 2);
    out.writeUInt16BE(1, off + 4);
    out.writeUInt32BE(opts.ttl, off + 6);
    out.writeUInt16BE(r.data.length, off + 10);
    out.set(r.data, off + 12);
    off += 12 + r.data.length;
  }
  if (opt > 0) {
    out[off] = 0;
    out.writeUInt16BE(QTYPE.OPT, off + 1);
    out.writeUInt16BE(UDP_EDNS_MAX, off + 3);
    out.writeUInt32BE(0, off + 5);
    out.writeUInt16BE(0, off + 9);
  }
  return out;
}

/** Builds a header-only error answer (FORMERR, NOTIMP, REFUSED, SERVFAIL) for a bad message. */
export function buildError(id: number, rd: boolean, rcode: number): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt16BE(id, 0);
  out[2] = 0x80 | (rd ? 0x01 : 0);
  out[3] = 0x80 | (rcode & 0x0f);
  return out;
}

/**
 * Builds an error answer that keeps the question (SERVFAIL, REFUSED after a good parse), or an
 * empty truncated answer (`tc`) telling a UDP client to retry over TCP.
 */
export function buildEmpty(query: Uint8Array, q: Query, rcode: number, tc = false): Buffer {
  const out = Buffer.allocUnsafe(q.questionEnd);
  out.writeUInt16BE(q.id, 0);
  out[2] = 0x80 | (tc ? 0x02 : 0) | (q.rd ? 0x01 : 0);
  out[3] = 0x80 | (rcode & 0x0f);
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(0, 10);
  out.set(query.subarray(12, q.questionEnd), 12);
  return out;
}

/**
 * The address a reverse name stands for: `4.3.2.1.in-addr.arpa` → `1.2.3.4`, 32 nibbles under
 * `ip6.arpa` → the IPv6 address in full (uncompressed) form; undefined for anything else.
 */
export function reverseNameToAddress(name: string): string | undefined {
  if (name.endsWith('.in-addr.arpa')) {
    const parts = name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) < 256))
      return undefined;
    return parts.reverse().join('.');
  }
  if (name.endsWith('.ip6.arpa')) {
    const nibbles = name.slice(0, -'.ip6.arpa'.length).split('.');
    if (nibbles.length !== 32 || !nibbles.every((n) => /^[0-9a-f]$/.test(n))) return undefined;
    const hex = nibbles.reverse().join('');
    return hex.match(/.{4}/g)!.join(':');
  }
  return undefined;
}
