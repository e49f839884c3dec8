/**
 * The store: plain JSON records with revisions. Import implementations from here; only
 * `main/` chooses which one to construct.
 */

export type {
  Expect,
  Store,
  StoreOptions,
  StoreRecord,
  TxnOp,
  WatchEvent,
  WriteOptions,
} from './types.js';
export { MemoryStore } from './memory/memory-store.js';
export { SQLITE_SCHEMA_VERSION, SqliteStore } from './sqlite/sqlite-store.js';
