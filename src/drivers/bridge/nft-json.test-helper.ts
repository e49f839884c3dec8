/** Test helper: nft's JSON listings built from a {@link FirewallShape}. */
import type { FirewallShape } from './firewall.js';

/** nft's JSON listing of one family's table with `shape`'s chains, rules and elements. */
export function shapeJson(shape: FirewallShape, family: string, table = 'cnm'): string {
  const items: Record<string, unknown>[] = [{ metainfo: { version: '1.0.6' } }];
  items.push({ table: { family, name: table, handle: 1 } });
  for (const [key, n] of shape.sets) {
    const [f, name] = key.split(' ');
    if (f !== family) continue;
    // The intended element texts where the shape has them (canonical text reads back as is).
    const texts = shape.elements?.get(key);
    const elem = Array.from({ length: n }, (_, i) => texts?.[i] ?? `e${i}`);
    items.push({ set: { family, name, table, ...(n > 0 ? { elem } : {}) } });
  }
  for (const [key, n] of shape.chains) {
    const [f, name] = key.split(' ');
    if (f !== family) continue;
    items.push({ chain: { family, table, name } });
    for (let i = 0; i < n; i++) items.push({ rule: { family, table, chain: name, expr: [] } });
  }
  return JSON.stringify({ nftables: items });
}
