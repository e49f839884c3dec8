/**
 * Opt-in timing of the container-create path, for finding where its time goes (bench/attach):
 * with `CNM_TRACE=/path/file` in cnmd's environment, each traced operation appends one JSON line
 * `{"what":"batch","total":2.41,"steps":[["nl GETLINK",0.05],["linkAdd",1.2],…]}` (ms, each
 * step the time since the previous mark). Unset (the default), {@link startTrace} returns
 * undefined and a traced path costs one branch per mark.
 *
 * The kernel worker and the main thread append to the same file; each line is one `write` with
 * O_APPEND, so lines never interleave.
 */
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const FILE = process.env['CNM_TRACE'] || undefined;

/** Marks of one traced operation. */
export class StepTrace {
  readonly #what: string;
  readonly #t0 = performance.now();
  #last = this.#t0;
  readonly #steps: [string, number][] = [];

  constructor(what: string) {
    this.#what = what;
  }

  /** Records the time since the previous mark (or the start) under `step`. */
  mark(step: string): void {
    const t = performance.now();
    this.#steps.push([step, round(t - this.#last)]);
    this.#last = t;
  }

  /** Writes the line. `extra` fields (e.g. a count) are added to it. */
  end(extra?: Record<string, string | number>): void {
    const total = round(performance.now() - this.#t0);
    const line = { what: this.#what, total, ...extra, steps: this.#steps };
    try {
      appendFileSync(FILE!, JSON.stringify(line) + '\n');
    } catch {
      // A debugging aid must never fail the operation it watches.
    }
  }
}

/** A trace of `what` when `CNM_TRACE` is set, else undefined. */
export function startTrace(what: string): StepTrace | undefined {
  return FILE === undefined ? undefined : new StepTrace(what);
}

/**
 * The trace that netlink requests of the running kernel-thread call mark into (the worker runs
 * one call at a time, so one slot is enough).
 */
export const activeTrace: { current: StepTrace | undefined } = { current: undefined };

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
