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
 * - anti-spoofing, in the `bridge` family's prerouting (frames as they enter from a port, those
 *   to the gateway itself included). The common frame, IP from a container port with its own
 *   MAC and address, passes with one lookup (`ep_src4`/`ep_src6`: port . MAC . address); only
 *   the rest (ARP, link-local IPv6, spoofed frames) walks the chain below, so the bridge path
 *   costs as little over a plain Linux bridge as anti-spoofing can. A container port
 *   (`ep_ports`) may only send with its own MAC (`ep_mac`), its IPv4 address (`ep_ip4`), ARP
 *   (Ethernet/IPv4) naming its own MAC and address or 0.0.0.0 (ARP probe) as sender, and IPv6
 *   from its address (`ep_ip6`), `::` or fe80::/10 (link-local is not pinned per port). Every
 *   other frame from the port is dropped.
 * - nat: published ports are `ip daddr . l4proto . dport` (or `l4proto . dport` for every host
 *   address) → `container ip . port` maps, in prerouting (from outside and from containers) and
 *   in output (from the host itself, localhost included: the bridge gets route_localnet=1 and
 *   127.0.0.0/8 sources are masqueraded). Hairpin traffic (a container reaching a published port
 *   of a container on its own bridge) is masqueraded so the reply comes back through NAT.
 *   Egress from masquerading networks to anything but a cnm bridge is masqueraded.
 *
 * This module is pure: it builds nft script text, and for a container port's elements (the
 * container-create path) element changes for `Kernel.nftElements` (raw nfnetlink, no script to
 * parse: ≈ 0.15–0.2 ms instead of 0.6–1 ms through libnftables in cnmd), made from the same
 * statement text so the two forms cannot disagree. `FirewallState` mirrors the elements so that
 * removals only ever name elements that exist (nft 1.0.6 has no `destroy`).
 */
import type { NftElementChange, NftFieldType, NftSetShape } from '../../kernel/types.js';
import { IP } from '../../netaddr/index.js';

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
  if (n.subnet6) {
    // DNAT in IPv6 exists only for service VIPs: a replica reaching its own IPv6 VIP.
    out.push(`${verb} element inet ${t} hairpin6 { ${q(n.bridge)} . ${n.subnet6} }`);
    if (n.masquerade && !n.internal) out.push(`${verb} element inet ${t} masq6 { ${n.subnet6} }`);
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

/** One container port's identity: the only source MAC and addresses it may send with. */
export interface FirewallEndpoint {
  /** The host-side veth (the bridge port). */
  port: string;
  /** Lower-case `aa:bb:cc:dd:ee:ff`. */
  mac: string;
  ipv4?: string;
  ipv6?: string;
}

/** Anti-spoofing elements (`add`/`delete`) for one container port, in the `bridge` table. */
function endpointElements(verb: 'add' | 'delete', t: string, e: FirewallEndpoint): string[] {
  const out = [
    `${verb} element bridge ${t} ep_ports { ${q(e.port)} }`,
    `${verb} element bridge ${t} ep_mac { ${q(e.port)} . ${e.mac} }`,
  ];
  if (e.ipv4) {
    out.push(`${verb} element bridge ${t} ep_ip4 { ${q(e.port)} . ${e.ipv4} }`);
    out.push(`${verb} element bridge ${t} ep_src4 { ${q(e.port)} . ${e.mac} . ${e.ipv4} }`);
  }
  if (e.ipv6) {
    out.push(`${verb} element bridge ${t} ep_ip6 { ${q(e.port)} . ${e.ipv6} }`);
    out.push(`${verb} element bridge ${t} ep_src6 { ${q(e.port)} . ${e.mac} . ${e.ipv6} }`);
  }
  return out;
}

function sameEndpoint(a: FirewallEndpoint, b: FirewallEndpoint): boolean {
  return a.port === b.port && a.mac === b.mac && a.ipv4 === b.ipv4 && a.ipv6 === b.ipv6;
}

/** A service VIP: new connections to `vip` are spread over `backends` by DNAT. */
export interface FirewallVip {
  /** Lower-case hex; the VIP's chain is `svc_<id>`. */
  id: string;
  vip: string;
  /** The service network's bridge: the only interface the VIP answers on. */
  bridge: string;
  /** Backend IPv4 addresses (the running replicas). */
  backends: readonly string[];
  /** The IPv6 VIP on a dual-stack network; its chain is `svc6_<id>`. */
  vip6?: string;
  /** Backend IPv6 addresses (the running replicas that have one). */
  backends6?: readonly string[];
}

/**
 * The statements that (re)write a VIP's chain; `fresh` also creates the chain and its `vips`
 * element. The chain is per service and rewritten only when its replica set changes: per packet
 * it is one `vips` lookup, an interface test and one `numgen` map lookup, whatever the number of
 * services or replicas. Traffic from another interface (another network, the uplink) is dropped
 * unless the host itself sends it (output hook: local source). No backend: dropped too, so the
 * VIP never reaches the host's own sockets. A dual-stack service's IPv6 VIP gets the same in its
 * own chain (`svc6_<id>`, dispatched from `vips6`).
 */
function vipScript(t: string, v: FirewallVip, fresh: boolean): string[] {
  const out = familyVipScript(t, v.bridge, fresh, {
    chain: `svc_${v.id}`,
    family: 'ip',
    map: 'vips',
    vip: v.vip,
    backends: v.backends,
  });
  if (v.vip6 !== undefined) {
    out.push(
      ...familyVipScript(t, v.bridge, fresh, {
        chain: `svc6_${v.id}`,
        family: 'ip6',
        map: 'vips6',
        vip: v.vip6,
        backends: v.backends6 ?? [],
      }),
    );
  }
  return out;
}

function familyVipScript(
  t: string,
  bridge: string,
  fresh: boolean,
  f: { chain: string; family: 'ip' | 'ip6'; map: string; vip: string; backends: readonly string[] },
): string[] {
  const { chain, backends } = f;
  const out = fresh ? [`add chain inet ${t} ${chain}`] : [];
  out.push(
    `flush chain inet ${t} ${chain}`,
    `add rule inet ${t} ${chain} iifname != ${q(bridge)} fib saddr type != local drop`,
  );
  if (backends.length === 0) out.push(`add rule inet ${t} ${chain} drop`);
  else {
    const map = backends.map((b, i) => `${i} : ${b}`).join(', ');
    out.push(
      `add rule inet ${t} ${chain} dnat ${f.family} to numgen inc mod ${backends.length} map { ${map} }`,
    );
  }
  if (fresh) out.push(`add element inet ${t} ${f.map} { ${f.vip} : jump ${chain} }`);
  return out;
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
  set hairpin6 { type ifname . ipv6_addr; flags interval; }
  map pm4 { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
  map pm4any { type inet_proto . inet_service : ipv4_addr . inet_service; }
  map vips { type ipv4_addr : verdict; }
  map vips6 { type ipv6_addr : verdict; }
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
    ip daddr vmap @vips
    ip6 daddr vmap @vips6
    fib daddr type local jump portmap
  }
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr vmap @vips
    ip6 daddr vmap @vips6
    fib daddr type local jump portmap
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat oifname . ip saddr @hairpin4 masquerade
    ct status dnat oifname . ip6 saddr @hairpin6 masquerade
    oifname @bridges ip saddr 127.0.0.0/8 masquerade
    ip saddr @masq4 oifname != @bridges masquerade
    ip6 saddr @masq6 oifname != @bridges masquerade
  }
}
table bridge ${t} {
  set icc_off { type ifname; }
  set ep_ports { type ifname; }
  set ep_mac { type ifname . ether_addr; }
  set ep_ip4 { type ifname . ipv4_addr; }
  set ep_ip6 { type ifname . ipv6_addr; }
  set ep_src4 { type ifname . ether_addr . ipv4_addr; }
  set ep_src6 { type ifname . ether_addr . ipv6_addr; }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname @icc_off ether type { ip, ip6 } drop
  }
  chain prerouting {
    type filter hook prerouting priority filter; policy accept;
    iifname . ether saddr . ip saddr @ep_src4 accept
    iifname . ether saddr . ip6 saddr @ep_src6 accept
    iifname @ep_ports jump antispoof
  }
  chain antispoof {
    iifname . ether saddr != @ep_mac drop
    iifname . ip saddr @ep_ip4 return
    arp htype 1 arp ptype ip arp hlen 6 arp plen 4 goto antispoof_arp
    ip6 saddr { ::, fe80::/10 } return
    iifname . ip6 saddr @ep_ip6 return
    drop
  }
  chain antispoof_arp {
    iifname . arp saddr ether != @ep_mac drop
    arp saddr ip 0.0.0.0 return
    iifname . arp saddr ip @ep_ip4 return
    drop
  }
}
`;
}

const FIELD_TYPES: ReadonlySet<string> = new Set<NftFieldType>([
  'ipv4_addr',
  'ipv6_addr',
  'inet_proto',
  'inet_service',
  'mark',
  'ifname',
  'ether_addr',
]);

/**
 * The element shapes of a ruleset's sets and maps (keyed `<family> <name>`), read from their
 * declarations (`set NAME { type A . B [: C]; [flags interval;] }`). Sets whose key or data the
 * element encoder does not take (a concatenated map value) are left out.
 */
export function setShapes(ruleset: string): Map<string, NftSetShape> {
  const shapes = new Map<string, NftSetShape>();
  let family = '';
  for (const raw of ruleset.split('\n')) {
    const line = raw.trim();
    const table = /^table (\w+) \S+ \{/.exec(line);
    if (table) family = table[1]!;
    const m = /^(?:set|map) (\w+) \{ type ([^;:]+?)(?: : ([^;]+?))?;( flags interval;)? \}$/.exec(
      line,
    );
    if (!m) continue;
    const key = m[2]!.split(' . ');
    const data = m[3];
    if (!key.every((k) => FIELD_TYPES.has(k))) continue;
    if (data !== undefined && data !== 'verdict' && !FIELD_TYPES.has(data)) continue;
    shapes.set(`${family} ${m[1]}`, {
      key: key as NftFieldType[],
      interval: m[4] !== undefined,
      ...(data ? { data: data as NftFieldType | 'verdict' } : {}),
    });
  }
  return shapes;
}

/** The shapes of the bridge table's sets (the table name does not change them). */
const BRIDGE_SHAPES = setShapes(baseRuleset('t'));

/**
 * Element statements of the `bridge` table (`add|delete element bridge T SET { BODY }`, one
 * element each) as element changes, consecutive statements on one set merged, in order.
 */
function bridgeElementChanges(lines: readonly string[]): NftElementChange[] {
  const out: NftElementChange[] = [];
  for (const line of lines) {
    const m = /^(add|delete) element bridge \S+ (\w+) \{ (.*) \}$/.exec(line);
    const shape = m && BRIDGE_SHAPES.get(`bridge ${m[2]}`);
    // A bug, not bad input: every statement here comes from this module.
    if (!m || !shape) throw new TypeError(`Not a bridge-table element statement: ${line}`);
    const op = m[1] as 'add' | 'delete';
    const last = out.at(-1);
    if (last?.op === op && last.set === m[2]) (last.elements as string[]).push(m[3]!);
    else out.push({ op, set: m[2]!, shape, elements: [m[3]!] });
  }
  return out;
}

/**
 * Element changes of `family table` as the nft statements they stand for (one per element):
 * for logs and tests.
 */
export function formatElementChanges(
  family: string,
  table: string,
  changes: readonly NftElementChange[],
): string[] {
  return changes.flatMap((c) =>
    c.elements.map((e) => `${c.op} element ${family} ${table} ${c.set} { ${e} }`),
  );
}

/**
 * What a table holds: rules per chain, elements per set or map (keyed `<family> <name>`) and,
 * when known, every set's elements in canonical text form ({@link canonicalElement}), sorted.
 * Counts notice a deleted or added rule or element; the element texts also notice an element
 * changed in place (same key, other value), which keeps the count.
 */
export interface FirewallShape {
  chains: Map<string, number>;
  sets: Map<string, number>;
  /** Sorted canonical elements per set; sets without an entry are compared by count only. */
  elements?: Map<string, string[]>;
}
/**
 * The chains (with their rule counts) and sets (with no elements) a ruleset text in this
 * module's layout defines: `table F T {` blocks with one `set|map NAME {…}` or rule per line.
 * The policy table's ruleset has the same layout, so its drift check uses this too.
 */
export function rulesetShape(ruleset: string): FirewallShape {
  const shape: FirewallShape = { chains: new Map(), sets: new Map() };
  let family = '';
  let chain: string | undefined;
  // The second `table … {` of each family opens the definitions (the first pair only empties).
  for (const raw of ruleset.split('\n')) {
    const line = raw.trim();
    const table = /^table (\w+) \S+ \{$/.exec(line);
    if (table) family = table[1]!;
    const set = /^(?:set|map) (\w+) \{/.exec(line);
    if (set) shape.sets.set(`${family} ${set[1]}`, 0);
    const ch = /^chain (\w+) \{$/.exec(line);
    if (ch) {
      chain = `${family} ${ch[1]}`;
      shape.chains.set(chain, 0);
      continue;
    }
    if (chain === undefined) continue;
    if (line === '}') chain = undefined;
    else if (line !== '' && !line.startsWith('type ')) {
      shape.chains.set(chain, shape.chains.get(chain)! + 1);
    }
  }
  return shape;
}

/** An address as nft prints it (IPv6 compressed, lower case), or `undefined`. */
function canonicalIp(text: string): IP | undefined {
  return /^[0-9a-fA-F:.]+$/.test(text) && /[:.]/.test(text) ? IP.tryParse(text) : undefined;
}

/**
 * A token of an `add element` body as nft lists it: IPv6 addresses compressed and lower case
 * (as inet_ntop prints them), MACs lower case, a one-address prefix or range as the address, an
 * address range that is exactly a prefix as that prefix, a one-port range as the port.
 */
function canonicalToken(tok: string): string {
  const range = /^([^-]+)-([^-]+)$/.exec(tok);
  if (range) {
    const [a, b] = [range[1]!, range[2]!];
    if (/^\d+$/.test(a) && /^\d+$/.test(b)) return Number(a) === Number(b) ? a : tok;
    const [lo, hi] = [canonicalIp(a), canonicalIp(b)];
    if (!lo || !hi || lo.family !== hi.family) return tok;
    const width = lo.family === 6 ? 128 : 32;
    // hi - lo + 1 a power of two and lo aligned to it: a prefix.
    const size = hi.value - lo.value + 1n;
    const host = size.toString(2).length - 1;
    if (size > 0n && size === 1n << BigInt(host) && lo.value % size === 0n) {
      return host === 0 ? lo.toString() : `${lo.toString()}/${width - host}`;
    }
    return `${lo.toString()}-${hi.toString()}`;
  }
  if (!/[:/]/.test(tok)) return tok;
  const [addr, len] = tok.split('/');
  const ip = canonicalIp(addr!);
  // Not an address: a MAC (six groups, no `::`), printed in lower case.
  if (!ip) return /^[0-9a-fA-F:]+$/.test(tok) ? tok.toLowerCase() : tok;
  const bits = len === undefined || Number(len) === (ip.family === 6 ? 128 : 32) ? '' : `/${len}`;
  return `${ip.toString()}${bits}`;
}

/**
 * One element of nft's JSON listing in canonical text: `key` or `key : value`, concatenations
 * joined by ` . `, prefixes `addr/len`, ranges `a-b`, verdicts `accept`, `jump chain`, names
 * unquoted. nft already prints addresses canonically, so values are taken as they are (this
 * runs on every listed element each pass); {@link canonicalElementText} gives the same text for
 * an `add element` line's body.
 */
export function canonicalElement(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return `${canonicalElement(v[0])} : ${canonicalElement(v[1])}`;
  if (v === null || typeof v !== 'object') return String(v);
  const o = v as Record<string, unknown>;
  if ('elem' in o) return canonicalElement((o['elem'] as { val?: unknown }).val);
  if (Array.isArray(o['concat'])) return o['concat'].map(canonicalElement).join(' . ');
  const prefix = o['prefix'] as { addr?: unknown; len?: unknown } | undefined;
  if (prefix) return `${String(prefix.addr)}/${String(prefix.len)}`;
  if (Array.isArray(o['range'])) return o['range'].map(canonicalElement).join('-');
  for (const verdict of ['jump', 'goto']) {
    const target = (o[verdict] as { target?: unknown } | undefined)?.target;
    if (target !== undefined) return `${verdict} ${String(target)}`;
  }
  const keys = Object.keys(o);
  if (keys.length === 1 && o[keys[0]!] === null) return keys[0]!;
  return JSON.stringify(v);
}

/**
 * The canonical text of one element of an `add element … { BODY }` line (one element, no
 * commas). Quoted tokens are names and stay as they are.
 */
export function canonicalElementText(body: string): string {
  return body
    .trim()
    .split(/\s+/)
    .map((t) => (t.startsWith('"') ? t.slice(1, -1) : canonicalToken(t)))
    .join(' ');
}

/**
 * Reads the shape of cnm's tables from `nft -j list table …` outputs (one per table), element
 * texts included.
 * @throws SyntaxError when an output is not nft's JSON
 */
export function parseFirewallShape(outputs: readonly string[]): FirewallShape {
  const shape: FirewallShape = { chains: new Map(), sets: new Map(), elements: new Map() };
  for (const out of outputs) {
    const doc = JSON.parse(out) as { nftables?: Record<string, Record<string, unknown>>[] };
    for (const item of doc.nftables ?? []) {
      const chain = item['chain'];
      if (chain) {
        const key = `${String(chain['family'])} ${String(chain['name'])}`;
        if (!shape.chains.has(key)) shape.chains.set(key, 0);
      }
      const rule = item['rule'];
      if (rule) {
        const key = `${String(rule['family'])} ${String(rule['chain'])}`;
        shape.chains.set(key, (shape.chains.get(key) ?? 0) + 1);
      }
      const set = item['set'] ?? item['map'];
      if (set) {
        const elem = Array.isArray(set['elem']) ? (set['elem'] as unknown[]) : [];
        const key = `${String(set['family'])} ${String(set['name'])}`;
        shape.sets.set(key, elem.length);
        shape.elements!.set(key, elem.map(canonicalElement).sort());
      }
    }
  }
  return shape;
}

/**
 * The structure of `shape` only: its chains with their rule counts and its sets with no
 * elements, to compare with a terse listing (`nft -t`, which neither lists nor fetches
 * elements).
 */
export function structureOnly(shape: FirewallShape): FirewallShape {
  return { chains: shape.chains, sets: new Map([...shape.sets.keys()].map((k) => [k, 0])) };
}

/** What {@link compareFirewallShape} found. */
export interface ShapeDrift {
  /** Why only a full reload can help (a chain gone or changed, a set gone or with extras). */
  reload?: string;
  /** Sets short of elements: the missing ones can be added back one by one. */
  short: { set: string; missing: number }[];
}

/**
 * Compares the intended shape with the kernel's: chains and rule counts, element counts, and
 * where both sides carry element texts, the elements themselves (a set short of elements may be
 * topped up only when every element it holds is an intended one).
 */
export function compareFirewallShape(want: FirewallShape, have: FirewallShape): ShapeDrift {
  for (const [chain, rules] of want.chains) {
    const n = have.chains.get(chain);
    if (n === undefined) return { reload: `chain ${chain} is missing`, short: [] };
    if (n !== rules) return { reload: `chain ${chain} has ${n} rules, not ${rules}`, short: [] };
  }
  for (const chain of have.chains.keys()) {
    if (!want.chains.has(chain)) return { reload: `unknown chain ${chain}`, short: [] };
  }
  const short: ShapeDrift['short'] = [];
  for (const [set, count] of want.sets) {
    const n = have.sets.get(set);
    if (n === undefined) return { reload: `set ${set} is missing`, short: [] };
    if (n > count) return { reload: `set ${set} has ${n} elements, not ${count}`, short: [] };
    const wantElems = want.elements?.get(set);
    const haveElems = have.elements?.get(set);
    if (wantElems && haveElems) {
      // Both sorted: a merge walk finds the first listed element that is not intended.
      let i = 0;
      for (const e of haveElems) {
        while (i < wantElems.length && wantElems[i]! < e) i++;
        if (wantElems[i] !== e) {
          return { reload: `set ${set} holds "${e}", which cnm did not put there`, short: [] };
        }
        i++;
      }
    }
    if (n < count) short.push({ set, missing: count - n });
  }
  return { short };
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
  #vips = new Map<string, FirewallVip>();
  #endpoints = new Map<string, FirewallEndpoint>();
  /** {@link expectedShape}'s last answer; every mutator drops it. */
  #shape: FirewallShape | undefined;

  constructor(table: string) {
    this.table = table;
  }

  /** The whole ruleset with every element: for start-up and repair. */
  fullScript(): string {
    const lines = [baseRuleset(this.table)];
    for (const n of this.#networks.values()) lines.push(...networkElements('add', this.table, n));
    for (const p of this.#ports.values()) lines.push(portElement('add', this.table, p));
    for (const port of this.#iccPorts) lines.push(iccPortElement('add', this.table, port));
    for (const v of this.#vips.values()) lines.push(...vipScript(this.table, v, true));
    for (const e of this.#endpoints.values()) lines.push(...endpointElements('add', this.table, e));
    return lines.join('\n') + '\n';
  }

  /** Every element statement of the full ruleset (`add element <family> <table> <set> {…}`). */
  #elementLines(): string[] {
    return this.fullScript()
      .split('\n')
      .filter((l) => l.startsWith('add element '));
  }

  /**
   * The shape the kernel's tables should have: base chains, VIP chains, element counts and
   * element texts. Shared until the next change: callers must not modify it.
   */
  expectedShape(): FirewallShape {
    // The drift check asks every second; the mirror changes far less often.
    this.#shape ??= this.#computeShape();
    return this.#shape;
  }

  #computeShape(): FirewallShape {
    const shape = rulesetShape(baseRuleset(this.table));
    const elements = new Map<string, string[]>();
    for (const set of shape.sets.keys()) elements.set(set, []);
    // Each VIP's chains as the script that writes them makes them (one for IPv4, one more for
    // a dual-stack VIP), so the check cannot fall out of step with vipScript.
    for (const v of this.#vips.values()) {
      for (const line of vipScript(this.table, v, true)) {
        const chain = /^add chain (\w+) \S+ (\w+)$/.exec(line);
        if (chain) shape.chains.set(`${chain[1]} ${chain[2]}`, 0);
        const rule = /^add rule (\w+) \S+ (\w+) /.exec(line);
        if (rule) {
          const key = `${rule[1]} ${rule[2]}`;
          shape.chains.set(key, (shape.chains.get(key) ?? 0) + 1);
        }
      }
    }
    for (const line of this.#elementLines()) {
      const m = /^add element (\w+) \S+ (\w+) \{ (.*) \}$/.exec(line);
      if (!m) continue;
      const key = `${m[1]} ${m[2]}`;
      shape.sets.set(key, (shape.sets.get(key) ?? 0) + 1);
      const list = elements.get(key) ?? [];
      list.push(canonicalElementText(m[3]!));
      elements.set(key, list);
    }
    for (const list of elements.values()) list.sort();
    return { ...shape, elements };
  }

  /**
   * Adds every intended element of `sets` (`<family> <name>` keys) again. Adding an element
   * that is there with the same value changes nothing, so this restores exactly the missing ones.
   */
  elementScript(sets: readonly string[]): string {
    const want = new Set(sets);
    return this.#elementLines()
      .filter((l) => {
        const key = /^add element (\w+) \S+ (\w+) /.exec(l);
        return key !== null && want.has(`${key[1]} ${key[2]}`);
      })
      .join('\n');
  }

  /**
   * Pins a container port to its MAC and addresses (anti-spoofing): element changes of the
   * `bridge` table (empty when already so). An endpoint already pinned with other values is
   * re-pinned: its old elements are deleted in the same changes.
   */
  addEndpoint(e: FirewallEndpoint): NftElementChange[] {
    this.#shape = undefined;
    const cur = this.#endpoints.get(e.port);
    if (cur && sameEndpoint(cur, e)) return [];
    this.#endpoints.set(e.port, { ...e });
    const lines = cur ? endpointElements('delete', this.table, cur) : [];
    lines.push(...endpointElements('add', this.table, e));
    return bridgeElementChanges(lines);
  }

  /** Unpins a container port: element changes of the `bridge` table (empty when not pinned). */
  removeEndpoint(port: string): NftElementChange[] {
    this.#shape = undefined;
    const cur = this.#endpoints.get(port);
    if (!cur) return [];
    this.#endpoints.delete(port);
    return bridgeElementChanges(endpointElements('delete', this.table, cur));
  }

  /** The pinned identity of a port, if any (for reverting a failed update). */
  endpoint(port: string): FirewallEndpoint | undefined {
    const cur = this.#endpoints.get(port);
    return cur && { ...cur };
  }

  /** Puts a port's mirrored identity back without producing a script (revert after a failure). */
  restoreEndpoint(port: string, prev: FirewallEndpoint | undefined): void {
    this.#shape = undefined;
    if (prev) this.#endpoints.set(port, { ...prev });
    else this.#endpoints.delete(port);
  }

  addNetwork(n: FirewallNetwork): string {
    this.#shape = undefined;
    if (this.#networks.has(n.bridge)) return '';
    this.#networks.set(n.bridge, { ...n });
    return networkElements('add', this.table, n).join('\n');
  }

  removeNetwork(bridge: string): string {
    this.#shape = undefined;
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
    this.#shape = undefined;
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
    this.#shape = undefined;
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

  /** Puts a container port of an ICC-off network in `icc_off`: element changes of `bridge`. */
  addIccPort(port: string): NftElementChange[] {
    this.#shape = undefined;
    if (this.#iccPorts.has(port)) return [];
    this.#iccPorts.add(port);
    return bridgeElementChanges([iccPortElement('add', this.table, port)]);
  }

  /** Takes a port out of `icc_off`: element changes of `bridge` (empty when not in it). */
  removeIccPort(port: string): NftElementChange[] {
    this.#shape = undefined;
    if (!this.#iccPorts.delete(port)) return [];
    return bridgeElementChanges([iccPortElement('delete', this.table, port)]);
  }

  /** Whether a port is in `icc_off` (for reverting a failed update). */
  hasIccPort(port: string): boolean {
    return this.#iccPorts.has(port);
  }

  /** Whether a VIP with this id is programmed. */
  hasVip(id: string): boolean {
    return this.#vips.has(id);
  }

  /** Programs a VIP or replaces its backends (one atomic batch: the chain is rewritten). */
  setVip(v: FirewallVip): string {
    this.#shape = undefined;
    const fresh = !this.#vips.has(v.id);
    this.#vips.set(v.id, {
      ...v,
      backends: [...v.backends],
      ...(v.backends6 ? { backends6: [...v.backends6] } : {}),
    });
    return vipScript(this.table, v, fresh).join('\n');
  }

  removeVip(id: string): string {
    this.#shape = undefined;
    const v = this.#vips.get(id);
    if (!v) return '';
    this.#vips.delete(id);
    const chain = `svc_${v.id}`;
    const out = [
      `delete element inet ${this.table} vips { ${v.vip} }`,
      `flush chain inet ${this.table} ${chain}`,
      `delete chain inet ${this.table} ${chain}`,
    ];
    if (v.vip6 !== undefined) {
      out.push(
        `delete element inet ${this.table} vips6 { ${v.vip6} }`,
        `flush chain inet ${this.table} svc6_${v.id}`,
        `delete chain inet ${this.table} svc6_${v.id}`,
      );
    }
    return out.join('\n');
  }
}
