/**
 * The store conformance suite: every `Store` implementation runs these same cases, so the
 * memory store used in tests cannot drift from the SQLite store used in production.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConflictError, InvalidError, UnavailableError } from '../errors.js';
import type { Store, StoreOptions, WatchEvent } from './types.js';

/** Makes a fresh, empty store; `options` must be passed on to the implementation. */
export type MakeStore = (options?: StoreOptions) => Promise<Store> | Store;

/**
 * Registers the shared store cases under `describe(name)`. Each case makes its own store with
 * `make` and closes it afterwards.
 * @example runStoreConformance('MemoryStore', (o) => new MemoryStore(o));
 */
export function runStoreConformance(name: string, make: MakeStore): void {
  async function withStore(
    fn: (store: Store) => Promise<void>,
    options?: StoreOptions,
  ): Promise<void> {
    const store = await make(options);
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  }

  const keysOf = async (store: Store, prefix: string): Promise<string[]> =>
    (await store.list(prefix)).map((r) => r.key);

  const isMismatch = (err: unknown): boolean =>
    err instanceof ConflictError && err.code === 'STORE_REVISION_MISMATCH';

  describe(name, () => {
    describe('get() and put()', () => {
      test('get() returns undefined for a missing key', () =>
        withStore(async (store) => {
          assert.equal(await store.get('networks/none'), undefined);
        }));

      test('put() then get() returns the value and the revision', () =>
        withStore(async (store) => {
          const rev = await store.put('networks/a', {
            name: 'a',
            ids: [1, 2],
            nested: { x: null },
          });
          assert.deepEqual(await store.get('networks/a'), {
            key: 'networks/a',
            value: { name: 'a', ids: [1, 2], nested: { x: null } },
            revision: rev,
          });
        }));

      test('put() stores JSON scalars, and strings with any character but NUL', () =>
        withStore(async (store) => {
          const values = [0, -1.5, true, false, null, '', 'ünïcødé \u{1F600} \uffff'];
          for (const [i, v] of values.entries()) await store.put(`v/${i}`, v);
          assert.deepEqual(
            (await store.list('v/')).map((r) => r.value),
            values,
          );
        }));

      test('put() rejects values without a JSON form and writes nothing', () =>
        withStore(async (store) => {
          for (const bad of [undefined, () => 1, 10n]) {
            await assert.rejects(
              store.put('v/bad', bad),
              (err) => err instanceof InvalidError && err.code === 'STORE_VALUE_INVALID',
            );
          }
          const cyclic: { self?: unknown } = {};
          cyclic.self = cyclic;
          await assert.rejects(store.put('v/bad', cyclic), InvalidError);
          assert.equal(await store.get('v/bad'), undefined);
          assert.equal(await store.revision(), 0);
        }));

      test('every method rejects an empty key or a key with NUL', () =>
        withStore(async (store) => {
          const invalid = (err: unknown): boolean =>
            err instanceof InvalidError && err.code === 'STORE_KEY_INVALID';
          for (const key of ['', 'a\0b']) {
            await assert.rejects(store.get(key), invalid);
            await assert.rejects(store.put(key, 1), invalid);
            await assert.rejects(store.delete(key), invalid);
            await assert.rejects(store.txn([], [{ op: 'put', key, value: 1 }]), invalid);
            await assert.rejects(store.txn([{ key, revision: 0 }], []), invalid);
          }
          await assert.rejects(store.list('a\0'), invalid);
          assert.throws(() => store.watch('a\0', () => {}), invalid);
          assert.equal(await store.revision(), 0);
        }));

      test('put() rejects a negative or fractional expectRevision', () =>
        withStore(async (store) => {
          for (const expectRevision of [-1, 1.5, Number.NaN]) {
            await assert.rejects(
              store.put('a', 1, { expectRevision }),
              (err) => err instanceof InvalidError && err.code === 'STORE_REVISION_INVALID',
            );
          }
        }));
    });

    describe('list()', () => {
      test('list() orders by key and isolates prefixes', () =>
        withStore(async (store) => {
          for (const key of ['netx', 'net/b', 'net/ab', 'net/a', 'ne', 'net', 'net/a/1']) {
            await store.put(key, key);
          }
          assert.deepEqual(await keysOf(store, 'net/'), ['net/a', 'net/a/1', 'net/ab', 'net/b']);
          assert.deepEqual(await keysOf(store, 'net/a'), ['net/a', 'net/a/1', 'net/ab']);
          assert.deepEqual(await keysOf(store, 'net/a/'), ['net/a/1']);
          assert.deepEqual(await keysOf(store, 'netx'), ['netx']);
          assert.deepEqual(await keysOf(store, 'nety'), []);
          assert.deepEqual(await keysOf(store, ''), [
            'ne',
            'net',
            'net/a',
            'net/a/1',
            'net/ab',
            'net/b',
            'netx',
          ]);
          const [rec] = await store.list('netx');
          assert.deepEqual(rec, { key: 'netx', value: 'netx', revision: 1 });
        }));

      test('list() treats % and _ literally', () =>
        withStore(async (store) => {
          for (const key of ['a%b/1', 'axb/1', 'a_c', 'abc', 'a\\c']) await store.put(key, 1);
          assert.deepEqual(await keysOf(store, 'a%'), ['a%b/1']);
          assert.deepEqual(await keysOf(store, 'a_'), ['a_c']);
          assert.deepEqual(await keysOf(store, 'a\\'), ['a\\c']);
        }));

      test('list() orders by code point, beyond U+FFFF too', () =>
        withStore(async (store) => {
          for (const key of ['k/\u{1F600}', 'k/\uffff', 'k/a', 'k/\ue000', 'k/\u{10FFFF}x']) {
            await store.put(key, 1);
          }
          const ordered = ['k/a', 'k/\ue000', 'k/\uffff', 'k/\u{1F600}', 'k/\u{10FFFF}x'];
          assert.deepEqual(await keysOf(store, 'k/'), ordered);
          assert.deepEqual(await keysOf(store, 'k/\uffff'), ['k/\uffff']);
          assert.deepEqual(await keysOf(store, 'k/\u{10FFFF}'), ['k/\u{10FFFF}x']);
        }));
    });

    describe('revisions', () => {
      test('revision() is 0 for a new store', () =>
        withStore(async (store) => {
          assert.equal(await store.revision(), 0);
        }));

      test('revisions increase globally and per record', () =>
        withStore(async (store) => {
          assert.equal(await store.put('a', 1), 1);
          assert.equal(await store.put('b', 1), 2);
          assert.equal(await store.put('a', 2), 3);
          assert.equal(await store.put('a', 2), 4); // an unchanged value is still a write
          assert.equal((await store.get('a'))?.revision, 4);
          assert.equal((await store.get('b'))?.revision, 2);
          assert.equal(await store.revision(), 4);
        }));

      test('put() with expectRevision 0 creates only a missing key', () =>
        withStore(async (store) => {
          const rev = await store.put('a', 'first', { expectRevision: 0 });
          await assert.rejects(store.put('a', 'second', { expectRevision: 0 }), isMismatch);
          assert.deepEqual(await store.get('a'), { key: 'a', value: 'first', revision: rev });
          assert.equal(await store.revision(), rev);
        }));

      test('put() with expectRevision n swaps only at revision n', () =>
        withStore(async (store) => {
          const r1 = await store.put('a', 1);
          await store.put('other', 1);
          const r2 = await store.put('a', 2, { expectRevision: r1 });
          assert.ok(r2 > r1);
          await assert.rejects(store.put('a', 3, { expectRevision: r1 }), isMismatch);
          await assert.rejects(store.put('missing', 3, { expectRevision: r1 }), isMismatch);
          assert.deepEqual(await store.get('a'), { key: 'a', value: 2, revision: r2 });
          assert.equal(await store.get('missing'), undefined);
          assert.equal(await store.revision(), r2);
        }));

      test('a revision mismatch is a ConflictError naming the key', () =>
        withStore(async (store) => {
          await store.put('networks/a', 1);
          await assert.rejects(store.put('networks/a', 2, { expectRevision: 0 }), (err) => {
            assert.ok(err instanceof ConflictError);
            assert.equal(err.kind, 'conflict');
            assert.equal(err.code, 'STORE_REVISION_MISMATCH');
            assert.match(err.message, /^Cannot write "networks\/a"/);
            return true;
          });
        }));
    });

    describe('delete()', () => {
      test('delete() removes a record, bumps the revision and returns true', () =>
        withStore(async (store) => {
          await store.put('a', 1);
          assert.equal(await store.delete('a'), true);
          assert.equal(await store.get('a'), undefined);
          assert.equal(await store.revision(), 2);
          assert.deepEqual(await store.list(''), []);
        }));

      test('delete() of a missing key returns false and bumps nothing', () =>
        withStore(async (store) => {
          await store.put('a', 1);
          assert.equal(await store.delete('b'), false);
          assert.equal(await store.revision(), 1);
        }));

      test('delete() with expectRevision removes only at that revision', () =>
        withStore(async (store) => {
          const r1 = await store.put('a', 1);
          const r2 = await store.put('a', 2);
          await assert.rejects(store.delete('a', { expectRevision: r1 }), isMismatch);
          await assert.rejects(store.delete('b', { expectRevision: r1 }), isMismatch);
          assert.equal((await store.get('a'))?.revision, r2);
          assert.equal(await store.delete('a', { expectRevision: r2 }), true);
          assert.equal(await store.get('a'), undefined);
        }));

      test('a key put again after delete() gets a new revision', () =>
        withStore(async (store) => {
          const r1 = await store.put('a', 1);
          await store.delete('a');
          const r3 = await store.put('a', 1, { expectRevision: 0 });
          assert.equal(r3, r1 + 2);
        }));
    });

    describe('txn()', () => {
      test('txn() applies mixed puts and deletes at one revision', () =>
        withStore(async (store) => {
          await store.put('n/old', 'old');
          const rb = await store.put('n/b', 'b0');
          const rev = await store.txn(
            [
              { key: 'n/a', revision: 0 },
              { key: 'n/b', revision: rb },
            ],
            [
              { op: 'put', key: 'n/a', value: 'a' },
              { op: 'put', key: 'n/b', value: 'b1' },
              { op: 'delete', key: 'n/old' },
            ],
          );
          assert.equal(rev, 3);
          assert.deepEqual(await store.list('n/'), [
            { key: 'n/a', value: 'a', revision: 3 },
            { key: 'n/b', value: 'b1', revision: 3 },
          ]);
          assert.equal(await store.revision(), 3);
        }));

      test('txn() with one failing expectation writes nothing', () =>
        withStore(async (store) => {
          const ra = await store.put('a', 'a0');
          await store.put('b', 'b0');
          const events: WatchEvent[] = [];
          store.watch('', (e) => events.push(e));
          await assert.rejects(
            store.txn(
              [
                { key: 'a', revision: ra },
                { key: 'b', revision: 0 },
              ],
              [
                { op: 'put', key: 'a', value: 'a1' },
                { op: 'delete', key: 'b' },
                { op: 'put', key: 'c', value: 'c1' },
              ],
            ),
            isMismatch,
          );
          assert.deepEqual(
            (await store.list('')).map((r) => [r.key, r.value, r.revision]),
            [
              ['a', 'a0', 1],
              ['b', 'b0', 2],
            ],
          );
          assert.equal(await store.revision(), 2);
          assert.deepEqual(events, []);
        }));

      test('txn() with one bad value writes nothing', () =>
        withStore(async (store) => {
          await assert.rejects(
            store.txn(
              [],
              [
                { op: 'put', key: 'a', value: 1 },
                { op: 'put', key: 'b', value: undefined },
              ],
            ),
            InvalidError,
          );
          assert.deepEqual(await store.list(''), []);
          assert.equal(await store.revision(), 0);
        }));

      test('txn() applies ops in order', () =>
        withStore(async (store) => {
          await store.put('gone', 1);
          await store.txn(
            [],
            [
              { op: 'put', key: 'x', value: 1 },
              { op: 'delete', key: 'x' },
              { op: 'delete', key: 'gone' },
              { op: 'put', key: 'gone', value: 2 },
              { op: 'put', key: 'y', value: 1 },
              { op: 'put', key: 'y', value: 2 },
            ],
          );
          assert.deepEqual(
            (await store.list('')).map((r) => [r.key, r.value]),
            [
              ['gone', 2],
              ['y', 2],
            ],
          );
        }));

      test('txn() that changes nothing returns the current revision', () =>
        withStore(async (store) => {
          const ra = await store.put('a', 1);
          assert.equal(await store.txn([{ key: 'a', revision: ra }], []), ra);
          assert.equal(await store.txn([], [{ op: 'delete', key: 'missing' }]), ra);
          assert.equal(await store.revision(), ra);
          await assert.rejects(store.txn([{ key: 'a', revision: 0 }], []), isMismatch);
        }));
    });

    describe('watch()', () => {
      test('watch() reports changes under its prefix in revision order', () =>
        withStore(async (store) => {
          await store.put('net/before', 1);
          const events: WatchEvent[] = [];
          store.watch('net/', (e) => events.push(e));
          await store.put('net/a', { v: 1 });
          await store.put('netx', 'ignored');
          await store.txn(
            [],
            [
              { op: 'put', key: 'net/b', value: 2 },
              { op: 'delete', key: 'net/a' },
              { op: 'delete', key: 'net/missing' },
            ],
          );
          await store.delete('net/before');
          assert.deepEqual(events, [
            { type: 'put', key: 'net/a', value: { v: 1 }, revision: 2 },
            { type: 'put', key: 'net/b', value: 2, revision: 4 },
            { type: 'delete', key: 'net/a', value: { v: 1 }, revision: 4 },
            { type: 'delete', key: 'net/before', value: 1, revision: 5 },
          ]);
        }));

      test('watch() stops after unsubscribe, even during delivery', () =>
        withStore(async (store) => {
          const first: number[] = [];
          const second: number[] = [];
          const stopFirst = store.watch('', (e) => first.push(e.revision));
          const stopSecond = store.watch('', (e) => {
            second.push(e.revision);
            stopSecond();
          });
          // Unsubscribing a later listener from an earlier one stops it before this event.
          let stopLate = (): void => {};
          store.watch('', () => stopLate());
          const late: number[] = [];
          stopLate = store.watch('', (e) => late.push(e.revision));
          await store.put('a', 1);
          stopFirst();
          stopFirst(); // a second call is harmless
          await store.put('a', 2);
          assert.deepEqual(first, [1]);
          assert.deepEqual(second, [1]);
          assert.deepEqual(late, []);
        }));

      test('a throwing listener breaks neither the write nor other listeners', async () => {
        const reported: [unknown, WatchEvent][] = [];
        await withStore(
          async (store) => {
            const seen: string[] = [];
            store.watch('', () => {
              throw new Error('listener bug');
            });
            store.watch('', (e) => seen.push(e.key));
            assert.equal(await store.put('a', 1), 1);
            assert.equal(await store.put('b', 1), 2);
            assert.deepEqual(seen, ['a', 'b']);
            assert.deepEqual((await store.get('a'))?.value, 1);
            assert.equal(reported.length, 2);
            assert.equal((reported[0]?.[0] as Error).message, 'listener bug');
            assert.equal(reported[0]?.[1].key, 'a');
          },
          { onListenerError: (err, event) => reported.push([err, event]) },
        );
      });

      test('writes made by a listener are delivered after the current change', () =>
        withStore(async (store) => {
          const order: string[] = [];
          const pending: Promise<unknown>[] = [];
          store.watch('', (e) => {
            order.push(`A ${e.key}@${e.revision}`);
            if (e.key === 'a') pending.push(store.put('echo', 1));
          });
          store.watch('', (e) => order.push(`B ${e.key}@${e.revision}`));
          await store.txn(
            [],
            [
              { op: 'put', key: 'a', value: 1 },
              { op: 'put', key: 'b', value: 1 },
            ],
          );
          await Promise.all(pending);
          assert.deepEqual(order, ['A a@1', 'B a@1', 'A b@1', 'B b@1', 'A echo@2', 'B echo@2']);
        }));

      test('a listener added during delivery sees only later changes', () =>
        withStore(async (store) => {
          const late: number[] = [];
          let added = false;
          store.watch('', () => {
            if (added) return;
            added = true;
            store.watch('', (e) => late.push(e.revision));
          });
          await store.txn(
            [],
            [
              { op: 'put', key: 'a', value: 1 },
              { op: 'put', key: 'b', value: 1 },
            ],
          );
          await store.put('c', 1);
          assert.deepEqual(late, [2]);
        }));
    });

    describe('copies', () => {
      test('values read, written or watched are copies', () =>
        withStore(async (store) => {
          const input = { list: [1], inner: { n: 1 } };
          await store.put('a', input);
          input.list.push(2);
          input.inner.n = 2;

          const got = await store.get<typeof input>('a');
          assert.ok(got);
          got.value.list.push(3);
          got.value.inner.n = 3;
          const [listed] = await store.list<typeof input>('a');
          assert.ok(listed);
          listed.value.inner.n = 4;

          const seen: (typeof input)[] = [];
          store.watch<typeof input>('', (e) => {
            if (e.value) e.value.inner.n = 5; // a misbehaving listener
            seen.push(e.value as typeof input);
          });
          store.watch<typeof input>('', (e) => seen.push(e.value as typeof input));
          await store.put('b', { list: [], inner: { n: 0 } });

          assert.deepEqual((await store.get('a'))?.value, { list: [1], inner: { n: 1 } });
          assert.equal(seen[1]?.inner.n, 0);
          assert.deepEqual((await store.get('b'))?.value, { list: [], inner: { n: 0 } });
        }));
    });

    describe('concurrency', () => {
      test('100 parallel compare-and-swap increments all land', () =>
        withStore(async (store) => {
          await store.put('counter', 0);
          let conflicts = 0;
          const increment = async (): Promise<void> => {
            for (;;) {
              const cur = await store.get<number>('counter');
              assert.ok(cur);
              try {
                await store.put('counter', cur.value + 1, { expectRevision: cur.revision });
                return;
              } catch (err) {
                if (!isMismatch(err)) throw err;
                conflicts++;
              }
            }
          };
          await Promise.all(Array.from({ length: 100 }, increment));
          const final = await store.get<number>('counter');
          assert.equal(final?.value, 100);
          assert.equal(final?.revision, 101);
          assert.ok(conflicts > 0, 'the callers did not actually interleave');
        }));
    });

    describe('close()', () => {
      test('calls after close() reject with STORE_CLOSED; closing twice is harmless', async () => {
        const store = await make();
        await store.put('a', 1);
        await store.close();
        await store.close();
        const closed = (err: unknown): boolean =>
          err instanceof UnavailableError && err.code === 'STORE_CLOSED';
        await assert.rejects(store.get('a'), closed);
        await assert.rejects(store.list(''), closed);
        await assert.rejects(store.put('a', 2), closed);
        await assert.rejects(store.delete('a'), closed);
        await assert.rejects(store.txn([], []), closed);
        await assert.rejects(store.revision(), closed);
        assert.throws(() => store.watch('', () => {}), closed);
      });
    });
  });
}
