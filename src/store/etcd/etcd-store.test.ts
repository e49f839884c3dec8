/**
 * Runs the store conformance suite against a real etcd.
 *
 * etcd and its client must share a network namespace that this test owns (never the machine's
 * own), and the JS thread never changes namespace. So the outer run (root, `etcd` installed)
 * creates a netns, starts etcd on that netns's loopback, and runs this same file again inside
 * it with `CNM_TEST_ETCD` set; the inner run talks to etcd and runs the cases. Each case gets
 * its own key namespace with revisions relative to its start, so one etcd serves them all.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { UnavailableError } from '../../errors.js';
import { runStoreConformance } from '../store.case.test.js';
import { EtcdStore } from './etcd-store.js';

const inner = process.env.CNM_TEST_ETCD;
const ETCD = '/usr/bin/etcd';

if (inner) {
  // etcd takes about a second to elect itself after the outer run started it.
  for (let i = 0; ; i++) {
    try {
      await (await EtcdStore.connect({ endpoints: [inner], callTimeoutMs: 500 })).close();
      break;
    } catch (err) {
      if (i >= 40) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  let n = 0;
  const run = randomBytes(3).toString('hex');
  runStoreConformance('EtcdStore', (options) =>
    EtcdStore.connect({
      ...options,
      endpoints: [inner],
      namespace: `conf-${run}-${++n}/`,
      relativeRevisions: true,
    }),
  );

  describe('EtcdStore specifics', () => {
    test('connect() to a dead endpoint fails with STORE_UNAVAILABLE', async () => {
      await assert.rejects(
        EtcdStore.connect({ endpoints: ['http://127.0.0.1:1'], callTimeoutMs: 500 }),
        (err) => err instanceof UnavailableError && err.code === 'STORE_UNAVAILABLE',
      );
    });

    test('records put under a lease vanish when it is revoked, with a delete event', async () => {
      const store = await EtcdStore.connect({ endpoints: [inner], namespace: `lease-${run}/` });
      try {
        const lease = await store.grantLease(10, () => undefined);
        const seen: string[] = [];
        store.watch('', (e) => seen.push(`${e.type} ${e.key}`));
        await store.txn([], [{ op: 'put', key: 'hosts/a', value: { addr: 'x' } }], { lease });
        assert.equal((await store.list('hosts/')).length, 1);
        await lease.revoke();
        for (let i = 0; i < 50 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(seen, ['put hosts/a', 'delete hosts/a']);
        assert.deepEqual(await store.list('hosts/'), []);
      } finally {
        await store.close();
      }
    });

    test("a second client sees the first one's writes through its watch", async () => {
      const ns = `two-${run}/`;
      const a = await EtcdStore.connect({ endpoints: [inner], namespace: ns });
      const b = await EtcdStore.connect({ endpoints: [inner], namespace: ns });
      try {
        const seen: unknown[] = [];
        b.watch('k/', (e) => seen.push(e.value));
        const rev = await a.put('k/1', { v: 1 });
        for (let i = 0; i < 50 && seen.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(seen, [{ v: 1 }]);
        assert.equal((await b.get('k/1'))?.revision, rev);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
} else {
  const root = process.getuid?.() === 0;
  const skip = !root
    ? 'needs root (etcd runs in a network namespace the test creates)'
    : !existsSync(ETCD)
      ? `needs etcd (Debian package "etcd-server"; ${ETCD} is missing)`
      : false;

  test('EtcdStore conformance against a real etcd (in its own netns)', { skip }, async (t) => {
    const ns = `cnmt-etcd-${randomBytes(3).toString('hex')}`;
    const dir = mkdtempSync(join(tmpdir(), 'cnm-etcd-'));
    let etcd: ChildProcess | undefined;
    try {
      assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
      assert.equal(spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']).status, 0);
      const url = 'http://127.0.0.1:23790';
      etcd = spawn(
        'nsenter',
        [
          `--net=/run/netns/${ns}`,
          ETCD,
          '--data-dir',
          dir,
          '--listen-client-urls',
          url,
          '--advertise-client-urls',
          url,
          '--listen-peer-urls',
          'http://127.0.0.1:23800',
          '--initial-advertise-peer-urls',
          'http://127.0.0.1:23800',
          '--initial-cluster',
          'default=http://127.0.0.1:23800',
        ],
        { stdio: 'ignore' },
      );
      const self = fileURLToPath(import.meta.url);
      // Without this the inner runner believes it is nested in ours and runs nothing.
      const env: NodeJS.ProcessEnv = { ...process.env, CNM_TEST_ETCD: url };
      delete env.NODE_TEST_CONTEXT;
      const child = spawn(
        'nsenter',
        [`--net=/run/netns/${ns}`, process.execPath, '--import', 'tsx', '--test', self],
        { env, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      // etcd takes about a second to elect itself; the inner run's first connect retries.
      const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
      t.diagnostic(
        out
          .split('\n')
          .filter((l) => /^# (tests|pass|fail|skipped)/.test(l))
          .join(' '),
      );
      if (process.env.CNM_TEST_VERBOSE) console.log(out);
      assert.equal(code, 0, out);
      assert.match(out, /# pass [1-9]/, out);
    } finally {
      if (etcd?.pid) {
        etcd.kill('SIGTERM');
        await new Promise((r) => etcd!.once('exit', r));
      }
      spawnSync('ip', ['netns', 'del', ns]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
