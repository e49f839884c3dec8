/**
 * Graceful shutdown (issue 4, item 7): while a batch of requests (container creates, network
 * creates) is in flight, cnmd gets SIGTERM. It stops accepting, and every request it had
 * accepted gets its complete response — none is reset. It exits 0 leaving containers running;
 * a new cnmd adopts them: the running containers keep their PIDs and answer, and every
 * container whose create succeeded before the shutdown exists, starts and answers. Needs root.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { api, skipUnlessRoot, startDaemon, tcpConnect, withWorld, type World } from './harness.js';
import { tinyServerCmd } from './invariants.js';
import { alive, createNetwork, inspect, runContainer, served, until } from './workload.js';

/** How one request of the batch ended. */
interface Outcome {
  what: string;
  /** The connection was accepted (the request was sent). */
  connected: boolean;
  status?: number;
  body?: any;
  /** Transport error (refused before connecting, or reset after). */
  error?: string;
  /** ms after SIGTERM when the response was complete (negative: before). */
  doneAt?: number;
}

function send(
  w: World,
  what: string,
  path: string,
  body: unknown,
  t0: { at?: number },
): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { what, connected: false };
    const payload = JSON.stringify(body);
    const req = http.request(
      {
        socketPath: w.socketPath,
        method: 'POST',
        path,
        agent: false,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(payload),
        },
        timeout: 60_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('error', (err) => resolve({ ...out, error: `response: ${err.message}` }));
        res.on('end', () => {
          out.status = res.statusCode ?? 0;
          try {
            out.body = text === '' ? undefined : JSON.parse(text);
          } catch {
            out.error = `incomplete body: ${text.slice(0, 80)}`;
          }
          out.doneAt = Date.now() - (t0.at ?? Infinity);
          resolve(out);
        });
      },
    );
    req.on('socket', (s) => s.once('connect', () => (out.connected = true)));
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ ...out, error: err.code ?? err.message }),
    );
    req.end(payload);
  });
}

test(
  'SIGTERM: in-flight requests complete, containers keep running, a new cnmd adopts them',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  (t) =>
    withWorld(t, async (w) => {
      const d = await startDaemon(w);
      const a = api(w);
      await createNetwork(a, { Name: 'g1', Driver: 'bridge' });
      const running = await Promise.all(
        ['r1', 'r2', 'r3'].map(async (n) =>
          served(
            await runContainer(a, { Name: n, Cmd: tinyServerCmd(80), Networks: [{ Name: 'g1' }] }),
          ),
        ),
      );
      for (const r of running)
        await until(`${r.name} to listen`, () => tcpConnect(w.hostNs, r.ip['g1']!, 80, 500));

      // The batch: 30 container creates on one network (serialised by its queue, each a netns
      // and a veth) and 6 network creates. SIGTERM goes as soon as the first response is back.
      const t0: { at?: number } = {};
      const batch: Promise<Outcome>[] = [];
      for (let i = 0; i < 30; i++) {
        batch.push(
          send(
            w,
            `create c${i}`,
            '/cnm/containers/create',
            { Name: `c${i}`, Cmd: tinyServerCmd(80), Networks: [{ Name: 'g1' }] },
            t0,
          ),
        );
      }
      for (let i = 0; i < 6; i++) {
        batch.push(
          send(w, `network n${i}`, '/networks/create', { Name: `n${i}`, Driver: 'bridge' }, t0),
        );
      }
      await Promise.race(batch);
      t0.at = Date.now();
      const stopped = d.stop();
      // Late comers, once cnmd had time to stop listening: refused (or, if it had not yet,
      // answered in full) — never accepted and then dropped.
      await new Promise((r) => setTimeout(r, 50));
      for (let i = 0; i < 3; i++) {
        batch.push(send(w, `network late${i}`, '/networks/create', { Name: `late${i}` }, t0));
      }
      const outcomes = await Promise.all(batch);
      const exit = await stopped;
      const stopMs = Date.now() - t0.at;

      const started = outcomes.filter((o) => o.connected);
      const broken = started.filter((o) => o.error !== undefined || o.status === undefined);
      assert.deepEqual(broken, [], `every accepted request got a complete response`);
      for (const o of started) {
        assert.ok(
          [200, 201].includes(o.status!),
          `${o.what}: ${o.status} ${JSON.stringify(o.body)}`,
        );
      }
      const notStarted = outcomes.filter((o) => !o.connected);
      for (const o of notStarted)
        assert.match(o.error ?? '', /ECONNREFUSED|ENOENT/, `${o.what}: refused, not reset`);
      const afterSignal = started.filter((o) => (o.doneAt ?? -1) >= 0);
      assert.ok(
        afterSignal.length > 0,
        'some requests were still in flight at SIGTERM (else this proves nothing)',
      );
      assert.equal(exit.code, 0, `cnmd exited cleanly (${JSON.stringify(exit)})`);
      assert.match(
        await d.logTail(20),
        /API closed: (\d+) of \1 requests in flight finished, 0 cut/,
      );
      t.diagnostic(
        `${started.length} requests accepted, ${afterSignal.length} completed after SIGTERM ` +
          `(last ${Math.max(...afterSignal.map((o) => o.doneAt!))} ms after), ${notStarted.length} refused; ` +
          `cnmd exited ${stopMs} ms after SIGTERM`,
      );

      // Containers kept running through the shutdown.
      for (const r of running) assert.ok(alive(r.pid), `${r.name} (pid ${r.pid}) still running`);

      // A new cnmd adopts everything.
      await startDaemon(w);
      for (const r of running) {
        const c = served(await inspect(a, r.id));
        assert.equal(c.pid, r.pid, `${r.name} keeps its PID`);
        assert.ok(await tcpConnect(w.hostNs, r.ip['g1']!, 80, 2000), `${r.name} reachable`);
      }
      const created = started.filter((o) => o.what.startsWith('create') && o.status === 201);
      assert.ok(created.length > 0);
      const ips = new Set<string>();
      for (const o of created) {
        const s = await a.post(`/cnm/containers/${o.body.Id}/start`);
        assert.equal(s.status, 204, `start ${o.what}: ${s.text}`);
        const c = served(await inspect(a, o.body.Id));
        ips.add(c.ip['g1']!);
        await until(`${o.what} to answer`, () => tcpConnect(w.hostNs, c.ip['g1']!, 80, 500));
      }
      assert.equal(ips.size, created.length, 'no duplicate address');
      for (const o of started.filter((x) => x.what.startsWith('network'))) {
        assert.equal((await a.get(`/networks/${o.body.Id}`)).status, 200, `${o.what} adopted`);
      }
    }),
);
