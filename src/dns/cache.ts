/**
 * A bounded cache of forwarded answers that respects their TTLs: an entry lives as long as its
 * shortest record (negative answers as long as their SOA says, RFC 2308), never longer than a cap,
 * and is served with its TTLs counted down. The oldest-used entry goes first when full.
 */
import dnsPacket from 'dns-packet';

/** Cache limits. */
export interface CacheOptions {
  /** Most entries kept; the least recently used one is dropped beyond it. */
  maxEntries: number;
  /** Longest time an answer is kept, whatever its TTL says (seconds). */
  maxTtlSec: number;
  /** Clock in milliseconds; injectable for tests. */
  now?: () => number;
}

interface Entry {
  raw: Buffer;
  packet: dnsPacket.Packet;
  stored: number;
  expires: number;
}

type WithTtl = { ttl?: number; type?: string; data?: unknown };

/** The cache. Keys are opaque strings built by the caller (upstreams, name, type, class). */
export class AnswerCache {
  #entries = new Map<string, Entry>();
  #max: number;
  #maxTtl: number;
  #now: () => number;

  constructor(opts: CacheOptions) {
    this.#max = opts.maxEntries;
    this.#maxTtl = opts.maxTtlSec;
    this.#now = opts.now ?? Date.now;
  }

  /** Number of entries (expired ones included until they are looked up or pushed out). */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The cached answer for `key` with message id `id` and TTLs counted down, or undefined when
   * there is none or it expired.
   */
  get(key: string, id: number): Buffer | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    const now = this.#now();
    if (now >= e.expires) {
      this.#entries.delete(key);
      return undefined;
    }
    // Re-insert: Map order is the LRU order.
    this.#entries.delete(key);
    this.#entries.set(key, e);
    const elapsed = Math.floor((now - e.stored) / 1000);
    let out: Buffer;
    if (elapsed === 0) {
      out = Buffer.from(e.raw);
    } else {
      const age = (rs: WithTtl[] | undefined) =>
        rs?.map((r) =>
          r.type === 'OPT' ? r : { ...r, ttl: Math.max(0, (r.ttl ?? 0) - elapsed) },
        ) as dnsPacket.Answer[] | undefined;
      out = dnsPacket.encode({
        ...e.packet,
        answers: age(e.packet.answers as WithTtl[]) ?? [],
        authorities: age(e.packet.authorities as WithTtl[]) ?? [],
        additionals: age(e.packet.additionals as WithTtl[]) ?? [],
      });
    }
    out.writeUInt16BE(id, 0);
    return out;
  }

  /**
   * Stores an upstream answer when it may be cached: NOERROR or NXDOMAIN, not truncated, with a
   * TTL above zero. Returns whether it was stored.
   */
  put(key: string, raw: Buffer): boolean {
    let packet: dnsPacket.Packet;
    try {
      packet = dnsPacket.decode(raw);
    } catch {
      return false;
    }
    const ttl = cacheTtl(packet);
    if (ttl === undefined) return false;
    const sec = Math.min(ttl, this.#maxTtl);
    if (sec <= 0) return false;
    const now = this.#now();
    this.#entries.delete(key);
    this.#entries.set(key, {
      raw: Buffer.from(raw),
      packet,
      stored: now,
      expires: now + sec * 1000,
    });
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    return true;
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
  }
}

/** How long an answer may be cached (seconds), or undefined when it must not be. */
export function cacheTtl(p: dnsPacket.Packet): number | undefined {
  const flags = p.flags ?? 0;
  if ((flags & dnsPacket.TRUNCATED_RESPONSE) !== 0) return undefined;
  const rcode = flags & 0x0f;
  const answers = (p.answers ?? []) as WithTtl[];
  const authorities = (p.authorities ?? []) as WithTtl[];
  if (rcode === 0 && answers.length > 0) {
    return Math.min(...answers.map((r) => r.ttl ?? 0));
  }
  if (rcode === 0 || rcode === 3) {
    // Negative answer: the SOA's TTL, bounded by its MINIMUM field (RFC 2308 section 5).
    const soa = authorities.find((r) => r.type === 'SOA');
    if (!soa) return undefined;
    const min = (soa.data as { minimum?: number } | undefined)?.minimum ?? 0;
    return Math.min(soa.ttl ?? 0, min);
  }
  return undefined;
}
