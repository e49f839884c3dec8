/**
 * Cleanup stacks and an async mutex: the two tools that keep multi-step changes whole.
 */

/** One undo step. */
export type Undo = () => void | Promise<void>;

/**
 * A stack of undo steps. Push the inverse of each change right after making it; on failure call
 * `unwind()`, which runs every step in reverse order, keeps going past failures and throws them
 * together as one AggregateError. On success call `release()` to forget the steps.
 *
 * @example
 * const undo = new CleanupStack();
 * try { await addLink(); undo.push(() => delLink()); ...; undo.release(); }
 * catch (err) { await undo.unwindQuietly(err); throw err; }
 */
export class CleanupStack {
  #steps: { label: string; undo: Undo }[] = [];

  /** Adds an undo step. */
  push(label: string, undo: Undo): void {
    this.#steps.push({ label, undo });
  }

  /** Forgets all steps: the change succeeded. */
  release(): void {
    this.#steps = [];
  }

  /** Number of pending steps. */
  get size(): number {
    return this.#steps.length;
  }

  /**
   * Runs every step in reverse order.
   * @throws AggregateError listing each step that failed
   */
  async unwind(): Promise<void> {
    const errors: unknown[] = [];
    while (this.#steps.length > 0) {
      const step = this.#steps.pop()!;
      try {
        await step.undo();
      } catch (err) {
        errors.push(new Error(`Cannot undo "${step.label}"`, { cause: err }));
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'Rollback was incomplete');
  }

  /**
   * Runs every step and attaches rollback failures to `original` (as `suppressed`) instead of
   * throwing them, so the caller can rethrow the error that caused the rollback.
   */
  async unwindQuietly(original: unknown): Promise<void> {
    try {
      await this.unwind();
    } catch (err) {
      if (original instanceof Error) {
        Object.defineProperty(original, 'suppressed', { value: err, enumerable: false });
      }
    }
  }
}

/**
 * Runs each teardown step even when earlier ones fail, then throws every failure as one
 * AggregateError.
 */
export async function runAll(label: string, steps: (() => unknown)[]): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, label);
}

/** A FIFO async mutex: `await mutex.run(async () => ...)` runs one task at a time. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every task queued before it has settled. */
  run<T>(task: () => Promise<T> | T): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/** A set of mutexes by key (one work queue per network). */
export class KeyedMutex {
  #locks = new Map<string, { mutex: Mutex; users: number }>();

  /** Runs `task` while holding the lock for `key`. */
  async run<T>(key: string, task: () => Promise<T> | T): Promise<T> {
    let entry = this.#locks.get(key);
    if (!entry) {
      entry = { mutex: new Mutex(), users: 0 };
      this.#locks.set(key, entry);
    }
    entry.users++;
    try {
      return await entry.mutex.run(task);
    } finally {
      entry.users--;
      if (entry.users === 0) this.#locks.delete(key);
    }
  }
}
