/**
 * The `overlay` driver: one layer-2 network spanning hosts, carried in VXLAN (UDP 4789).
 *
 * On every host that has the network: a Linux bridge (made by the bridge driver, which also
 * gives it NAT to the outside through this host and published ports) plus a VXLAN device on
 * it with learning off and ARP proxy on. The cluster (`cnm/cluster.ts`) tells this driver
 * about endpoints on other hosts; for each one it writes a static FDB entry (MAC → remote
 * VTEP, on the VXLAN device itself) and a permanent neighbour entry (IP → MAC), so unicast is
 * never flooded, nothing is learnt from the wire, and ARP for a remote container is answered
 * locally by the VXLAN device. Broadcasts never cross hosts (no all-zeros FDB entry), which is
 * also why every host can put the same gateway address on its own bridge.
 *
 * Multicast mode (`io.cnm.overlay.mode=multicast`, `io.cnm.overlay.group=G`): the VXLAN device
 * gets `group G dev <underlay>` and learning on, so broadcast, unknown unicast and multicast
 * frames go to the underlay group and remote MACs are learnt from the frames received; no static
 * FDB entries are written. The neighbour entries and the ARP proxy stay, so ARP and neighbour
 * solicitations still never cross hosts (which keeps the per-host gateway address private).
 *
 * TCP MSS is clamped to the route MTU on packets routed into the overlay bridges (nftables
 * table `<table>_ovl`), so hosts outside with a 1500-byte path cannot black-hole.
 */
import type { KernelFeature } from '../../kernel/capabilities.js';
import { ignoreErrno } from '../../kernel/kernel-error.js';
import type { Kernel, KernelStep } from '../../kernel/types.js';
import { ForbiddenError, InvalidError, UnavailableError } from '../../errors.js';
import { IP } from '../../netaddr/index.js';
import type { BridgeDriver } from '../bridge/bridge-driver.js';
import type { BridgeOptions } from '../bridge/options.js';
import type {
  Driver,
  DriverCapabilities,
  DriverEndpoint,
  DriverNetwork,
  DriverPort,
} from '../types.js';
import { OVERLAY_OPTIONS, parseOverlayOptions, type OverlayOptions } from './options.js';

/** VXLAN over IPv4 adds 50 bytes: outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8. */
export const VXLAN_OVERHEAD = 50;
/** IANA's VXLAN port. */
export const VXLAN_PORT = 4789;

/** Settings the daemon gives the overlay driver. */
export interface OverlayDriverConfig {
  /** nftables table name of the daemon; the overlay's own table is `<table>_ovl`. */
  table: string;
  /** This host's underlay address (`--advertise-addr`); unset: no cluster, no overlay. */
  advertiseAddr?: string;
}

/**
 * The overlay's nftables table: TCP MSS clamped on packets routed into overlay bridges, and,
 * with an underlay address, this host's VXLAN packets (UDP 4789 from or to it) kept out of
 * conntrack. The outer flows need no state (no NAT, no policy looks at them), and tracking
 * them cost a conntrack lookup and update per packet on each host, in both directions, that a
 * plain kernel VXLAN path does not pay.
 */
export function overlayTableScript(t: string, advertiseAddr?: string): string {
  const chains = [
    '  set bridges { type ifname; }',
    '  chain forward {',
    '    type filter hook forward priority mangle; policy accept;',
    '    oifname @bridges tcp flags syn / syn,rst tcp option maxseg size set rt mtu',
    '  }',
  ];
  const local = advertiseAddr === undefined ? undefined : IP.tryParse(advertiseAddr);
  if (local) {
    const ip = local.family === 4 ? 'ip' : 'ip6';
    const addr = local.toString();
    chains.push(
      '  chain vxlan_in {',
      '    type filter hook prerouting priority raw; policy accept;',
      `    ${ip} daddr ${addr} udp dport ${VXLAN_PORT} notrack`,
      '  }',
      '  chain vxlan_out {',
      '    type filter hook output priority raw; policy accept;',
      `    ${ip} saddr ${addr} udp dport ${VXLAN_PORT} notrack`,
      '  }',
    );
  }
  return `table inet ${t}\ndelete table inet ${t}\ntable inet ${t} {\n${chains.join('\n')}\n}\n`;
}

/** An endpoint on another host, as the cluster store has it. */
export interface RemoteEndpoint {
  id: string;
  mac: string;
  ipv4?: string;
  ipv6?: string;
  /** The underlay address of the host it lives on (its VTEP). */
  vtep: string;
}

interface LiveOverlay {
  vxlan: string;
  bridge: string;
  /** Multicast mode: MACs are learnt from the wire, no static FDB entries. */
  multicast?: boolean;
}

/** The overlay driver. */
export class OverlayDriver implements Driver<OverlayOptions> {
  readonly name = 'overlay';
  readonly capabilities: DriverCapabilities = {
    scope: 'global',
    usesIpam: true,
    ownNamespace: true,
    endpointInterface: true,
    publishesPorts: true,
    singleton: false,
    exclusive: false,
    hostVeth: true,
  };
  readonly #kernel: Kernel;
  readonly #bridge: BridgeDriver;
  readonly #cfg: OverlayDriverConfig;
  #underlay: { dev: string; mtu: number } | undefined;
  /** Networks whose kernel objects exist on this host. */
  readonly #up = new Map<string, LiveOverlay>();
  /** Network id → endpoint id → remote endpoint (known whether or not the network is up). */
  readonly #remotes = new Map<string, Map<string, RemoteEndpoint>>();

  constructor(kernel: Kernel, bridge: BridgeDriver, cfg: OverlayDriverConfig) {
    this.#kernel = kernel;
    this.#bridge = bridge;
    this.#cfg = cfg;
  }

  async init(): Promise<void> {
    // One atomic batch: the table is (re)made empty, elements are added per network.
    await this.#kernel.nftRun(overlayTableScript(this.#table(), this.#cfg.advertiseAddr));
    if (!this.#cfg.advertiseAddr) return;
    this.#underlay = await this.#findUnderlay(this.#cfg.advertiseAddr);
  }

  /** The link holding the advertise address, and its MTU. */
  async #findUnderlay(addr: string): Promise<{ dev: string; mtu: number }> {
    const a = (await this.#kernel.addrList(undefined, 4)).find((x) => x.address === addr);
    const link = a && (await this.#kernel.linkList()).find((l) => l.index === a.index);
    if (!link) {
      throw new UnavailableError(
        'ADVERTISE_ADDR_INVALID',
        `Cannot use advertise address "${addr}": no interface in cnmd's namespace has it`,
      );
    }
    return { dev: link.name, mtu: link.mtu };
  }

  /**
   * @throws InvalidError OPTION_INVALID for bad options, and for a multicast group of another
   *   family than this host's underlay (advertise) address
   */
  parseOptions(raw: Record<string, string>): OverlayOptions {
    const opts = parseOverlayOptions(raw);
    const local = this.#cfg.advertiseAddr && IP.tryParse(this.#cfg.advertiseAddr);
    if (opts.group !== undefined && local && IP.parse(opts.group).family !== local.family) {
      throw new InvalidError(
        'OPTION_INVALID',
        `Invalid value "${opts.group}" for option "${OVERLAY_OPTIONS.group}": the underlay is IPv${local.family} (advertise address "${this.#cfg.advertiseAddr}"), the group must be too`,
      );
    }
    return opts;
  }

  validateNetwork(net: DriverNetwork<OverlayOptions>): void {
    this.#requireCluster(net.name);
  }

  /** The MTU the network's links get: its option, else the underlay's minus VXLAN's 50 bytes. */
  mtu(net: DriverNetwork<OverlayOptions>): number {
    if (net.options.mtu) return net.options.mtu;
    return (this.#underlay?.mtu ?? 1500) - VXLAN_OVERHEAD;
  }

  #names(net: DriverNetwork): LiveOverlay {
    return { bridge: `cnmov${net.id.slice(0, 10)}`, vxlan: `cnmvx${net.id.slice(0, 10)}` };
  }

  #bridgeNet(net: DriverNetwork<OverlayOptions>): DriverNetwork<BridgeOptions> {
    return {
      ...net,
      options: {
        bridgeName: this.#names(net).bridge,
        icc: true,
        // Egress through this host's NAT, like Docker's gateway bridge, but on the overlay
        // bridge itself: one interface per container, no second "gwbridge" endpoint.
        masquerade: !net.internal,
        hostBindingIpv4: '',
        mtu: this.mtu(net),
        defaultBridge: false,
      },
    };
  }

  async ensureNetwork(net: DriverNetwork<OverlayOptions>): Promise<void> {
    const underlay = this.#requireCluster(net.name);
    const names = this.#names(net);
    const mtu = this.mtu(net);
    if (mtu + VXLAN_OVERHEAD > underlay.mtu) {
      throw new ForbiddenError(
        'OVERLAY_MTU_TOO_LARGE',
        `Cannot create overlay network "${net.name}": MTU ${mtu} plus VXLAN's ${VXLAN_OVERHEAD} bytes exceeds the underlay "${underlay.dev}" MTU ${underlay.mtu}`,
      );
    }
    await this.#bridge.ensureNetwork(this.#bridgeNet(net));
    const alias = `cnm:vx:${net.id.slice(0, 12)}`;
    const multicast = net.options.mode === 'multicast';
    const existing = await this.#kernel.linkGet(names.vxlan);
    if (!existing) {
      await this.#kernel.linkAdd({
        kind: 'vxlan',
        name: names.vxlan,
        vni: net.options.vni,
        port: VXLAN_PORT,
        local: this.#cfg.advertiseAddr!,
        dev: underlay.dev,
        // Multicast mode: BUM frames go to the group (the kernel's all-zeros FDB entry) and
        // the source MAC of every frame received is learnt against its sender's VTEP.
        ...(multicast ? { group: net.options.group! } : {}),
        learning: multicast,
        // ARP and neighbour solicitations are answered from the cluster's entries in both
        // modes; so they never cross hosts, and every host's bridge keeps the same gateway
        // address without its replies reaching another host's containers.
        proxy: true,
        mtu,
        alias,
        master: names.bridge,
        up: true,
      });
    } else {
      await this.#kernel.linkSet(names.vxlan, { alias, master: names.bridge, up: true });
    }
    await this.#kernel.nftRun(`add element inet ${this.#table()} bridges { "${names.bridge}" }`);
    const live: LiveOverlay = { ...names, ...(multicast ? { multicast } : {}) };
    this.#up.set(net.id, live);
    for (const r of this.#remotes.get(net.id)?.values() ?? []) {
      await this.#program(live, r);
    }
  }

  async deleteNetwork(net: DriverNetwork<OverlayOptions>): Promise<void> {
    const names = this.#names(net);
    this.#up.delete(net.id);
    await this.#kernel
      .nftRun(`delete element inet ${this.#table()} bridges { "${names.bridge}" }`)
      .catch(() => undefined); // not there: a create that failed early
    const vx = await this.#kernel.linkGet(names.vxlan);
    if (vx?.alias?.startsWith('cnm:vx:')) {
      await this.#kernel.linkDel(names.vxlan, undefined, { ifExists: true });
    }
    await this.#bridge.deleteNetwork(this.#bridgeNet(net));
  }

  async ensureEndpoint(net: DriverNetwork<OverlayOptions>, ep: DriverEndpoint): Promise<void> {
    await this.#bridge.ensureEndpoint(this.#bridgeNet(net), ep);
  }

  async deleteEndpoint(net: DriverNetwork<OverlayOptions>, ep: DriverEndpoint): Promise<void> {
    await this.#bridge.deleteEndpoint(this.#bridgeNet(net), ep);
  }

  async publishPorts(
    net: DriverNetwork<OverlayOptions>,
    ep: DriverEndpoint,
    ports: readonly DriverPort[],
  ): Promise<void> {
    await this.#bridge.publishPorts(this.#bridgeNet(net), ep, ports);
  }

  async unpublishPorts(
    net: DriverNetwork<OverlayOptions>,
    ep: DriverEndpoint,
    ports: readonly DriverPort[],
  ): Promise<void> {
    await this.#bridge.unpublishPorts(this.#bridgeNet(net), ep, ports);
  }

  portInUse(): boolean {
    // Published ports of overlay endpoints live in the bridge driver's firewall state, which
    // the bridge driver already answers for.
    return false;
  }

  setBridgedFiltering(net: DriverNetwork<OverlayOptions>, on: boolean): Promise<void> {
    return this.#bridge.setBridgedFiltering(this.#bridgeNet(net), on);
  }

  ownedLinks(net: DriverNetwork<OverlayOptions>): string[] {
    const n = this.#names(net);
    return [n.bridge, n.vxlan];
  }

  kernelFeatures(): readonly KernelFeature[] {
    return ['vxlan'];
  }

  // ------------------------------------------------------------ remote endpoints (cluster)

  /**
   * Records an endpoint on another host and, when the network is up here, programs its FDB and
   * neighbour entries. Idempotent: re-announcing an endpoint replaces its entries.
   */
  async setRemote(networkId: string, ep: RemoteEndpoint): Promise<void> {
    let map = this.#remotes.get(networkId);
    if (!map) this.#remotes.set(networkId, (map = new Map()));
    const old = map.get(ep.id);
    map.set(ep.id, ep);
    const live = this.#up.get(networkId);
    if (!live) return;
    if (old && (old.mac !== ep.mac || old.ipv4 !== ep.ipv4 || old.ipv6 !== ep.ipv6)) {
      await this.#unprogram(live, old);
    }
    await this.#program(live, ep);
  }

  /** Forgets an endpoint on another host and removes its entries; unknown ids are ignored. */
  async deleteRemote(networkId: string, endpointId: string): Promise<void> {
    const map = this.#remotes.get(networkId);
    const old = map?.get(endpointId);
    if (!old) return;
    map!.delete(endpointId);
    const live = this.#up.get(networkId);
    if (live) await this.#unprogram(live, old);
  }

  /** The remote endpoints this driver currently programs for a network (for resyncs). */
  remotes(networkId: string): RemoteEndpoint[] {
    return [...(this.#remotes.get(networkId)?.values() ?? [])];
  }

  /** Network ids with remote endpoints recorded. */
  remoteNetworks(): string[] {
    return [...this.#remotes.keys()];
  }

  async #program(live: LiveOverlay, ep: RemoteEndpoint): Promise<void> {
    const vxlan = live.vxlan;
    const steps: KernelStep[] = [];
    // Multicast mode learns where a MAC lives from the wire; a static entry would pin it.
    if (!live.multicast) {
      steps.push({
        op: 'neighAdd',
        args: [
          { family: 'bridge', dev: vxlan, mac: ep.mac, dst: ep.vtep, self: true, permanent: true },
          undefined,
          { replace: true },
        ],
      });
    }
    // Permanent ARP and NDP entries: the VXLAN device (`proxy`) answers ARP requests and
    // neighbour solicitations for remote containers itself, so neither is flooded.
    for (const [family, ip] of [
      [4, ep.ipv4],
      [6, ep.ipv6],
    ] as const) {
      if (!ip) continue;
      steps.push({
        op: 'neighAdd',
        args: [
          { family, dev: vxlan, dst: ip, mac: ep.mac, permanent: true },
          undefined,
          { replace: true },
        ],
      });
    }
    await this.#kernel.batch(steps);
  }

  async #unprogram(live: LiveOverlay, ep: RemoteEndpoint): Promise<void> {
    const vxlan = live.vxlan;
    // ENOENT: already gone (the device was re-created, or someone flushed it; in multicast
    // mode a learnt entry that aged out). ENODEV: the network's device went away meanwhile.
    await this.#kernel
      .neighDel({ family: 'bridge', dev: vxlan, mac: ep.mac, dst: ep.vtep, self: true })
      .catch((err: unknown) => ignoreErrno(err, 'ENOENT', 'ENODEV'));
    for (const [family, ip] of [
      [4, ep.ipv4],
      [6, ep.ipv6],
    ] as const) {
      if (!ip) continue;
      await this.#kernel
        .neighDel({ family, dev: vxlan, dst: ip, mac: ep.mac })
        .catch((err: unknown) => ignoreErrno(err, 'ENOENT', 'ENODEV'));
    }
  }

  #requireCluster(name: string): { dev: string; mtu: number } {
    if (!this.#cfg.advertiseAddr || !this.#underlay) {
      throw new ForbiddenError(
        'CLUSTER_REQUIRED',
        `Cannot create overlay network "${name}": cnmd runs without a cluster store (start it with --cluster-store and --advertise-addr)`,
      );
    }
    return this.#underlay;
  }

  #table(): string {
    return `${this.#cfg.table}_ovl`;
  }
}
