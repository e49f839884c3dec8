/**
 * Published ports, TCP and UDP, without a userland proxy: from outside, hairpin from a container
 * on the same bridge (by uplink and gateway address), from another bridge, from the host's
 * localhost; a port bound to 127.0.0.1 only; a conflicting publish refused with 409 and no host
 * change; an ephemeral port shown in inspect; and removal taking the mapping away. Needs root.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  HOST_UPLINK_IP,
  OUTSIDE_IP,
  api,
  httpGet,
  skipUnlessRoot,
  snapshotHost,
  startDaemon,
  tcpConnect,
  udpEcho,
  withWorld,
} from './harness.js';
import {
  assertSameHost,
  createNetwork,
  runServer,
  serveCmd,
  table,
  waitHostSettled,
} from './workload.js';

const FAIL_MS = 2000;

test(
  'published ports: outside, hairpin, other bridge, localhost, host IP, conflict, ephemeral, removal',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      await startDaemon(w);
      const a = api(w);
      await createNetwork(a, { Name: 'netp', Driver: 'bridge' });
      await createNetwork(a, { Name: 'neto', Driver: 'bridge' });
      const s1 = await runServer(a, 's1', ['netp'], {
        Ports: ['8080:80', '8080:80/udp', '127.0.0.1:9090:80'],
      });
      const [same, other] = await Promise.all([
        runServer(a, 'same', ['netp']),
        runServer(a, 'other', ['neto']),
      ]);
      const gwP = s1.gw['netp']!;

      // Every way in, TCP (HTTP, so the client address the server sees is checked) and UDP.
      const probes: {
        from: string;
        ns: string;
        ip: string;
        port: number;
        proto: 'tcp' | 'udp';
        expect: boolean;
        client?: string;
        got?: boolean;
        seen?: string;
      }[] = [
        // From outside, DNAT keeps the client's own address (no proxy in the way).
        {
          from: 'outside',
          ns: w.outsideNs,
          ip: HOST_UPLINK_IP,
          port: 8080,
          proto: 'tcp',
          expect: true,
          client: OUTSIDE_IP,
        },
        {
          from: 'outside',
          ns: w.outsideNs,
          ip: HOST_UPLINK_IP,
          port: 8080,
          proto: 'udp',
          expect: true,
          client: OUTSIDE_IP,
        },
        // Hairpin: the reply must come back through NAT, so the server sees the gateway.
        {
          from: 'same',
          ns: same.ns,
          ip: HOST_UPLINK_IP,
          port: 8080,
          proto: 'tcp',
          expect: true,
          client: gwP,
        },
        {
          from: 'same',
          ns: same.ns,
          ip: HOST_UPLINK_IP,
          port: 8080,
          proto: 'udp',
          expect: true,
          client: gwP,
        },
        { from: 'same', ns: same.ns, ip: gwP, port: 8080, proto: 'tcp', expect: true, client: gwP },
        { from: 'same', ns: same.ns, ip: gwP, port: 8080, proto: 'udp', expect: true, client: gwP },
        // Another bridge reaches the published port (not the container address itself).
        { from: 'other', ns: other.ns, ip: HOST_UPLINK_IP, port: 8080, proto: 'tcp', expect: true },
        { from: 'other', ns: other.ns, ip: HOST_UPLINK_IP, port: 8080, proto: 'udp', expect: true },
        { from: 'other', ns: other.ns, ip: s1.ip['netp']!, port: 80, proto: 'tcp', expect: false },
        // The host itself, through localhost and through its uplink address.
        { from: 'host', ns: w.hostNs, ip: '127.0.0.1', port: 8080, proto: 'tcp', expect: true },
        { from: 'host', ns: w.hostNs, ip: '127.0.0.1', port: 8080, proto: 'udp', expect: true },
        { from: 'host', ns: w.hostNs, ip: HOST_UPLINK_IP, port: 8080, proto: 'tcp', expect: true },
        // 127.0.0.1:9090 is the host's localhost only.
        { from: 'host', ns: w.hostNs, ip: '127.0.0.1', port: 9090, proto: 'tcp', expect: true },
        {
          from: 'outside',
          ns: w.outsideNs,
          ip: HOST_UPLINK_IP,
          port: 9090,
          proto: 'tcp',
          expect: false,
        },
        { from: 'same', ns: same.ns, ip: gwP, port: 9090, proto: 'tcp', expect: false },
        // Only UDP 8080 was published besides TCP 8080: UDP 9090 is not.
        { from: 'host', ns: w.hostNs, ip: '127.0.0.1', port: 9090, proto: 'udp', expect: false },
      ];
      await Promise.all(
        probes.map(async (p) => {
          const ms = p.expect ? 5000 : FAIL_MS;
          if (p.proto === 'tcp') {
            try {
              const r = await httpGet(p.ns, `http://${p.ip}:${p.port}/`, ms);
              p.got = r.status === 200;
              p.seen = String(r.json?.client ?? '');
            } catch {
              p.got = false;
            }
          } else {
            const reply = await udpEcho(p.ns, { ip: p.ip, port: p.port }, 'ping', ms);
            p.got = reply !== null && reply.endsWith(' ping');
            p.seen = reply?.split(':')[0] ?? '';
          }
        }),
      );
      const rows = [['from', 'to', 'proto', 'expected', 'got', 'client seen']];
      for (const p of probes) {
        rows.push([
          p.from,
          `${p.ip}:${p.port}`,
          p.proto,
          String(p.expect),
          String(p.got),
          p.seen ?? '',
        ]);
      }
      t.diagnostic('published-port probes:');
      for (const line of table(rows).split('\n')) t.diagnostic(line);
      for (const p of probes) {
        const what = `${p.from} -> ${p.ip}:${p.port}/${p.proto}`;
        assert.equal(p.got, p.expect, what);
        if (p.client !== undefined) assert.equal(p.seen, p.client, `${what}: client seen`);
      }

      // A second container asking for a taken host port: 409, and nothing changes.
      await waitHostSettled(w);
      const before = await snapshotHost(w);
      const netBefore = (await a.get('/networks/netp')).body;
      const listBefore = (await a.get('/cnm/containers/json?all=1')).body.map(
        ({ Status: _s, ...rest }: Record<string, unknown>) => rest,
      );
      for (const port of ['8080:80', '0.0.0.0:8080:81', '8080:80/udp']) {
        const r = await a.post('/cnm/containers/create', {
          Name: 'dup',
          Cmd: serveCmd(80),
          Networks: [{ Name: 'netp' }],
          Ports: [port],
        });
        assert.equal(r.status, 409, `publish ${port} again: ${r.text}`);
        assert.match(String(r.body?.message), /already allocated/);
      }
      assertSameHost(before, await snapshotHost(w), 'refused duplicate port');
      assert.deepEqual(
        (await a.get('/cnm/containers/json?all=1')).body.map(
          ({ Status: _s, ...rest }: Record<string, unknown>) => rest,
        ),
        listBefore,
      );
      // No endpoint (hence no address) was left on the network by the refused creates.
      assert.deepEqual((await a.get('/networks/netp')).body, netBefore);
      assert.equal(
        await httpGet(w.outsideNs, `http://${HOST_UPLINK_IP}:8080/`).then((r) => r.json?.hostname),
        s1.id.slice(0, 12),
        'port 8080 still leads to s1',
      );

      // Ephemeral host port: chosen by cnm, shown in inspect, and working.
      const e1 = await runServer(a, 'e1', ['netp'], { Ports: ['80', '80/udp'] });
      const ins = (await a.get(`/cnm/containers/${e1.id}/json`)).body;
      const tcpBind = ins.NetworkSettings.Ports['80/tcp']?.[0];
      const udpBind = ins.NetworkSettings.Ports['80/udp']?.[0];
      assert.ok(
        tcpBind && udpBind,
        `ports in inspect: ${JSON.stringify(ins.NetworkSettings.Ports)}`,
      );
      const ephemeral = Number(tcpBind.HostPort);
      assert.ok(ephemeral >= 1024 && ephemeral <= 65535, `ephemeral port ${tcpBind.HostPort}`);
      t.diagnostic(`ephemeral ports: tcp ${tcpBind.HostPort}, udp ${udpBind.HostPort}`);
      const viaEphemeral = await httpGet(w.outsideNs, `http://${HOST_UPLINK_IP}:${ephemeral}/`);
      assert.equal(viaEphemeral.json?.hostname, e1.id.slice(0, 12), 'reached e1 through its port');
      const udpReply = await udpEcho(
        w.outsideNs,
        { ip: HOST_UPLINK_IP, port: Number(udpBind.HostPort) },
        'eph',
      );
      assert.ok(udpReply?.endsWith(' eph'), `udp via ephemeral port: ${udpReply}`);

      // Removing the container removes its mappings.
      const del = await a.delete(`/cnm/containers/${s1.id}?force=1`);
      assert.equal(del.status, 204, del.text);
      const nft = await snapshotHost(w);
      assert.equal(
        nft.nft.some((o) => o.includes('"elem"') && o.includes('8080')),
        false,
        'no port-8080 element left in nftables',
      );
      const [tcpAfter, udpAfter, localAfter] = await Promise.all([
        tcpConnect(w.outsideNs, HOST_UPLINK_IP, 8080, FAIL_MS),
        udpEcho(w.outsideNs, { ip: HOST_UPLINK_IP, port: 8080 }, 'x', FAIL_MS),
        tcpConnect(w.hostNs, '127.0.0.1', 9090, FAIL_MS),
      ]);
      assert.equal(tcpAfter, false, 'tcp 8080 after removal');
      assert.equal(udpAfter, null, 'udp 8080 after removal');
      assert.equal(localAfter, false, '127.0.0.1:9090 after removal');
      // And the port is free again for someone else.
      const s2 = await runServer(a, 's2', ['neto'], { Ports: ['8080:80'] });
      const again = await httpGet(w.outsideNs, `http://${HOST_UPLINK_IP}:8080/`);
      assert.equal(again.json?.hostname, s2.id.slice(0, 12));
    }),
);
