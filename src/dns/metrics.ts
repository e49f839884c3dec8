/**
 * DNS counters as one plain object: cheap to bump on the hot path, and the daemon can expose it
 * as it is (JSON) or map it to another format.
 */

/** Upper bounds (ms) of the forward-latency histogram buckets; the last bucket is everything above. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500] as const;

/** Counters of one DNS service. */
export interface DnsMetrics {
  /** Queries received, by transport (malformed ones included). */
  queries: { udp: number; tcp: number };
  /** Answered from the name table. */
  local: number;
  /** Not local: answered from the cache or an upstream. */
  forwarded: number;
  cacheHits: number;
  cacheMisses: number;
  /** Answers sent, by rcode name (`NOERROR`, `NXDOMAIN`, `FORMERR`, ...). */
  answers: Record<string, number>;
  /** Messages that got FORMERR or NOTIMP. */
  malformed: number;
  /** Messages dropped without an answer (responses, runts, foreign sources). */
  dropped: number;
  /** Answers sent with TC set. */
  truncated: number;
  /** Upstream exchanges that failed (timeout, refused, garbage); each marks the upstream down. */
  upstreamFailures: number;
  /** Forwarded queries answered SERVFAIL at once because every upstream was down. */
  allUpstreamsDown: number;
  /** Time from forwarding to the upstream's answer. */
  forwardLatencyMs: { count: number; sum: number; max: number; buckets: number[] };
}

/** A zeroed metrics object. */
export function newMetrics(): DnsMetrics {
  return {
    queries: { udp: 0, tcp: 0 },
    local: 0,
    forwarded: 0,
    cacheHits: 0,
    cacheMisses: 0,
    answers: {},
    malformed: 0,
    dropped: 0,
    truncated: 0,
    upstreamFailures: 0,
    allUpstreamsDown: 0,
    forwardLatencyMs: {
      count: 0,
      sum: 0,
      max: 0,
      buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0),
    },
  };
}

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** Counts an answer by the rcode in its header. */
export function countAnswer(m: DnsMetrics, answer: Uint8Array): void {
  if (answer.length < 4) return;
  const rcode = answer[3]! & 0x0f;
  const name = RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
  m.answers[name] = (m.answers[name] ?? 0) + 1;
  if ((answer[2]! & 0x02) !== 0) m.truncated++;
}

/** Adds one forward latency sample. */
export function observeLatency(m: DnsMetrics, ms: number): void {
  const h = m.forwardLatencyMs;
  h.count++;
  h.sum += ms;
  if (ms > h.max) h.max = ms;
  let i = LATENCY_BUCKETS_MS.findIndex((b) => ms <= b);
  if (i < 0) i = LATENCY_BUCKETS_MS.length;
  h.buckets[i]!++;
}
