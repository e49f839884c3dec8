/**
 * Overlay networks on a real 3-member etcd cluster: losing one member (the leader) changes
 * nothing. Three hosts (worlds, each running cnmd) and three etcd members, each member in its
 * own netns, all on one underlay "switch" netns with a bridge. etcd is bootstrapped statically
 * (`--initial-cluster`), started and stopped here by PID.
 *
 * ```
 *   etcd e1 ns (198.51.100.1) --\                /-- host 1 ns (cnmd, ul0 198.51.100.11)
 *   etcd e2 ns (198.51.100.2) ----[ sw ns: br0 ]---- host 2 ns (cnmd, ul0 198.51.100.12)
 *   etcd e3 ns (198.51.100.3) --/                \-- host 3 ns (cnmd, ul0 198.51.100.13)
 * ```
 *
 * Every netns is named `<host 1's world>-…` and the data dirs live in host 1's world dir, so
 * that world's teardown (and `scripts/sweep.ts` after a crash) removes them too.
 *
 * Needs root and etcd (Debian package `etcd-server`); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
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
  type ApiClient,
  type Daemon,
  type World,
} from './harness.js';
import { execIn, runContainer, runServer, served, until, type Served } from './workload.js';

const ETCD = '/usr/bin/etcd';
const MEMBERS = 3;
const memberIp = (i: number): string => `198.51.100.${1 + i}`;
const hostIp = (i: number): string => `198.51.100.${11 + i}`;
const clientUrl = (i: number): string => `http://${memberIp(i)}:2379`;
const peerUrl = (i: number): string => `http://${memberIp(i)}:2380`;
const LEASE_TTL_S = 10;

const skip = skipUnlessRoot() || (existsSync(ETCD) ? false : `needs ${ETCD} (etcd-server)`);

/** etcd PIDs still running, killed synchronously if the test process exits early. */
const livePids = new Set<number>();
process.on('exit', () => {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

interface EtcdCluster {
  hosts: World[];
  daemons: Daemon[];
  /** Starts member `i` (again: same data dir, it rejoins). */
  start(i: number): Promise<void>;
  /** Stops member `i` by PID (SIGTERM, or `signal`) and waits for it to exit. */
  stop(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Index of the current leader, asked of a running member. */
  leader(): Promise<number>;
  /** Waits until member `i` answers `/health` as healthy. */
  healthy(i: number): Promise<void>;
}

/** Builds the hosts, the etcd members and the underlay, runs `fn`, always tears down. */
async function withEtcdCluster(
  t: TestContext,
  n: number,
  fn: (c: EtcdCluster) => Promise<void>,
): Promise<void> {
  const hosts: World[] = [];
  const daemons: Daemon[] = [];
  const procs: (ChildProcess | undefined)[] = [];
  let prefix = '';
  let dataRoot = '';
  const nsOf = (i: number): string => `${prefix}-e${i + 1}`;
  const members = Array.from({ length: MEMBERS }, (_, i) => `e${i + 1}=${peerUrl(i)}`).join(',');
  const c: EtcdCluster = {
    hosts,
    daemons,
    start: async (i) => {
      const p = spawn(
        'nsenter',
        [
          `--net=/run/netns/${nsOf(i)}`,
          '--',
          ETCD,
          `--name=e${i + 1}`,
          `--data-dir=${path.join(dataRoot, `e${i + 1}`)}`,
          `--listen-client-urls=${clientUrl(i)}`,
          `--advertise-client-urls=${clientUrl(i)}`,
          `--listen-peer-urls=${peerUrl(i)}`,
          `--initial-advertise-peer-urls=${peerUrl(i)}`,
          `--initial-cluster=${members}`,
          '--initial-cluster-state=new',
          '--initial-cluster-token=cnmt',
        ],
        { stdio: 'ignore' },
      );
      // nsenter execs etcd: this PID is etcd's.
      if (p.pid) livePids.add(p.pid);
      p.once('exit', () => p.pid && livePids.delete(p.pid));
      procs[i] = p;
    },
    stop: async (i, signal = 'SIGTERM') => {
      const p = procs[i];
      procs[i] = undefined;
      if (!p?.pid || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      process.kill(p.pid, signal);
      const timer = setTimeout(() => p.pid && process.kill(p.pid, 'SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    },
    leader: async () => {
      // Each running member's own id and the leader's id it reports.
      const ids = new Map<string, number>();
      let leader: string | undefined;
      for (let i = 0; i < MEMBERS; i++) {
        if (!procs[i]) continue;
        const r = await exec(hosts[0]!.hostNs, [
          'curl',
          '-sf',
          '-m',
          '2',
          '-X',
          'POST',
          '-d',
          '{}',
          `${clientUrl(i)}/v3/maintenance/status`,
        ]);
        if (r.code !== 0) continue;
        const st = JSON.parse(r.stdout) as { header: { member_id: string }; leader: string };
        ids.set(st.header.member_id, i);
        leader ??= st.leader;
      }
      const i = leader === undefined ? undefined : ids.get(leader);
      if (i === undefined) throw new Error('No running etcd member reports a leader');
      return i;
    },
    healthy: async (i) => {
      await until(
        `etcd e${i + 1} healthy`,
        async () => {
          try {
            const r = await httpGet(hosts[0]!.hostNs, `${clientUrl(i)}/health`, 2000);
            return r.status === 200 && r.json?.health === 'true';
          } catch {
            return false;
          }
        },
        20_000,
      );
    },
  };
  try {
    for (let i = 0; i < n; i++) {
      hosts.push(await createWorld({ name: `${t.name} h${i + 1}`, noServers: true }));
    }
    prefix = hosts[0]!.name;
    dataRoot = path.join(hosts[0]!.dir, 'etcd');
    await mkdir(dataRoot, { recursive: true });
    const sw = `${prefix}-sw`;
    await run('ip', ['netns', 'add', sw], { check: true });
    const s = ['-n', sw];
    for (const args of [
      [...s, 'link', 'set', 'lo', 'up'],
      [...s, 'link', 'add', 'br0', 'type', 'bridge'],
      [...s, 'link', 'set', 'br0', 'up'],
    ]) {
      await run('ip', args, { check: true });
    }
    // Each link is made inside its namespace with the peer sent straight to the switch.
    const attach = async (ns: string, ip: string, port: string): Promise<void> => {
      const h = ['-n', ns];
      for (const args of [
        [...h, 'link', 'set', 'lo', 'up'],
        [...h, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', port, 'netns', sw],
        [...h, 'addr', 'add', `${ip}/24`, 'dev', 'ul0'],
        [...h, 'link', 'set', 'ul0', 'up'],
        [...s, 'link', 'set', port, 'master', 'br0', 'up'],
      ]) {
        await run('ip', args, { check: true });
      }
    };
    for (let i = 0; i < MEMBERS; i++) {
      await run('ip', ['netns', 'add', nsOf(i)], { check: true });
      await attach(nsOf(i), memberIp(i), `e${i + 1}`);
    }
    for (const [i, w] of hosts.entries()) await attach(w.hostNsName, hostIp(i), `h${i + 1}`);
    for (let i = 0; i < MEMBERS; i++) await c.start(i);
    for (let i = 0; i < MEMBERS; i++) await c.healthy(i);
    const store = `etcd://${Array.from({ length: MEMBERS }, (_, i) => `${memberIp(i)}:2379`).join(',')}`;
    daemons.push(
      ...(await Promise.all(
        hosts.map((w, i) =>
          startDaemon(w, ['--cluster-store', store, '--advertise-addr', hostIp(i)]),
        ),
      )),
    );
    await fn(c);
  } catch (err) {
    for (const d of daemons) t.diagnostic(`cnmd log tail:\n${await d.logTail(40)}`);
    throw err;
  } finally {
    const errors: unknown[] = [];
    for (let i = 0; i < MEMBERS; i++) await c.stop(i).catch((e: unknown) => errors.push(e));
    for (const w of hosts) await destroyWorld(w).catch((e: unknown) => errors.push(e));
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

/** Whether `w` has programmed an FDB entry for every other host's VTEP in `vteps`. */
async function seesAll(w: World, vteps: string[]): Promise<boolean> {
  const entries = await fdb(w);
  return vteps.every((v) => entries.some((l) => l.endsWith(` ${v}`)));
}

async function getOk(from: Served, ip: string): Promise<void> {
  const r = await httpGet(from.ns, `http://${ip}/`, 4000);
  assert.equal(r.status, 200);
}

async function resolves(w: World, from: Served, name: string, ip: string): Promise<boolean> {
  const r = await execIn(w, from.id, ['getent', 'ahostsv4', name]);
  return r.stdout.split(/\s/)[0] === ip;
}

test(
  'overlay on a 3-member etcd cluster: losing one member changes nothing',
  { skip, timeout: 90_000 },
  (t) =>
    withEtcdCluster(t, 3, async (c) => {
      const { hosts } = c;
      const [w1, w2] = hosts as [World, World, World];
      const apis = hosts.map((w) => api(w));
      const [a1, a2, a3] = apis as [ApiClient, ApiClient, ApiClient];
      const others = (i: number): string[] => [0, 1, 2].filter((j) => j !== i).map(hostIp);

      // Before: a network from host 1, one container per host, traffic across all of them.
      const mk = await a1.post('/networks/create', { Name: 'ov', Driver: 'overlay' });
      assert.equal(mk.status, 201, mk.text);
      await until('ov everywhere', async () => {
        for (const a of [a2, a3]) if ((await a.get('/networks/ov')).status !== 200) return false;
        return true;
      });
      const s = [
        await runServer(a1, 'c1', ['ov']),
        await runServer(a2, 'c2', ['ov']),
        await runServer(a3, 'c3', ['ov']),
      ] as [Served, Served, Served];
      for (const [i, w] of hosts.entries()) {
        await until(`host ${i + 1} sees the others`, () => seesAll(w, others(i)));
      }
      await getOk(s[0], s[1].ip['ov']!);
      await getOk(s[1], s[2].ip['ov']!);
      await getOk(s[2], s[0].ip['ov']!);

      // IPv6 on an overlay: every host programs a permanent NDP entry for the remote containers
      // on its VXLAN device (answered there, like ARP), and they talk over IPv6.
      const mk6 = await a1.post('/networks/create', {
        Name: 'ov6',
        Driver: 'overlay',
        EnableIPv6: true,
        IPAM: { Config: [{ Subnet: '10.97.0.0/24' }, { Subnet: 'fd97::/64' }] },
      });
      assert.equal(mk6.status, 201, mk6.text);
      const v1 = served(
        await runContainer(a1, {
          Name: 'v1',
          Cmd: ['/usr/bin/python3', '-m', 'http.server', '--bind', '::', '80'],
          Networks: [{ Name: 'ov6' }],
        }),
      );
      const v1ip6 = (await a1.get(`/cnm/containers/${v1.id}/json`)).body.NetworkSettings.Networks
        .ov6.GlobalIPv6Address as string;
      assert.match(v1ip6, /^fd97::/);
      // A dynamic IPv6 address on host 2: it first picks the same lowest free address as v1 on
      // host 1 (each host allocates from its own view), is told by the cluster that the address
      // is taken, and takes the next one.
      await until(
        'ov6 known on host 2',
        async () => (await a2.get('/networks/ov6')).status === 200,
      );
      const v2 = await runServer(a2, 'v2', [{ Name: 'ov6' }]);
      const v2ip6 = (await a2.get(`/cnm/containers/${v2.id}/json`)).body.NetworkSettings.Networks
        .ov6.GlobalIPv6Address as string;
      assert.match(v2ip6, /^fd97::/);
      assert.notEqual(v2ip6, v1ip6);
      await until('NDP entry for v1 on host 2', async () => {
        const r = await exec(w2.hostNs, ['ip', '-6', 'neigh', 'show', 'nud', 'permanent']);
        return r.stdout.split('\n').some((l) => l.startsWith(`${v1ip6} dev cnmvx`));
      });
      await until('v1 over IPv6 from host 2', async () => {
        try {
          return (await httpGet(v2.ns, `http://[${v1ip6}]/`, 2000)).status === 200;
        } catch {
          return false;
        }
      });

      // The leader dies (SIGKILL: no graceful leadership transfer; the others must notice and
      // elect a new leader).
      const gone = await c.leader();
      t.diagnostic(`killing etcd e${gone + 1} (the leader)`);
      await c.stop(gone, 'SIGKILL');
      const stopped = Date.now();

      // Changes keep working: a network from host 2, containers on hosts 2 and 3.
      const mk2 = await a2.post('/networks/create', { Name: 'ov2', Driver: 'overlay' });
      assert.equal(mk2.status, 201, mk2.text);
      t.diagnostic(`first write after the stop: ${Date.now() - stopped} ms`);
      await until('ov2 on hosts 1 and 3', async () => {
        for (const a of [a1, a3]) if ((await a.get('/networks/ov2')).status !== 200) return false;
        return true;
      });
      const d2 = await runServer(a2, 'd2', ['ov2']);
      const d3 = await runServer(a3, 'd3', ['ov2']);
      assert.notEqual(d2.ip['ov2'], d3.ip['ov2']);
      // Cross-host traffic, old and new, by IP and by name.
      await getOk(s[0], s[1].ip['ov']!);
      await getOk(s[1], s[0].ip['ov']!);
      await until('d3 reachable from host 2', async () => {
        try {
          await getOk(d2, d3.ip['ov2']!);
          return true;
        } catch {
          return false;
        }
      });
      await getOk(d3, d2.ip['ov2']!);
      await until('d3 resolves on host 2', () => resolves(w2, d2, 'd3', d3.ip['ov2']!));

      // Past the lease TTL: every host's lease was kept alive through the remaining members,
      // so nobody withdrew anybody.
      await new Promise((r) => setTimeout(r, (LEASE_TTL_S + 2) * 1000));
      for (const [i, w] of hosts.entries()) {
        assert.ok(await seesAll(w, others(i)), `host ${i + 1} still sees every other host`);
      }
      await getOk(s[2], s[0].ip['ov']!);
      await getOk(s[0], s[2].ip['ov']!);
      assert.ok(await resolves(w1, s[0], 'c3', s[2].ip['ov']!), 'c3 still resolves on host 1');
      // A removal goes through too, and is withdrawn on the other hosts.
      const onH3 = async (): Promise<number> =>
        (await fdb(w2)).filter((l) => l.endsWith(` ${hostIp(2)}`)).length;
      const before = await onH3();
      assert.equal((await a3.delete('/cnm/containers/d3?force=1')).status, 204);
      await until('d3 withdrawn on host 2', async () => (await onH3()) === before - 1);

      // The member comes back and rejoins; then another one stops, and still nothing changes
      // (which needs the restarted member: two of three must be up).
      await c.start(gone);
      await c.healthy(gone);
      const next = (gone + 1) % MEMBERS;
      t.diagnostic(`restarted e${gone + 1}; stopping e${next + 1}`);
      await c.stop(next);
      const mk3 = await a3.post('/networks/create', { Name: 'ov3', Driver: 'overlay' });
      assert.equal(mk3.status, 201, mk3.text);
      // Other hosts learn the network through their etcd watch, which may be reconnecting to
      // another member right now: wait for it rather than race it.
      await until(
        'ov3 known on host 1',
        async () => (await a1.get('/networks/ov3')).status === 200,
      );
      const f1 = await runServer(a1, 'f1', ['ov3']);
      const f3 = await runServer(a3, 'f3', ['ov3']);
      await until('f1 reachable from host 3', async () => {
        try {
          await getOk(f3, f1.ip['ov3']!);
          return true;
        } catch {
          return false;
        }
      });
      await until('f3 resolves on host 1', () => resolves(w1, f1, 'f3', f3.ip['ov3']!));
      await getOk(s[1], s[2].ip['ov']!);
      await c.start(next);
      await c.healthy(next);
    }),
);
