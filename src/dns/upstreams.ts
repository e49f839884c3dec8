/**
 * Upstream health: which forwarding targets are up, in which order to try them, and when a
 * dead one is due for a probe. A server that failed once is skipped by every query until a
 * probe finds it answering again, so no query waits on a dead upstream twice.
 */

/** Health-tracking settings. */
export interface HealthOptions {
  /** First probe delay after a failure (ms); doubles per failed probe. */
  probeMinMs?: number;
  /** Longest probe delay (ms). */
  probeMaxMs?: number;
  now?: () => number;
}

interface State {
  down: boolean;
  nextProbe: number;
  backoff: number;
  /** Smoothed round-trip time (ms), for the forward timeout. */
  srtt: number;
}

/** Health of every upstream server seen so far, keyed by address. */
export class UpstreamHealth {
  #states = new Map<string, State>();
  #min: number;
  #max: number;
  #now: () => number;

  constructor(opts: HealthOptions = {}) {
    this.#min = opts.probeMinMs ?? 1000;
    this.#max = opts.probeMaxMs ?? 30_000;
    this.#now = opts.now ?? Date.now;
  }

  #state(server: string): State {
    let s = this.#states.get(server);
    if (!s) this.#states.set(server, (s = { down: false, nextProbe: 0, backoff: 0, srtt: 0 }));
    return s;
  }

  /** The servers to try, in order: the ones that are up, as configured; down ones left out. */
  order(servers: readonly string[]): string[] {
    return servers.filter((s) => !this.#states.get(s)?.down);
  }

  /** Records an answer from `server` after `rttMs`: it is up. */
  ok(server: string, rttMs: number): void {
    const s = this.#state(server);
    s.down = false;
    s.backoff = 0;
    s.srtt = s.srtt === 0 ? rttMs : s.srtt * 0.875 + rttMs * 0.125;
  }

  /** Records a failure: `server` is down until a probe says otherwise. */
  failed(server: string): void {
    const s = this.#state(server);
    s.backoff = s.down ? Math.min(this.#max, s.backoff * 2) : this.#min;
    s.down = true;
    s.nextProbe = this.#now() + s.backoff;
  }

  /** Whether `server` is marked down. */
  isDown(server: string): boolean {
    return this.#states.get(server)?.down ?? false;
  }

  /** Down servers whose probe time has come; each is pushed back so it is probed once. */
  dueProbes(): string[] {
    const now = this.#now();
    const out: string[] = [];
    for (const [server, s] of this.#states) {
      if (s.down && s.nextProbe <= now) {
        s.nextProbe = now + this.#max;
        out.push(server);
      }
    }
    return out;
  }

  /** Per-server state for metrics and logs. */
  snapshot(): Record<string, { down: boolean; srttMs: number }> {
    const out: Record<string, { down: boolean; srttMs: number }> = {};
    for (const [k, s] of this.#states)
      out[k] = { down: s.down, srttMs: Math.round(s.srtt * 10) / 10 };
    return out;
  }
}
