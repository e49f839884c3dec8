/**
 * The in-memory store, for tests and fakes: the same contract and the same checks as the
 * SQLite store, nothing persisted.
 */

import { UnavailableError } from '../../errors.js';
import { checkKey, checkPrefix, compareKeys } from '../keys.js';
import { expectsFor, planTxn, revisionMismatch } from '../txn-plan.js';
import type { Change } from '../watch-hub.js';
import { WatchHub } from '../watch-hub.js';
import type {
  Expect,
  Store,
  StoreOptions,
  StoreRecord,
  TxnOp,
  WatchEvent,
  WriteOptions,
} from '../types.js';
import { decodeValue } from '../values.js';

interface Row {
  json: string;
  revision: number;
}

/**
 * A `Store` held in a `Map`. Every method does its work synchronously before its promise
 * settles, so concurrent callers are serialised by the event loop just as SQLite serialises
 * them.
 * @example
 * const store = new MemoryStore();
 * await store.put('networks/a', { name: 'a' }, { expectRevision: 0 });
 */
export class MemoryStore implements Store {
  readonly #rows = new Map<string, Row>();
  readonly #hub: WatchHub;
  #revision = 0;
  #closed = false;

  constructor(options: StoreOptions = {}) {
    this.#hub = new WatchHub(options.onListenerError);
  }

  /** {@inheritDoc Store.get} */
  async get<T = unknown>(key: string): Promise<StoreRecord<T> | undefined> {
    this.#checkOpen();
    checkKey(key);
    const row = this.#rows.get(key);
    return row && { key, value: decodeValue<T>(row.json), revision: row.revision };
  }

  /** {@inheritDoc Store.list} */
  async list<T = unknown>(prefix: string): Promise<StoreRecord<T>[]> {
    this.#checkOpen();
    checkPrefix(prefix);
    const keys = [...this.#rows.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys);
    return keys.map((key) => {
      const row = this.#rows.get(key) as Row;
      return { key, value: decodeValue<T>(row.json), revision: row.revision };
    });
  }

  /** {@inheritDoc Store.put} */
  async put(key: string, value: unknown, opts: WriteOptions = {}): Promise<number> {
    this.#checkOpen();
    checkKey(key);
    return this.#apply(expectsFor(key, opts.expectRevision), [{ op: 'put', key, value }]).revision;
  }

  /** {@inheritDoc Store.delete} */
  async delete(key: string, opts: WriteOptions = {}): Promise<boolean> {
    this.#checkOpen();
    checkKey(key);
    return this.#apply(expectsFor(key, opts.expectRevision), [{ op: 'delete', key }]).changed;
  }

  /**
   * {@inheritDoc Store.txn}
   * A transaction that changes nothing (only deletes of missing keys) does not bump the
   * revision and returns the current one.
   */
  async txn(expects: Expect[], ops: TxnOp[]): Promise<number> {
    this.#checkOpen();
    return this.#apply(expects, ops).revision;
  }

  /** {@inheritDoc Store.revision} */
  async revision(): Promise<number> {
    this.#checkOpen();
    return this.#revision;
  }

  /** {@inheritDoc Store.watch} */
  watch<T = unknown>(prefix: string, listener: (event: WatchEvent<T>) => void): () => void {
    this.#checkOpen();
    checkPrefix(prefix);
    return this.#hub.subscribe(prefix, listener as (e: WatchEvent) => void, this.#revision);
  }

  /** {@inheritDoc Store.close} Closing twice is harmless. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#hub.clear();
  }

  #apply(
    expects: readonly Expect[],
    ops: readonly TxnOp[],
  ): { revision: number; changed: boolean } {
    const planned = planTxn(expects, ops);
    for (const e of expects) {
      const actual = this.#rows.get(e.key)?.revision ?? 0;
      if (actual !== e.revision) throw revisionMismatch(e.key, e.revision, actual);
    }
    const revision = this.#revision + 1;
    const changes: Change[] = [];
    for (const op of planned) {
      if (op.op === 'put') {
        this.#rows.set(op.key, { json: op.json, revision });
        changes.push({ type: 'put', key: op.key, json: op.json, revision });
      } else {
        const old = this.#rows.get(op.key);
        if (old === undefined) continue; // deleting a missing key is not a change
        this.#rows.delete(op.key);
        changes.push({ type: 'delete', key: op.key, json: old.json, revision });
      }
    }
    if (changes.length === 0) return { revision: this.#revision, changed: false };
    this.#revision = revision;
    this.#hub.publish(changes);
    return { revision, changed: true };
  }

  #checkOpen(): void {
    if (this.#closed) throw new UnavailableError('STORE_CLOSED', 'Cannot use store: it is closed');
  }
}
