/**
 * The incremental policy compiler: keeps the policy table's elements equal to what
 * `compilePolicies` would compute for the current policies, containers and namespaces, but
 * recomputes only what a change touches and hands back element deltas.
 *
 * - Each source (a NetworkPolicy, or an extra rule source such as a tenant-isolated network)
 *   has its compiled contribution cached (`Accs`: per direction and family, the hash elements and
 *   the raw interval rectangles, before merging).
 * - A change marks sources dirty: a policy change marks that policy; a container change marks
 *   the policies that select it or name it as a peer, before or after the change; a namespace
 *   label change marks the policies with a namespace selector matching the old or new labels.
 * - Hash-set elements (`iso`, `pair`, `port`) are reference-counted across sources: an element
 *   is added when its first source appears and deleted when its last one goes.
 * - Interval-set elements (`net`, `rng`) depend on the union of every source's rectangles for
 *   one (self address, protocol): the output is the canonical cut of that union into disjoint
 *   runs (`disjointRects`). A change recomputes only the window of the peer axis it touches,
 *   widened to the output runs overlapping or adjacent to it; runs outside keep their elements.
 *
 * `flush()` returns the net delta since the previous flush; the caller applies it as one nft
 * transaction (`deltaScript`). Chains never change.
 */
import type { Family } from '../netaddr/index.js';
import {
  PolicyWorld,
  elementLines,
  emitPolicy,
  setNames,
  setShape,
  shardSet,
  type Acc,
  type Accs,
  type PolicyElements,
  type PolicySetShape,
} from './compile.js';
import {
  disjointRects,
  formatAddrRange,
  formatPortRange,
  type Range,
  type Rect,
} from './ranges.js';
import { matchesSelector } from './selector.js';
import type { NetworkPolicy, NetworkPolicyPeer, PolicyNamespace, PolicyPod } from './types.js';

/** Elements to add and to delete, per set name. */
export interface ElementDelta {
  add: PolicyElements;
  del: PolicyElements;
}

/**
 * A rule source besides NetworkPolicies: computes its contribution from the world, and says
 * whether a container (before or after a change) may matter to it.
 */
export interface ExtraSource {
  compute(world: PolicyWorld): Accs;
  touches(pod: PolicyPod): boolean;
}

/** Interval state of one (set, self address[, protocol]). */
interface Ival {
  /** The logical set (`in_rng4`); each piece goes to its shard of it (`shardSet`). */
  set: string;
  family: Family;
  self: string;
  /** Undefined for the `net` sets (peer ranges only). */
  proto: string | undefined;
  /** Source key → its rectangles (`net` ranges carry ports [0, 0]). */
  rects: Map<string, Rect[]>;
  /**
   * The same rectangles, sorted by the low end of their peer range, so a recompute finds those
   * overlapping its window without scanning every source (10,000 policies on one container).
   */
  byLo: Rect[];
  /** An upper bound of every indexed rectangle's peer width (hi - lo): never shrinks. */
  span: bigint;
  /** The emitted pieces, sorted by peer range (pieces of one run share it). */
  runs: Rect[];
}

const HASH_KINDS = ['iso', 'pair', 'port'] as const;
const NO_PORTS: Range = [0n, 0n];

function rectKey(r: Rect): string {
  return `${r.peer[0]}-${r.peer[1]}/${r.ports[0]}-${r.ports[1]}`;
}

function overlaps(a: Range, b: Range): boolean {
  return a[0] <= b[1] && b[0] <= a[1];
}

/** Index of the first rectangle of `byLo` whose peer range starts at or after `lo`. */
function lowerBound(byLo: readonly Rect[], lo: bigint): number {
  let i = 0;
  let j = byLo.length;
  while (i < j) {
    const m = (i + j) >> 1;
    if (byLo[m]!.peer[0] < lo) i = m + 1;
    else j = m;
  }
  return i;
}

function index(iv: Ival, r: Rect): void {
  iv.byLo.splice(lowerBound(iv.byLo, r.peer[0]), 0, r);
  const w = r.peer[1] - r.peer[0];
  if (w > iv.span) iv.span = w;
}

/** Removes rectangle `r` (that very object) from the index. */
function unindex(iv: Ival, r: Rect): void {
  for (let k = lowerBound(iv.byLo, r.peer[0]); k < iv.byLo.length; k++) {
    if (iv.byLo[k] === r) {
      iv.byLo.splice(k, 1);
      return;
    }
    if (iv.byLo[k]!.peer[0] > r.peer[0]) break;
  }
  throw new Error('Interval index out of step with its sources (a bug)');
}

/** Does `peer` (a selector peer of a policy in `policyNs`) select `pod`? */
function peerSelects(
  world: PolicyWorld,
  policyNs: string,
  peer: NetworkPolicyPeer,
  pod: PolicyPod,
): boolean {
  if (peer.ipBlock) return false;
  if (peer.namespaceSelector) {
    if (!matchesSelector(peer.namespaceSelector, world.nsLabels(pod.namespace))) return false;
  } else if (pod.namespace !== policyNs) {
    return false;
  }
  return !peer.podSelector || matchesSelector(peer.podSelector, pod.labels);
}

/** May `pod` change the contribution of `policy`? Conservative: true when unsure. */
function policyTouches(world: PolicyWorld, policy: NetworkPolicy, pod: PolicyPod): boolean {
  const ns = policy.metadata.namespace;
  if (pod.namespace === ns && matchesSelector(policy.spec.podSelector, pod.labels)) return true;
  const rules = [
    ...(policy.spec.ingress ?? []).map((r) => ({ eg: false, peers: r.from, ports: r.ports })),
    ...(policy.spec.egress ?? []).map((r) => ({ eg: true, peers: r.to, ports: r.ports })),
  ];
  for (const r of rules) {
    const peers = r.peers ?? [];
    // Egress named ports resolve on every container inside an address block (or anywhere).
    if (
      r.eg &&
      (r.ports ?? []).some((p) => typeof p.port === 'string') &&
      (peers.length === 0 || peers.some((p) => p.ipBlock))
    )
      return true;
    if (peers.some((p) => peerSelects(world, ns, p, pod))) return true;
  }
  return false;
}

/** The incremental compiler; see the module comment. */
export class IncrementalCompiler {
  readonly world = new PolicyWorld();
  #policies = new Map<string, NetworkPolicy>();
  #extras = new Map<string, ExtraSource>();
  #contrib = new Map<string, Accs>();
  #dirty = new Set<string>();
  #counts = new Map<string, Map<string, number>>();
  #ivals = new Map<string, Ival>();
  /** Ival key → hull of the peer ranges that changed since the last flush. */
  #dirtyIvals = new Map<string, Range>();
  #elements: PolicyElements = new Map(setNames().map((n) => [n, new Set<string>()]));
  #delta: ElementDelta = { add: new Map(), del: new Map() };

  /** Adds or replaces a policy (`metadata.namespace` filled in). */
  setPolicy(p: NetworkPolicy): void {
    const key = `p:${p.metadata.namespace}/${p.metadata.name}`;
    this.#policies.set(key, p);
    this.#dirty.add(key);
  }

  removePolicy(namespace: string, name: string): void {
    const key = `p:${namespace}/${name}`;
    if (this.#policies.delete(key)) this.#dirty.add(key);
  }

  /** Adds or replaces an extra rule source under `key` (a tenant network). */
  setExtra(key: string, source: ExtraSource): void {
    this.#extras.set(`x:${key}`, source);
    this.#dirty.add(`x:${key}`);
  }

  removeExtra(key: string): void {
    if (this.#extras.delete(`x:${key}`)) this.#dirty.add(`x:${key}`);
  }

  /** Adds or replaces a container. */
  setPod(pod: PolicyPod): void {
    const old = this.world.pod(pod.id);
    if (old) this.#markPod(old);
    this.world.setPod(pod);
    this.#markPod(pod);
  }

  removePod(id: string): void {
    const old = this.world.pod(id);
    if (!old) return;
    this.#markPod(old);
    this.world.removePod(id);
  }

  setNamespace(n: PolicyNamespace): void {
    this.#markNamespace(n.name, () => this.world.setNamespace(n));
  }

  removeNamespace(name: string): void {
    this.#markNamespace(name, () => this.world.removeNamespace(name));
  }

  #markPod(pod: PolicyPod): void {
    for (const [key, p] of this.#policies) {
      if (!this.#dirty.has(key) && policyTouches(this.world, p, pod)) this.#dirty.add(key);
    }
    for (const [key, x] of this.#extras) if (x.touches(pod)) this.#dirty.add(key);
  }

  #markNamespace(name: string, change: () => void): void {
    const before = this.world.nsLabels(name);
    change();
    const after = this.world.nsLabels(name);
    if (this.world.podsIn(name).next().done) return; // no containers: no element depends on it
    for (const [key, p] of this.#policies) {
      const peers = [
        ...(p.spec.ingress ?? []).flatMap((r) => r.from ?? []),
        ...(p.spec.egress ?? []).flatMap((r) => r.to ?? []),
      ];
      const hit = peers.some(
        (x) =>
          x.namespaceSelector &&
          (matchesSelector(x.namespaceSelector, before) ||
            matchesSelector(x.namespaceSelector, after)),
      );
      if (hit) this.#dirty.add(key);
    }
  }

  /** Every element as it stands after the last `flush()` (do not mutate). */
  elements(): PolicyElements {
    return this.#elements;
  }

  /** Recomputes what changed; returns the element delta since the previous flush. */
  flush(): ElementDelta {
    for (const key of this.#dirty) {
      const next: Accs = new Map();
      const policy = this.#policies.get(key);
      const extra = this.#extras.get(key);
      if (policy) emitPolicy(next, this.world, policy);
      else if (extra) for (const [k, v] of extra.compute(this.world)) next.set(k, v);
      this.#replace(key, this.#contrib.get(key) ?? new Map(), next);
      if (next.size > 0) this.#contrib.set(key, next);
      else this.#contrib.delete(key);
    }
    this.#dirty.clear();
    for (const [k, hull] of this.#dirtyIvals) this.#recompute(this.#ivals.get(k)!, hull);
    this.#dirtyIvals.clear();
    const out = this.#delta;
    this.#delta = { add: new Map(), del: new Map() };
    return out;
  }

  // ---------------------------------------------------------------- aggregation

  #replace(source: string, prev: Accs, next: Accs): void {
    const empty = new Map<string, never>();
    for (const dk of new Set([...prev.keys(), ...next.keys()])) {
      const a: Acc | undefined = prev.get(dk);
      const b: Acc | undefined = next.get(dk);
      const dir = dk.slice(0, 2);
      const family = Number(dk.slice(2)) as Family;
      for (const kind of HASH_KINDS) {
        const set = `${dir}_${kind}${family}`;
        const sa = a?.[kind] ?? new Set<string>();
        const sb = b?.[kind] ?? new Set<string>();
        for (const e of sa) if (!sb.has(e)) this.#count(set, e, -1);
        for (const e of sb) if (!sa.has(e)) this.#count(set, e, 1);
      }
      const asRects = (m: Map<string, Range[]>): Map<string, Rect[]> =>
        new Map([...m].map(([k, rs]) => [k, rs.map((peer) => ({ peer, ports: NO_PORTS }))]));
      this.#ivalChange(
        source,
        `${dir}_net${family}`,
        family,
        asRects(a?.net ?? empty),
        asRects(b?.net ?? empty),
        false,
      );
      this.#ivalChange(
        source,
        `${dir}_rng${family}`,
        family,
        a?.rng ?? empty,
        b?.rng ?? empty,
        true,
      );
    }
  }

  #ivalChange(
    source: string,
    set: string,
    family: Family,
    prev: Map<string, Rect[]>,
    next: Map<string, Rect[]>,
    withProto: boolean,
  ): void {
    for (const sk of new Set([...prev.keys(), ...next.keys()])) {
      const before = prev.get(sk) ?? [];
      const after = next.get(sk) ?? [];
      const kb = new Set(before.map(rectKey));
      const ka = new Set(after.map(rectKey));
      const changed = [
        ...before.filter((r) => !ka.has(rectKey(r))),
        ...after.filter((r) => !kb.has(rectKey(r))),
      ];
      if (changed.length === 0) continue;
      const key = `${set} ${sk}`;
      let iv = this.#ivals.get(key);
      if (!iv) {
        const [self, proto] = sk.split(' ');
        iv = {
          set,
          family,
          self: self!,
          proto: withProto ? proto : undefined,
          rects: new Map(),
          byLo: [],
          span: 0n,
          runs: [],
        };
        this.#ivals.set(key, iv);
      }
      for (const r of iv.rects.get(source) ?? []) unindex(iv, r);
      for (const r of after) index(iv, r);
      if (after.length > 0) iv.rects.set(source, after);
      else iv.rects.delete(source);
      let [lo, hi] = this.#dirtyIvals.get(key) ?? [changed[0]!.peer[0], changed[0]!.peer[1]];
      for (const r of changed) {
        if (r.peer[0] < lo) lo = r.peer[0];
        if (r.peer[1] > hi) hi = r.peer[1];
      }
      this.#dirtyIvals.set(key, [lo, hi]);
    }
  }

  /**
   * Recomputes the output runs of `iv` inside the changed window `[lo, hi]`, widened to the
   * runs overlapping or adjacent to it. Outside that, the union is unchanged and the runs at the
   * widened edges cannot merge with their outer neighbours (those differed before and the
   * points on both sides of each edge kept their port sets), so their elements stay.
   */
  #recompute(iv: Ival, [lo, hi]: Range): void {
    const runs = iv.runs;
    // First piece whose peer range ends at or after lo - 1 (peer ranges of pieces are sorted).
    let i = 0;
    let j = runs.length;
    while (i < j) {
      const m = (i + j) >> 1;
      if (runs[m]!.peer[1] < lo - 1n) i = m + 1;
      else j = m;
    }
    j = i;
    let wlo = lo;
    let whi = hi;
    while (j < runs.length && runs[j]!.peer[0] <= hi + 1n) {
      if (runs[j]!.peer[0] < wlo) wlo = runs[j]!.peer[0];
      if (runs[j]!.peer[1] > whi) whi = runs[j]!.peer[1];
      j++;
    }
    const win: Range = [wlo, whi];
    const clipped: Rect[] = [];
    // Rectangles overlapping the window start no earlier than wlo - span and no later than whi.
    const byLo = iv.byLo;
    for (let k = lowerBound(byLo, wlo - iv.span); k < byLo.length; k++) {
      const r = byLo[k]!;
      if (r.peer[0] > whi) break;
      if (!overlaps(r.peer, win)) continue;
      clipped.push({
        peer: [r.peer[0] > wlo ? r.peer[0] : wlo, r.peer[1] < whi ? r.peer[1] : whi],
        ports: r.ports,
      });
    }
    const fresh = disjointRects(clipped);
    const old = runs.splice(i, j - i, ...fresh);
    // Text → physical set (the text holds the peer range, which picks the shard).
    const oldText = new Map(old.map((r) => [this.#render(iv, r), this.#shard(iv, r)]));
    const newText = new Map(fresh.map((r) => [this.#render(iv, r), this.#shard(iv, r)]));
    for (const [e, set] of oldText) if (!newText.has(e)) this.#emit(set, e, false);
    for (const [e, set] of newText) if (!oldText.has(e)) this.#emit(set, e, true);
    if (iv.rects.size === 0 && runs.length === 0) {
      this.#ivals.delete(`${iv.set} ${iv.self}${iv.proto ? ` ${iv.proto}` : ''}`);
    }
  }

  /** The physical set (shard or wide set) of piece `r` of `iv`. */
  #shard(iv: Ival, r: Rect): string {
    return shardSet(iv.set.slice(0, 2), iv.set.slice(3, 6), iv.family, r.peer);
  }

  #render(iv: Ival, r: Rect): string {
    const addr = formatAddrRange(iv.family, r.peer);
    return iv.proto === undefined
      ? `${iv.self} . ${addr}`
      : `${iv.self} . ${addr} . ${iv.proto} . ${formatPortRange(r.ports)}`;
  }

  #count(set: string, elem: string, by: 1 | -1): void {
    let m = this.#counts.get(set);
    if (!m) this.#counts.set(set, (m = new Map()));
    const n = (m.get(elem) ?? 0) + by;
    if (n > 0) m.set(elem, n);
    else m.delete(elem);
    if (by === 1 && n === 1) this.#emit(set, elem, true);
    if (by === -1 && n === 0) this.#emit(set, elem, false);
  }

  #emit(set: string, elem: string, add: boolean): void {
    const cur = this.#elements.get(set)!;
    const [mine, other] = add
      ? [this.#delta.add, this.#delta.del]
      : [this.#delta.del, this.#delta.add];
    if (add) cur.add(elem);
    else cur.delete(elem);
    // An add after a delete of the same element within one flush cancels out (and vice versa).
    if (other.get(set)?.delete(elem)) return;
    let s = mine.get(set);
    if (!s) mine.set(set, (s = new Set()));
    s.add(elem);
  }
}

/** One set's part of a delta, for the kernel's element batch (`Kernel.nftElements`). */
export interface SetChange {
  op: 'add' | 'delete';
  set: string;
  shape: PolicySetShape;
  elements: string[];
}

/**
 * `delta` as per-set changes in the order `deltaScript` uses: deletions first (an interval
 * element is replaced by delete + add in one transaction), then additions. Empty when there is
 * nothing to do.
 */
export function deltaChanges(delta: ElementDelta): SetChange[] {
  const dels: SetChange[] = [];
  const adds: SetChange[] = [];
  for (const set of setNames()) {
    const d = delta.del.get(set);
    const a = delta.add.get(set);
    if (d && d.size > 0) dels.push({ op: 'delete', set, shape: setShape(set), elements: [...d] });
    if (a && a.size > 0) adds.push({ op: 'add', set, shape: setShape(set), elements: [...a] });
  }
  return [...dels, ...adds];
}

/**
 * The nft script applying `delta`: deletions first (an interval element is replaced by delete +
 * add in one transaction), then additions. Empty when there is nothing to do.
 */
export function deltaScript(table: string, delta: ElementDelta): string {
  const dels: string[] = [];
  const adds: string[] = [];
  for (const name of setNames()) {
    dels.push(...elementLines('delete', table, name, [...(delta.del.get(name) ?? [])]));
    adds.push(...elementLines('add', table, name, [...(delta.add.get(name) ?? [])]));
  }
  const lines = [...dels, ...adds];
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}
