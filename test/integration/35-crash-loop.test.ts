/**
 * Crash at any point: a seeded loop of network create / run / connect / publish / disconnect /
 * rm / network rm requests, with cnmd SIGKILLed 0–40 ms after the requests go out, at least 50
 * times. After every restart the records and the kernel must agree (`invariants.ts`): no
 * duplicate address, no cnm object without a record, no record without its objects, and every
 * running container reachable. The seed is printed; `CNM_CRASH_SEED=<n>` replays a run
 * (`CNM_CRASH_KILLS` changes the number of kills). Needs root.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { api, skipUnlessRoot, startDaemon, withWorld, type ApiClient } from './harness.js';
import { checkConsistency, seededRandom, tinyServerCmd } from './invariants.js';

const KILLS = Number(process.env['CNM_CRASH_KILLS'] ?? 60);
const PORT = 80;

test(
  `crash loop: ${KILLS} SIGKILLs at random moments leave records and kernel consistent`,
  { skip: skipUnlessRoot(), timeout: 420_000 },
  (t) =>
    withWorld(t, async (w) => {
      const seed = Number(process.env['CNM_CRASH_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
      t.diagnostic(`seed ${seed} (replay with CNM_CRASH_SEED=${seed})`);
      const rnd = seededRandom(seed);
      const pick = <T>(xs: readonly T[]): T | undefined =>
        xs.length === 0 ? undefined : xs[Math.floor(rnd() * xs.length)];
      const d = await startDaemon(w);
      const a = api(w);
      const started = Date.now();
      let seq = 0;
      let hostPort = 20000;
      let answered = 0;
      let cut = 0;
      const restartMs: number[] = [];

      // What the last check saw: names to aim the next requests at.
      let nets: string[] = [];
      let ctrs: { name: string; nets: string[] }[] = [];

      /** One random request, built from the last known state; resolves however it ends. */
      const randomOp = (c: ApiClient): Promise<unknown> => {
        const r = rnd();
        const net = pick(nets);
        const ctr = pick(ctrs);
        let p: Promise<unknown>;
        if (r < 0.2 || nets.length === 0) {
          const name = `n${++seq}`;
          const icc = rnd() < 0.3 ? 'false' : 'true';
          p = c.post('/networks/create', {
            Name: name,
            Driver: 'bridge',
            Options: { 'com.docker.network.bridge.enable_icc': icc },
          });
        } else if (r < 0.45 && ctrs.length < 6) {
          const publish = rnd() < 0.4;
          p = c
            .post('/cnm/containers/create', {
              Name: `c${++seq}`,
              Cmd: tinyServerCmd(PORT),
              Networks: [{ Name: net ?? 'bridge' }],
              ...(publish ? { Ports: [`${++hostPort}:${PORT}`] } : {}),
            })
            .then((res) =>
              res.status === 201 ? c.post(`/cnm/containers/${res.body.Id}/start`) : res,
            );
        } else if (r < 0.6 && ctr && net) {
          p = c.post(`/networks/${net}/connect`, { Container: ctr.name });
        } else if (r < 0.72 && ctr) {
          const from = pick(ctr.nets);
          p = from
            ? c.post(`/networks/${from}/disconnect`, { Container: ctr.name, Force: true })
            : Promise.resolve();
        } else if (r < 0.88 && ctr) {
          p = c.delete(`/cnm/containers/${ctr.name}?force=1`);
        } else if (net) {
          p = c.delete(`/networks/${net}`);
        } else {
          p = Promise.resolve();
        }
        return p.then(
          () => void answered++,
          () => void cut++,
        );
      };

      for (let kill = 1; kill <= KILLS; kill++) {
        const inflight: Promise<unknown>[] = [];
        const n = 1 + Math.floor(rnd() * 3);
        for (let i = 0; i < n; i++) inflight.push(randomOp(a));
        await new Promise((res) => setTimeout(res, Math.floor(rnd() * 40)));
        await d.kill9();
        await Promise.all(inflight);
        const t0 = Date.now();
        await d.restart();
        restartMs.push(Date.now() - t0);
        const { problems, records } = await checkConsistency(w, a, { servePort: PORT });
        if (problems.length > 0) {
          const log = (await readFile(w.logFile, 'utf8'))
            .split('\n')
            .filter((l) => / (WARN|ERROR) /.test(l))
            .slice(-30);
          assert.fail(
            `after kill ${kill} (seed ${seed}):\n${problems.join('\n')}\ncnmd warnings:\n${log.join('\n')}`,
          );
        }
        nets = records.networks
          .filter((x) => x.Driver === 'bridge' && x.Name !== 'bridge')
          .map((x) => x.Name as string);
        ctrs = records.containers.map((c) => ({
          name: String(c.Name).replace(/^\//, ''),
          nets: Object.keys(c.NetworkSettings?.Networks ?? {}),
        }));
        // Bound the world: a crash may leave a created-but-not-started container; remove
        // extras so the loop keeps exercising create paths.
        if (ctrs.length > 6) {
          const victim = ctrs.shift()!;
          await a.delete(`/cnm/containers/${victim.name}?force=1`);
        }
      }
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      const sorted = [...restartMs].sort((x, y) => x - y);
      t.diagnostic(
        `seed ${seed}: ${KILLS} kills survived in ${secs} s; ${answered} requests answered, ` +
          `${cut} cut by the kill; restart median ${sorted[Math.floor(sorted.length / 2)]} ms, ` +
          `max ${sorted[sorted.length - 1]} ms`,
      );
    }),
);
