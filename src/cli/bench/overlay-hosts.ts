/**
 * The overlay mode's own two-host cluster. An overlay path only crosses VXLAN between two
 * hosts, and one cnmd is one host: two containers on one daemon share its bridge and never
 * touch the VXLAN device. So `cnm bench --modes overlay` does not use the user's daemon for
 * this mode; it builds, beside it:
 *
 * ```
 *   netns cnmb-<pid>-oa (host A)                      netns cnmb-<pid>-ob (host B)
 *   u0 10.231.8.1/24  <------------- veth ------------->  u0 10.231.8.2/24
 *   etcd :2379, cnmd A (servers)                           cnmd B (client)
 * ```
 *
 * the same underlay as the ceiling's VXLAN path (two namespaces joined by a veth), with one
 * etcd member and two cnmd processes started from this installation (`dist/main/daemon.js`),
 * each with its own socket, data root and exec root in `/tmp/cnmb-<pid>-ov-XXXXXX`. The
 * servers run in containers on host A, the client in a container on host B, on one overlay
 * network made through host A's API.
 *
 * Everything is removed by {@link OverlayHosts.destroy}: containers and networks through the
 * APIs, then cnmd (SIGTERM, then SIGKILL) and etcd by PID, any process left in the two
 * namespaces by PID, mounts under the temp dir, the namespaces and the dir. `npm run sweep`
 * finds the `cnmb-<pid>-` names after a crash.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../client.js';
import { CnmPaths, ModeSkipped } from './cnm-paths.js';
import type { MeasuredPath } from './path.js';
import { pause } from './path.js';
import { mustRun, runProc, startBackground, type BackgroundProc } from './proc.js';

/** Debian's etcd (package `etcd-server`). */
export const ETCD_BIN = '/usr/bin/etcd';
const NETNS_DIR = '/run/netns';
const UNDERLAY = ['10.231.8.1', '10.231.8.2'] as const;

/** The daemon next to this CLI (`dist/main/daemon.js` when the CLI is `dist/main/cli.js`). */
export function daemonEntry(): string {
  return fileURLToPath(new URL('../../main/daemon.js', import.meta.url));
}

/** Builds, measures through and removes the overlay mode's two-host cluster. */
export class OverlayHosts {
  readonly #prefix: string;
  readonly #label: string;
  readonly #netns: string[] = [];
  readonly #procs: BackgroundProc[] = [];
  readonly #daemons: BackgroundProc[] = [];
  readonly #paths: CnmPaths[] = [];
  #dir = '';

  /**
   * @param prefix netns and temp-dir prefix, e.g. `cnmb-1234`
   * @param label name prefix of the containers and networks, e.g. `cnmbench-1234`
   */
  constructor(prefix: string, label: string) {
    this.#prefix = prefix;
    this.#label = label;
  }

  /**
   * Builds the cluster, the overlay network, servers on host A and a client on host B.
   * @throws ModeSkipped when etcd or the daemon entry point is missing; Error naming the step
   *   that failed otherwise
   */
  async build(signal: AbortSignal): Promise<MeasuredPath> {
    if (!existsSync(ETCD_BIN)) {
      throw new ModeSkipped(
        `the overlay mode runs its own two-host cluster and needs etcd (${ETCD_BIN}, Debian package etcd-server)`,
      );
    }
    const entry = daemonEntry();
    if (!existsSync(entry)) {
      throw new ModeSkipped(`the overlay mode starts two cnmd processes and needs "${entry}"`);
    }
    this.#dir = await mkdtemp(path.join(tmpdir(), `${this.#prefix}-ov-`));
    const [a, b] = [`${this.#prefix}-oa`, `${this.#prefix}-ob`];
    for (const ns of [a, b]) {
      await mustRun(['ip', 'netns', 'add', ns], { signal });
      this.#netns.push(ns);
    }
    await mustRun(
      ['ip', '-n', a, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', b],
      {
        signal,
      },
    );
    for (const [i, ns] of [a, b].entries()) {
      await mustRun(['ip', '-n', ns, '-batch', '-'], {
        input: `link set lo up\naddr add ${UNDERLAY[i]}/24 dev u0\nlink set u0 up\n`,
        signal,
      });
    }
    const etcdUrl = `http://${UNDERLAY[0]}:2379`;
    this.#procs.push(
      startBackground([
        'nsenter',
        `--net=${NETNS_DIR}/${a}`,
        '--',
        ETCD_BIN,
        '--name=bench',
        `--data-dir=${path.join(this.#dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://${UNDERLAY[0]}:2380`,
        `--initial-advertise-peer-urls=http://${UNDERLAY[0]}:2380`,
        `--initial-cluster=bench=http://${UNDERLAY[0]}:2380`,
      ]),
    );
    await this.#waitEtcd(a, etcdUrl, signal);
    // The daemons' upstream DNS: an address on the underlay that nobody answers, so no query
    // from a bench container ever reaches a real resolver.
    const resolv = path.join(this.#dir, 'resolv.conf');
    await writeFile(resolv, 'nameserver 10.231.8.254\n');
    const clients: ApiClient[] = [];
    for (const [i, ns] of [a, b].entries()) {
      const root = path.join(this.#dir, `h${i}`);
      const socket = path.join(root, 'cnm.sock');
      const d = startBackground([
        'nsenter',
        `--net=${NETNS_DIR}/${ns}`,
        '--',
        process.execPath,
        entry,
        '-H',
        `unix://${socket}`,
        '--data-root',
        path.join(root, 'lib'),
        '--exec-root',
        path.join(root, 'run'),
        '--pidfile',
        path.join(root, 'cnmd.pid'),
        '--config-file',
        path.join(root, 'no-daemon.json'),
        '--resolv-conf',
        resolv,
        '--log-level',
        'warn',
        '--cluster-store',
        `etcd://${UNDERLAY[0]}:2379`,
        '--advertise-addr',
        UNDERLAY[i]!,
      ]);
      this.#daemons.push(d);
      const client = new ApiClient(`unix://${socket}`);
      await this.#waitDaemon(client, d, signal);
      clients.push(client);
    }
    const [hostA, hostB] = clients.map(
      (c, i) => new CnmPaths(c, `${this.#label}-${i === 0 ? 'a' : 'b'}`, { published: false }),
    ) as [CnmPaths, CnmPaths];
    this.#paths.push(hostA, hostB);
    return hostA.buildOverlayAcross(hostB, signal);
  }

  async #waitEtcd(ns: string, url: string, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + 20_000;
    const etcd = this.#procs[0]!;
    for (;;) {
      const r = await runProc(
        ['nsenter', `--net=${NETNS_DIR}/${ns}`, '--', 'curl', '-sf', '-m', '1', `${url}/health`],
        { signal },
      );
      if (r.code === 0 && r.stdout.includes('true')) return;
      if (etcd.exited()) throw new Error(`etcd exited: ${etcd.stderr().trim().slice(-500)}`);
      if (Date.now() > deadline) throw new Error('etcd did not become healthy within 20 s');
      await pause(100, signal);
    }
  }

  async #waitDaemon(client: ApiClient, d: BackgroundProc, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        (await client.open({ method: 'GET', path: '/_ping' }, signal)).resume();
        return;
      } catch {
        // Not listening yet.
      }
      signal.throwIfAborted();
      if (d.exited())
        throw new Error(`cnmd exited during startup: ${d.stderr().trim().slice(-800)}`);
      if (Date.now() > deadline) throw new Error('cnmd did not answer /_ping within 30 s');
      await pause(100, signal);
    }
  }

  /**
   * Removes everything built; keeps going past failures.
   * @returns one message per failure (empty when all went)
   */
  async destroy(): Promise<string[]> {
    const errors: string[] = [];
    // Containers and networks first, while both daemons and etcd still run.
    for (const p of this.#paths.splice(0).reverse()) errors.push(...(await p.destroy()));
    for (const d of this.#daemons.splice(0)) {
      if (d.exited()) continue;
      try {
        process.kill(d.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
      for (let i = 0; i < 100 && !d.exited(); i++) await new Promise((r) => setTimeout(r, 100));
      await d.kill();
    }
    for (const p of this.#procs.splice(0)) await p.kill();
    // Whatever still runs inside the two namespaces or in a sandbox under the dir is ours.
    for (const pid of await this.#strayPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    if (this.#dir !== '') {
      for (const mnt of await mountsUnder(this.#dir)) {
        const r = await runProc(['umount', '-l', mnt]);
        if (r.code !== 0) errors.push(`Failed to unmount "${mnt}": ${r.stderr.trim()}`);
      }
    }
    for (const ns of this.#netns.splice(0).reverse()) {
      const r = await runProc(['ip', 'netns', 'del', ns]);
      if (r.code !== 0) errors.push(`Failed to delete netns "${ns}": ${r.stderr.trim()}`);
    }
    if (this.#dir !== '') {
      await rm(this.#dir, { recursive: true, force: true }).catch((err: unknown) =>
        errors.push(`Failed to remove "${this.#dir}": ${(err as Error).message}`),
      );
      this.#dir = '';
    }
    return errors;
  }

  async #strayPids(): Promise<number[]> {
    const inodes = new Set<string>();
    const files = this.#netns.map((ns) => path.join(NETNS_DIR, ns));
    if (this.#dir !== '') files.push(...(await mountsUnder(this.#dir)));
    for (const f of files) {
      const s = await stat(f).catch(() => undefined);
      if (s) inodes.add(`net:[${s.ino}]`);
    }
    const out: number[] = [];
    for (const name of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
      const link = await readlink(`/proc/${name}/ns/net`).catch(() => '');
      if (inodes.has(link)) out.push(Number(name));
    }
    return out;
  }
}

/** Mount points at or under `dir` (deepest first), from /proc/self/mountinfo. */
async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .map((m) => m.replace(/\\040/g, ' '))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((x, y) => y.length - x.length);
}
