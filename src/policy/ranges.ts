/**
 * Interval arithmetic for the compiler: CIDRs minus their `except` holes as address ranges, and
 * the normalisation that makes interval-set elements disjoint (the kernel refuses overlapping
 * elements in concatenated interval sets, and several policies may cover the same ground).
 */
import { IP, Prefix, type Family } from '../netaddr/index.js';

/** An inclusive range of addresses (or ports) as bigints. */
export type Range = readonly [lo: bigint, hi: bigint];

/** The whole address space of a family. */
export function fullRange(family: Family): Range {
  return [0n, family === 4 ? 0xffffffffn : (1n << 128n) - 1n];
}

/** The range of one CIDR. */
export function prefixRange(p: Prefix): Range {
  return [p.first().value, p.last().value];
}

/**
 * Sorts and merges overlapping or adjacent ranges.
 * @example mergeRanges([[5n, 9n], [1n, 4n]]) // [[1n, 9n]]
 */
export function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else {
      out.push([lo, hi]);
    }
  }
  return out;
}

/**
 * `cidr` minus every `except` CIDR, as disjoint sorted ranges; empty when the family differs
 * from `family`.
 * @example blockRanges('10.0.0.0/24', ['10.0.0.128/25'], 4) // [[10.0.0.0, 10.0.0.127]]
 */
export function blockRanges(cidr: string, except: readonly string[], family: Family): Range[] {
  const p = Prefix.parse(cidr);
  if (p.family !== family) return [];
  let cur: Range[] = [prefixRange(p)];
  for (const e of except) {
    const [elo, ehi] = prefixRange(Prefix.parse(e));
    const next: Range[] = [];
    for (const [lo, hi] of cur) {
      if (ehi < lo || elo > hi) {
        next.push([lo, hi]);
        continue;
      }
      if (elo > lo) next.push([lo, elo - 1n]);
      if (ehi < hi) next.push([ehi + 1n, hi]);
    }
    cur = next;
  }
  return cur;
}

/** An address range as nft text: a CIDR when it is one, else `first-last`. */
export function formatAddrRange(family: Family, [lo, hi]: Range): string {
  const size = hi - lo + 1n;
  if (lo === hi) return IP.fromValue(family, lo).toString();
  if ((size & (size - 1n)) === 0n && lo % size === 0n) {
    const bits = (family === 4 ? 32 : 128) - (size.toString(2).length - 1);
    return `${IP.fromValue(family, lo).toString()}/${bits}`;
  }
  return `${IP.fromValue(family, lo).toString()}-${IP.fromValue(family, hi).toString()}`;
}

/** A port range as nft text. */
export function formatPortRange([lo, hi]: Range): string {
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}

/** A rectangle: a peer address range times a port range. */
export interface Rect {
  peer: Range;
  ports: Range;
}

/**
 * Rewrites a union of rectangles as disjoint rectangles: the peer axis is cut at every edge,
 * each slice gets the merged port ranges of the rectangles covering it, and neighbouring slices
 * with the same ports are joined again. O(n log n) for n rectangles when few overlap.
 */
export function disjointRects(rects: readonly Rect[]): Rect[] {
  if (rects.length === 0) return [];
  const events: { at: bigint; idx: number; start: boolean }[] = [];
  rects.forEach((r, idx) => {
    events.push({ at: r.peer[0], idx, start: true });
    events.push({ at: r.peer[1] + 1n, idx, start: false });
  });
  events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const active = new Set<number>();
  const out: { peer: [bigint, bigint]; ports: Range[]; key: string }[] = [];
  let i = 0;
  while (i < events.length) {
    const at = events[i]!.at;
    while (i < events.length && events[i]!.at === at) {
      const e = events[i]!;
      if (e.start) active.add(e.idx);
      else active.delete(e.idx);
      i++;
    }
    if (active.size === 0 || i >= events.length) continue;
    const end = events[i]!.at - 1n;
    const ports = mergeRanges([...active].map((k) => rects[k]!.ports));
    const key = ports.map((p) => `${p[0]}-${p[1]}`).join(',');
    const last = out[out.length - 1];
    if (last && last.key === key && last.peer[1] + 1n === at) last.peer[1] = end;
    else out.push({ peer: [at, end], ports, key });
  }
  return out.flatMap((s) => s.ports.map((ports) => ({ peer: s.peer, ports })));
}
