/**
 * Multi-host overlay networks: several hosts, each a world (host netns running its own cnmd),
 * joined by an underlay: a "switch" netns with a bridge, one veth per host. etcd runs in the
 * switch netns on the underlay (198.51.100.1:2379), started and stopped here by PID.
 *
 * ```
 *   host 1 ns (cnmd, ul0 198.51.100.11) --\
 *   host 2 ns (cnmd, ul0 198.51.100.12) ----[ sw ns: br0 198.51.100.1, etcd ]
 *   host 3 ns (cnmd, ul0 198.51.100.13) --/
 * ```
 *
 * Needs root and etcd (Debian package `etcd-server`); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  api,
  createWorld,
  destroyWorld,
  exec,
  httpGet,
  run,
  skipUnlessRoot,
  startDaemon,
  type Daemon,
  type World,
} from './harness.js';
import { createNetwork, execIn, runServer, until, type Served } from './workload.js';

const ETCD = '/usr/bin/etcd';
const ETCD_IP = '198.51.100.1';
const hostIp = (i: number): string => `198.51.100.${11 + i}`;
const LEASE_TTL_S = 10;

const skip = skipUnlessRoot() || (existsSync(ETCD) ? false : `needs ${ETCD} (etcd-server)`);

interface Cluster {
  hosts: World[];
  daemons: Daemon[];
  /** Switch netns path. */
  sw: string;
  startEtcd(): Promise<void>;
  stopEtcd(): Promise<void>;
}

/** Builds `n` hosts on an underlay with etcd, runs `fn`, and always tears everything down. */
async function withCluster(
  t: TestContext,
  n: number,
  fn: (c: Cluster) => Promise<void>,
): Promise<void> {
  const hosts: World[] = [];
  const daemons: Daemon[] = [];
  let etcd: ChildProcess | undefined;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cnmt-etcd-'));
  const c: Cluster = {
    hosts,
    daemons,
    sw: '',
    startEtcd: async () => {
      const url = `http://${ETCD_IP}:2379`;
      const peer = `http://${ETCD_IP}:2380`;
      etcd = spawn(
        'nsenter',
        [
          `--net=${c.sw}`,
          '--',
          ETCD,
          '--name=sw',
          `--data-dir=${dataDir}`,
          `--listen-client-urls=${url}`,
          `--advertise-client-urls=${url}`,
          `--listen-peer-urls=${peer}`,
          `--initial-advertise-peer-urls=${peer}`,
          `--initial-cluster=sw=${peer}`,
        ],
        { stdio: 'ignore' },
      );
    },
    stopEtcd: async () => {
      const p = etcd;
      etcd = undefined;
      if (!p?.pid || p.exitCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      process.kill(p.pid, 'SIGTERM');
      await gone;
    },
  };
  try {
    for (let i = 0; i < n; i++) {
      hosts.push(await createWorld({ name: `${t.name} h${i + 1}`, noServers: i > 0 }));
    }
    // Named after host 1's world, so its teardown (and the sweeper) owns it too.
    const swName = `${hosts[0]!.name}-sw`;
    c.sw = `/run/netns/${swName}`;
    await run('ip', ['netns', 'add', swName], { check: true });
    const s = ['-n', swName];
    for (const args of [
      [...s, 'link', 'set', 'lo', 'up'],
      [...s, 'link', 'add', 'br0', 'type', 'bridge'],
      [...s, 'addr', 'add', `${ETCD_IP}/24`, 'dev', 'br0'],
      [...s, 'link', 'set', 'br0', 'up'],
    ]) {
      await run('ip', args, { check: true });
    }
    for (const [i, w] of hosts.entries()) {
      const h = ['-n', w.hostNsName];
      for (const args of [
        [...h, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', `ul${i}`, 'netns', swName],
        [...h, 'addr', 'add', `${hostIp(i)}/24`, 'dev', 'ul0'],
        [...h, 'link', 'set', 'ul0', 'up'],
        [...s, 'link', 'set', `ul${i}`, 'master', 'br0', 'up'],
      ]) {
        await run('ip', args, { check: true });
      }
    }
    await c.startEtcd();
    daemons.push(
      ...(await Promise.all(
        hosts.map((w, i) =>
          startDaemon(w, [
            '--cluster-store',
            `etcd://${ETCD_IP}:2379`,
            '--advertise-addr',
            hostIp(i),
          ]),
        ),
      )),
    );
    await fn(c);
  } catch (err) {
    for (const d of daemons) t.diagnostic(`cnmd log tail:\n${await d.logTail(40)}`);
    throw err;
  } finally {
    await c.stopEtcd();
    const errors: unknown[] = [];
    for (const w of hosts) await destroyWorld(w).catch((e: unknown) => errors.push(e));
    await rm(dataDir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, 'Cluster teardown failed');
  }
}

/** The VXLAN FDB entries (`MAC dst VTEP`) on a host's overlay devices. */
async function fdb(w: World): Promise<string[]> {
  const r = await exec(w.hostNs, ['bridge', 'fdb', 'show'], { check: true });
  return r.stdout
    .split('\n')
    .filter((l) => /dev cnmvx/.test(l) && / dst /.test(l))
    .map((l) => {
      const m = /^(\S+) .* dst (\S+)/.exec(l);
      return m ? `${m[1]} ${m[2]}` : l;
    });
}

async function getOk(from: Served, ip: string): Promise<unknown> {
  const r = await httpGet(from.ns, `http://${ip}/`, 4000);
  assert.equal(r.status, 200);
  return r.json;
}

test(
  'overlay: containers on two hosts talk over VXLAN; etcd down keeps the data plane',
  { skip, timeout: 90_000 },
  (t) =>
    withCluster(t, 2, async ({ hosts, daemons, startEtcd, stopEtcd }) => {
      const [w1, w2] = hosts as [World, World];
      const [a1, a2] = [api(w1), api(w2)];
      const id = await createNetwork(a1, { Name: 'ov', Driver: 'overlay', Attachable: true });
      const n1 = (await a1.get(`/networks/${id}`)).body;
      assert.equal(n1.Scope, 'global');
      assert.equal(n1.Driver, 'overlay');
      const vni = n1.Options['com.docker.network.driver.overlay.vxlanid_list'];
      assert.match(vni, /^\d+$/);
      // Host 2 learns the network from the cluster store.
      await until('network on host 2', async () => (await a2.get('/networks/ov')).status === 200);
      const n2 = (await a2.get('/networks/ov')).body;
      assert.equal(n2.Id, id);
      assert.deepEqual(n2.IPAM.Config, n1.IPAM.Config);
      const vx = (await exec(w2.hostNs, ['ip', '-d', 'link', 'show', `cnmvx${id.slice(0, 10)}`]))
        .stdout;
      assert.match(vx, new RegExp(`vxlan id ${vni} local ${hostIp(1)} dev ul0 .*dstport 4789`));
      assert.match(vx, /nolearning/);
      assert.match(vx, /proxy/);
      assert.match(vx, /mtu 1450/);

      const s1 = await runServer(a1, 'web1', ['ov']);
      const s2 = await runServer(a2, 'web2', ['ov']);
      assert.notEqual(s1.ip['ov'], s2.ip['ov'], 'addresses are unique cluster-wide');
      // `ip` asks the kernel in the sandbox (sysfs under nsenter --net is still the root ns's).
      const link = await exec(s2.ns, ['ip', '-o', 'link', 'show', 'eth0'], { check: true });
      assert.match(link.stdout, / mtu 1450 /, 'underlay MTU 1500 minus VXLAN 50');
      // Each host has a static FDB entry for the other's container, pointing at its VTEP.
      await until('FDB on host 2', async () =>
        (await fdb(w2)).some((l) => l.endsWith(` ${hostIp(0)}`)),
      );
      await until('FDB on host 1', async () =>
        (await fdb(w1)).some((l) => l.endsWith(` ${hostIp(1)}`)),
      );
      const seen = (await getOk(s2, s1.ip['ov']!)) as { client: string };
      assert.equal(seen.client, s2.ip['ov'], 'L2 across hosts: no NAT between containers');
      await getOk(s1, s2.ip['ov']!);
      // Egress through the container's own host (host 1 has the outside server).
      const out = await httpGet(s1.ns, w1.outsideUrl, 4000);
      assert.equal(out.json.client, w1.hostUplinkIp);
      // By name: each host's embedded DNS serves the overlay's names cluster-wide.
      await until('web1 resolves on host 2', async () => {
        const r = await execIn(w2, s2.id, ['getent', 'ahostsv4', 'web1']);
        return r.stdout.split(/\s/)[0] === s1.ip['ov'];
      });
      const r = await execIn(w1, s1.id, ['getent', 'ahostsv4', 'web2']);
      assert.equal(r.stdout.split(/\s/)[0], s2.ip['ov'], r.stdout + r.stderr);

      // Drift repair: a deleted VXLAN device comes back with its FDB entries, traffic flows.
      const vxName = `cnmvx${id.slice(0, 10)}`;
      await exec(w1.hostNs, ['ip', 'link', 'del', vxName], { check: true });
      await until('the VXLAN device and its FDB entries back on host 1', async () =>
        (await fdb(w1)).some((l) => l.endsWith(` ${hostIp(1)}`)),
      );
      await getOk(s2, s1.ip['ov']!);
      await getOk(s1, s2.ip['ov']!);

      // etcd down: running containers keep talking, changes are refused with 503.
      await stopEtcd();
      await getOk(s2, s1.ip['ov']!);
      await getOk(s1, s2.ip['ov']!);
      const refused = await a1.post('/networks/create', { Name: 'ov2', Driver: 'overlay' });
      assert.equal(refused.status, 503, refused.text);
      assert.match(refused.body.message, /cluster store/);
      // Back: the lease survives a short outage (or is replaced), writes work again.
      await startEtcd();
      await until(
        'writes after etcd restart',
        async () =>
          (await a1.post('/networks/create', { Name: 'ov2', Driver: 'overlay' })).status === 201,
        20_000,
      );
      await getOk(s2, s1.ip['ov']!);
      await until('ov2 on host 2', async () => (await a2.get('/networks/ov2')).status === 200);

      // Removing a container withdraws it everywhere; a network in use elsewhere stays.
      const inUse = await a1.delete('/networks/ov');
      assert.equal(inUse.status, 403, inUse.text);
      assert.equal((await a2.delete(`/cnm/containers/web2?force=1`)).status, 204);
      await until('FDB withdrawn on host 1', async () =>
        (await fdb(w1)).every((l) => !l.endsWith(` ${hostIp(1)}`)),
      );
      assert.equal((await a1.delete(`/cnm/containers/web1?force=1`)).status, 204);
      assert.equal((await a1.delete('/networks/ov')).status, 204);
      assert.equal((await a2.delete('/networks/ov2')).status, 204);
      await until('networks gone on host 2', async () => {
        const ls = (await a2.get('/networks')).body as { Driver: string }[];
        return !ls.some((n) => n.Driver === 'overlay');
      });
      const links = (await exec(w2.hostNs, ['ip', '-br', 'link'], { check: true })).stdout;
      assert.doesNotMatch(links, /cnmvx|cnmov/);
      void daemons;
    }),
);

test(
  'overlay: concurrent creation never collides; a dead host is withdrawn and comes back',
  { skip, timeout: 90_000 },
  (t) =>
    withCluster(t, 3, async ({ hosts, daemons }) => {
      const apis = hosts.map((w) => api(w));
      // Three hosts create three networks at once: distinct VNIs and subnets.
      const made = await Promise.all(
        apis.map((a, i) => a.post('/networks/create', { Name: `race${i}`, Driver: 'overlay' })),
      );
      for (const r of made) assert.equal(r.status, 201, r.text);
      // Two hosts create the same name at once: one wins, one gets 409.
      const dup = await Promise.all(
        apis.slice(0, 2).map((a) => a.post('/networks/create', { Name: 'dup', Driver: 'overlay' })),
      );
      assert.deepEqual(dup.map((r) => r.status).sort(), [201, 409], dup.map((r) => r.text).join());
      // Two hosts asking for the same VNI: one wins.
      const opt = { 'com.docker.network.driver.overlay.vxlanid_list': '7777' };
      const sameVni = await Promise.all(
        apis
          .slice(1, 3)
          .map((a, i) =>
            a.post('/networks/create', { Name: `v${i}`, Driver: 'overlay', Options: opt }),
          ),
      );
      assert.deepEqual(sameVni.map((r) => r.status).sort(), [201, 409]);
      await until('all networks on host 1', async () => {
        const ls = (await apis[0]!.get('/networks')).body as { Driver: string }[];
        return ls.filter((n) => n.Driver === 'overlay').length === 5;
      });
      const nets = ((await apis[0]!.get('/networks')).body as any[]).filter(
        (n) => n.Driver === 'overlay',
      );
      const vnis = nets.map((n) => n.Options['com.docker.network.driver.overlay.vxlanid_list']);
      const subnets = nets.map((n) => n.IPAM.Config[0].Subnet);
      assert.equal(new Set(vnis).size, 5, `VNIs ${vnis.join()}`);
      assert.equal(new Set(subnets).size, 5, `subnets ${subnets.join()}`);

      // A container on host 3, reached from host 1.
      const [w1, , w3] = hosts as [World, World, World];
      const s1 = await runServer(apis[0]!, 'c1', ['race0']);
      await until(
        'race0 on host 3',
        async () => (await apis[2]!.get('/networks/race0')).status === 200,
      );
      const s3 = await runServer(apis[2]!, 'c3', ['race0']);
      await until('FDB for host 3 on host 1', async () =>
        (await fdb(w1)).some((l) => l.endsWith(` ${hostIp(2)}`)),
      );
      await getOk(s1, s3.ip['race0']!);

      // Host 3's daemon dies: its lease expires and host 1 withdraws its endpoints in time.
      await daemons[2]!.kill9();
      const killed = Date.now();
      await until(
        'host 3 withdrawn on host 1',
        async () => (await fdb(w1)).every((l) => !l.endsWith(` ${hostIp(2)}`)),
        (LEASE_TTL_S + 5) * 1000,
      );
      t.diagnostic(`withdrawn ${Date.now() - killed} ms after the kill (TTL ${LEASE_TTL_S} s)`);

      // It restarts: registers again, republishes its container, traffic flows again.
      await daemons[2]!.restart();
      await until('host 3 back on host 1', async () =>
        (await fdb(w1)).some((l) => l.endsWith(` ${hostIp(2)}`)),
      );
      await getOk(s1, s3.ip['race0']!);
      await getOk(s3, s1.ip['race0']!);
      void w3;
    }),
);
