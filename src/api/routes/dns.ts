/**
 * `GET /cnm/dns/metrics`: the embedded DNS's counters (queries, local and forwarded answers,
 * answers by rcode, forward latency histogram, cache hits and misses), upstream health and table
 * sizes, read-only. The daemon supplies them (the API does not reach the DNS service); without a
 * DNS service the route says so.
 */
import { UnavailableError } from '../../errors.js';
import { sendJson } from '../respond.js';
import type { Router } from '../router.js';
import type { RouteDeps } from '../server.js';

/** The metrics' shape on the wire (fields as the DNS service counts them). */
export interface DnsMetricsView {
  metrics: {
    queries: { udp: number; tcp: number };
    local: number;
    forwarded: number;
    cacheHits: number;
    cacheMisses: number;
    answers: Record<string, number>;
    malformed: number;
    dropped: number;
    truncated: number;
    upstreamFailures: number;
    allUpstreamsDown: number;
    forwardLatencyMs: { count: number; sum: number; max: number; buckets: number[] };
  };
  /** Upper bounds (ms) of `forwardLatencyMs.buckets`; the last bucket counts everything above. */
  latencyBucketsMs: readonly number[];
  upstreams: Record<string, { down: boolean; srttMs: number }>;
  cacheEntries: number;
  endpoints: number;
}

/** Registers `GET /cnm/dns/metrics`. */
export function registerDnsRoutes(router: Router, deps: RouteDeps): void {
  router.add('GET', '/cnm/dns/metrics', ({ res }) => {
    if (!deps.dnsMetrics) {
      throw new UnavailableError('DNS_UNAVAILABLE', 'This daemon has no embedded DNS');
    }
    sendJson(res, 200, deps.dnsMetrics());
  });
}
