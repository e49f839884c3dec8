/**
 * Concurrency: 200 API requests at once from parallel clients — network creates and removes,
 * container runs and removes, connects and disconnects, several aimed at the same objects.
 * Every request must be answered (2xx or a 4xx with a message, never a 5xx or a cut
 * connection), no address may be given twice, every success must show in the records
 * (nothing lost), and the kernel must match the records afterwards. Needs root.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, skipUnlessRoot, startDaemon, withWorld, type ApiResponse } from './harness.js';
import { checkConsistency, seededRandom } from './invariants.js';
import { createContainer, createNetwork } from './workload.js';

const SLEEP = ['sleep', '3600'];

test(
  'concurrency: 200 simultaneous requests are all answered and leave a consistent state',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  (t) =>
    withWorld(t, async (w) => {
      const seed = Number(process.env['CNM_CONC_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
      t.diagnostic(`seed ${seed}`);
      const rnd = seededRandom(seed);
      await startDaemon(w);
      const a = api(w);
      const base = ['b0', 'b1', 'b2', 'b3'];
      for (const n of base) await createNetwork(a, { Name: n, Driver: 'bridge' });
      const doomedNets = ['z0', 'z1', 'z2', 'z3', 'z4'];
      for (const n of doomedNets) await createNetwork(a, { Name: n, Driver: 'bridge' });
      const idle: string[] = [];
      for (let i = 0; i < 30; i++) {
        await createContainer(a, { Name: `p${i}`, Cmd: SLEEP, Networks: [{ Name: base[i % 4] }] });
        idle.push(`p${i}`);
      }

      type Req = { kind: string; target: string; run: () => Promise<ApiResponse> };
      const reqs: Req[] = [];
      // 15 new networks: with the 10 above and `bridge`, 26 of the default pools' 31 subnets.
      for (let i = 0; i < 15; i++) {
        const name = `m${i}`;
        reqs.push({
          kind: 'network create',
          target: name,
          run: () => a.post('/networks/create', { Name: name, Driver: 'bridge' }),
        });
      }
      // Two creates of one name: exactly one may win.
      for (let i = 0; i < 10; i++) {
        reqs.push({
          kind: 'network create (dup)',
          target: `m${i}`,
          run: () => a.post('/networks/create', { Name: `m${i}`, Driver: 'bridge' }),
        });
      }
      for (let i = 0; i < 50; i++) {
        const name = `r${i}`;
        const net = base[Math.floor(rnd() * 4)]!;
        reqs.push({
          kind: 'run',
          target: name,
          run: () =>
            a
              .post('/cnm/containers/create', { Name: name, Cmd: SLEEP, Networks: [{ Name: net }] })
              .then((r) => (r.status === 201 ? a.post(`/cnm/containers/${r.body.Id}/start`) : r)),
        });
      }
      for (let i = 0; i < 75; i++) {
        const ctr = idle[Math.floor(rnd() * 20)]!;
        const net = base[Math.floor(rnd() * 4)]!;
        reqs.push({
          kind: 'connect',
          target: `${ctr}>${net}`,
          run: () => a.post(`/networks/${net}/connect`, { Container: ctr }),
        });
      }
      for (let i = 0; i < 20; i++) {
        const ctr = idle[Math.floor(rnd() * 20)]!;
        const net = base[Math.floor(rnd() * 4)]!;
        reqs.push({
          kind: 'disconnect',
          target: `${ctr}>${net}`,
          run: () => a.post(`/networks/${net}/disconnect`, { Container: ctr }),
        });
      }
      for (let i = 20; i < 30; i++) {
        reqs.push({
          kind: 'rm',
          target: `p${i}`,
          run: () => a.delete(`/cnm/containers/p${i}?force=1`),
        });
      }
      for (const n of doomedNets) {
        reqs.push({ kind: 'network rm', target: n, run: () => a.delete(`/networks/${n}`) });
      }
      while (reqs.length < 200) {
        reqs.push({ kind: 'inspect', target: 'b0', run: () => a.get('/networks/b0') });
      }
      assert.equal(reqs.length, 200);
      // Shuffle (seeded) so kinds interleave.
      for (let i = reqs.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [reqs[i], reqs[j]] = [reqs[j]!, reqs[i]!];
      }

      const t0 = Date.now();
      const results = await Promise.all(
        reqs.map((r) =>
          r.run().then(
            (res) => ({ r, res, err: undefined as unknown }),
            (err: unknown) => ({ r, res: undefined, err }),
          ),
        ),
      );
      const ms = Date.now() - t0;
      const bad = results.filter(
        (x) =>
          x.err !== undefined ||
          !x.res ||
          x.res.status >= 500 ||
          (x.res.status >= 400 && typeof x.res.body?.message !== 'string'),
      );
      assert.deepEqual(
        bad.map((x) => `${x.r.kind} ${x.r.target}: ${x.err ?? `${x.res?.status} ${x.res?.text}`}`),
        [],
        'every request answered with 2xx or a 4xx with a message',
      );
      const tally = new Map<string, string>();
      for (const x of results) {
        const k = `${x.r.kind} ${x.res!.status}`;
        tally.set(k, String(Number(tally.get(k) ?? 0) + 1));
      }
      t.diagnostic(
        `200 requests in ${ms} ms: ${[...tally].map(([k, v]) => `${k}: ${v}`).join(', ')}`,
      );

      // Nothing lost: each success shows in the records.
      const { problems, records } = await checkConsistency(w, a);
      const netNames = new Set(records.networks.map((n) => n.Name as string));
      const ctrs = new Map(records.containers.map((c) => [String(c.Name).replace(/^\//, ''), c]));
      const dupWins = new Map<string, number>();
      for (const { r, res } of results) {
        const ok = res!.status < 300;
        if (r.kind.startsWith('network create') && ok) {
          assert.ok(netNames.has(r.target), `created network ${r.target} is recorded`);
          dupWins.set(r.target, (dupWins.get(r.target) ?? 0) + 1);
        }
        if (r.kind === 'run' && ok) {
          assert.equal(ctrs.get(r.target)?.State?.Status, 'running', `${r.target} is running`);
        }
        if (r.kind === 'rm' && ok) assert.ok(!ctrs.has(r.target), `${r.target} is gone`);
        if (r.kind === 'network rm' && ok) assert.ok(!netNames.has(r.target), `${r.target} gone`);
      }
      for (const [n, wins] of dupWins) assert.equal(wins, 1, `network ${n} created once`);
      for (let i = 0; i < 15; i++) assert.ok(netNames.has(`m${i}`), `network m${i} exists`);
      // The last answered connect/disconnect of a pair decides; check membership matches an
      // answered request's outcome for pairs touched only by successful connects.
      const touched = new Map<string, { connect: number; disconnect: number }>();
      for (const { r, res } of results) {
        if (r.kind !== 'connect' && r.kind !== 'disconnect') continue;
        const e = touched.get(r.target) ?? { connect: 0, disconnect: 0 };
        if (res!.status < 300) e[r.kind] += 1;
        touched.set(r.target, e);
      }
      for (const [pair, e] of touched) {
        const [ctr, net] = pair.split('>') as [string, string];
        const c = ctrs.get(ctr);
        if (!c || e.disconnect > 0 || e.connect === 0) continue;
        assert.ok(net in (c.NetworkSettings?.Networks ?? {}), `${ctr} is connected to ${net}`);
      }
      assert.deepEqual(problems, [], problems.join('\n'));
    }),
);
