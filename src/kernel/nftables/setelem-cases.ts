/**
 * Element changes shared by the encoder's golden test (`setelem.test.ts`), the fixture capture
 * (`test/fixtures/nftables/capture.ts`, which records what `nft` itself sends for each) and the
 * kernel contract test (`test/integration/84-nft-elements.test.ts`). Every set shape cnm uses:
 * plain and concatenated hash keys (interface names and MACs too), concatenated intervals
 * (pipapo), single-field intervals (rbtree, also one open to the top), verdict and data maps. In order: deletes follow the adds
 * they undo.
 */
import type { NftElementChange, NftSetShape } from '../types.js';

/** Table (family inet) the cases act on. */
export const CASE_TABLE = 'cnmt_elems';

/** The sets of the case table: name → shape and nft declaration. */
export const CASE_SETS: Record<string, { shape: NftSetShape; decl: string }> = {
  iso4: { shape: { key: ['ipv4_addr'], interval: false }, decl: 'set iso4 { type ipv4_addr; }' },
  pair6: {
    shape: { key: ['ipv6_addr', 'ipv6_addr'], interval: false },
    decl: 'set pair6 { type ipv6_addr . ipv6_addr; }',
  },
  port4: {
    shape: { key: ['ipv4_addr', 'ipv4_addr', 'inet_proto', 'inet_service'], interval: false },
    decl: 'set port4 { type ipv4_addr . ipv4_addr . inet_proto . inet_service; }',
  },
  net4: {
    shape: { key: ['ipv4_addr', 'ipv4_addr'], interval: true },
    decl: 'set net4 { type ipv4_addr . ipv4_addr; flags interval; }',
  },
  rng4: {
    shape: { key: ['ipv4_addr', 'ipv4_addr', 'inet_proto', 'inet_service'], interval: true },
    decl: 'set rng4 { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags interval; }',
  },
  rng6: {
    shape: { key: ['ipv6_addr', 'ipv6_addr', 'inet_proto', 'inet_service'], interval: true },
    decl: 'set rng6 { type ipv6_addr . ipv6_addr . inet_proto . inet_service; flags interval; }',
  },
  iv4: {
    shape: { key: ['ipv4_addr'], interval: true },
    decl: 'set iv4 { type ipv4_addr; flags interval; }',
  },
  vm: {
    shape: { key: ['ipv4_addr'], interval: false, data: 'verdict' },
    decl: 'map vm { type ipv4_addr : verdict; }',
  },
  dm: {
    shape: { key: ['ipv4_addr'], interval: false, data: 'mark' },
    decl: 'map dm { type ipv4_addr : mark; }',
  },
  ifm: {
    shape: { key: ['ifname', 'inet_service'], interval: false, data: 'verdict' },
    decl: 'map ifm { type ifname . inet_service : verdict; }',
  },
  ivm: {
    shape: { key: ['ipv4_addr'], interval: true, data: 'verdict' },
    decl: 'map ivm { type ipv4_addr : verdict; flags interval; }',
  },
  ifmac: {
    shape: { key: ['ifname', 'ether_addr'], interval: false },
    decl: 'set ifmac { type ifname . ether_addr; }',
  },
};

/** The case table's definition (one chain `c` as a jump target). */
export function caseTableScript(): string {
  const decls = Object.values(CASE_SETS).map((s) => `  ${s.decl}`);
  return `table inet ${CASE_TABLE} {\n${decls.join('\n')}\n  chain c {}\n}\n`;
}

export interface ElementCase {
  /** Fixture name (`<name>.hex`). */
  name: string;
  change: NftElementChange;
}

function c(name: string, op: 'add' | 'delete', set: string, elements: string[]): ElementCase {
  return { name, change: { op, set, shape: CASE_SETS[set]!.shape, elements } };
}

export const ELEMENT_CASES: readonly ElementCase[] = [
  c('hash-add', 'add', 'iso4', ['10.0.0.2', '10.0.0.3']),
  c('concat-v6-add', 'add', 'pair6', ['fd00::2 . fd00::3']),
  c('concat-ports-add', 'add', 'port4', [
    '10.0.0.2 . 10.0.0.3 . tcp . 80',
    '10.0.0.2 . 10.0.0.4 . udp . 53',
  ]),
  c('pipapo-add', 'add', 'net4', ['10.0.0.2 . 10.1.0.0/16', '10.0.0.2 . 10.2.0.1-10.2.0.9']),
  c('pipapo-ports-add', 'add', 'rng4', [
    '10.0.0.2 . 10.1.0.0/16 . tcp . 80-90',
    '10.0.0.3 . 10.3.0.1 . sctp . 7',
  ]),
  c('pipapo-v6-add', 'add', 'rng6', ['fd00::2 . fd00:1::/32 . udp . 1-65535']),
  c('rbtree-add', 'add', 'iv4', ['10.0.0.0/24', '10.0.2.5', '192.168.0.1-192.168.0.9']),
  c('rbtree-open-add', 'add', 'iv4', ['255.255.255.0/24']),
  c('verdict-map-add', 'add', 'vm', ['10.0.0.2 : accept', '10.0.0.3 : jump c', '10.0.0.4 : drop']),
  c('data-map-add', 'add', 'dm', ['10.0.0.2 : 0x10']),
  c('ifname-map-add', 'add', 'ifm', ['"cnm0" . 80 : goto c']),
  c('interval-map-add', 'add', 'ivm', ['10.9.0.0/16 : accept']),
  c('ifname-mac-add', 'add', 'ifmac', ['"veth1" . 02:42:0a:09:00:02', '"veth2" . 2:0:0:0:0:ff']),
  c('hash-del', 'delete', 'iso4', ['10.0.0.3']),
  c('concat-ports-del', 'delete', 'port4', ['10.0.0.2 . 10.0.0.4 . udp . 53']),
  c('pipapo-del', 'delete', 'net4', ['10.0.0.2 . 10.2.0.1-10.2.0.9']),
  c('pipapo-v6-del', 'delete', 'rng6', ['fd00::2 . fd00:1::/32 . udp . 1-65535']),
  c('rbtree-del', 'delete', 'iv4', ['10.0.2.5']),
  c('verdict-map-del', 'delete', 'vm', ['10.0.0.3']),
  c('ifname-mac-del', 'delete', 'ifmac', ['"veth2" . 02:00:00:00:00:ff']),
];
