/**
 * The NetworkPolicy compiler: (policies, containers, namespaces) → the elements of a fixed set of
 * nftables sets. The chains never change; see `policyRuleset` for them and docs/policy.md for
 * the reasoning.
 *
 * Per direction (`in` = ingress, checked on the destination; `eg` = egress, checked on the
 * source) and family (4, 6), with "self" the selected container's address and "peer" the other
 * end's:
 *
 * | set          | key                                   | kind     | from                                |
 * | ------------ | ------------------------------------- | -------- | ----------------------------------- |
 * | `<d>_iso<f>` | self                                  | hash     | containers isolated in direction d  |
 * | `<d>_pair<f>`| self . peer                           | hash     | container peers, every port         |
 * | `<d>_port<f>`| self . peer . l4proto . port          | hash     | container peers, one port           |
 * | `<d>_net<f>_<s>` | self . peer range                 | interval | ipBlock (or any) peers, every port  |
 * | `<d>_rng<f>_<s>` | self . peer range . l4proto . port range | interval | everything else (ranges)    |
 *
 * The interval sets are sharded (`shardSet`; `<s>` is `w` or 0–15): an element whose peer range lies inside one /24
 * (IPv4) or one /64 (IPv6) goes to shard `<d>_<kind><f>_<j>`, j being bits 8–11 (IPv4) or
 * 64–67 (IPv6) of the peer address, i.e. the low nibble of the /24 or /64 number; a wider element
 * goes to the one "wide" set `<d>_<kind><f>_w`. Every element is in exactly one set. The kernel
 * copies a whole concatenated interval (pipapo) set on each transaction that changes it, so a
 * change costs in proportion to the size of the set it touches (docs/policy.md): a narrow
 * element's change now touches a sixteenth of them.
 *
 * A packet from a source isolated for egress passes when its key is in one of the `eg_*` sets,
 * and likewise for ingress. Per isolated direction: two hash lookups, the two wide interval
 * lookups, one verdict-map lookup on the peer's shard bits (`goto` its shard chain), then the
 * shard's two interval lookups: constant, whatever the number of policies.
 */
import { IP, type Family } from '../netaddr/index.js';
import {
  blockRanges,
  disjointRects,
  formatAddrRange,
  formatPortRange,
  fullRange,
  mergeRanges,
  type Range,
  type Rect,
} from './ranges.js';
import { matchesSelector } from './selector.js';
import {
  NAMESPACE_NAME_LABEL,
  type NetworkPolicy,
  type NetworkPolicyPeer,
  type NetworkPolicyPort,
  type PolicyNamespace,
  type PolicyPod,
  type PolicyProtocol,
  type PolicyType,
} from './types.js';

/** Direction prefixes of set names. */
export type Direction = 'in' | 'eg';
/** Set kinds; a set's name is `<direction>_<kind><family>`. */
export const SET_KINDS = ['iso', 'pair', 'port', 'net', 'rng'] as const;
export type SetKind = (typeof SET_KINDS)[number];

/** Element texts per set name (`in_pair4` → {"10.0.0.2 . 10.0.0.3", …}). */
export type PolicyElements = Map<string, Set<string>>;

/** What the compiler takes. */
export interface CompileInput {
  policies: readonly NetworkPolicy[];
  pods: readonly PolicyPod[];
  /** Namespaces with labels; namespaces only containers name exist with their name label only. */
  namespaces: readonly PolicyNamespace[];
}

const FAMILIES: readonly Family[] = [4, 6];
const ALL_PORTS: Range = [0n, 65535n];
const NFT_PROTO: Record<PolicyProtocol, string> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };

/** Shards of each interval set (besides its wide set); a power of two, 16 at most. */
export const SHARDS = 16;
/** The shard bits of a peer address start here (IPv4: bits 8–11; IPv6: bits 64–67). */
const SHARD_SHIFT: Record<Family, bigint> = { 4: 8n, 6: 64n };
const INTERVAL_KINDS: readonly SetKind[] = ['net', 'rng'];

/** The suffixes of an interval set's physical sets: the wide set, then the shards. */
function shardSuffixes(): string[] {
  return ['w', ...Array.from({ length: SHARDS }, (_, j) => String(j))];
}

/**
 * The physical set of an interval element of `kind` (`net`, `rng`) whose peer range is `peer`:
 * its shard when the range lies inside one /24 (IPv4) or /64 (IPv6), else the wide set.
 * @example shardSet('in', 'rng', 4, [0x0a000300n, 0x0a0003ffn]) // 'in_rng4_3'
 */
export function shardSet(dir: string, kind: string, f: Family, peer: Range): string {
  const shift = SHARD_SHIFT[f];
  const [lo, hi] = peer;
  if (lo >> shift !== hi >> shift) return `${dir}_${kind}${f}_w`;
  return `${dir}_${kind}${f}_${Number((lo >> shift) & BigInt(SHARDS - 1))}`;
}

/** Every set name, in a stable order. */
export function setNames(): string[] {
  const out: string[] = [];
  for (const d of ['in', 'eg'] as const) {
    for (const k of SET_KINDS) {
      for (const f of FAMILIES) {
        if (INTERVAL_KINDS.includes(k))
          for (const sfx of shardSuffixes()) out.push(`${d}_${k}${f}_${sfx}`);
        else out.push(`${d}_${k}${f}`);
      }
    }
  }
  return out;
}

/** A set's key fields (nft type names) and whether it holds intervals: its declaration. */
export interface PolicySetShape {
  key: readonly ('ipv4_addr' | 'ipv6_addr' | 'inet_proto' | 'inet_service')[];
  interval: boolean;
}

/**
 * The shape of set `name` (`in_rng4_3`): what `policyRuleset` declares and what the kernel layer
 * needs to encode its elements without asking the kernel.
 * @throws Error for a name that is not one of `setNames()` (a bug)
 */
export function setShape(name: string): PolicySetShape {
  const m = /^(?:in|eg)_(?:(iso|pair|port)([46])|(net|rng)([46])_(w|\d+))$/.exec(name);
  if (!m || (m[5] !== undefined && m[5] !== 'w' && Number(m[5]) >= SHARDS))
    throw new Error(`Unknown policy set "${name}"`);
  const addr = (m[2] ?? m[4]) === '4' ? 'ipv4_addr' : 'ipv6_addr';
  const kind = (m[1] ?? m[3]) as SetKind;
  const ports = kind === 'port' || kind === 'rng';
  return {
    key:
      kind === 'iso' ? [addr] : ports ? [addr, addr, 'inet_proto', 'inet_service'] : [addr, addr],
    interval: kind === 'net' || kind === 'rng',
  };
}

/** The policy types a policy has, defaulted as the spec says. */
export function policyTypesOf(p: NetworkPolicy): PolicyType[] {
  if (p.spec.policyTypes && p.spec.policyTypes.length > 0) return p.spec.policyTypes;
  return (p.spec.egress?.length ?? 0) > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
}

export function familyOf(ip: string): Family {
  return ip.includes(':') ? 6 : 4;
}

/** One port selector of a rule, before named ports are resolved. */
type PortSel =
  | { kind: 'all' }
  | { kind: 'range'; proto: PolicyProtocol; ports: Range }
  | { kind: 'named'; proto: PolicyProtocol; name: string };

function portSels(ports: readonly NetworkPolicyPort[] | undefined): PortSel[] {
  if (!ports || ports.length === 0) return [{ kind: 'all' }];
  return ports.map((p): PortSel => {
    const proto = p.protocol ?? 'TCP';
    if (p.port === undefined) return { kind: 'range', proto, ports: ALL_PORTS };
    if (typeof p.port === 'string') return { kind: 'named', proto, name: p.port };
    return { kind: 'range', proto, ports: [BigInt(p.port), BigInt(p.endPort ?? p.port)] };
  });
}

/** A rule's peers: selected containers and address ranges per family. */
interface Peers {
  pods: PolicyPod[];
  blocks: Record<Family, Range[]>;
}

/** The elements one direction and family of a policy contributes, before interval merging. */
export class Acc {
  iso = new Set<string>();
  pair = new Set<string>();
  port = new Set<string>();
  /** Self address → peer ranges (every port). */
  net = new Map<string, Range[]>();
  /** `<self> <proto>` → peer × port rectangles. */
  rng = new Map<string, Rect[]>();
}

/** Accumulators keyed `<direction><family>` (`in4`, `eg6`). */
export type Accs = Map<string, Acc>;

/**
 * The compiler's view of namespaces and containers, indexed for selector lookups. Mutable, so
 * that the incremental compiler (`incremental.ts`) keeps one across changes.
 */
export class PolicyWorld {
  /** Stored namespace labels (without the implicit name label). */
  readonly #nsLabels = new Map<string, Record<string, string>>();
  /** Labels with the implicit name label, for namespaces that have labels or pods. */
  readonly #labelCache = new Map<string, Record<string, string>>();
  readonly #podsByNs = new Map<string, Map<string, PolicyPod>>();
  readonly #pods = new Map<string, PolicyPod>();

  constructor(input?: Omit<CompileInput, 'policies'>) {
    for (const n of input?.namespaces ?? []) this.setNamespace(n);
    for (const p of input?.pods ?? []) this.setPod(p);
  }

  setNamespace(n: PolicyNamespace): void {
    this.#nsLabels.set(n.name, n.labels);
    this.#labelCache.delete(n.name);
  }

  removeNamespace(name: string): void {
    this.#nsLabels.delete(name);
    this.#labelCache.delete(name);
  }

  /** The namespace's labels, `kubernetes.io/metadata.name` included. */
  nsLabels(name: string): Record<string, string> {
    let l = this.#labelCache.get(name);
    if (!l) {
      l = { ...(this.#nsLabels.get(name) ?? {}), [NAMESPACE_NAME_LABEL]: name };
      this.#labelCache.set(name, l);
    }
    return l;
  }

  /** Adds or replaces a container. */
  setPod(p: PolicyPod): void {
    this.removePod(p.id);
    this.#pods.set(p.id, p);
    let m = this.#podsByNs.get(p.namespace);
    if (!m) this.#podsByNs.set(p.namespace, (m = new Map()));
    m.set(p.id, p);
  }

  removePod(id: string): void {
    const old = this.#pods.get(id);
    if (!old) return;
    this.#pods.delete(id);
    const m = this.#podsByNs.get(old.namespace);
    m?.delete(id);
    if (m?.size === 0) this.#podsByNs.delete(old.namespace);
  }

  pod(id: string): PolicyPod | undefined {
    return this.#pods.get(id);
  }

  pods(): IterableIterator<PolicyPod> {
    return this.#pods.values();
  }

  podsIn(ns: string): IterableIterator<PolicyPod> {
    return (this.#podsByNs.get(ns) ?? new Map<string, PolicyPod>()).values();
  }

  /** Namespaces that have containers. */
  podNamespaces(): IterableIterator<string> {
    return this.#podsByNs.keys();
  }

  peers(policyNs: string, peers: readonly NetworkPolicyPeer[] | undefined): Peers {
    if (!peers || peers.length === 0) {
      // Every address: containers need no elements of their own (the ranges cover them).
      return { pods: [], blocks: { 4: [fullRange(4)], 6: [fullRange(6)] } };
    }
    const pods = new Set<PolicyPod>();
    const blocks: Record<Family, Range[]> = { 4: [], 6: [] };
    for (const peer of peers) {
      if (peer.ipBlock) {
        for (const f of FAMILIES)
          blocks[f].push(...blockRanges(peer.ipBlock.cidr, peer.ipBlock.except ?? [], f));
        continue;
      }
      // Namespaces without containers add no peers, so only those with containers are looked at.
      const namespaces = peer.namespaceSelector
        ? [...this.podNamespaces()].filter((n) =>
            matchesSelector(peer.namespaceSelector!, this.nsLabels(n)),
          )
        : [policyNs];
      for (const ns of namespaces) {
        for (const pod of this.podsIn(ns)) {
          if (!peer.podSelector || matchesSelector(peer.podSelector, pod.labels)) pods.add(pod);
        }
      }
    }
    return { pods: [...pods], blocks };
  }
}

export function accFor(accs: Accs, dir: Direction, f: Family): Acc {
  const key = `${dir}${f}`;
  let a = accs.get(key);
  if (!a) accs.set(key, (a = new Acc()));
  return a;
}

function pushMap<T>(m: Map<string, T[]>, key: string, v: T): void {
  const list = m.get(key);
  if (list) list.push(v);
  else m.set(key, [v]);
}

/** Named port → numeric ports of `pod` for that name and protocol. */
function resolveNamed(pod: PolicyPod, name: string, proto: PolicyProtocol): bigint[] {
  return pod.namedPorts
    .filter((n) => n.name === name && n.protocol === proto)
    .map((n) => BigInt(n.port));
}

function inRanges(v: bigint, ranges: readonly Range[]): boolean {
  return ranges.some(([lo, hi]) => v >= lo && v <= hi);
}

/**
 * Emits the elements of one rule for one selected container. Ingress resolves named ports on
 * the selected container (the destination); egress on the peer (the destination).
 */
function emitRule(
  accs: Accs,
  dir: Direction,
  self: PolicyPod,
  peers: Peers,
  sels: readonly PortSel[],
  world: PolicyWorld,
): void {
  for (const selfIp of self.ips) {
    const f = familyOf(selfIp);
    const a = accFor(accs, dir, f);
    const peerIps = peers.pods.flatMap((p) => p.ips.filter((ip) => familyOf(ip) === f));
    const blocks = peers.blocks[f];
    for (const sel of sels) {
      if (sel.kind === 'all') {
        for (const ip of peerIps) a.pair.add(`${selfIp} . ${ip}`);
        for (const r of blocks) pushMap(a.net, selfIp, r);
        continue;
      }
      if (sel.kind === 'range') {
        const proto = NFT_PROTO[sel.proto];
        const [lo, hi] = sel.ports;
        for (const ip of peerIps) {
          if (lo === hi) a.port.add(`${selfIp} . ${ip} . ${proto} . ${lo}`);
          else {
            const v = IP.parse(ip).value;
            pushMap(a.rng, `${selfIp} ${proto}`, { peer: [v, v], ports: sel.ports });
          }
        }
        for (const r of blocks) pushMap(a.rng, `${selfIp} ${proto}`, { peer: r, ports: sel.ports });
        continue;
      }
      const proto = NFT_PROTO[sel.proto];
      if (dir === 'in') {
        const ports = resolveNamed(self, sel.name, sel.proto);
        for (const port of ports) {
          for (const ip of peerIps) a.port.add(`${selfIp} . ${ip} . ${proto} . ${port}`);
          for (const r of blocks)
            pushMap(a.rng, `${selfIp} ${proto}`, { peer: r, ports: [port, port] });
        }
        continue;
      }
      // Egress: the name is the destination's. Selected peers, and containers inside a block.
      const targets = new Map<string, bigint[]>();
      for (const p of peers.pods) {
        for (const ip of p.ips)
          if (familyOf(ip) === f) targets.set(ip, resolveNamed(p, sel.name, sel.proto));
      }
      if (blocks.length > 0) {
        for (const p of world.pods()) {
          for (const ip of p.ips) {
            if (familyOf(ip) === f && inRanges(IP.parse(ip).value, blocks))
              targets.set(ip, resolveNamed(p, sel.name, sel.proto));
          }
        }
      }
      for (const [ip, ports] of targets)
        for (const port of ports) a.port.add(`${selfIp} . ${ip} . ${proto} . ${port}`);
    }
  }
}

/**
 * Adds one policy's elements to `accs`.
 * @example const accs: Accs = new Map(); emitPolicy(accs, world, policy)
 */
export function emitPolicy(accs: Accs, world: PolicyWorld, policy: NetworkPolicy): void {
  const ns = policy.metadata.namespace;
  const selected = [...world.podsIn(ns)].filter((p) =>
    matchesSelector(policy.spec.podSelector, p.labels),
  );
  if (selected.length === 0) return;
  const types = policyTypesOf(policy);
  for (const [dir, type, rules] of [
    ['in', 'Ingress', (policy.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports }))],
    ['eg', 'Egress', (policy.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }))],
  ] as const) {
    if (!types.includes(type)) continue;
    for (const pod of selected)
      for (const ip of pod.ips) accFor(accs, dir, familyOf(ip)).iso.add(ip);
    for (const rule of rules) {
      const peers = world.peers(ns, rule.peers);
      const sels = portSels(rule.ports);
      for (const pod of selected) emitRule(accs, dir, pod, peers, sels, world);
    }
  }
}

/**
 * The elements of tenant isolation on one network: every member address is isolated for
 * ingress, accepts any address outside `subnets`, and the addresses of members of the same
 * tenant. Members with one tenant string form one group.
 * @example tenantAccs([{ tenant: 'a', ips: ['10.0.0.2'] }], ['10.0.0.0/24'])
 */
export function tenantAccs(
  members: readonly { tenant: string; ips: readonly string[] }[],
  subnets: readonly string[],
): Accs {
  const accs: Accs = new Map();
  const outside: Record<Family, Range[]> = {
    4: blockRanges(
      '0.0.0.0/0',
      subnets.filter((s) => !s.includes(':')),
      4,
    ),
    6: blockRanges(
      '::/0',
      subnets.filter((s) => s.includes(':')),
      6,
    ),
  };
  for (const m of members) {
    for (const self of m.ips) {
      const f = familyOf(self);
      const a = accFor(accs, 'in', f);
      a.iso.add(self);
      for (const r of outside[f]) pushMap(a.net, self, r);
      for (const peer of members) {
        if (peer.tenant !== m.tenant) continue;
        for (const ip of peer.ips)
          if (ip !== self && familyOf(ip) === f) a.pair.add(`${self} . ${ip}`);
      }
    }
  }
  return accs;
}

/**
 * Compiles policies to set elements, all at once. Pure and deterministic. The daemon keeps the
 * result up to date with `IncrementalCompiler` instead; this is the reference it is tested
 * against, and what the goldens show.
 * @example compilePolicies({ policies, pods, namespaces }).get('in_iso4')
 */
export function compilePolicies(input: CompileInput): PolicyElements {
  const world = new PolicyWorld(input);
  const accs: Accs = new Map();
  for (const policy of input.policies) emitPolicy(accs, world, policy);
  return finish(accs);
}

function finish(accs: Accs): PolicyElements {
  const out: PolicyElements = new Map();
  for (const name of setNames()) out.set(name, new Set());
  for (const [key, a] of accs) {
    const dir = key.slice(0, 2);
    const f = Number(key.slice(2)) as Family;
    const set = (kind: SetKind) => out.get(`${dir}_${kind}${f}`)!;
    const shard = (kind: SetKind, peer: Range) => out.get(shardSet(dir, kind, f, peer))!;
    for (const e of a.iso) set('iso').add(e);
    for (const e of a.pair) set('pair').add(e);
    for (const e of a.port) set('port').add(e);
    for (const [self, ranges] of a.net) {
      for (const r of mergeRanges(ranges))
        shard('net', r).add(`${self} . ${formatAddrRange(f, r)}`);
    }
    for (const [selfProto, rects] of a.rng) {
      const [self, proto] = selfProto.split(' ');
      for (const r of disjointRects(rects)) {
        shard('rng', r.peer).add(
          `${self} . ${formatAddrRange(f, r.peer)} . ${proto} . ${formatPortRange(r.ports)}`,
        );
      }
    }
  }
  return out;
}

/**
 * The policy table, without elements. Loading it replaces the table atomically. The forward
 * chain runs just before cnm's own (priority filter - 1) and only ever drops: what it lets
 * through still meets cnm's network isolation rules. Each direction's check chain looks up the
 * hash sets and the wide interval sets, then `goto`s the shard chain of the peer's shard bits
 * (a constant verdict map); a `return` there returns to the forward chain, as from the check
 * chain itself.
 *
 * Replies pass (conntrack), and so does a TCP segment without SYN or RST that conntrack sees as
 * new: conntrack picking up a connection it never saw open. That happens when a bridge's
 * br_netfilter switch goes on (the engine turns it on only while the network has an isolated
 * container, so connections made before were never tracked): they survive the new policy, as
 * tracked ones do. It opens nothing new: without a SYN the peer's stack answers a segment for
 * a connection it does not have with a reset, so no denied peer can start a connection.
 */
export function policyRuleset(table: string): string {
  const sets: string[] = [];
  for (const d of ['in', 'eg'] as const) {
    for (const f of FAMILIES) {
      for (const k of SET_KINDS) {
        const names = INTERVAL_KINDS.includes(k)
          ? shardSuffixes().map((sfx) => `${d}_${k}${f}_${sfx}`)
          : [`${d}_${k}${f}`];
        for (const name of names) {
          const shape = setShape(name);
          const flags = shape.interval ? ' flags interval;' : '';
          sets.push(`  set ${name} { type ${shape.key.join(' . ')};${flags} }`);
        }
      }
    }
  }
  const check = (d: Direction, f: Family): string => {
    const ip = f === 4 ? 'ip' : 'ip6';
    const [self, peer] = d === 'in' ? ['daddr', 'saddr'] : ['saddr', 'daddr'];
    const k2 = `${ip} ${self} . ${ip} ${peer}`;
    const k4 = `${k2} . meta l4proto . th dport`;
    const shardValue = (j: number): string =>
      f === 4 ? `0.0.${j}.0` : j === 0 ? '::' : `0:0:0:${j.toString(16)}::`;
    const mask = shardValue(SHARDS - 1);
    const vmap = Array.from(
      { length: SHARDS },
      (_, j) => `${shardValue(j)} : goto ${d}${f}_${j}`,
    ).join(', ');
    const shards = Array.from(
      { length: SHARDS },
      (_, j) => `  chain ${d}${f}_${j} {
    ${k2} @${d}_net${f}_${j} return
    ${k4} @${d}_rng${f}_${j} return
    drop
  }`,
    );
    return `  chain ${d}${f} {
    ${k2} @${d}_pair${f} return
    ${k4} @${d}_port${f} return
    ${k2} @${d}_net${f}_w return
    ${k4} @${d}_rng${f}_w return
    ${ip} ${peer} & ${mask} vmap { ${vmap} }
    drop
  }
${shards.join('\n')}`;
  };
  return `table inet ${table} {}
delete table inet ${table}
table inet ${table} {
${sets.join('\n')}
  chain forward {
    type filter hook forward priority filter - 1; policy accept;
    ct state established,related accept
    ct state new tcp flags & (syn | rst | ack) == ack accept
    ip saddr @eg_iso4 jump eg4
    ip daddr @in_iso4 jump in4
    ip6 saddr @eg_iso6 jump eg6
    ip6 daddr @in_iso6 jump in6
  }
${check('eg', 4)}
${check('in', 4)}
${check('eg', 6)}
${check('in', 6)}
}
`;
}

/** `add|delete element` commands for `elems` of one set, in chunks. */
export function elementLines(
  verb: 'add' | 'delete',
  table: string,
  set: string,
  elems: readonly string[],
): string[] {
  const out: string[] = [];
  // Chunks keep each command line a reasonable size for the nft parser.
  for (let i = 0; i < elems.length; i += 512) {
    out.push(`${verb} element inet ${table} ${set} { ${elems.slice(i, i + 512).join(', ')} }`);
  }
  return out;
}

/**
 * The nft script turning `prev` elements into `next` ones: deletions first (an interval element
 * is replaced by delete + add in one transaction), then additions. Empty when equal.
 */
export function diffScript(table: string, prev: PolicyElements, next: PolicyElements): string {
  const dels: string[] = [];
  const adds: string[] = [];
  for (const name of setNames()) {
    const a = prev.get(name) ?? new Set<string>();
    const b = next.get(name) ?? new Set<string>();
    dels.push(
      ...elementLines(
        'delete',
        table,
        name,
        [...a].filter((e) => !b.has(e)),
      ),
    );
    adds.push(
      ...elementLines(
        'add',
        table,
        name,
        [...b].filter((e) => !a.has(e)),
      ),
    );
  }
  const lines = [...dels, ...adds];
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

/** The whole table with every element of `elems`: for start-up and repair. */
export function fullScript(table: string, elems: PolicyElements): string {
  return policyRuleset(table) + diffScript(table, new Map(), elems);
}

/** Elements as sorted nft `add element` lines, one element each: the golden-file form. */
export function renderElements(table: string, elems: PolicyElements): string {
  const lines: string[] = [];
  for (const name of setNames()) {
    for (const e of [...(elems.get(name) ?? [])].sort())
      lines.push(`add element inet ${table} ${name} { ${e} }`);
  }
  return lines.join('\n') + '\n';
}
