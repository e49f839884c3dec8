/**
 * The bridge driver's nftables ruleset: one `inet` table and one `bridge` table per daemon.
 *
 * Base chains only dispatch through sets and verdict maps; everything per network, endpoint or
 * published port is an element. Adding a network or a port is an element update (0.1 ms through
 * libnftables in-process), never a chain rewrite, and the per-packet cost does not grow with the
 * number of networks, endpoints or ports (hash lookups; the subnet sets are interval sets).
 *
 * What the rules mean, in Docker's terms:
 * - forward: replies pass; DNAT'd traffic (published ports) passes; traffic inside one bridge
 *   passes unless ICC is off; `--internal` bridges neither send nor receive off-bridge; one
 *   bridge network cannot reach another; containers may go out; nothing unsolicited comes in.
 * - ICC off is also enforced in the `bridge` family on the container ports, so it holds even
 *   when br_netfilter is not loaded (then bridged frames never reach the inet forward hook).
 *   This kernel has no `meta ibrname` (nft_meta_bridge), hence per-port elements.
 * - nat: published ports are `ip daddr . l4proto . dport` (or `l4proto . dport` for every host
 *   address) → `container ip . port` maps, in prerouting (from outside and from containers) and
 *   in output (from the host itself, localhost included: the bridge gets route_localnet=1 and
 *   127.0.0.0/8 sources are masqueraded). Hairpin traffic (a container reaching a published port
 *   of a container on its own bridge) is masqueraded so the reply comes back through NAT.
 *   Egress from masquerading networks to anything but a cnm bridge is masqueraded.
 *
 * This module is pure: it builds nft script text. `FirewallState` mirrors the elements so that
 * removals only ever name elements that exist (nft 1.0.6 has no `destroy`).
 */

/** A bridge network's firewall facts. */
export interface FirewallNetwork {
  bridge: string;
  subnet4?: string;
  subnet6?: string;
  internal: boolean;
  icc: boolean;
  masquerade: boolean;
}

/** One published port, resolved to a container address. */
export interface FirewallPort {
  /** `''` or `0.0.0.0` for every host address. */
  hostIp: string;
  hostPort: number;
  proto: 'tcp' | 'udp';
  containerIp: string;
  containerPort: number;
}

/** Quotes an interface name for nft (names are validated to `[A-Za-z0-9_.-]`). */
function q(name: string): string {
  return `"${name}"`;
}

function portKey(p: FirewallPort): string {
  return `${anyHost(p.hostIp) ? '*' : p.hostIp}|${p.proto}|${p.hostPort}`;
}

function anyHost(ip: string): boolean {
  return ip === '' || ip === '0.0.0.0';
}

/** Element statements (`add`/`delete`) for one network. */
function networkElements(verb: 'add' | 'delete', t: string, n: FirewallNetwork): string[] {
  const out = [
    `${verb} element inet ${t} bridges { ${q(n.bridge)} }`,
    `${verb} element inet ${t} intra { ${q(n.bridge)} . ${q(n.bridge)}${verb === 'add' ? ` : ${n.icc ? 'accept' : 'drop'}` : ''} }`,
  ];
  if (n.internal) out.push(`${verb} element inet ${t} internal { ${q(n.bridge)} }`);
  if (n.subnet4) {
    out.push(`${verb} element inet ${t} hairpin4 { ${q(n.bridge)} . ${n.subnet4} }`);
    if (n.masquerade && !n.internal) out.push(`${verb} element inet ${t} masq4 { ${n.subnet4} }`);
  }
  if (n.subnet6 && n.masquerade && !n.internal) {
    out.push(`${verb} element inet ${t} masq6 { ${n.subnet6} }`);
  }
  return out;
}

function portElement(verb: 'add' | 'delete', t: string, p: FirewallPort): string {
  const value = verb === 'add' ? ` : ${p.containerIp} . ${p.containerPort}` : '';
  return anyHost(p.hostIp)
    ? `${verb} element inet ${t} pm4any { ${p.proto} . ${p.hostPort}${value} }`
    : `${verb} element inet ${t} pm4 { ${p.hostIp} . ${p.proto} . ${p.hostPort}${value} }`;
}

function iccPortElement(verb: 'add' | 'delete', t: string, port: string): string {
  return `${verb} element bridge ${t} icc_off { ${q(port)} }`;
}

/**
 * The full ruleset for table name `t`, without elements. Loading it replaces both tables
 * atomically (the `table …` + `delete table …` pair makes the delete safe when absent).
 */
export function baseRuleset(t: string): string {
  return `table inet ${t} {}
delete table inet ${t}
table bridge ${t} {}
delete table bridge ${t}
table inet ${t} {
  set bridges { type ifname; }
  map intra { type ifname . ifname : verdict; }
  set internal { type ifname; }
  set masq4 { type ipv4_addr; flags interval; }
  set masq6 { type ipv6_addr; flags interval; }
  set hairpin4 { type ifname . ipv4_addr; flags interval; }
  map pm4 { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
  map pm4any { type inet_proto . inet_service : ipv4_addr . inet_service; }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    ct status dnat accept
    iifname . oifname vmap @intra
    iifname @internal drop
    oifname @internal drop
    iifname @bridges oifname @bridges drop
    iifname @bridges accept
    oifname @bridges drop
  }
  chain portmap {
    dnat ip to ip daddr . meta l4proto . th dport map @pm4
    dnat ip to meta l4proto . th dport map @pm4any
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump portmap
  }
  chain output {
    type nat hook output priority -100; policy accept;
    fib daddr type local jump portmap
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat oifname . ip saddr @hairpin4 masquerade
    oifname @bridges ip saddr 127.0.0.0/8 masquerade
    ip saddr @masq4 oifname != @bridges masquerade
    ip6 saddr @masq6 oifname != @bridges masquerade
  }
}
table bridge ${t} {
  set icc_off { type ifname; }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname @icc_off ether type ip drop
    iifname @icc_off ether type ip6 drop
  }
}
`;
}

/**
 * The firewall's intended elements, mirrored in memory. Every mutator returns the nft script
 * that makes the kernel match (empty string when nothing changes).
 */
export class FirewallState {
  readonly table: string;
  #networks = new Map<string, FirewallNetwork>();
  #ports = new Map<string, FirewallPort>();
  #iccPorts = new Set<string>();

  constructor(table: string) {
    this.table = table;
  }

  /** The whole ruleset with every element: for start-up and repair. */
  fullScript(): string {
    const lines = [baseRuleset(this.table)];
    for (const n of this.#networks.values()) lines.push(...networkElements('add', this.table, n));
    for (const p of this.#ports.values()) lines.push(portElement('add', this.table, p));
    for (const port of this.#iccPorts) lines.push(iccPortElement('add', this.table, port));
    return lines.join('\n') + '\n';
  }

  addNetwork(n: FirewallNetwork): string {
    if (this.#networks.has(n.bridge)) return '';
    this.#networks.set(n.bridge, { ...n });
    return networkElements('add', this.table, n).join('\n');
  }

  removeNetwork(bridge: string): string {
    const n = this.#networks.get(bridge);
    if (!n) return '';
    this.#networks.delete(bridge);
    return networkElements('delete', this.table, n).join('\n');
  }

  /** True when a published port with the same host address/proto/port exists or overlaps. */
  portConflict(p: Pick<FirewallPort, 'hostIp' | 'hostPort' | 'proto'>): boolean {
    for (const cur of this.#ports.values()) {
      if (cur.proto !== p.proto || cur.hostPort !== p.hostPort) continue;
      if (anyHost(cur.hostIp) || anyHost(p.hostIp) || cur.hostIp === p.hostIp) return true;
    }
    return false;
  }

  addPorts(ports: readonly FirewallPort[]): string {
    const lines: string[] = [];
    for (const p of ports) {
      const key = portKey(p);
      if (this.#ports.has(key)) continue;
      this.#ports.set(key, { ...p });
      lines.push(portElement('add', this.table, p));
    }
    return lines.join('\n');
  }

  removePorts(ports: readonly FirewallPort[]): string {
    const lines: string[] = [];
    for (const p of ports) {
      const cur = this.#ports.get(portKey(p));
      if (!cur || cur.containerIp !== p.containerIp || cur.containerPort !== p.containerPort) {
        continue;
      }
      this.#ports.delete(portKey(p));
      lines.push(portElement('delete', this.table, cur));
    }
    return lines.join('\n');
  }

  addIccPort(port: string): string {
    if (this.#iccPorts.has(port)) return '';
    this.#iccPorts.add(port);
    return iccPortElement('add', this.table, port);
  }

  removeIccPort(port: string): string {
    if (!this.#iccPorts.delete(port)) return '';
    return iccPortElement('delete', this.table, port);
  }
}
