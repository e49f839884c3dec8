/**
 * A multi-host overlay world for tests and benchmarks: `n` hosts, each a harness world (host
 * netns running its own cnmd), on an underlay "switch" netns with a Linux bridge, and one etcd
 * member on that bridge (198.51.100.1:2379), started and stopped here by PID.
 *
 * ```
 *   host 1 ns (cnmd, ul0 198.51.100.11) --\
 *   host 2 ns (cnmd, ul0 198.51.100.12) ----[ sw ns: br0 198.51.100.1, etcd ]
 *   …                                   --/
 * ```
 *
 * The switch netns is named after host 1's world (`<world>-sw`) and etcd's data dir lives in
 * host 1's world dir, so that world's teardown (and `scripts/sweep.ts` after a crash) removes
 * them too. Nothing is done in the root netns.
 *
 * Needs root and etcd (Debian package `etcd-server`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  createWorld,
  destroyWorld,
  exec,
  run,
  startDaemon,
  type Daemon,
  type World,
} from './harness.js';

/** Debian's etcd binary (package `etcd-server`). */
export const ETCD = '/usr/bin/etcd';
/** etcd's address on the underlay (the switch's bridge). */
export const ETCD_IP = '198.51.100.1';
/** Underlay address of host `i` (0-based). */
export const hostIp = (i: number): string => `198.51.100.${11 + i}`;

/** Why a cluster cannot be built here, or `false`. */
export function skipUnlessEtcd(): string | false {
  return existsSync(ETCD) ? false : `needs ${ETCD} (etcd-server)`;
}

/** etcd PIDs still running, killed synchronously if the process exits early. */
const livePids = new Set<number>();
process.on('exit', () => {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

/** Options of {@link createOverlayCluster}. */
export interface OverlayClusterOptions {
  /** Label of the worlds (`<label> h1`, …). */
  label: string;
  hosts: number;
  /**
   * IGMP/MLD snooping on the underlay bridge (the kernel's default is on). Off, the bridge
   * floods multicast like broadcast; on, it forwards a group only to ports that joined it.
   */
  mcastSnooping?: boolean;
  /** Start the outside servers in host 1's world (HTTP, echo, DNS). Default false. */
  outsideServers?: boolean;
  /** Extra cnmd flags (after the cluster flags). */
  daemonArgs?: string[];
  /** Do not start cnmd on the hosts (the caller starts them). */
  noDaemons?: boolean;
}

/** A built cluster; {@link OverlayCluster.destroy} removes everything. */
export interface OverlayCluster {
  hosts: World[];
  daemons: Daemon[];
  /** Switch netns name (for `ip -n`) and path (for `nsenter --net`). */
  swName: string;
  sw: string;
  /** `etcd://198.51.100.1:2379`, for `--cluster-store`. */
  storeUrl: string;
  /** etcd's client URL, `http://198.51.100.1:2379`. */
  etcdUrl: string;
  /** PID of the running etcd, or undefined. */
  etcdPid(): number | undefined;
  /** Starts cnmd on host `i` with the cluster flags. */
  startDaemon(i: number, extraArgs?: string[]): Promise<Daemon>;
  startEtcd(): Promise<void>;
  /** Stops etcd by PID (SIGTERM) and waits for it. */
  stopEtcd(): Promise<void>;
  /** Attaches netns `nsName` to the switch with `ip`/24 on its `ul0`. */
  attach(nsName: string, ip: string, port: string): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Builds the cluster: worlds, switch, underlay links, etcd (waits until it answers), and cnmd
 * on every host unless `noDaemons`. On failure, whatever was built is removed.
 *
 * @throws when a step fails
 */
export async function createOverlayCluster(opts: OverlayClusterOptions): Promise<OverlayCluster> {
  const hosts: World[] = [];
  const daemons: Daemon[] = [];
  let etcd: ChildProcess | undefined;
  let dataDir = '';
  const c: OverlayCluster = {
    hosts,
    daemons,
    swName: '',
    sw: '',
    storeUrl: `etcd://${ETCD_IP}:2379`,
    etcdUrl: `http://${ETCD_IP}:2379`,
    etcdPid: () => (etcd && etcd.exitCode === null ? etcd.pid : undefined),
    startDaemon: async (i, extraArgs = []) => {
      const d = await startDaemon(hosts[i]!, [
        '--cluster-store',
        c.storeUrl,
        '--advertise-addr',
        hostIp(i),
        ...(opts.daemonArgs ?? []),
        ...extraArgs,
      ]);
      daemons[i] = d;
      return d;
    },
    startEtcd: async () => {
      const url = c.etcdUrl;
      const peer = `http://${ETCD_IP}:2380`;
      const p = spawn(
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
          // Prometheus metrics on the client URL (/metrics), read by the benchmarks.
          '--metrics=basic',
        ],
        { stdio: 'ignore' },
      );
      // nsenter execs etcd: this PID is etcd's.
      if (p.pid) livePids.add(p.pid);
      p.once('exit', () => p.pid && livePids.delete(p.pid));
      etcd = p;
      const deadline = Date.now() + 20_000;
      for (;;) {
        const r = await exec(c.sw, ['curl', '-sf', '-m', '1', `${url}/health`]);
        if (r.code === 0 && r.stdout.includes('true')) return;
        if (p.exitCode !== null) throw new Error(`etcd exited (code ${p.exitCode})`);
        if (Date.now() > deadline) throw new Error('etcd did not become healthy within 20 s');
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stopEtcd: async () => {
      const p = etcd;
      etcd = undefined;
      if (!p?.pid || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      process.kill(p.pid, 'SIGTERM');
      const timer = setTimeout(() => p.pid && process.kill(p.pid, 'SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    },
    attach: async (nsName, ip, port) => {
      const h = ['-n', nsName];
      const s = ['-n', c.swName];
      for (const args of [
        [...h, 'link', 'set', 'lo', 'up'],
        [...h, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', port, 'netns', c.swName],
        [...h, 'addr', 'add', `${ip}/24`, 'dev', 'ul0'],
        [...h, 'link', 'set', 'ul0', 'up'],
        [...s, 'link', 'set', port, 'master', 'br0', 'up'],
      ]) {
        await run('ip', args, { check: true });
      }
    },
    destroy: async () => {
      const errors: unknown[] = [];
      await c.stopEtcd().catch((e: unknown) => errors.push(e));
      for (const w of hosts) await destroyWorld(w).catch((e: unknown) => errors.push(e));
      if (errors.length > 0) throw new AggregateError(errors, 'Cluster teardown failed');
    },
  };
  try {
    for (let i = 0; i < opts.hosts; i++) {
      hosts.push(
        await createWorld({
          name: `${opts.label} h${i + 1}`,
          noServers: !(opts.outsideServers === true && i === 0),
        }),
      );
    }
    c.swName = `${hosts[0]!.name}-sw`;
    c.sw = `/run/netns/${c.swName}`;
    dataDir = path.join(hosts[0]!.dir, 'etcd');
    await mkdir(dataDir, { recursive: true });
    await run('ip', ['netns', 'add', c.swName], { check: true });
    const s = ['-n', c.swName];
    const snoop = opts.mcastSnooping === false ? ['mcast_snooping', '0'] : [];
    for (const args of [
      [...s, 'link', 'set', 'lo', 'up'],
      [...s, 'link', 'add', 'br0', 'type', 'bridge', ...snoop],
      [...s, 'addr', 'add', `${ETCD_IP}/24`, 'dev', 'br0'],
      [...s, 'link', 'set', 'br0', 'up'],
    ]) {
      await run('ip', args, { check: true });
    }
    for (const [i, w] of hosts.entries()) await c.attach(w.hostNsName, hostIp(i), `ul${i}`);
    await c.startEtcd();
    if (!opts.noDaemons) {
      // One after another: ten cnmd starting at once on a loaded 2-CPU machine can miss the
      // harness's 15 s start deadline.
      for (let i = 0; i < hosts.length; i++) await c.startDaemon(i);
    }
  } catch (err) {
    await c.destroy().catch(() => undefined);
    throw err;
  }
  return c;
}

/** The VXLAN FDB lines on a host's overlay devices (`bridge fdb show`, devices `cnmvx*`). */
export async function overlayFdb(w: World): Promise<string[]> {
  const r = await exec(w.hostNs, ['bridge', 'fdb', 'show'], { check: true });
  return r.stdout.split('\n').filter((l) => /dev cnmvx/.test(l));
}
