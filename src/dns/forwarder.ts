/**
 * Forwarding of names cnm does not own: cache first, then the upstreams in health order, each
 * tried once; a TC answer is fetched again over TCP from the same upstream. Identical queries in
 * flight share one upstream exchange. Answers pass through as the upstream gave them (NXDOMAIN
 * and SERVFAIL included); only when no upstream answers does cnm answer SERVFAIL itself.
 */
import { randomInt } from 'node:crypto';
import { AnswerCache } from './cache.js';
import { observeLatency, type DnsMetrics } from './metrics.js';
import { UpstreamHealth } from './upstreams.js';
import { netTransport, type UpstreamTransport } from './transport.js';
import { RCODE, buildEmpty, type Query } from './wire.js';

/** Forwarder settings; every field has a default. */
export interface ForwarderOptions {
  transport?: UpstreamTransport;
  /** Time one upstream gets to answer one query (ms). */
  timeoutMs?: number;
  cacheEntries?: number;
  cacheMaxTtlSec?: number;
  /** How often down upstreams are checked for a due probe (ms). */
  probeTickMs?: number;
  health?: UpstreamHealth;
  now?: () => number;
}

/** A probe query: `. NS`, which any working resolver answers one way or another. */
const PROBE = Buffer.from('000001000001000000000000000002 0001'.replace(/ /g, ''), 'hex');

/** The forwarder. One per daemon; all networks share its cache and upstream health. */
export class Forwarder {
  #transport: UpstreamTransport;
  #timeoutMs: number;
  #cache: AnswerCache;
  #health: UpstreamHealth;
  #metrics: DnsMetrics;
  #inflight = new Map<string, Promise<Buffer | undefined>>();
  #probeTimer: NodeJS.Timeout | undefined;
  #now: () => number;

  constructor(metrics: DnsMetrics, opts: ForwarderOptions = {}) {
    this.#metrics = metrics;
    this.#transport = opts.transport ?? netTransport;
    this.#timeoutMs = opts.timeoutMs ?? 1000;
    this.#now = opts.now ?? (() => performance.now());
    this.#health = opts.health ?? new UpstreamHealth();
    this.#cache = new AnswerCache({
      maxEntries: opts.cacheEntries ?? 10_000,
      maxTtlSec: opts.cacheMaxTtlSec ?? 3600,
    });
    this.#probeTimer = setInterval(() => this.#probe(), opts.probeTickMs ?? 250);
    this.#probeTimer.unref();
  }

  /** Upstream health, for metrics and tests. */
  get health(): UpstreamHealth {
    return this.#health;
  }

  /** Cached entries. */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /**
   * Answers `query` (parsed as `q`) through `servers`: from the cache, or from the first upstream
   * that answers. Never rejects: failures become SERVFAIL. The answer carries the client's id.
   */
  async forward(query: Buffer, q: Query, servers: readonly string[]): Promise<Buffer> {
    this.#metrics.forwarded++;
    const key = `${servers.join(',')}|${q.name}|${q.type}|${q.cls}`;
    const hit = this.#cache.get(key, q.id);
    if (hit) {
      this.#metrics.cacheHits++;
      return hit;
    }
    this.#metrics.cacheMisses++;
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#exchange(query, key, servers).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    const reply = await pending;
    if (!reply) return buildEmpty(query, q, RCODE.SERVFAIL);
    const out = Buffer.from(reply);
    out.writeUInt16BE(q.id, 0);
    return out;
  }

  async #exchange(
    query: Buffer,
    key: string,
    servers: readonly string[],
  ): Promise<Buffer | undefined> {
    const order = this.#health.order(servers);
    if (order.length === 0) {
      this.#metrics.allUpstreamsDown++;
      return undefined;
    }
    for (const server of order) {
      const msg = Buffer.from(query);
      // A fresh random id per exchange (with the fresh source port): answers cannot be guessed.
      msg.writeUInt16BE(randomInt(65536), 0);
      const t0 = this.#now();
      try {
        let reply = await this.#transport.exchange(server, msg, {
          tcp: false,
          timeoutMs: this.#timeoutMs,
        });
        if ((reply[2]! & 0x02) !== 0) {
          reply = await this.#transport.exchange(server, msg, {
            tcp: true,
            timeoutMs: this.#timeoutMs,
          });
        }
        const ms = this.#now() - t0;
        this.#health.ok(server, ms);
        observeLatency(this.#metrics, ms);
        this.#cache.put(key, reply);
        return reply;
      } catch {
        this.#metrics.upstreamFailures++;
        this.#health.failed(server);
      }
    }
    return undefined;
  }

  #probe(): void {
    for (const server of this.#health.dueProbes()) {
      const msg = Buffer.from(PROBE);
      msg.writeUInt16BE(randomInt(65536), 0);
      const t0 = this.#now();
      this.#transport.exchange(server, msg, { tcp: false, timeoutMs: this.#timeoutMs }).then(
        () => this.#health.ok(server, this.#now() - t0),
        () => this.#health.failed(server),
      );
    }
  }

  /** Stops the probe timer. */
  close(): void {
    if (this.#probeTimer) clearInterval(this.#probeTimer);
    this.#cache.clear();
  }
}
