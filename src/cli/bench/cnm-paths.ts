/**
 * cnm's side of `cnm bench`: throwaway networks and containers made through the daemon's API
 * (names `cnmbench-<pid>-…`, label `cnm.bench`), servers as container commands (one server per
 * container, so removing the container ends the server) and clients through
 * `POST /cnm/containers/{id}/exec`. Everything made is recorded and removed by
 * {@link CnmPaths.destroy}, also after an interruption.
 *
 * | mode             | path                                                                  |
 * | ---------------- | --------------------------------------------------------------------- |
 * | host             | client and servers on the `host` network, 127.0.0.1                   |
 * | bridge           | client and servers on a bench bridge network                         |
 * | bridge-published | client on `host` → the bench bridge's gateway IP:published port       |
 * | macvlan          | client and servers on a macvlan network whose parent is a bench veth |
 * | overlay          | servers on host A, client on host B of the bench's own two-host cluster |
 *
 * The overlay mode does not use the user's daemon: see overlay-hosts.ts.
 *
 * The macvlan parent is a veth pair the bench creates in the daemon's namespace (found through
 * a `host` container's PID), so no real interface is used; it needs root on the daemon's host.
 */
import { existsSync } from 'node:fs';
import type { WireContainer, WireNetwork } from '../../api/wire.js';
import { BugError } from '../../errors.js';
import { DaemonError, type ApiClient } from '../client.js';
import { FrameDecoder } from '../frames.js';
import { waitListening } from './ceiling.js';
import type { Mode } from './model.js';
import { pause, type ClientRun, type MeasuredPath } from './path.js';
import { runProc } from './proc.js';
import {
  PORTS,
  PUBLISHED_PORTS,
  SERVER_KINDS,
  serverArgv,
  targetAt,
  type ServerKind,
  type Target,
} from './tools.js';

/** A mode the daemon cannot run; `message` says why. */
export class ModeSkipped extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModeSkipped';
  }
}

/** How each cnm path is built, for the report. */
export const CNM_DESCRIPTIONS: Record<Mode, string> = {
  host: 'containers on the host network, 127.0.0.1',
  bridge: 'two containers on a cnm bridge network',
  'bridge-published': 'host-network client → published port on the bridge gateway IP → container',
  macvlan: 'two containers on a cnm macvlan network (bridge mode) over a bench veth',
  overlay:
    'two containers on a cnm overlay network, on two cnmd "hosts" (netns on a veth underlay, own etcd)',
};

/** The label every bench object carries, with the run's prefix as value. */
export const BENCH_LABEL = 'cnm.bench';

interface Servers {
  ips: Record<ServerKind, string>;
  gateway: string;
}

/** Builds and removes cnm's bench paths through the API. */
export class CnmPaths {
  readonly #client: ApiClient;
  readonly #prefix: string;
  readonly #published: boolean;
  readonly #containers: string[] = [];
  readonly #networks: string[] = [];
  #hostClient: WireContainer | undefined;
  #bridge: Servers | undefined;
  #parent: { netns: string; name: string } | undefined;

  /**
   * @param prefix name prefix of every object, e.g. `cnmbench-1234`
   * @param opts.published also publish the bridge servers' ports (bridge-published is measured)
   */
  constructor(client: ApiClient, prefix: string, opts: { published: boolean }) {
    this.#client = client;
    this.#prefix = prefix;
    this.#published = opts.published;
  }

  /** Names of the containers and networks made so far. */
  get objects(): { containers: readonly string[]; networks: readonly string[] } {
    return { containers: this.#containers, networks: this.#networks };
  }

  async #json<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    return this.#client.json<T>({ method, path, ...(body === undefined ? {} : { body }) });
  }

  async #createNetwork(suffix: string, driver: string, options: Record<string, string> = {}) {
    const name = `${this.#prefix}-${suffix}`;
    const r = await this.#json<{ Id: string }>('POST', '/networks/create', {
      Name: name,
      Driver: driver,
      Options: options,
      Labels: { [BENCH_LABEL]: this.#prefix },
    });
    this.#networks.push(r.Id);
    return { name, id: r.Id };
  }

  async #run(
    suffix: string,
    cmd: string[],
    network: string,
    opts: { ports?: string[] } = {},
  ): Promise<WireContainer> {
    const name = `${this.#prefix}-${suffix}`;
    const created = await this.#json<WireContainer>('POST', '/cnm/containers/create', {
      Name: name,
      Cmd: cmd,
      Networks: [{ Name: network }],
      Labels: { [BENCH_LABEL]: this.#prefix },
      ...(opts.ports === undefined ? {} : { Ports: opts.ports }),
    });
    this.#containers.push(created.Id);
    await this.#client.json({
      method: 'POST',
      path: `/cnm/containers/${encodeURIComponent(created.Id)}/start`,
    });
    return this.#json<WireContainer>(
      'GET',
      `/cnm/containers/${encodeURIComponent(created.Id)}/json`,
    );
  }

  /**
   * Runs `argv` in container `id` through the exec API and collects its output. A timeout
   * ends the exec (the daemon kills the process when the client leaves) with code null.
   * @throws the signal's reason when `signal` aborts
   */
  async exec(
    id: string,
    argv: string[],
    signal: AbortSignal,
    timeoutMs = 30_000,
  ): Promise<ClientRun> {
    signal.throwIfAborted();
    const timeout = AbortSignal.timeout(timeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    let stdout = '';
    let stderr = '';
    let code: number | null = null;
    try {
      const res = await this.#client.open(
        {
          method: 'POST',
          path: `/cnm/containers/${encodeURIComponent(id)}/exec`,
          body: { Cmd: argv },
        },
        both,
      );
      const decoder = new FrameDecoder();
      for await (const chunk of res) {
        for (const f of decoder.push(Buffer.from(chunk as Buffer))) {
          if (f.stream === 1) stdout += f.payload.toString('utf8');
          else if (f.stream === 2) stderr += f.payload.toString('utf8');
          else if (f.stream === 3 && f.payload.length === 4) code = f.payload.readInt32BE(0);
        }
      }
    } catch (err) {
      signal.throwIfAborted();
      if (!timeout.aborted) throw err;
    }
    return { code, stdout, stderr };
  }

  /**
   * One container per server on `network`; with `publishOn`, each server's ports are published
   * on that host address only (the bridge gateway), never on every address of the host.
   */
  async #startServers(
    network: string,
    bind: string,
    signal: AbortSignal,
    tag: string,
    publishOn?: string,
  ) {
    const ips = {} as Record<ServerKind, string>;
    let gateway = '';
    for (const kind of SERVER_KINDS) {
      signal.throwIfAborted();
      const ports =
        publishOn !== undefined
          ? (kind === 'iperf3' ? ['tcp', 'udp'] : ['tcp']).map(
              (proto) => `${publishOn}:${PUBLISHED_PORTS[kind]}:${PORTS[kind]}/${proto}`,
            )
          : undefined;
      const c = await this.#run(`${tag}-${kind}`, serverArgv(kind, bind), network, {
        ...(ports === undefined ? {} : { ports }),
      });
      const ep = Object.values(c.NetworkSettings.Networks)[0];
      ips[kind] = ep?.IPAddress ?? '';
      gateway = ep?.Gateway ?? '';
      await waitListening((argv) => this.exec(c.Id, argv, signal, 10_000), PORTS[kind], signal);
    }
    return { ips, gateway };
  }

  async #ensureHostClient(): Promise<WireContainer> {
    this.#hostClient ??= await this.#run('hostclient', ['sleep', 'infinity'], 'host');
    return this.#hostClient;
  }

  #path(mode: Mode, client: WireContainer, target: Target): MeasuredPath {
    return {
      description: CNM_DESCRIPTIONS[mode],
      target,
      runClient: (argv, signal, timeoutMs) => this.exec(client.Id, argv, signal, timeoutMs),
    };
  }

  async #drivers(): Promise<string[]> {
    const info = await this.#json<{ Plugins?: { Network?: string[] } }>('GET', '/info');
    return info.Plugins?.Network ?? [];
  }

  async #bridgeServers(signal: AbortSignal): Promise<Servers> {
    if (this.#bridge === undefined) {
      const net = await this.#createNetwork('br', 'bridge');
      let publishOn: string | undefined;
      if (this.#published) {
        const inspect = await this.#json<WireNetwork>(
          'GET',
          `/networks/${encodeURIComponent(net.id)}`,
        );
        publishOn = inspect.IPAM.Config.find((c) => c.Gateway?.includes('.'))?.Gateway;
      }
      this.#bridge = await this.#startServers(net.name, '0.0.0.0', signal, 'br', publishOn);
    }
    return this.#bridge;
  }

  /**
   * Builds cnm's path for `mode` and starts its servers.
   * @throws ModeSkipped when the daemon cannot run the mode here (no driver, not its host)
   */
  async build(mode: Mode, signal: AbortSignal): Promise<MeasuredPath> {
    switch (mode) {
      case 'host': {
        const client = await this.#ensureHostClient();
        await this.#startServers('host', '127.0.0.1', signal, 'host');
        return this.#path(mode, client, targetAt('127.0.0.1'));
      }
      case 'bridge': {
        const s = await this.#bridgeServers(signal);
        const client = await this.#run('br-client', ['sleep', 'infinity'], `${this.#prefix}-br`);
        return this.#path(mode, client, byKind(s.ips, PORTS));
      }
      case 'bridge-published': {
        const s = await this.#bridgeServers(signal);
        if (s.gateway === '') throw new ModeSkipped('the bench bridge network has no gateway');
        const client = await this.#ensureHostClient();
        return this.#path(mode, client, targetAt(s.gateway, PUBLISHED_PORTS));
      }
      case 'macvlan': {
        if (!(await this.#drivers()).includes('macvlan')) {
          throw new ModeSkipped('the daemon has no macvlan driver');
        }
        const parent = await this.#makeParent(signal);
        const net = await this.#createNetwork('mv', 'macvlan', {
          parent,
          macvlan_mode: 'bridge',
        });
        const s = await this.#startServers(net.name, '0.0.0.0', signal, 'mv');
        const client = await this.#run('mv-client', ['sleep', 'infinity'], net.name);
        return this.#path(mode, client, byKind(s.ips, PORTS));
      }
      case 'overlay':
        // A real VXLAN path needs two hosts: see {@link buildOverlayAcross} and overlay-hosts.ts.
        throw new BugError('The overlay mode is built across two daemons (OverlayHosts)');
    }
  }

  /**
   * The overlay path: an overlay network made through this daemon (host A), the servers in
   * containers here and the client in a container on `remote` (host B), once `remote` knows
   * the network from the cluster store.
   * @throws ModeSkipped when this daemon refuses overlay networks (no cluster store)
   */
  async buildOverlayAcross(remote: CnmPaths, signal: AbortSignal): Promise<MeasuredPath> {
    let net: { name: string; id: string };
    try {
      net = await this.#createNetwork('ov', 'overlay');
    } catch (err) {
      if (err instanceof DaemonError) throw new ModeSkipped(err.message);
      throw err;
    }
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await remote.#json('GET', `/networks/${encodeURIComponent(net.id)}`);
        break;
      } catch (err) {
        if (!(err instanceof DaemonError && err.status === 404) || Date.now() > deadline) {
          throw new Error(`The overlay network did not reach host B: ${(err as Error).message}`);
        }
      }
      await pause(50, signal);
    }
    const s = await this.#startServers(net.name, '0.0.0.0', signal, 'ov');
    const client = await remote.#run('ov-client', ['sleep', 'infinity'], net.name);
    return {
      description: CNM_DESCRIPTIONS.overlay,
      target: byKind(s.ips, PORTS),
      runClient: (argv, sig, timeoutMs) => remote.exec(client.Id, argv, sig, timeoutMs),
    };
  }

  /**
   * Creates the macvlan parent: a veth pair `cnmb<pid>m0`/`m1`, both up, in the daemon's
   * namespace, reached through the PID of a `host` container.
   */
  async #makeParent(signal: AbortSignal): Promise<string> {
    const host = await this.#ensureHostClient();
    const netns = `/proc/${host.State.Pid}/ns/net`;
    if (!(host.State.Pid > 0) || !existsSync(netns)) {
      throw new ModeSkipped(
        "cnm bench must run as root on the daemon's host to make a veth as macvlan parent",
      );
    }
    const base = this.#prefix.replace(/^cnmbench-/, 'cnmb');
    const name = `${base}m0`;
    const ns = ['nsenter', `--net=${netns}`, '--'];
    const add = await runProc(
      [...ns, 'ip', 'link', 'add', name, 'type', 'veth', 'peer', 'name', `${base}m1`],
      { signal },
    );
    if (add.code !== 0) throw new Error(`Failed to create veth "${name}": ${add.stderr.trim()}`);
    // Recorded before bringing it up, so a failure below still removes it. The path stays
    // valid while the host container lives; destroy() deletes the veth before that container.
    this.#parent = { netns, name };
    for (const dev of [name, `${base}m1`]) {
      const up = await runProc([...ns, 'ip', 'link', 'set', dev, 'up'], { signal });
      if (up.code !== 0) throw new Error(`Failed to set "${dev}" up: ${up.stderr.trim()}`);
    }
    return name;
  }

  /**
   * Removes every container (forced), then every network, then the macvlan parent veth;
   * keeps going past failures.
   * @returns one message per failure (empty when all went)
   */
  async destroy(): Promise<string[]> {
    const errors: string[] = [];
    // The parent veth goes while the host container, whose PID leads to the daemon's
    // namespace, still lives.
    const parent = this.#parent;
    this.#parent = undefined;
    const deleteParent = async (): Promise<void> => {
      if (parent === undefined) return;
      const r = await runProc([
        'nsenter',
        `--net=${parent.netns}`,
        '--',
        'ip',
        'link',
        'del',
        parent.name,
      ]);
      if (r.code !== 0) errors.push(`Failed to delete veth "${parent.name}": ${r.stderr.trim()}`);
    };
    const hostId = this.#hostClient?.Id;
    for (const id of this.#containers.splice(0).reverse()) {
      if (id === hostId) continue;
      await this.#remove(`/cnm/containers/${encodeURIComponent(id)}`, { force: '1' }, errors);
    }
    for (const id of this.#networks.splice(0).reverse()) {
      await this.#remove(`/networks/${encodeURIComponent(id)}`, {}, errors);
    }
    await deleteParent();
    if (hostId !== undefined) {
      await this.#remove(`/cnm/containers/${encodeURIComponent(hostId)}`, { force: '1' }, errors);
    }
    this.#hostClient = undefined;
    this.#bridge = undefined;
    return errors;
  }

  async #remove(path: string, query: Record<string, string>, errors: string[]): Promise<void> {
    try {
      const res = await this.#client.open({ method: 'DELETE', path, query });
      res.resume();
    } catch (err) {
      // Already gone is what we want.
      if (err instanceof DaemonError && err.status === 404) return;
      errors.push(`Failed to remove "${path}": ${(err as Error).message}`);
    }
  }
}

function byKind(ips: Record<ServerKind, string>, ports: Record<ServerKind, number>): Target {
  return {
    iperf3: { ip: ips.iperf3, port: ports.iperf3 },
    sockperf: { ip: ips.sockperf, port: ports.sockperf },
    crr: { ip: ips.crr, port: ports.crr },
  };
}
