/**
 * Parsers of the load generators' output: iperf3's `-J` JSON, sockperf's ping-pong summary and
 * the CRR loop's JSON line. Pure: no I/O. Each throws a `ToolOutputError` saying what was
 * missing, with the tool's own error message when it printed one.
 */

/** A tool ran but its output holds no figure. */
export class ToolOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolOutputError';
  }
}

interface Iperf3Sum {
  seconds?: number;
  bytes?: number;
  bits_per_second?: number;
  packets?: number;
  lost_packets?: number;
}

interface Iperf3Json {
  error?: string;
  end?: { sum?: Iperf3Sum; sum_sent?: Iperf3Sum; sum_received?: Iperf3Sum };
}

function iperf3Json(text: string): Iperf3Json {
  // iperf3 prints one JSON document; anything before it (a warning) is skipped.
  const start = text.indexOf('{');
  if (start < 0) throw new ToolOutputError(`iperf3 printed no JSON: ${text.trim().slice(0, 200)}`);
  let doc: Iperf3Json;
  try {
    doc = JSON.parse(text.slice(start)) as Iperf3Json;
  } catch (err) {
    throw new ToolOutputError(`iperf3 printed invalid JSON: ${(err as Error).message}`);
  }
  if (typeof doc.error === 'string' && doc.error !== '') {
    throw new ToolOutputError(`iperf3 failed: ${doc.error}`);
  }
  return doc;
}

/**
 * Received TCP throughput in Gbit/s from `iperf3 -c … -J` (all streams: `end.sum_received`).
 *
 * @throws ToolOutputError when the JSON is missing, reports an error or has no received sum
 */
export function parseIperf3Tcp(text: string): number {
  const bps = iperf3Json(text).end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number' || !(bps > 0)) {
    throw new ToolOutputError('iperf3 JSON has no end.sum_received.bits_per_second');
  }
  return bps / 1e9;
}

/**
 * Datagrams per second that reached the receiver, from `iperf3 -u -J`: received
 * (`packets - lost_packets` of `end.sum_received`, else of `end.sum`) over the receiver's
 * seconds.
 *
 * @throws ToolOutputError when the JSON is missing, reports an error or has no UDP sum
 */
export function parseIperf3Udp(text: string): number {
  const end = iperf3Json(text).end;
  const s = end?.sum_received ?? end?.sum;
  if (
    s === undefined ||
    typeof s.packets !== 'number' ||
    typeof s.lost_packets !== 'number' ||
    typeof s.seconds !== 'number' ||
    !(s.seconds > 0)
  ) {
    throw new ToolOutputError('iperf3 JSON has no UDP end.sum_received (packets, lost, seconds)');
  }
  return Math.max(0, s.packets - s.lost_packets) / s.seconds;
}

/** sockperf's latency percentiles in µs (as printed: round trip with `--full-rtt`). */
export interface SockperfLatency {
  p50Us: number;
  p99Us: number;
  observations: number;
}

/**
 * Reads p50 and p99 from sockperf ping-pong's summary (`---> percentile 50.000 =    7.239`).
 * Colour escapes in the output are ignored.
 *
 * @throws ToolOutputError when a percentile line is missing
 */
export function parseSockperf(text: string): SockperfLatency {
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
  const pct = (p: string): number => {
    const m = new RegExp(`percentile ${p.replace('.', '\\.')}\\s*=\\s*([\\d.]+)`).exec(plain);
    if (m === null) {
      const err = /sockperf: ERROR[^\n]*/.exec(plain)?.[0];
      throw new ToolOutputError(`sockperf printed no percentile ${p}${err ? `: ${err}` : ''}`);
    }
    return Number(m[1]);
  };
  const obs = /Total (\d+) observations/.exec(plain);
  return { p50Us: pct('50.000'), p99Us: pct('99.000'), observations: Number(obs?.[1] ?? NaN) };
}

/**
 * Connections per second from the CRR loop's last JSON line
 * (`{"connections": N, "errors": E, "seconds": S}`).
 *
 * @throws ToolOutputError when there is no such line or no connection completed
 */
export function parseCrr(text: string): { perSec: number; errors: number } {
  const line = text
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (line === undefined) throw new ToolOutputError(`CRR loop printed no result: ${text.trim()}`);
  const r = JSON.parse(line) as { connections?: number; errors?: number; seconds?: number };
  if (typeof r.connections !== 'number' || typeof r.seconds !== 'number' || !(r.seconds > 0)) {
    throw new ToolOutputError(`CRR loop result is incomplete: ${line}`);
  }
  if (r.connections === 0) {
    throw new ToolOutputError(`CRR loop completed no connection (${r.errors ?? 0} errors)`);
  }
  return { perSec: r.connections / r.seconds, errors: r.errors ?? 0 };
}
