/**
 * macvlan and ipvlan networks, kernel capability detection and `cnm doctor`, probed with real
 * traffic. The macvlan parent is never a real NIC: each world gets a veth pair made inside its
 * host netns, `mlan0` there (the parent) and `lan0` in a third netns `<world>-lan` playing a
 * host on the parent's segment (192.168.77.1, also the network's gateway):
 *
 * ```
 *   host ns: cnmd, mlan0 192.168.77.254 (parent) <--veth--> lan ns: lan0 192.168.77.1, http :8000
 *            containers: eth0 = macvlan children of mlan0
 * ```
 *
 * Needs root; skipped otherwise. ipvlan tests skip (after checking the refusal) when the kernel
 * has no ipvlan.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  api,
  cnm,
  exec,
  httpGet,
  run,
  skipUnlessRoot,
  startDaemon,
  startServer,
  withWorld,
  type World,
} from './harness.js';
import { createNetwork, runContainer, runServer, table } from './workload.js';

const SUBNET = '192.168.77.0/24';
const LAN_IP = '192.168.77.1';
const PARENT_IP = '192.168.77.254';
const LAN_PORT = 8000;
const FAIL_MS = 2000;

/** Starts an HTTP server, once more if the first start times out on a loaded machine. */
async function serveHttp(ns: string, port: number, bind: string): Promise<void> {
  try {
    await startServer(ns, 'http', port, bind);
  } catch {
    await startServer(ns, 'http', port, bind);
  }
}

/** Makes the parent segment: `mlan0` in the host ns, `lan0` in `<world>-lan`. Returns the lan ns path. */
async function makeSegment(w: World): Promise<string> {
  const lan = `${w.name}-lan`;
  await run('ip', ['netns', 'add', lan], { check: true });
  const h = ['-n', w.hostNsName];
  const l = ['-n', lan];
  for (const args of [
    [...l, 'link', 'set', 'lo', 'up'],
    // Created from inside the host ns with the peer born in the lan ns: nothing in the root ns.
    [...h, 'link', 'add', 'mlan0', 'type', 'veth', 'peer', 'name', 'lan0', 'netns', lan],
    [...h, 'addr', 'add', `${PARENT_IP}/24`, 'dev', 'mlan0'],
    [...h, 'link', 'set', 'mlan0', 'up'],
    [...l, 'addr', 'add', `${LAN_IP}/24`, 'dev', 'lan0'],
    [...l, 'link', 'set', 'lan0', 'up'],
  ]) {
    await run('ip', args, { check: true });
  }
  const ns = path.join('/run/netns', lan);
  await serveHttp(ns, LAN_PORT, LAN_IP);
  return ns;
}

function macvlanNet(name: string, extra: Record<string, string> = {}, more = {}) {
  return {
    Name: name,
    Driver: 'macvlan',
    Options: { parent: 'mlan0', ...extra },
    IPAM: { Config: [{ Subnet: SUBNET, Gateway: LAN_IP }] },
    ...more,
  };
}

interface Cell {
  from: string;
  to: string;
  expect: boolean;
  client?: string;
  got?: boolean;
  seen?: string;
  error?: string;
}

/** Runs every cell (one HTTP exchange each), prints the matrix, then asserts it. */
async function checkCells(
  t: TestContext,
  cells: Cell[],
  nsOf: Record<string, string>,
  url: Record<string, string>,
): Promise<void> {
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
  const rows = [['from', 'to', 'expected', 'got', 'client seen']];
  for (const c of cells) {
    rows.push([
      c.from,
      c.to,
      c.expect ? 'reach' : 'blocked',
      c.got ? 'reach' : `blocked (${c.error ?? ''})`,
      c.seen ?? '',
    ]);
  }
  for (const line of table(rows).split('\n')) t.diagnostic(line);
  for (const c of cells) {
    assert.equal(c.got, c.expect, `${c.from} -> ${c.to}: ${c.error ?? 'reached'}`);
    if (c.client !== undefined) assert.equal(c.seen, c.client, `${c.from} -> ${c.to}: client`);
  }
}

test(
  'macvlan bridge mode: containers reach each other and the segment, not the parent',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      const lanNs = await makeSegment(w);
      await startDaemon(w);
      const a = api(w);
      await createNetwork(a, macvlanNet('mv'));
      const m1 = await runServer(a, 'm1', [{ Name: 'mv', IPv4Address: '192.168.77.10' }]);
      const m2 = await runServer(a, 'm2', ['mv']);
      assert.equal(m1.ip['mv'], '192.168.77.10');
      assert.match(m2.ip['mv'] ?? '', /^192\.168\.77\.\d+$/);

      // The child is a macvlan of the parent, born in the sandbox as eth0, default via the gateway.
      const link = await exec(m1.ns, ['ip', '-d', '-j', 'link', 'show', 'eth0'], { check: true });
      const info = JSON.parse(link.stdout)[0].linkinfo;
      assert.equal(info.info_kind, 'macvlan');
      assert.equal(info.info_data.mode, 'bridge');
      const routes = await exec(m1.ns, ['ip', '-j', 'route'], { check: true });
      const def = JSON.parse(routes.stdout).find((r: any) => r.dst === 'default');
      assert.equal(def?.gateway, LAN_IP);
      // No kernel object for the network in the host ns besides the parent the test made.
      const hostLinks = await exec(w.hostNs, ['ip', '-j', 'link'], { check: true });
      assert.ok(!JSON.parse(hostLinks.stdout).some((l: any) => /macvlan/.test(l.link_type ?? '')));

      // On every address: binding to one makes Python look its name up, which in the host ns
      // waits for a DNS server that is not there.
      await serveHttp(w.hostNs, LAN_PORT, '0.0.0.0');
      const nsOf: Record<string, string> = {
        m1: m1.ns,
        m2: m2.ns,
        lan: lanNs,
        'host(parent)': w.hostNs,
      };
      const url: Record<string, string> = {
        m1: `http://${m1.ip['mv']}/`,
        m2: `http://${m2.ip['mv']}/`,
        lan: `http://${LAN_IP}:${LAN_PORT}/`,
        'host(parent)': `http://${PARENT_IP}:${LAN_PORT}/`,
      };
      await checkCells(
        t,
        [
          { from: 'm1', to: 'm2', expect: true, client: m1.ip['mv']! },
          { from: 'm2', to: 'm1', expect: true, client: m2.ip['mv']! },
          // The segment sees the containers' own addresses: no NAT.
          { from: 'm1', to: 'lan', expect: true, client: m1.ip['mv']! },
          { from: 'lan', to: 'm2', expect: true, client: LAN_IP },
          // macvlan isolation: the parent's own stack never sees its children's frames.
          { from: 'host(parent)', to: 'm1', expect: false },
          { from: 'm1', to: 'host(parent)', expect: false },
        ],
        nsOf,
        url,
      );

      // Published ports are refused, as Docker's macvlan does.
      const r = await a.post('/cnm/containers/create', {
        Name: 'm3',
        Cmd: ['sleep', '1'],
        Networks: [{ Name: 'mv' }],
        Ports: ['8080:80'],
      });
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.message, /publish ports/i);

      // Removing the containers and the network leaves only the test's parent.
      for (const c of [m1, m2]) {
        const d = await a.delete(`/cnm/containers/${c.id}?force=1`);
        assert.equal(d.status, 204, d.text);
      }
      const rm = await a.delete('/networks/mv');
      assert.equal(rm.status, 204, rm.text);
      const after = await exec(w.hostNs, ['ip', '-j', 'link'], { check: true });
      const names = JSON.parse(after.stdout).map((l: any) => l.ifname);
      assert.ok(names.includes('mlan0'));
    }),
);

test(
  'macvlan private mode: children cannot reach each other, the segment still can',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      const lanNs = await makeSegment(w);
      await startDaemon(w);
      const a = api(w);
      await createNetwork(a, macvlanNet('mvp', { macvlan_mode: 'private' }));
      const [p1, p2] = await Promise.all([
        runServer(a, 'p1', ['mvp']),
        runServer(a, 'p2', ['mvp']),
      ]);
      const link = await exec(p1.ns, ['ip', '-d', '-j', 'link', 'show', 'eth0'], { check: true });
      assert.equal(JSON.parse(link.stdout)[0].linkinfo.info_data.mode, 'private');
      await checkCells(
        t,
        [
          { from: 'p1', to: 'p2', expect: false },
          { from: 'p2', to: 'p1', expect: false },
          { from: 'p1', to: 'lan', expect: true, client: p1.ip['mvp']! },
          { from: 'lan', to: 'p2', expect: true, client: LAN_IP },
        ],
        { p1: p1.ns, p2: p2.ns, lan: lanNs },
        {
          p1: `http://${p1.ip['mvp']}/`,
          p2: `http://${p2.ip['mvp']}/`,
          lan: `http://${LAN_IP}:${LAN_PORT}/`,
        },
      );
    }),
);

test(
  'macvlan options: missing parent, 802.1q, internal, aux addresses, sysctl profile',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      const lanNs = await makeSegment(w);
      await startDaemon(w);
      const a = api(w);
      const doctor = (await a.get('/cnm/doctor')).body;
      const has = (f: string): boolean =>
        doctor.features.find((x: any) => x.name === f)?.present === true;

      let r = await a.post('/networks/create', {
        ...macvlanNet('bad'),
        Options: { parent: 'nosuch0' },
      });
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.message, /parent interface "nosuch0" does not exist/);
      r = await a.post('/networks/create', { ...macvlanNet('bad'), Options: {} });
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.message, /"parent" is required/);
      r = await a.post('/networks/create', macvlanNet('bad', { macvlan_mode: 'fast' }));
      assert.equal(r.status, 400, r.text);
      r = await a.post('/networks/create', {
        ...macvlanNet('vl'),
        Options: { parent: 'mlan0.10' },
      });
      if (has('vlan')) {
        assert.equal(r.status, 201, r.text);
      } else {
        assert.equal(r.status, 503, r.text);
        assert.match(r.body.message, /needs the kernel's 802\.1q VLAN support/);
        t.diagnostic('802.1q: refused, the kernel has no 802.1q');
      }
      r = await a.post(
        '/networks/create',
        macvlanNet('bad', { 'io.cnm.sysctl.kernel.pid_max': '1' }),
      );
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.message, /per-namespace "net\.\*"/);
      assert.equal((await a.get('/networks/bad')).status, 404);

      // Internal: no default route, the segment is still reachable directly. Aux addresses are
      // never handed out; the profile's sysctls land in the container's namespace.
      await createNetwork(
        a,
        macvlanNet(
          'mvi',
          {
            'io.cnm.sysctl.net.ipv4.ip_default_ttl': '33',
            'io.cnm.sysctl.net.ipv4.conf.IFNAME.arp_announce': '2',
          },
          {
            Internal: true,
            IPAM: {
              Config: [
                {
                  Subnet: SUBNET,
                  Gateway: LAN_IP,
                  IPRange: '192.168.77.0/30',
                  AuxiliaryAddresses: { router2: '192.168.77.2' },
                },
              ],
            },
          },
        ),
      );
      const i1 = await runServer(a, 'i1', ['mvi']);
      assert.equal(i1.ip['mvi'], '192.168.77.3', 'skips the gateway (.1) and the aux address (.2)');
      const routes = JSON.parse((await exec(i1.ns, ['ip', '-j', 'route'], { check: true })).stdout);
      assert.ok(!routes.some((x: any) => x.dst === 'default'), JSON.stringify(routes));
      const ttl = await exec(i1.ns, ['cat', '/proc/sys/net/ipv4/ip_default_ttl'], { check: true });
      assert.equal(ttl.stdout.trim(), '33');
      const ann = await exec(i1.ns, ['cat', '/proc/sys/net/ipv4/conf/eth0/arp_announce'], {
        check: true,
      });
      assert.equal(ann.stdout.trim(), '2');
      const own = await runContainer(a, {
        Name: 'i2',
        Cmd: ['sleep', '30'],
        Networks: [{ Name: 'mvi', IPv4Address: '192.168.77.20' }],
        Sysctls: { 'net.ipv4.ip_default_ttl': '44' },
      });
      const ttl2 = await exec(own.NetworkSettings.SandboxKey, [
        'cat',
        '/proc/sys/net/ipv4/ip_default_ttl',
      ]);
      assert.equal(ttl2.stdout.trim(), '44', "the container's own --sysctl wins");
      const lan = await httpGet(i1.ns, `http://${LAN_IP}:${LAN_PORT}/`, 5000);
      assert.equal(lan.status, 200);
      void lanNs;
    }),
);

test(
  'ipvlan l2: containers reach each other and the segment (or the kernel has none)',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      const lanNs = await makeSegment(w);
      await startDaemon(w);
      const a = api(w);
      const doctor = (await a.get('/cnm/doctor')).body;
      const ipvlan = doctor.features.find((x: any) => x.name === 'ipvlan');
      const body = {
        Name: 'iv',
        Driver: 'ipvlan',
        Options: { parent: 'mlan0', ipvlan_mode: 'l2' },
        IPAM: { Config: [{ Subnet: SUBNET, Gateway: LAN_IP }] },
      };
      if (ipvlan?.present !== true) {
        const r = await a.post('/networks/create', body);
        assert.equal(r.status, 503, r.text);
        assert.equal(
          r.body.message,
          'Cannot create network "iv": driver "ipvlan" needs the kernel\'s ipvlan support, which this kernel does not have',
        );
        t.skip('kernel has no ipvlan');
        return;
      }
      await createNetwork(a, body);
      const [v1, v2] = await Promise.all([runServer(a, 'v1', ['iv']), runServer(a, 'v2', ['iv'])]);
      await checkCells(
        t,
        [
          { from: 'v1', to: 'v2', expect: true, client: v1.ip['iv']! },
          { from: 'v1', to: 'lan', expect: true, client: v1.ip['iv']! },
        ],
        { v1: v1.ns, v2: v2.ns, lan: lanNs },
        { v2: `http://${v2.ip['iv']}/`, lan: `http://${LAN_IP}:${LAN_PORT}/` },
      );
    }),
);

/** Tries one link kind in a throwaway netns of the world, as the test's own probe. */
async function canCreate(w: World, kindArgs: string[]): Promise<boolean> {
  const ns = `${w.name}-probe`;
  await run('ip', ['netns', 'add', ns], { check: true });
  try {
    await run('ip', ['-n', ns, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'], {
      check: true,
    });
    const r = await run('ip', ['-n', ns, 'link', 'add', ...kindArgs]);
    return r.code === 0;
  } finally {
    await run('ip', ['netns', 'del', ns], { check: true });
  }
}

test(
  'cnm doctor: features and tuning match what the test probes itself',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      await makeSegment(w);
      await startDaemon(w);
      await createNetwork(api(w), macvlanNet('mv'));
      const out = await cnm(w, ['doctor', '--json']);
      assert.equal(out.code, 0, out.stderr);
      const report = JSON.parse(out.stdout);
      const present = (f: string) => report.features.find((x: any) => x.name === f)?.present;
      const mine: Record<string, string[]> = {
        macvlan: ['m0', 'link', 'p0', 'type', 'macvlan', 'mode', 'bridge'],
        ipvlan: ['i0', 'link', 'p0', 'type', 'ipvlan', 'mode', 'l2'],
        vlan: ['link', 'p0', 'name', 'p0.5', 'type', 'vlan', 'id', '5'],
        vxlan: ['x0', 'type', 'vxlan', 'id', '5', 'dstport', '4789'],
        dummy: ['d0', 'type', 'dummy'],
        bridge: ['b0', 'type', 'bridge'],
      };
      const rows = [['feature', 'doctor', 'test']];
      for (const [f, args] of Object.entries(mine)) {
        const got = await canCreate(w, args);
        rows.push([f, String(present(f)), String(got)]);
        assert.equal(present(f), got, `feature ${f}`);
      }
      for (const line of table(rows).split('\n')) t.diagnostic(line);
      assert.equal(present('netns'), true);
      assert.equal(present('nftables'), true);
      assert.deepEqual(report.missing, []);
      assert.equal(report.ok, true);

      // Tuning values are the daemon's namespace's, as the test reads them there.
      for (const key of [
        'net.core.somaxconn',
        'net.ipv4.ip_local_port_range',
        'net.ipv4.ip_forward',
      ]) {
        const file = `/proc/sys/${key.replace(/\./g, '/')}`;
        const r = await exec(w.hostNs, ['cat', file], { check: true });
        const item = report.tuning.sysctls.find((s: any) => s.key === key);
        assert.equal(item?.value, r.stdout.replace(/\s+/g, ' ').trim(), key);
      }
      // cnmd turns forwarding on for bridge networks.
      assert.equal(
        report.tuning.sysctls.find((s: any) => s.key === 'net.ipv4.ip_forward').ok,
        true,
      );

      // The probe left nothing behind: no probe namespace file, no probe table.
      const files = await exec(w.hostNs, ['ls', w.execRoot], { check: true });
      assert.ok(!/probe-/.test(files.stdout), files.stdout);
      const nft = await exec(w.hostNs, ['nft', 'list', 'tables'], { check: true });
      assert.ok(!/cnm_probe/.test(nft.stdout), nft.stdout);

      const text = await cnm(w, ['doctor']);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /macvlan\s+yes/);
      assert.match(text.stdout, /OK: every kernel feature/);
    }),
);
