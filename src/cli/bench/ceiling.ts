/**
 * The "kernel ceiling" of each mode: the same data path built by hand with plain `ip` and `nft`
 * commands in network namespaces this module creates (`cnmb-<pid>-<x>`, under /run/netns, so
 * `npm run sweep` finds them if the bench is killed), with the same servers and clients as
 * cnm's containers. Nothing here touches the namespace the CLI runs in: links are created from
 * inside the bench's own namespaces (`ip -n`) and every process runs under `nsenter --net`.
 *
 * This runs in the CLI process, not in cnmd: it needs root on the daemon's host, which is why
 * `cnm bench` must run as root there (docs/bench.md).
 *
 * | mode             | ceiling                                                              |
 * | ---------------- | -------------------------------------------------------------------- |
 * | host             | loopback inside one namespace that does NAT (so conntrack is on)     |
 * | bridge           | two namespaces on veths into a bridge, no netfilter rules            |
 * | bridge-published | client in the bridge's namespace → nft DNAT (output hook) → server    |
 * | macvlan          | two macvlan (bridge mode) children of one veth                       |
 * | overlay          | VXLAN (VNI 42, MTU 1450) between two "hosts" joined by a veth         |
 */
import type { Mode } from './model.js';
import { pause, type ClientRun, type MeasuredPath } from './path.js';
import { mustRun, runProc, startBackground, type BackgroundProc } from './proc.js';
import { PORTS, PUBLISHED_PORTS, SERVER_KINDS, serverArgv, targetAt } from './tools.js';

const NETNS_DIR = '/run/netns';

/** How each ceiling is built, for the report. */
export const CEILING_DESCRIPTIONS: Record<Mode, string> = {
  host: 'loopback inside one netns that NATs (a masquerade rule: conntrack and NAT hooks on)',
  bridge: 'two netns on veths into a Linux bridge, no netfilter rules',
  'bridge-published': 'client in the bridge netns → nft DNAT (output hook) → server netns',
  macvlan: 'two macvlan (bridge mode) children of one veth, each in its own netns',
  overlay: 'VXLAN (VNI 42, MTU 1450) over a veth between two netns, bridged to two more',
};

/**
 * The host ceiling's NAT: one masquerade rule, for a source subnet not on the path, turns on the
 * kernel's conntrack and NAT hooks in the namespace (bench/nat-hooks.ts measures it alone).
 */
export const NAT_HOST_RULESET: readonly string[] = [
  'table ip cnmbench {',
  '  chain postrouting {',
  '    type nat hook postrouting priority srcnat; policy accept;',
  '    ip saddr 10.231.9.0/24 oifname != "lo" masquerade',
  '  }',
  '}',
];

/** Builds, measures through and tears down the ceiling paths of one bench run. */
export class Ceiling {
  readonly #prefix: string;
  readonly #netns: string[] = [];
  readonly #procs: BackgroundProc[] = [];

  /** @param prefix namespace name prefix, e.g. `cnmb-1234` */
  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /** Names of the namespaces made so far. */
  get netns(): readonly string[] {
    return this.#netns;
  }

  async #addNetns(suffix: string, signal: AbortSignal): Promise<string> {
    const name = `${this.#prefix}-${suffix}`;
    await mustRun(['ip', 'netns', 'add', name], { signal });
    this.#netns.push(name);
    await mustRun(['ip', '-n', name, 'link', 'set', 'lo', 'up'], { signal });
    return name;
  }

  async #nft(ns: string, ruleset: readonly string[], signal: AbortSignal): Promise<void> {
    await mustRun(['nsenter', `--net=${NETNS_DIR}/${ns}`, '--', 'nft', '-f', '-'], {
      input: `${ruleset.join('\n')}\n`,
      signal,
    });
  }

  async #batch(ns: string, lines: string[], signal: AbortSignal): Promise<void> {
    await mustRun(['ip', '-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n`, signal });
  }

  async #startServers(ns: string, bind: string, signal: AbortSignal): Promise<void> {
    for (const kind of SERVER_KINDS) {
      const p = startBackground([
        'nsenter',
        `--net=${NETNS_DIR}/${ns}`,
        '--',
        ...serverArgv(kind, bind),
      ]);
      this.#procs.push(p);
      await waitListening(
        (argv) => runProc(['nsenter', `--net=${NETNS_DIR}/${ns}`, '--', ...argv], { signal }),
        PORTS[kind],
        signal,
        () => (p.exited() ? `exited: ${p.stderr().trim()}` : undefined),
      );
    }
  }

  #client(ns: string): MeasuredPath['runClient'] {
    return (argv, signal, timeoutMs): Promise<ClientRun> =>
      runProc(['nsenter', `--net=${NETNS_DIR}/${ns}`, '--', ...argv], { signal, timeoutMs });
  }

  /**
   * Builds the ceiling of `mode` and starts its servers.
   * @throws Error naming the failed command
   */
  async build(mode: Mode, signal: AbortSignal): Promise<MeasuredPath> {
    const description = CEILING_DESCRIPTIONS[mode];
    switch (mode) {
      case 'host': {
        const ns = await this.#addNetns('lo', signal);
        // cnm's host network is a namespace that NATs containers, as every host running them
        // with NAT does (dockerd's and netavark's too): one masquerade rule registers the
        // kernel's conntrack and NAT hooks, which every local packet then passes (a few
        // percent of loopback round trips and UDP here: bench/nat-hooks.ts). A bare namespace
        // would charge the price of NAT itself to cnm.
        await this.#nft(ns, NAT_HOST_RULESET, signal);
        await this.#startServers(ns, '127.0.0.1', signal);
        return { description, target: targetAt('127.0.0.1'), runClient: this.#client(ns) };
      }
      case 'bridge': {
        const [s, c] = await this.#bridged('b', '10.231.1', false, signal);
        await this.#startServers(s, '0.0.0.0', signal);
        return { description, target: targetAt('10.231.1.2'), runClient: this.#client(c) };
      }
      case 'bridge-published': {
        const [s, , h] = await this.#bridged('p', '10.231.2', true, signal);
        const rules = [];
        for (const kind of SERVER_KINDS) {
          const protos = kind === 'iperf3' ? ['tcp', 'udp'] : ['tcp'];
          for (const proto of protos) {
            rules.push(
              `    ip daddr 10.231.2.1 ${proto} dport ${PUBLISHED_PORTS[kind]} dnat to 10.231.2.2:${PORTS[kind]}`,
            );
          }
        }
        await this.#nft(
          h,
          [
            'table ip cnmbench {',
            '  chain output {',
            '    type nat hook output priority -100; policy accept;',
            ...rules,
            '  }',
            '}',
          ],
          signal,
        );
        await this.#startServers(s, '0.0.0.0', signal);
        return {
          description,
          target: targetAt('10.231.2.1', PUBLISHED_PORTS),
          runClient: this.#client(h),
        };
      }
      case 'macvlan': {
        const h = await this.#addNetns('mh', signal);
        const s = await this.#addNetns('ms', signal);
        const c = await this.#addNetns('mc', signal);
        await this.#batch(
          h,
          [
            'link add m0 type veth peer name m1',
            'link set m0 up',
            'link set m1 up',
            `link add mvs link m0 type macvlan mode bridge`,
            `link add mvc link m0 type macvlan mode bridge`,
            `link set mvs netns ${s}`,
            `link set mvc netns ${c}`,
          ],
          signal,
        );
        for (const [ns, dev, ip] of [
          [s, 'mvs', '10.231.3.2'],
          [c, 'mvc', '10.231.3.3'],
        ] as const) {
          await this.#batch(
            ns,
            [`link set ${dev} name eth0`, `addr add ${ip}/24 dev eth0`, 'link set eth0 up'],
            signal,
          );
        }
        await this.#startServers(s, '0.0.0.0', signal);
        return { description, target: targetAt('10.231.3.2'), runClient: this.#client(c) };
      }
      case 'overlay': {
        const h1 = await this.#addNetns('v1', signal);
        const h2 = await this.#addNetns('v2', signal);
        const s = await this.#addNetns('vs', signal);
        const c = await this.#addNetns('vc', signal);
        await this.#batch(h1, [`link add u0 type veth peer name u0 netns ${h2}`], signal);
        for (const [h, me, peer, ns, ip] of [
          [h1, '10.231.9.1', '10.231.9.2', s, '10.231.4.2'],
          [h2, '10.231.9.2', '10.231.9.1', c, '10.231.4.3'],
        ] as const) {
          await this.#batch(
            h,
            [
              `addr add ${me}/24 dev u0`,
              'link set u0 up',
              `link add vx0 type vxlan id 42 local ${me} remote ${peer} dstport 4789 dev u0`,
              'link set vx0 mtu 1450',
              'link add br0 type bridge',
              'link set vx0 master br0',
              'link set vx0 up',
              'link add e0 type veth peer name eth0 netns ' + ns,
              'link set e0 mtu 1450',
              'link set e0 master br0',
              'link set e0 up',
              'link set br0 up',
            ],
            signal,
          );
          await this.#batch(
            ns,
            ['link set eth0 mtu 1450', `addr add ${ip}/24 dev eth0`, 'link set eth0 up'],
            signal,
          );
        }
        await this.#startServers(s, '0.0.0.0', signal);
        return { description, target: targetAt('10.231.4.2'), runClient: this.#client(c) };
      }
    }
  }

  /**
   * A bridge namespace `<p>h` with `br0` (gateway `.1` when `gateway`), a server namespace
   * `<p>s` (`.2`) and a client namespace `<p>c` (`.3`) on veths into it.
   * Returns [server, client, bridge] namespace names.
   */
  async #bridged(
    p: string,
    net: string,
    gateway: boolean,
    signal: AbortSignal,
  ): Promise<[string, string, string]> {
    const h = await this.#addNetns(`${p}h`, signal);
    const s = await this.#addNetns(`${p}s`, signal);
    const c = await this.#addNetns(`${p}c`, signal);
    await this.#batch(
      h,
      [
        'link add br0 type bridge',
        ...(gateway ? [`addr add ${net}.1/24 dev br0`] : []),
        'link set br0 up',
        `link add vs type veth peer name eth0 netns ${s}`,
        `link add vc type veth peer name eth0 netns ${c}`,
        'link set vs master br0',
        'link set vc master br0',
        'link set vs up',
        'link set vc up',
      ],
      signal,
    );
    for (const [ns, ip] of [
      [s, `${net}.2`],
      [c, `${net}.3`],
    ] as const) {
      await this.#batch(
        ns,
        [
          `addr add ${ip}/24 dev eth0`,
          'link set eth0 up',
          ...(gateway ? [`route add default via ${net}.1`] : []),
        ],
        signal,
      );
    }
    return [s, c, h];
  }

  /**
   * Kills every server (by PID) and deletes every namespace made; keeps going past failures.
   * @returns one message per failure (empty when all went)
   */
  async destroy(): Promise<string[]> {
    const errors: string[] = [];
    for (const p of this.#procs.splice(0)) await p.kill();
    for (const ns of this.#netns.splice(0).reverse()) {
      const r = await runProc(['ip', 'netns', 'del', ns]);
      if (r.code !== 0) errors.push(`Failed to delete netns "${ns}": ${r.stderr.trim()}`);
    }
    return errors;
  }
}

/**
 * Polls `ss` (through `run`, inside the server's namespace) until a TCP socket listens on
 * `port`, for at most 10 s.
 *
 * @param dead tells why the server can no longer come up (it exited), or undefined
 * @throws Error when nothing listens in time or the server died
 */
export async function waitListening(
  run: (argv: string[]) => Promise<ClientRun>,
  port: number,
  signal: AbortSignal,
  dead: () => string | undefined = () => undefined,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await run(['ss', '-Hltn', 'sport', '=', `:${port}`]);
    if (r.code === 0 && r.stdout.trim() !== '') return;
    const why = dead();
    if (why !== undefined) throw new Error(`Server on port ${port} ${why}`);
    if (Date.now() > deadline) throw new Error(`Nothing listens on port ${port} after 10 s`);
    await pause(50, signal);
  }
}
