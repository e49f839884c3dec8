import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { UnavailableError } from '../../errors.js';
import { runStoreConformance } from '../store.case.test.js';
import { SQLITE_SCHEMA_VERSION, SqliteStore } from './sqlite-store.js';

let dir = '';
let files = 0;
const freshPath = (): string => join(dir, `store-${++files}.db`);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cnm-sqlite-store-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

runStoreConformance('SqliteStore', (options) => SqliteStore.open(freshPath(), options));

describe('SqliteStore on disk', () => {
  test('open() then close() and open() again keeps records and continues the revision', async () => {
    const path = freshPath();
    const first = SqliteStore.open(path);
    await first.put('networks/a', { name: 'a' });
    await first.txn(
      [],
      [
        { op: 'put', key: 'networks/b', value: { name: 'b' } },
        { op: 'put', key: 'endpoints/b/1', value: {} },
      ],
    );
    await first.close();

    const second = SqliteStore.open(path);
    try {
      assert.equal(await second.revision(), 2);
      assert.deepEqual(await second.list('networks/'), [
        { key: 'networks/a', value: { name: 'a' }, revision: 1 },
        { key: 'networks/b', value: { name: 'b' }, revision: 2 },
      ]);
      const seen: number[] = [];
      second.watch('', (e) => seen.push(e.revision));
      assert.equal(await second.put('networks/a', { name: 'a2' }, { expectRevision: 1 }), 3);
      assert.deepEqual(seen, [3]);
    } finally {
      await second.close();
    }
  });

  test('open() sets WAL, the schema version and the tables', async () => {
    const path = freshPath();
    await SqliteStore.open(path).close();
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('user_version', { simple: true }), SQLITE_SCHEMA_VERSION);
      const tables = db
        .prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .pluck()
        .all();
      assert.deepEqual(tables, ['meta', 'records']);
    } finally {
      db.close();
    }
  });

  test('open() refuses a file written by a newer schema', () => {
    const path = freshPath();
    const db = new Database(path);
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(
      () => SqliteStore.open(path),
      (err) => err instanceof UnavailableError && err.code === 'STORE_SCHEMA_NEWER',
    );
  });

  test('open() fails with STORE_OPEN_FAILED when the directory is missing', () => {
    assert.throws(
      () => SqliteStore.open(join(dir, 'missing', 'store.db')),
      (err) => err instanceof UnavailableError && err.code === 'STORE_OPEN_FAILED',
    );
  });

  test('a SIGKILLed writer leaves only whole transactions and a monotonic revision', async () => {
    const path = freshPath();
    // The child commits transaction n (three records, one big enough to span pages, and a
    // delete) and then prints n; so every printed n is committed and must survive the kill.
    const child = `
      const { SqliteStore } = await import(${JSON.stringify(new URL('./sqlite-store.ts', import.meta.url).href)});
      const store = SqliteStore.open(${JSON.stringify(path)});
      const pad = 'x'.repeat(20000);
      for (let n = 1; ; n++) {
        await store.txn([], [
          { op: 'put', key: 'crash/a', value: { n } },
          { op: 'put', key: 'crash/big', value: { n, pad } },
          { op: 'put', key: 'crash/log/' + n, value: n },
          { op: 'delete', key: 'crash/log/' + (n - 1) },
          { op: 'put', key: 'crash/z', value: { n } },
        ]);
        process.stdout.write(n + '\\n');
      }
    `;
    const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      proc.on('exit', (_code, signal) => resolve(signal)),
    );
    let acked = 0;
    let buffered = '';
    await new Promise<void>((resolve, reject) => {
      proc.on('error', reject);
      proc.on('exit', () => reject(new Error(`Crash writer exited early after "${acked}"`)));
      proc.stdout.on('data', (chunk: Buffer) => {
        const lines = (buffered + chunk.toString()).split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) acked = Number(line);
        // Let it run a little past the first commits so the kill lands mid-stream.
        if (acked >= 300) {
          proc.kill('SIGKILL');
          resolve();
        }
      });
    });
    assert.equal(await exited, 'SIGKILL');

    const raw = new Database(path);
    assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
    raw.close();

    const store = SqliteStore.open(path);
    try {
      const revision = await store.revision();
      const records = await store.list<{ n: number } | number>('crash/');
      const n = revision; // one transaction per n, starting from an empty store
      assert.ok(n >= acked, `committed "${acked}" but the store is at "${n}"`);
      assert.deepEqual(
        records.map((r) => [r.key, r.revision]),
        [
          ['crash/a', n],
          ['crash/big', n],
          [`crash/log/${n}`, n],
          ['crash/z', n],
        ],
      );
      for (const r of records) {
        const value = r.value;
        assert.equal(typeof value === 'number' ? value : value.n, n);
      }
      // The revision keeps increasing after the crash.
      assert.equal(await store.put('crash/a', { n: n + 1 }), n + 1);
    } finally {
      await store.close();
    }
  });
});
