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
  checks: { name: string; run: RepairCheck }[];
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
}

/** A running reconciler. */
export interface Reconciler {
  /** Runs every check once now (also while the timer runs); resolves with the repairs made. */
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
  const runOnce = (): Promise<string[]> => {
    if (running) return running;
    running = (async () => {
      const out: string[] = [];
      for (const c of opts.checks) {
        try {
          for (const line of await c.run()) out.push(`${c.name}: ${line}`);
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
