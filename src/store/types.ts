/**
 * The store contract: intent kept as plain JSON records with revisions.
 *
 * Keys are `/`-separated paths (`networks/<id>`, `endpoints/<netId>/<epId>`). Every write bumps
 * the store's global revision and sets the record's `revision` to it, so a record's revision
 * says when it last changed and doubles as a compare-and-swap token. Implementations:
 * `sqlite/` (embedded default), `memory/` (tests); etcd later, behind this same contract.
 */

/** One stored record. */
export interface StoreRecord<T = unknown> {
  key: string;
  value: T;
  /** Global revision at which this record was last written (> 0). */
  revision: number;
}

/**
 * A precondition on one key. `revision: 0` means "must not exist"; a positive revision means
 * "must exist with exactly this revision".
 */
export interface Expect {
  key: string;
  revision: number;
}

/** One write in a transaction. */
export type TxnOp = { op: 'put'; key: string; value: unknown } | { op: 'delete'; key: string };

/** A change seen by a watcher. */
export interface WatchEvent<T = unknown> {
  type: 'put' | 'delete';
  key: string;
  /** The new value for `put`; the last value for `delete`. */
  value: T | undefined;
  revision: number;
}

/** Options for `put` and `delete`. */
export interface WriteOptions {
  /** Compare-and-swap: 0 = the key must not exist; n = its revision must be n. */
  expectRevision?: number;
}

/**
 * Record storage. All methods are async so that remote stores fit the same contract.
 * Writes that fail a precondition throw `ConflictError` with code `STORE_REVISION_MISMATCH`
 * and change nothing.
 */
export interface Store {
  /** Reads one record. */
  get<T = unknown>(key: string): Promise<StoreRecord<T> | undefined>;
  /** Reads every record whose key starts with `prefix`, ordered by key. */
  list<T = unknown>(prefix: string): Promise<StoreRecord<T>[]>;
  /**
   * Writes one record; returns its new revision.
   * @throws ConflictError STORE_REVISION_MISMATCH when `expectRevision` does not hold
   */
  put(key: string, value: unknown, opts?: WriteOptions): Promise<number>;
  /**
   * Deletes one record; returns false when it did not exist (and no expectation was given).
   * @throws ConflictError STORE_REVISION_MISMATCH when `expectRevision` does not hold
   */
  delete(key: string, opts?: WriteOptions): Promise<boolean>;
  /**
   * Checks every expectation, then applies every op, atomically: all or nothing.
   * Returns the revision of the transaction.
   * @throws ConflictError STORE_REVISION_MISMATCH when an expectation fails (nothing written)
   */
  txn(expects: Expect[], ops: TxnOp[]): Promise<number>;
  /** The store's current global revision (0 when empty and never written). */
  revision(): Promise<number>;
  /**
   * Calls `listener` for every change under `prefix` after this call, in revision order.
   * Returns a function that stops the watch.
   */
  watch<T = unknown>(prefix: string, listener: (event: WatchEvent<T>) => void): () => void;
  /** Releases the store (closes files). */
  close(): Promise<void>;
}

/** Options every store implementation accepts at construction. */
export interface StoreOptions {
  /**
   * Called when a watch listener throws. The store and the other listeners carry on either
   * way; the default reports the error with `process.emitWarning`.
   */
  onListenerError?: (err: unknown, event: WatchEvent) => void;
}
