/**
 * In-process watch delivery shared by the stores owned by one daemon.
 *
 * Events are queued and delivered by one loop, so a listener that writes to the store does not
 * get its own write delivered before the rest of the transaction it is reacting to: delivery
 * stays in revision order however listeners nest writes.
 */

import { describeError } from '../errors.js';
import type { WatchEvent } from './types.js';
import { decodeValue } from './values.js';

/** A committed change, with the value still as JSON text so each listener gets its own copy. */
export interface Change {
  type: 'put' | 'delete';
  key: string;
  json: string;
  revision: number;
}

interface Subscription {
  prefix: string;
  listener: (event: WatchEvent) => void;
  /** Only changes after this revision: the ones committed after `watch` was called. */
  after: number;
  active: boolean;
}

/** Fans committed changes out to watch listeners, in revision order. */
export class WatchHub {
  readonly #subs = new Set<Subscription>();
  readonly #queue: Change[] = [];
  #draining = false;
  readonly #onError: (err: unknown, event: WatchEvent) => void;

  constructor(onError: ((err: unknown, event: WatchEvent) => void) | undefined) {
    this.#onError = onError ?? warnListenerError;
  }

  /**
   * Adds a listener for changes under `prefix` committed after revision `after`.
   * Returns a function that removes it; calling it twice is harmless.
   */
  subscribe(prefix: string, listener: (event: WatchEvent) => void, after: number): () => void {
    const sub: Subscription = { prefix, listener, after, active: true };
    this.#subs.add(sub);
    return () => {
      sub.active = false;
      this.#subs.delete(sub);
    };
  }

  /** Delivers the changes of one commit; call only after the commit is durable. */
  publish(changes: readonly Change[]): void {
    this.#queue.push(...changes);
    if (this.#draining) return; // the outer publish call delivers these after its own
    this.#draining = true;
    try {
      for (let i = 0; i < this.#queue.length; i++) this.#deliver(this.#queue[i] as Change);
    } finally {
      this.#queue.length = 0;
      this.#draining = false;
    }
  }

  /** Drops every listener (the store is closing). */
  clear(): void {
    for (const sub of this.#subs) sub.active = false;
    this.#subs.clear();
  }

  #deliver(change: Change): void {
    // Set iteration visits subscriptions added meanwhile; `after` keeps them from seeing
    // changes committed before they subscribed, `active` stops removed ones at once.
    for (const sub of this.#subs) {
      if (!sub.active || change.revision <= sub.after || !change.key.startsWith(sub.prefix)) {
        continue;
      }
      const event: WatchEvent = {
        type: change.type,
        key: change.key,
        value: decodeValue(change.json),
        revision: change.revision,
      };
      try {
        sub.listener(event);
      } catch (err) {
        this.#report(err, event);
      }
    }
  }

  #report(err: unknown, event: WatchEvent): void {
    try {
      this.#onError(err, event);
    } catch {
      // The error reporter itself failed; there is nowhere left to report to, and the
      // committed write and the other listeners must not suffer for it.
    }
  }
}

function warnListenerError(err: unknown, event: WatchEvent): void {
  process.emitWarning(
    `Store watcher failed on "${event.key}" at revision "${event.revision}": ${describeError(err)}`,
    { code: 'CNM_STORE_WATCHER_FAILED' },
  );
}
