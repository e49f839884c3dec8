/**
 * The embedded store: one SQLite file in WAL mode, owned by one daemon process.
 *
 * Crash safety comes from SQLite: each `txn` is one SQLite transaction, so after a SIGKILL a
 * committed transaction is in the WAL and a partial one is rolled back on the next open. With
 * `synchronous=NORMAL` a power loss may drop the last few committed transactions but never
 * corrupts the file; that trade buys about 8× the write rate of `FULL` (see README.md).
 */

import Database from 'better-sqlite3';
import { UnavailableError } from '../../errors.js';
import { checkKey, checkPrefix, prefixEnd } from '../keys.js';
import type { PlannedOp } from '../txn-plan.js';
import { expectsFor, planTxn, revisionMismatch } from '../txn-plan.js';
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
import type { Change } from '../watch-hub.js';
import { WatchHub } from '../watch-hub.js';

/**
 * Schema steps; step `i` moves the file from `user_version` i to i + 1. Append new steps, never
 * edit a released one: files in the field are at every version.
 */
const MIGRATIONS: readonly ((db: Database.Database) => void)[] = [
  (db) => {
    // WITHOUT ROWID: the key is the only lookup path, so keep the rows in the key's b-tree
    // instead of a rowid table plus a separate index.
    db.exec(`
      CREATE TABLE records (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        revision INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE meta (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
      ) WITHOUT ROWID;
      INSERT INTO meta (name, value) VALUES ('revision', 0);
    `);
  },
];

/** The schema version this code writes (`PRAGMA user_version`). */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

// Long enough to ride out a checkpoint or a backup tool holding the lock, short enough that a
// stuck daemon reports it rather than hanging.
const BUSY_TIMEOUT_MS = 5000;

interface Row {
  key: string;
  value: string;
  revision: number;
}

/** The statements every call uses, prepared once per connection. */
interface Statements {
  get: Database.Statement<[string], Row>;
  revisionOf: Database.Statement<[string], number>;
  listRange: Database.Statement<[string, string], Row>;
  listFrom: Database.Statement<[string], Row>;
  upsert: Database.Statement<[string, string, number], unknown>;
  remove: Database.Statement<[string], string>;
  readRevision: Database.Statement<[], number>;
  writeRevision: Database.Statement<[number], unknown>;
}

interface Applied {
  revision: number;
  changes: Change[];
}

/**
 * A `Store` in one SQLite file, through better-sqlite3. Calls run synchronously on the event
 * loop (a point write takes tens of microseconds); their promises only keep the contract
 * shared with remote stores. Watchers are in-process: writes by another process are not seen.
 * @example
 * const store = SqliteStore.open('/var/lib/cnm/store.db');
 * await store.put('networks/a', { name: 'a' }, { expectRevision: 0 });
 */
export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #path: string;
  readonly #st: Statements;
  readonly #hub: WatchHub;
  readonly #applyTxn: Database.Transaction<
    (expects: readonly Expect[], ops: readonly PlannedOp[]) => Applied
  >;
  /** The last revision this process committed; subscriptions start after it. */
  #revision: number;

  private constructor(db: Database.Database, path: string, options: StoreOptions) {
    this.#db = db;
    this.#path = path;
    this.#hub = new WatchHub(options.onListenerError);
    this.#st = {
      get: db.prepare('SELECT key, value, revision FROM records WHERE key = ?'),
      revisionOf: db
        .prepare<[string], number>('SELECT revision FROM records WHERE key = ?')
        .pluck(),
      // A range on the primary key, not LIKE: no `%`/`_` wildcards, and it uses the index.
      listRange: db.prepare(
        'SELECT key, value, revision FROM records WHERE key >= ? AND key < ? ORDER BY key',
      ),
      listFrom: db.prepare('SELECT key, value, revision FROM records WHERE key >= ? ORDER BY key'),
      upsert: db.prepare(
        `INSERT INTO records (key, value, revision) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, revision = excluded.revision`,
      ),
      remove: db
        .prepare<[string], string>('DELETE FROM records WHERE key = ? RETURNING value')
        .pluck(),
      readRevision: db
        .prepare<[], number>("SELECT value FROM meta WHERE name = 'revision'")
        .pluck(),
      writeRevision: db.prepare("UPDATE meta SET value = ? WHERE name = 'revision'"),
    };
    this.#applyTxn = db.transaction((expects, ops) => this.#applyInTxn(expects, ops));
    this.#revision = this.#st.readRevision.get() ?? 0;
  }

  /**
   * Opens (creating if needed) the store file at `path` and brings its schema up to date. The
   * caller creates the parent directory: the daemon owns its state directory and its mode.
   * @throws UnavailableError STORE_OPEN_FAILED when the file cannot be opened or migrated
   * @throws UnavailableError STORE_SCHEMA_NEWER when a newer cnm wrote the file
   */
  static open(path: string, options: StoreOptions = {}): SqliteStore {
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      // WAL: readers do not block the writer and a commit is one append. Persistent in the file.
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal' && !db.memory) {
        throw new Error(`journal_mode is "${String(mode)}", not "wal"`);
      }
      db.pragma('synchronous = NORMAL');
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      migrate(db, path);
      return new SqliteStore(db, path, options);
    } catch (err) {
      db?.close();
      if (err instanceof UnavailableError) throw err;
      throw new UnavailableError('STORE_OPEN_FAILED', `Cannot open store "${path}"`, {
        cause: err,
      });
    }
  }

  /** {@inheritDoc Store.get} */
  async get<T = unknown>(key: string): Promise<StoreRecord<T> | undefined> {
    checkKey(key);
    const row = this.#run('read', () => this.#st.get.get(key));
    return row && toRecord<T>(row);
  }

  /** {@inheritDoc Store.list} */
  async list<T = unknown>(prefix: string): Promise<StoreRecord<T>[]> {
    checkPrefix(prefix);
    const end = prefixEnd(prefix);
    const rows = this.#run('list', () =>
      end === undefined ? this.#st.listFrom.all(prefix) : this.#st.listRange.all(prefix, end),
    );
    return rows.map((r) => toRecord<T>(r));
  }

  /** {@inheritDoc Store.put} */
  async put(key: string, value: unknown, opts: WriteOptions = {}): Promise<number> {
    checkKey(key);
    return this.#apply(expectsFor(key, opts.expectRevision), [{ op: 'put', key, value }]).revision;
  }

  /** {@inheritDoc Store.delete} */
  async delete(key: string, opts: WriteOptions = {}): Promise<boolean> {
    checkKey(key);
    const applied = this.#apply(expectsFor(key, opts.expectRevision), [{ op: 'delete', key }]);
    return applied.changes.length > 0;
  }

  /**
   * {@inheritDoc Store.txn}
   * A transaction that changes nothing (only deletes of missing keys) does not bump the
   * revision and returns the current one.
   */
  async txn(expects: Expect[], ops: TxnOp[]): Promise<number> {
    return this.#apply(expects, ops).revision;
  }

  /** {@inheritDoc Store.revision} */
  async revision(): Promise<number> {
    return this.#run('read', () => this.#st.readRevision.get() ?? 0);
  }

  /** {@inheritDoc Store.watch} */
  watch<T = unknown>(prefix: string, listener: (event: WatchEvent<T>) => void): () => void {
    this.#checkOpen();
    checkPrefix(prefix);
    return this.#hub.subscribe(prefix, listener as (e: WatchEvent) => void, this.#revision);
  }

  /** {@inheritDoc Store.close} Closing twice is harmless. */
  async close(): Promise<void> {
    this.#hub.clear();
    if (this.#db.open) this.#db.close();
  }

  #apply(expects: readonly Expect[], ops: readonly TxnOp[]): Applied {
    const planned = planTxn(expects, ops);
    // IMMEDIATE takes the write lock up front, so the expectations are checked against the
    // state the writes land on, and a second process cannot make the upgrade fail with BUSY.
    const applied = this.#run('write', () => this.#applyTxn.immediate(expects, planned));
    // Publish only after COMMIT returned: a listener never sees a change that could roll back.
    if (applied.changes.length > 0) {
      this.#revision = applied.revision;
      this.#hub.publish(applied.changes);
    }
    return applied;
  }

  #applyInTxn(expects: readonly Expect[], ops: readonly PlannedOp[]): Applied {
    for (const e of expects) {
      const actual = this.#st.revisionOf.get(e.key) ?? 0;
      // Throwing inside db.transaction rolls back; nothing has been written yet anyway.
      if (actual !== e.revision) throw revisionMismatch(e.key, e.revision, actual);
    }
    const current = this.#st.readRevision.get() ?? 0;
    const revision = current + 1;
    const changes: Change[] = [];
    for (const op of ops) {
      if (op.op === 'put') {
        this.#st.upsert.run(op.key, op.json, revision);
        changes.push({ type: 'put', key: op.key, json: op.json, revision });
      } else {
        const old = this.#st.remove.get(op.key);
        if (old === undefined) continue; // deleting a missing key is not a change
        changes.push({ type: 'delete', key: op.key, json: old, revision });
      }
    }
    if (changes.length === 0) return { revision: current, changes };
    this.#st.writeRevision.run(revision);
    return { revision, changes };
  }

  /** Runs one SQLite call, turning driver failures (busy, disk full, I/O) into store errors. */
  #run<T>(action: string, fn: () => T): T {
    this.#checkOpen();
    try {
      return fn();
    } catch (err) {
      if (err instanceof Database.SqliteError) {
        throw new UnavailableError('STORE_IO_FAILED', `Cannot ${action} store "${this.#path}"`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  #checkOpen(): void {
    if (!this.#db.open) {
      throw new UnavailableError('STORE_CLOSED', `Cannot use store "${this.#path}": it is closed`);
    }
  }
}

function toRecord<T>(row: Row): StoreRecord<T> {
  return { key: row.key, value: decodeValue<T>(row.value), revision: row.revision };
}

/**
 * Brings the schema to `SQLITE_SCHEMA_VERSION`, one step per transaction, so a crash between
 * steps leaves a file at a well-defined version that the next open continues from.
 */
function migrate(db: Database.Database, path: string): void {
  const readVersion = (): number => db.pragma('user_version', { simple: true }) as number;
  const step = db.transaction(() => {
    // Read again under the write lock: another process may have migrated meanwhile.
    const version = readVersion();
    if (version >= MIGRATIONS.length) return false;
    (MIGRATIONS[version] as (db: Database.Database) => void)(db);
    db.pragma(`user_version = ${version + 1}`);
    return true;
  });
  const version = readVersion();
  if (version > MIGRATIONS.length) {
    throw new UnavailableError(
      'STORE_SCHEMA_NEWER',
      `Cannot open store "${path}": schema version "${version}" is newer than the supported "${MIGRATIONS.length}"`,
    );
  }
  while (step.immediate()) {
    // each call applies one step
  }
}
