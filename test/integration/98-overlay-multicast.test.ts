/**
 * Overlay networks in multicast mode (`io.cnm.overlay.mode=multicast`, `io.cnm.overlay.group`):
 * two hosts (worlds running cnmd) on an underlay bridge with etcd (test/integration/
 * overlay-cluster.ts). The underlay bridge has IGMP snooping off, so it floods multicast like
 * broadcast, as a switch without snooping does; with snooping on, a Linux bridge forwards a group
 * only to ports whose membership it has seen and times that out without a querier, which would
 * make this test depend on IGMP timers.
 *
 * What shows that the group carries the traffic: no static FDB entry exists for the other host's
 * container, so the first frame to it can only go to the group (the device's default
 * destination); it arrives, and each host then has a learnt (not permanent) entry pointing at
 * the other's VTEP.
 *
 * Needs root and etcd (Debian package `etcd-server`); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, exec, httpGet, skipUnlessRoot, type World } from './harness.js';
import {
  createOverlayCluster,
  hostIp,
  overlayFdb,
  skipUnlessEtcd,
  type OverlayCluster,
} from './overlay-cluster.js';
import { execIn, runServer, until } from './workload.js';

const skip = skipUnlessRoot() || skipUnlessEtcd();
const GROUP = '239.1.2.3';
const MODE = 'io.cnm.overlay.mode';
const GROUP_OPT = 'io.cnm.overlay.group';

test(
  'overlay multicast mode: bad groups refused, BUM over the group, MACs learnt',
  { skip, timeout: 90_000 },
  async (t) => {
    const c: OverlayCluster = await createOverlayCluster({
      label: t.name,
      hosts: 2,
      mcastSnooping: false,
      outsideServers: true,
    });
    try {
      const [w1, w2] = c.hosts as [World, World];
      const [a1, a2] = [api(w1), api(w2)];

      // Bad input: 400 naming the problem, nothing created anywhere.
      const bad: [Record<string, string>, RegExp][] = [
        [{ [MODE]: 'multicast' }, /needs a multicast group/],
        [
          { [MODE]: 'multicast', [GROUP_OPT]: '10.1.2.3' },
          /"10\.1\.2\.3".*not a multicast address/,
        ],
        [{ [MODE]: 'multicast', [GROUP_OPT]: 'ff05::1:3' }, /underlay is IPv4/],
        [{ [MODE]: 'multicast', [GROUP_OPT]: 'nonsense' }, /not an IPv4 or IPv6 address/],
        [{ [GROUP_OPT]: GROUP }, /multicast mode only/],
        [{ [MODE]: 'flood' }, /Invalid value "flood"/],
      ];
      for (const [opts, re] of bad) {
        const r = await a1.post('/networks/create', {
          Name: 'mc',
          Driver: 'overlay',
          Options: opts,
        });
        assert.equal(r.status, 400, `${JSON.stringify(opts)}: ${r.text}`);
        assert.match(r.body.message, re);
      }
      for (const a of [a1, a2]) {
        const ls = (await a.get('/networks')).body as { Driver: string }[];
        assert.ok(!ls.some((n) => n.Driver === 'overlay'), 'no overlay network was created');
      }
      const links1 = (await exec(w1.hostNs, ['ip', '-br', 'link'], { check: true })).stdout;
      assert.doesNotMatch(links1, /cnmvx|cnmov/);

      // A multicast network, made on host 1, known on host 2.
      const mk = await a1.post('/networks/create', {
        Name: 'mc',
        Driver: 'overlay',
        Options: { [MODE]: 'multicast', [GROUP_OPT]: GROUP },
      });
      assert.equal(mk.status, 201, mk.text);
      const id = mk.body.Id as string;
      await until('mc on host 2', async () => (await a2.get('/networks/mc')).status === 200);
      const n2 = (await a2.get('/networks/mc')).body;
      assert.equal(n2.Options[MODE], 'multicast');
      assert.equal(n2.Options[GROUP_OPT], GROUP);
      for (const [i, w] of [w1, w2].entries()) {
        const vx = (await exec(w.hostNs, ['ip', '-d', 'link', 'show', `cnmvx${id.slice(0, 10)}`]))
          .stdout;
        assert.match(
          vx,
          new RegExp(
            `vxlan id \\d+ group ${GROUP.replace(/\./g, '\\.')} local ${hostIp(i)} dev ul0`,
          ),
        );
        assert.doesNotMatch(vx, /nolearning/, 'learning is on');
        assert.match(vx, /proxy/, 'ARP stays local');
        // The VXLAN device joined the group on the underlay interface (IGMP).
        const maddr = (await exec(w.hostNs, ['ip', 'maddr', 'show', 'dev', 'ul0'], { check: true }))
          .stdout;
        assert.match(maddr, new RegExp(`inet\\s+${GROUP.replace(/\./g, '\\.')}\\b`));
        // BUM frames go to the group: the device's all-zeros entry.
        const fdb = await overlayFdb(w);
        assert.ok(
          fdb.some((l) => l.startsWith('00:00:00:00:00:00 ') && l.includes(`dst ${GROUP} `)),
          fdb.join('\n'),
        );
      }

      const s1 = await runServer(a1, 'm1', ['mc']);
      const s2 = await runServer(a2, 'm2', ['mc']);
      const mac = async (a: typeof a1, cid: string): Promise<string> =>
        (await a.get(`/cnm/containers/${cid}/json`)).body.NetworkSettings.Networks.mc
          .MacAddress as string;
      const [mac1, mac2] = [await mac(a1, s1.id), await mac(a2, s2.id)];
      // Host 1 knows m2's address (ARP answered locally from the cluster's entries) but cnm
      // wrote no FDB entry for its MAC: only frames that came in through the group (m2's own
      // IPv6 multicast, the first unicast frame) can tell host 1 where m2 lives.
      await until('neighbour entry for m2 on host 1', async () => {
        const r = await exec(w1.hostNs, ['ip', 'neigh', 'show', s2.ip['mc']!], { check: true });
        return r.stdout.includes(mac2);
      });
      const programmed = (await overlayFdb(w1)).filter(
        (l) => l.startsWith(`${mac2} `) && /permanent|static/.test(l),
      );
      assert.deepEqual(programmed, [], 'no static FDB entry in multicast mode');

      const r = await httpGet(s1.ns, `http://${s2.ip['mc']}/`, 5000);
      assert.equal(r.status, 200);
      assert.equal(r.json.client, s1.ip['mc'], 'L2 across hosts: no NAT between containers');
      const r2 = await httpGet(s2.ns, `http://${s1.ip['mc']}/`, 5000);
      assert.equal(r2.status, 200);
      // Learnt from the wire: dynamic entries pointing at the other host's VTEP.
      for (const [w, m, vtep] of [
        [w1, mac2, hostIp(1)],
        [w2, mac1, hostIp(0)],
      ] as const) {
        const fdb = await overlayFdb(w);
        const line = fdb.find((l) => l.startsWith(`${m} `) && l.includes(' dst '));
        assert.ok(line?.includes(`dst ${vtep} `), `learnt entry for ${m}:\n${fdb.join('\n')}`);
        assert.doesNotMatch(line!, /permanent|static/, 'learnt, not programmed');
      }
      // Names across hosts come from the cluster store, as in unicast mode.
      await until('m1 resolves on host 2', async () => {
        const g = await execIn(w2, s2.id, ['getent', 'ahostsv4', 'm1']);
        return g.stdout.split(/\s/)[0] === s1.ip['mc'];
      });
      // Egress through the container's own host, as in unicast mode.
      const out = await httpGet(s1.ns, w1.outsideUrl, 4000);
      assert.equal(out.json.client, w1.hostUplinkIp);

      assert.equal((await a2.delete('/cnm/containers/m2?force=1')).status, 204);
      await until('m2 withdrawn on host 1', async () => {
        const n = await exec(w1.hostNs, ['ip', 'neigh', 'show', s2.ip['mc']!], { check: true });
        return !n.stdout.includes(mac2);
      });
      assert.equal((await a1.delete('/cnm/containers/m1?force=1')).status, 204);
      assert.equal((await a1.delete('/networks/mc')).status, 204);
      await until('mc gone on host 2', async () => (await a2.get('/networks/mc')).status === 404);
      const links2 = (await exec(w2.hostNs, ['ip', '-br', 'link'], { check: true })).stdout;
      assert.doesNotMatch(links2, /cnmvx|cnmov/);
    } catch (err) {
      for (const d of c.daemons) t.diagnostic(`cnmd log tail:\n${await d.logTail(40)}`);
      throw err;
    } finally {
      await c.destroy();
    }
  },
);
