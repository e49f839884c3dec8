/** The seam between the runner and the two kinds of data path it measures: cnm's and the ceiling's. */
import type { Target } from './tools.js';

/** What a client command left behind. */
export interface ClientRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A built data path: where the servers are and how to run a client at its far end. */
export interface MeasuredPath {
  /** One line saying how the path is built, for the report. */
  readonly description: string;
  readonly target: Target;
  /**
   * Runs a client command where the path starts and collects its output.
   * @throws the signal's reason when `signal` aborts
   */
  runClient(argv: string[], signal: AbortSignal, timeoutMs: number): Promise<ClientRun>;
}

/** Sleeps `ms`, or rejects with the signal's reason when it aborts first. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
