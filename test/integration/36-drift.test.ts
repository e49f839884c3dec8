/**
 * Drift repair: with cnmd running, someone deletes a container's veth, deletes the `inet cnm`
 * table, removes a bridge, removes a container's default route, flushes the whole ruleset,
 * deletes single nftables elements (a published port's map element, anti-spoofing elements),
 * changes elements in place (same key, other value), flushes the policy table (`inet
 * cnm_policy`, with a policy in force that must hold again), deletes one of its elements and
 * deletes it, and deletes a macvlan container's interface. cnmd must restore each within 2 s (measured from
 * the damage until the object is back and traffic through it works again; a re-made veth has
 * its network's sysctl profile again), and leave alone what it does not own: a foreign bridge
 * and a foreign nftables table in the same namespace. Needs root.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import {
  HOST_UPLINK_IP,
  api,
  exec,
  run,
  skipUnlessRoot,
  startDaemon,
  tcpConnect,
  withWorld,
} from './harness.js';
import { checkConsistency, tinyServerCmd } from './invariants.js';
import { createNetwork, runContainer, served, until } from './workload.js';

const LIMIT_MS = 2000;

test(
  'drift repair: cnmd restores what it owns within 2 s and touches nothing else',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      await startDaemon(w);
      const a = api(w);
      // A sysctl profile (kernel default 0): a re-made veth must get it again.
      await createNetwork(a, {
        Name: 'd1',
        Driver: 'bridge',
        Options: { 'io.cnm.sysctl.net.ipv4.conf.IFNAME.arp_notify': '1' },
      });
      const c1 = served(
        await runContainer(a, {
          Name: 'c1',
          Cmd: tinyServerCmd(80),
          Networks: [{ Name: 'd1' }],
          Ports: ['8080:80'],
        }),
      );
      const c2 = served(
        await runContainer(a, { Name: 'c2', Cmd: tinyServerCmd(80), Networks: [{ Name: 'd1' }] }),
      );
      const ip1 = c1.ip['d1']!;
      await until('c1 to listen', () => tcpConnect(w.hostNs, ip1, 80, 500));
      await until('c2 to listen', () => tcpConnect(w.hostNs, c2.ip['d1']!, 80, 500));

      // What cnmd does not own, in the same namespace.
      await exec(w.hostNs, ['ip', 'link', 'add', 'xbr0', 'type', 'bridge'], { check: true });
      await exec(w.hostNs, ['nft', 'add table inet foreign; add chain inet foreign c'], {
        check: true,
      });
      const foreignIntact = async (): Promise<void> => {
        const l = await exec(w.hostNs, ['ip', '-j', '-d', 'link', 'show', 'xbr0']);
        assert.equal(l.code, 0, 'foreign bridge xbr0 still exists');
        assert.equal(JSON.parse(l.stdout)[0].ifalias, undefined, 'xbr0 left unmarked');
        const n = await exec(w.hostNs, ['nft', 'list', 'table', 'inet', 'foreign']);
        assert.equal(n.code, 0, 'foreign nft table still exists');
      };

      const veth = async (): Promise<string> => {
        const r = await exec(w.hostNs, ['ip', '-j', '-d', 'link', 'show'], { check: true });
        const ins = await a.get(`/cnm/containers/${c1.id}/json`);
        const epId = String(ins.body.NetworkSettings.Networks.d1.EndpointID).slice(0, 12);
        const l = (JSON.parse(r.stdout) as any[]).find((x) => x.ifalias === `cnm:ep:${epId}`);
        return l?.ifname ?? '';
      };
      const bridge = async (): Promise<string> => {
        const r = await exec(w.hostNs, ['ip', '-j', '-d', 'link', 'show'], { check: true });
        const n = await a.get('/networks/d1');
        const l = (JSON.parse(r.stdout) as any[]).find(
          (x) => x.ifalias === `cnm:net:${String(n.body.Id).slice(0, 12)}`,
        );
        return l?.ifname ?? '';
      };
      const hasDefault = async (): Promise<boolean> => {
        const r = await exec(c1.ns, ['ip', '-j', 'route', 'show', 'default'], { check: true });
        return (JSON.parse(r.stdout || '[]') as unknown[]).length > 0;
      };
      const published = () => tcpConnect(w.outsideNs, HOST_UPLINK_IP, 8080, 300);
      const c1Reachable = () => tcpConnect(w.hostNs, ip1, 80, 300);
      const c2ToC1 = () => tcpConnect(c2.ns, ip1, 80, 300);
      const c1Out = () => tcpConnect(c1.ns, w.outsideIp, 80, 300);
      const arpNotify = async (): Promise<string> =>
        (await exec(c1.ns, ['cat', '/proc/sys/net/ipv4/conf/eth0/arp_notify'])).stdout.trim();
      const setHas = async (
        family: string,
        set: string,
        needle: string,
        table = 'cnm',
      ): Promise<boolean> => {
        // A map (pm4any) is listed with `list map`.
        const kind = set.startsWith('pm4') ? 'map' : 'set';
        const r = await exec(w.hostNs, ['nft', 'list', kind, family, table, set]);
        return r.code === 0 && r.stdout.includes(needle);
      };

      const figures: string[] = [];
      const restore = async (
        what: string,
        damage: string[],
        restored: () => Promise<boolean>,
        ns = damage[0] === 'in-c1' ? c1.ns : w.hostNs,
      ): Promise<void> => {
        await exec(ns, damage.slice(damage[0] === 'in-c1' ? 1 : 0), {
          check: true,
        });
        const t0 = Date.now();
        let ms = -1;
        while (Date.now() - t0 < LIMIT_MS + 3000) {
          if (await restored()) {
            ms = Date.now() - t0;
            break;
          }
          await new Promise((r) => setTimeout(r, 25));
        }
        figures.push(`${what}: ${ms < 0 ? 'not restored' : `${ms} ms`}`);
        t.diagnostic(`${what}: restored in ${ms} ms (damage at ${new Date(t0).toISOString()})`);
        assert.ok(ms >= 0 && ms <= LIMIT_MS, `${what}: restored in ${ms} ms (limit ${LIMIT_MS})`);
      };

      const v = await veth();
      assert.ok(v, 'c1 has a host veth');
      assert.equal(await arpNotify(), '1', "the network's sysctl profile is set");
      await restore('veth deleted', ['ip', 'link', 'del', v], async () => {
        return (
          (await veth()) !== '' &&
          (await c1Reachable()) &&
          (await c2ToC1()) &&
          (await arpNotify()) === '1'
        );
      });
      await foreignIntact();

      await restore('inet cnm table deleted', ['nft', 'delete', 'table', 'inet', 'cnm'], () =>
        published(),
      );
      await foreignIntact();

      const br = await bridge();
      await restore('bridge deleted', ['ip', 'link', 'del', br], async () => {
        return (
          (await bridge()) !== '' && (await c1Reachable()) && (await c2ToC1()) && (await c1Out())
        );
      });
      await foreignIntact();

      await restore(
        'default route removed',
        ['in-c1', 'ip', 'route', 'del', 'default'],
        async () => (await hasDefault()) && (await c1Out()),
      );
      await foreignIntact();

      await restore('ruleset flushed', ['nft', 'flush', 'ruleset'], async () => {
        return (await published()) && (await c1Out());
      });
      // The foreign table went with the flush (that was the user's doing); the bridge stays.
      const l = await exec(w.hostNs, ['ip', 'link', 'show', 'xbr0']);
      assert.equal(l.code, 0, 'foreign bridge xbr0 still exists');

      // Single elements: the rest of the ruleset is intact, so only a per-element check sees it.
      assert.ok(await published(), 'published port works before the damage');
      await restore(
        'published-port element deleted',
        ['nft', 'delete element inet cnm pm4any { tcp . 8080 }'],
        () => published(),
      );
      const v1 = await veth();
      const mac = JSON.parse(
        (await exec(c1.ns, ['ip', '-j', 'link', 'show', 'eth0'], { check: true })).stdout,
      )[0].address as string;
      // Without its ep_mac element ARP from c1's port is dropped as spoofed (its IP frames still
      // pass the ep_src4 fast path): restored means the element is back and traffic flows.
      const macBack = (): Promise<boolean> => setHas('bridge', 'ep_mac', `"${v1}" . ${mac}`);
      await restore(
        'anti-spoofing MAC element deleted',
        ['nft', `delete element bridge cnm ep_mac { "${v1}" . ${mac} }`],
        async () => (await macBack()) && (await c1Reachable()) && (await c2ToC1()),
      );
      // Without its ep_ports element the port is unchecked: nothing breaks, so look at the set.
      await restore(
        'anti-spoofing port element deleted',
        ['nft', `delete element bridge cnm ep_ports { "${v1}" }`],
        () => setHas('bridge', 'ep_ports', `"${v1}"`),
      );

      // Elements changed in place (same key, other value: the element count stays the same).
      const deadIp = ip1.replace(/\.\d+$/, '.250');
      await restore(
        'published-port element changed in place',
        [
          'nft',
          `delete element inet cnm pm4any { tcp . 8080 }; add element inet cnm pm4any { tcp . 8080 : ${deadIp} . 80 }`,
        ],
        async () => (await published()) && (await setHas('inet', 'pm4any', `${ip1} . 80`)),
      );
      await restore(
        'anti-spoofing MAC element changed in place',
        [
          'nft',
          `delete element bridge cnm ep_mac { "${v1}" . ${mac} }; add element bridge cnm ep_mac { "${v1}" . 02:00:00:00:00:01 }`,
        ],
        async () =>
          (await macBack()) &&
          !(await setHas('bridge', 'ep_mac', '02:00:00:00:00:01')) &&
          (await c1Reachable()) &&
          (await c2ToC1()),
      );

      // The policy table (inet cnm_policy): c1 (app=web) takes port 80 only from c2
      // (role=friend); the outside's published-port traffic to c1 is then dropped.
      for (const [id, labels] of [
        [c1.id, { app: 'web' }],
        [c2.id, { role: 'friend' }],
      ] as const) {
        const r = await a.post(`/cnm/containers/${id}/labels`, { Set: labels });
        assert.equal(r.status, 204, r.text);
      }
      const pol = await a.post('/cnm/policies', {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'web-from-friend' },
        spec: {
          podSelector: { matchLabels: { app: 'web' } },
          ingress: [
            { from: [{ podSelector: { matchLabels: { role: 'friend' } } }], ports: [{ port: 80 }] },
          ],
        },
      });
      assert.equal(pol.status, 200, pol.text);
      const enforced = async (): Promise<boolean> => (await c2ToC1()) && !(await published());
      await until('the policy to be enforced', enforced);
      // Intact tables with a policy in force compare equal element by element: no repair is
      // logged while nothing is damaged (a text mismatch would re-load every second).
      const repairsLogged = async (): Promise<string[]> =>
        (await readFile(w.logFile, 'utf8')).split('\n').filter((l) => l.includes('Drift repaired'));
      const quietFrom = (await repairsLogged()).length;
      await new Promise((r) => setTimeout(r, 2500));
      assert.deepEqual((await repairsLogged()).slice(quietFrom), [], 'no repair of intact tables');
      await restore(
        'policy table flushed',
        ['nft', 'flush', 'table', 'inet', 'cnm_policy'],
        async () => (await setHas('inet', 'in_iso4', ip1, 'cnm_policy')) && (await enforced()),
      );
      await restore(
        'policy element deleted',
        ['nft', `delete element inet cnm_policy in_port4 { ${ip1} . ${c2.ip['d1']!} . tcp . 80 }`],
        () => enforced(),
      );
      await restore(
        'policy table deleted',
        ['nft', 'delete', 'table', 'inet', 'cnm_policy'],
        async () => (await setHas('inet', 'in_iso4', ip1, 'cnm_policy')) && (await enforced()),
      );
      const policyRepairs = (await repairsLogged()).filter((l) => /policy table re-loaded/.test(l));
      assert.ok(policyRepairs.length >= 3, `policy repairs logged:\n${policyRepairs.join('\n')}`);
      const unpol = await a.delete('/cnm/policies/default/web-from-friend');
      assert.equal(unpol.status, 204, unpol.text);
      await until('the published port to work without the policy', published);

      const { problems } = await checkConsistency(w, a, { servePort: 80 });
      assert.deepEqual(problems, [], problems.join('\n'));

      // macvlan: a child of a parent in the host ns (a veth whose peer plays a LAN host in a
      // netns of its own); someone deletes the container's interface inside its sandbox.
      const lan = `${w.name}-lan`;
      const lanNs = `/run/netns/${lan}`;
      await run('ip', ['netns', 'add', lan], { check: true });
      for (const args of [
        ['-n', lan, 'link', 'set', 'lo', 'up'],
        [
          '-n',
          w.hostNsName,
          'link',
          'add',
          'mlan0',
          'type',
          'veth',
          'peer',
          'name',
          'lan0',
          'netns',
          lan,
        ],
        ['-n', w.hostNsName, 'link', 'set', 'mlan0', 'up'],
        ['-n', lan, 'addr', 'add', '192.168.77.1/24', 'dev', 'lan0'],
        ['-n', lan, 'link', 'set', 'lan0', 'up'],
      ]) {
        await run('ip', args, { check: true });
      }
      await createNetwork(a, {
        Name: 'mv',
        Driver: 'macvlan',
        Options: { parent: 'mlan0', 'io.cnm.sysctl.net.ipv4.conf.IFNAME.arp_notify': '1' },
        IPAM: { Config: [{ Subnet: '192.168.77.0/24', Gateway: '192.168.77.1' }] },
      });
      const m1 = served(
        await runContainer(a, { Name: 'm1', Cmd: tinyServerCmd(80), Networks: [{ Name: 'mv' }] }),
      );
      const mIp = m1.ip['mv']!;
      const lanToM1 = () => tcpConnect(lanNs, mIp, 80, 300);
      await until('m1 to listen', lanToM1);
      await restore(
        'macvlan interface deleted',
        ['ip', 'link', 'del', 'eth0'],
        async () =>
          (await lanToM1()) &&
          (await exec(m1.ns, ['cat', '/proc/sys/net/ipv4/conf/eth0/arp_notify'])).stdout.trim() ===
            '1',
        m1.ns,
      );
      t.diagnostic(`drift figures: ${figures.join('; ')}`);
    }),
);
