/**
 * The drift reconciler: runs repair checks on a fixed period so that what cnm owns and someone
 * removed behind its back (a veth, a bridge, the nftables tables, a container's default route)
 * comes back within about one period plus the repair itself. A check never overlaps the
 * previous one; a failing check is logged and tried again next period.
 *
 * Periodic rather than event-driven: a netlink multicast listener would see link and route
 * deletions sooner, but nftables changes are not on NETLINK_ROUTE, and a period of 1 s meets
 * the 2 s promise with one link dump, one route dump per sandbox and two nft listings a second.
 */

/** One repair check: returns a line per repair it made. */
export type RepairCheck = () => Promise<string[]>;

/** Options of {@link startReconciler}. */
export interface ReconcilerOptions {
  /** Period in milliseconds (default 1000). */
  intervalMs?: number;
  /**
   * `share`: the largest share of the time the check may take; after a run that took d ms it is
   * skipped until d / share ms after that run started (default: every period).
   */
  checks: { name: string; run: RepairCheck; share?: number }[];
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
}

/** A running reconciler. */
export interface Reconciler {
  /**
   * Runs every check once now (also while the timer runs; a check whose share is used up is
   * skipped); resolves with the repairs made.
   */
  runOnce(): Promise<string[]>;
  /** Stops the timer and waits for a check in progress. */
  stop(): Promise<void>;
}

/**
 * Starts the periodic checks. The timer does not keep the process alive.
 * @example const r = startReconciler({ checks: [{ name: 'links', run: () => ctl.repairDrift() }], log })
 */
export function startReconciler(opts: ReconcilerOptions): Reconciler {
  let running: Promise<string[]> | undefined;
  let stopped = false;
  /** Per check with a `share`: the earliest time (performance.now()) it runs again. */
  const notBefore = new Map<string, number>();
  const runOnce = (): Promise<string[]> => {
    if (running) return running;
    running = (async () => {
      const out: string[] = [];
      for (const c of opts.checks) {
        const start = performance.now();
        if (start < (notBefore.get(c.name) ?? 0)) continue;
        try {
          const lines = await c.run();
          for (const line of lines) out.push(`${c.name}: ${line}`);
          // After a repair the check runs again next period, to see that it held.
          if (c.share !== undefined && lines.length === 0) {
            notBefore.set(c.name, start + (performance.now() - start) / c.share);
          } else notBefore.delete(c.name);
        } catch (err) {
          opts.log('error', `Drift check "${c.name}" failed: ${String(err)}`);
        }
      }
      return out;
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => {
    if (!stopped && !running) void runOnce();
  }, opts.intervalMs ?? 1000);
  timer.unref();
  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
