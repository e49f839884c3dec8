/**
 * `EtcdStore`: the store contract over an etcd v3 cluster, for global-scope records (overlay
 * networks, their endpoints, host registrations). Design notes: `docs/overlay.md`.
 *
 * - A record's revision is etcd's `mod_revision`; the store revision is the response header's.
 * - `txn` is one etcd `Txn`: expectations become `Compare(MOD, =, n)` or `Compare(CREATE, =, 0)`.
 * - One etcd watch over the store's key prefix feeds every listener (`WatchHub`), so events from
 *   every host arrive in revision order. A write resolves only once that stream has delivered
 *   it (when anyone listens), which keeps the contract's "delivered before the writer's promise
 *   settles".
 * - Every failure to reach etcd is an `UnavailableError` (`STORE_UNAVAILABLE`), never a
 *   revision mismatch.
 *
 * `etcd3` is an optional dependency: it is loaded on `connect`, so a daemon without
 * `--cluster-store` never needs it.
 */

import { InvalidError, UnavailableError, describeError, CnmError } from '../../errors.js';
import { checkKey, checkPrefix } from '../keys.js';
import { expectsFor, planTxn, revisionMismatch, type PlannedOp } from '../txn-plan.js';
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
import { WatchHub, type Change } from '../watch-hub.js';
import type { Etcd3, IKeyValue, IRequestOp, IWatchResponse, Lease, Watcher } from 'etcd3';

/** How to reach the cluster. */
export interface EtcdStoreOptions extends StoreOptions {
  /** Client URLs, e.g. `['http://198.51.100.11:2379']`. */
  endpoints: string[];
  /** Every key is stored under this prefix (`cnm/`): several users can share one cluster. */
  namespace?: string;
  /** TLS material (PEM) for `https://` endpoints. */
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
  /** Per-call deadline in milliseconds (default 3000): an unreachable cluster fails fast. */
  callTimeoutMs?: number;
  /**
   * Report revisions relative to the cluster's revision at connect time, so that a fresh
   * namespace on a cluster that has seen writes looks like a new store (revision 0). For the
   * conformance suite only: records older than the connection would get revisions <= 0.
   */
  relativeRevisions?: boolean;
}

/** A lease: records written with it disappear when it expires or is revoked. */
export interface StoreLease {
  readonly id: string;
  /** Revokes the lease: its records are deleted at once. */
  revoke(): Promise<void>;
  /** Stops keeping the lease alive without revoking it (it expires after its TTL). */
  release(): void;
}

/** Options for `EtcdStore.txn` beyond the contract. */
export interface EtcdTxnOptions {
  /** Attach every put of the transaction to this lease. */
  lease?: StoreLease;
}

// A write waits at most this long for its own event to come back through the watch stream;
// after that it resolves anyway (the event is delivered when the stream catches up).
const DELIVERY_WAIT_MS = 2000;

/** The etcd-backed store. Create with `await EtcdStore.connect(options)`. */
export class EtcdStore implements Store {
  readonly #client: Etcd3;
  readonly #ns: string;
  readonly #hub: WatchHub;
  readonly #base: number;
  readonly #timeoutMs: number;
  #watcher: Watcher | undefined;
  /** Highest revision the watch stream has delivered. */
  #delivered = 0;
  /** Highest revision seen in any response. */
  #known = 0;
  #waiters: { revision: number; resolve: () => void }[] = [];
  #closed = false;

  private constructor(client: Etcd3, opts: EtcdStoreOptions, base: number) {
    this.#client = client;
    this.#ns = opts.namespace ?? '';
    this.#hub = new WatchHub(opts.onListenerError);
    this.#base = base;
    this.#timeoutMs = opts.callTimeoutMs ?? 3000;
  }

  /**
   * Connects to the cluster and starts the store's watch stream.
   * @throws UnavailableError STORE_UNAVAILABLE when the cluster cannot be reached or `etcd3`
   * is not installed
   */
  static async connect(opts: EtcdStoreOptions): Promise<EtcdStore> {
    let mod: typeof import('etcd3');
    try {
      mod = await import('etcd3');
    } catch (err) {
      throw new UnavailableError(
        'STORE_UNAVAILABLE',
        'Cannot use an etcd cluster store: the optional package "etcd3" is not installed',
        { cause: err },
      );
    }
    const timeout = opts.callTimeoutMs ?? 3000;
    const client = new mod.Etcd3({
      hosts: opts.endpoints,
      dialTimeout: timeout,
      defaultCallOptions: () => ({ deadline: Date.now() + timeout }),
      ...(opts.tls
        ? {
            credentials: {
              rootCertificate: opts.tls.ca,
              ...(opts.tls.key ? { privateKey: opts.tls.key } : {}),
              ...(opts.tls.cert ? { certChain: opts.tls.cert } : {}),
            },
          }
        : {}),
    });
    let head: number;
    try {
      head = Number(
        (await client.kv.range({ key: Buffer.from(opts.namespace || '/'), count_only: true }))
          .header?.revision ?? 0,
      );
    } catch (err) {
      client.close();
      throw unavailable(
        `Cannot connect to the cluster store at "${opts.endpoints.join(',')}"`,
        err,
      );
    }
    const store = new EtcdStore(client, opts, opts.relativeRevisions ? head : 0);
    store.#known = head;
    store.#delivered = head;
    await store.#startWatch(head);
    return store;
  }

  async #startWatch(from: number): Promise<void> {
    const builder = this.#client
      .watch()
      .withPreviousKV()
      .startRevision(String(from + 1));
    const prefixed = this.#ns ? builder.prefix(this.#ns) : builder.prefix('');
    const watcher = await prefixed.create().catch((err: unknown) => {
      throw unavailable('Cannot watch the cluster store', err);
    });
    this.#watcher = watcher;
    watcher.on('data', (res) => this.#onWatch(res));
    // The client re-establishes a broken stream by itself, resuming after the last revision
    // it saw; errors are reported there and need no action here.
    watcher.on('error', () => undefined);
  }

  #onWatch(res: IWatchResponse): void {
    if (this.#closed) return;
    let group: Change[] = [];
    let groupRev = 0;
    const flush = (): void => {
      if (group.length === 0) return;
      this.#delivered = Math.max(this.#delivered, groupRev);
      this.#hub.publish(group);
      group = [];
    };
    for (const ev of res.events) {
      const rev = Number(ev.kv.mod_revision);
      if (rev !== groupRev) {
        flush();
        groupRev = rev;
      }
      const isPut = ev.type === 'Put';
      const source: IKeyValue | undefined = isPut ? ev.kv : (ev.prev_kv ?? undefined);
      group.push({
        type: isPut ? 'put' : 'delete',
        key: ev.kv.key.toString('utf8').slice(this.#ns.length),
        json: source ? source.value.toString('utf8') : 'null',
        revision: rev - this.#base,
      });
    }
    flush();
    const head = Number(res.header.revision);
    if (res.events.length === 0 && head > this.#delivered) this.#delivered = head;
    this.#known = Math.max(this.#known, this.#delivered);
    this.#waiters = this.#waiters.filter((w) => {
      if (w.revision > this.#delivered) return true;
      w.resolve();
      return false;
    });
  }

  async get<T = unknown>(key: string): Promise<StoreRecord<T> | undefined> {
    this.#checkOpen();
    checkKey(key);
    const res = await this.#call(`read "${key}"`, () =>
      this.#client.kv.range({ key: this.#key(key) }),
    );
    this.#see(res.header?.revision);
    const kv = res.kvs[0];
    return kv ? this.#record<T>(kv) : undefined;
  }

  async list<T = unknown>(prefix: string): Promise<StoreRecord<T>[]> {
    this.#checkOpen();
    checkPrefix(prefix);
    const start = this.#key(prefix);
    const res = await this.#call(`list "${prefix}"`, () =>
      this.#client.kv.range({
        key: start.length ? start : Buffer.from([0]),
        range_end: rangeEnd(start),
      }),
    );
    this.#see(res.header?.revision);
    return res.kvs.map((kv) => this.#record<T>(kv));
  }

  async put(key: string, value: unknown, opts: WriteOptions = {}): Promise<number> {
    this.#checkOpen();
    return this.txn(expectsFor(key, opts.expectRevision), [{ op: 'put', key, value }]);
  }

  async delete(key: string, opts: WriteOptions = {}): Promise<boolean> {
    this.#checkOpen();
    checkKey(key);
    const { deleted } = await this.#txn(
      expectsFor(key, opts.expectRevision),
      [{ op: 'delete', key }],
      {},
    );
    return deleted > 0;
  }

  async txn(expects: Expect[], ops: TxnOp[], opts: EtcdTxnOptions = {}): Promise<number> {
    this.#checkOpen();
    return (await this.#txn(expects, ops, opts)).revision;
  }

  async #txn(
    expects: readonly Expect[],
    ops: readonly TxnOp[],
    opts: EtcdTxnOptions,
  ): Promise<{ revision: number; deleted: number }> {
    const planned = collapse(planTxn(expects, ops));
    const compare = expects.map((e) =>
      e.revision === 0
        ? {
            key: this.#key(e.key),
            target: 'Create' as const,
            result: 'Equal' as const,
            create_revision: 0,
          }
        : {
            key: this.#key(e.key),
            target: 'Mod' as const,
            result: 'Equal' as const,
            mod_revision: e.revision + this.#base,
          },
    );
    const success: IRequestOp[] = planned.map((p) =>
      p.op === 'put'
        ? {
            request_put: {
              key: this.#key(p.key),
              value: Buffer.from(p.json, 'utf8'),
              ...(opts.lease ? { lease: opts.lease.id } : {}),
            },
          }
        : { request_delete_range: { key: this.#key(p.key) } },
    );
    const what =
      planned.length === 1 ? `write "${planned[0]!.key}"` : `write ${planned.length} records`;
    const res = await this.#call(what, () => this.#client.kv.txn({ compare, success }));
    const head = Number(res.header?.revision ?? 0);
    this.#see(head);
    if (!res.succeeded) throw await this.#mismatch(expects);
    let deleted = 0;
    let wrote = false;
    for (const r of res.responses) {
      if (r.response_delete_range) {
        const n = Number(r.response_delete_range.deleted);
        deleted += n;
        if (n > 0) wrote = true;
      }
      if (r.response_put) wrote = true;
    }
    if (wrote) await this.#awaitDelivery(head);
    return { revision: head - this.#base, deleted };
  }

  /** Finds the first failed expectation, for an error that names its key. */
  async #mismatch(expects: readonly Expect[]): Promise<CnmError> {
    for (const e of expects) {
      const cur = await this.get(e.key);
      const actual = cur?.revision ?? 0;
      if (actual !== e.revision) return revisionMismatch(e.key, e.revision, actual);
    }
    // Changed back meanwhile: report the first expectation.
    const first = expects[0]!;
    return revisionMismatch(first.key, first.revision, -1);
  }

  async revision(): Promise<number> {
    this.#checkOpen();
    const res = await this.#call('read the revision', () =>
      this.#client.kv.range({ key: Buffer.from(this.#ns || '/'), count_only: true }),
    );
    const head = Number(res.header?.revision ?? 0);
    this.#see(head);
    return head - this.#base;
  }

  watch<T = unknown>(prefix: string, listener: (event: WatchEvent<T>) => void): () => void {
    this.#checkOpen();
    checkPrefix(prefix);
    return this.#hub.subscribe(
      prefix,
      listener as (event: WatchEvent) => void,
      Math.max(this.#known, this.#delivered) - this.#base,
    );
  }

  /**
   * Grants a lease kept alive in the background; `onLost` runs when it cannot be renewed
   * (the cluster was unreachable for longer than the TTL) and its records are gone.
   * @throws UnavailableError STORE_UNAVAILABLE
   */
  async grantLease(ttlSec: number, onLost: (err: unknown) => void): Promise<StoreLease> {
    this.#checkOpen();
    const lease: Lease = this.#client.lease(ttlSec);
    let id: string;
    try {
      id = await lease.grant();
    } catch (err) {
      lease.release();
      throw unavailable('Cannot grant a lease in the cluster store', err);
    }
    lease.on('lost', (err) => onLost(err));
    return {
      id,
      revoke: async () => {
        await lease.revoke().catch((err: unknown) => {
          throw unavailable('Cannot revoke a lease in the cluster store', err);
        });
      },
      release: () => lease.release(),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#hub.clear();
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
    await this.#watcher?.cancel().catch(() => undefined);
    this.#client.close();
  }

  #awaitDelivery(revision: number): Promise<void> {
    if (revision <= this.#delivered || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = { revision, resolve };
      this.#waiters.push(waiter);
      setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve();
      }, DELIVERY_WAIT_MS).unref();
    });
  }

  #see(revision: string | number | undefined): void {
    const n = Number(revision ?? 0);
    if (n > this.#known) this.#known = n;
  }

  #key(key: string): Buffer {
    return Buffer.from(this.#ns + key, 'utf8');
  }

  #record<T>(kv: IKeyValue): StoreRecord<T> {
    return {
      key: kv.key.toString('utf8').slice(this.#ns.length),
      value: decodeValue<T>(kv.value.toString('utf8')),
      revision: Number(kv.mod_revision) - this.#base,
    };
  }

  async #call<R>(what: string, fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof CnmError) throw err;
      if (/too large/i.test(describeError(err))) {
        throw new InvalidError(
          'STORE_VALUE_INVALID',
          `Cannot ${what}: the record is too large for etcd`,
          {
            cause: err,
          },
        );
      }
      throw unavailable(`Cannot ${what} in the cluster store`, err);
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new UnavailableError('STORE_CLOSED', 'Cannot use store: it is closed');
  }
}

function unavailable(message: string, cause: unknown): UnavailableError {
  return new UnavailableError('STORE_UNAVAILABLE', `${message}: ${describeError(cause)}`, {
    cause,
  });
}

/**
 * etcd rejects a transaction that writes one key twice; the contract applies ops in order, so
 * only the last op per key matters. Order follows each key's last op.
 */
function collapse(ops: readonly PlannedOp[]): PlannedOp[] {
  const last = new Map<string, number>();
  ops.forEach((o, i) => last.set(o.key, i));
  return ops.filter((o, i) => last.get(o.key) === i);
}

/** The end of etcd's range for a byte prefix: the prefix with its last byte incremented. */
function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  // Empty prefix (or all 0xff): "\0" means "every key from `key` on".
  return Buffer.from([0]);
}
