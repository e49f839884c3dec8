/**
 * The communication matrix of bridge networks, probed with real traffic: servers run as the
 * containers' own commands, and every cell of the table is one TCP/HTTP exchange (or its
 * bounded failure). Cells: container → outside through NAT (the outside sees the host's uplink
 * address), container ↔ host (gateway and uplink address), container ↔ container on one bridge,
 * isolation between bridges, `--internal`, and ICC off. Needs root; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  HOST_UPLINK_IP,
  OUTSIDE_IP,
  api,
  httpGet,
  skipUnlessRoot,
  startDaemon,
  startServer,
  withWorld,
} from './harness.js';
import { createNetwork, runServer, table, type Served } from './workload.js';

/** Expected failures wait this long at most. */
const FAIL_MS = 2000;
const HOST_PORT = 8000;

interface Cell {
  from: string;
  to: string;
  expect: boolean;
  /** When set, the client address the server must see. */
  client?: string;
  got?: boolean;
  seen?: string;
  error?: string;
}

test(
  'communication matrix: NAT, host, same bridge, other bridge, internal, ICC off',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      await startDaemon(w);
      const a = api(w);
      await createNetwork(a, { Name: 'neta', Driver: 'bridge' });
      await createNetwork(a, { Name: 'netb', Driver: 'bridge' });
      await createNetwork(a, { Name: 'neti', Driver: 'bridge', Internal: true });
      await createNetwork(a, {
        Name: 'netq',
        Driver: 'bridge',
        Options: { 'com.docker.network.bridge.enable_icc': 'false' },
      });
      const [a1, a2, b1, i1, i2, q1, q2] = await Promise.all([
        runServer(a, 'a1', ['neta']),
        runServer(a, 'a2', ['neta']),
        runServer(a, 'b1', ['netb']),
        runServer(a, 'i1', ['neti']),
        runServer(a, 'i2', ['neti']),
        runServer(a, 'q1', ['netq']),
        runServer(a, 'q2', ['netq']),
      ]);
      // A server on the host itself (in the host netns), on every address.
      await startServer(w.hostNs, 'http', HOST_PORT);

      const gwA = a1.gw['neta']!;
      const ipOf = (c: Served): string => Object.values(c.ip)[0]!;
      const nsOf: Record<string, string> = { host: w.hostNs };
      for (const c of [a1, a2, b1, i1, i2, q1, q2]) nsOf[c.name] = c.ns;
      const url: Record<string, string> = {
        outside: w.outsideUrl,
        'host(gw)': `http://${gwA}:${HOST_PORT}/`,
        'host(uplink)': `http://${HOST_UPLINK_IP}:${HOST_PORT}/`,
      };
      for (const c of [a1, a2, b1, i1, i2, q1, q2]) url[c.name] = `http://${ipOf(c)}/`;

      const cells: Cell[] = [
        // Egress through masquerade: the outside only ever sees the host's uplink address.
        { from: 'a1', to: 'outside', expect: true, client: HOST_UPLINK_IP },
        { from: 'b1', to: 'outside', expect: true, client: HOST_UPLINK_IP },
        // Container → host, by the bridge gateway and by the uplink address (no NAT).
        { from: 'a1', to: 'host(gw)', expect: true, client: ipOf(a1) },
        { from: 'a1', to: 'host(uplink)', expect: true, client: ipOf(a1) },
        // Host → container: the host reaches it from the bridge's address.
        { from: 'host', to: 'a1', expect: true, client: gwA },
        // Same bridge, both ways, without NAT.
        { from: 'a1', to: 'a2', expect: true, client: ipOf(a1) },
        { from: 'a2', to: 'a1', expect: true, client: ipOf(a2) },
        // Another bridge network is unreachable, both ways.
        { from: 'a1', to: 'b1', expect: false },
        { from: 'b1', to: 'a1', expect: false },
        // Internal: no egress, no reach to or from other networks, but reach inside.
        { from: 'i1', to: 'outside', expect: false },
        { from: 'i1', to: 'a1', expect: false },
        { from: 'a1', to: 'i1', expect: false },
        { from: 'i1', to: 'i2', expect: true, client: ipOf(i1) },
        { from: 'i2', to: 'i1', expect: true, client: ipOf(i2) },
        // ICC off: no traffic between its containers, egress still masqueraded.
        { from: 'q1', to: 'q2', expect: false },
        { from: 'q2', to: 'q1', expect: false },
        { from: 'q1', to: 'outside', expect: true, client: HOST_UPLINK_IP },
        { from: 'q2', to: 'outside', expect: true, client: HOST_UPLINK_IP },
      ];

      await Promise.all(
        cells.map(async (c) => {
          try {
            const r = await httpGet(nsOf[c.from]!, url[c.to]!, c.expect ? 5000 : FAIL_MS);
            c.got = r.status === 200;
            c.seen = String(r.json?.client ?? '');
          } catch (err) {
            c.got = false;
            const msg = (err as Error).message;
            c.error = /timed out|\[Errno \d+\] [^>]*|refused/.exec(msg)?.[0] ?? msg.slice(-60);
          }
        }),
      );

      const rows = [['from', 'to', 'expected', 'got', 'client seen', 'verdict']];
      for (const c of cells) {
        const ok = c.got === c.expect && (c.client === undefined || c.seen === c.client);
        rows.push([
          c.from,
          c.to,
          c.expect ? 'reach' : 'blocked',
          c.got ? 'reach' : `blocked (${c.error ?? ''})`,
          c.seen ?? '',
          ok ? 'ok' : 'FAIL',
        ]);
      }
      // One diagnostic per line: the TAP reporter escapes newlines inside one.
      t.diagnostic('communication matrix:');
      for (const line of table(rows).split('\n')) t.diagnostic(line);
      for (const c of cells) {
        assert.equal(c.got, c.expect, `${c.from} -> ${c.to}: ${c.error ?? 'reached'}`);
        if (c.client !== undefined) {
          assert.equal(c.seen, c.client, `${c.from} -> ${c.to}: client address seen`);
        }
      }
      // The outside world never learns a container address: it has no route back.
      assert.notEqual(OUTSIDE_IP, HOST_UPLINK_IP);
    }),
);
