/**
 * Options of the `macvlan` and `ipvlan` drivers, parsed from Docker's option names into one
 * typed value each.
 */
import { InvalidError } from '../../errors.js';

/** Docker's macvlan modes (`source` is a kernel mode Docker does not offer). */
export const MACVLAN_MODES = ['bridge', 'private', 'vepa', 'passthru'] as const;
export type MacvlanMode = (typeof MACVLAN_MODES)[number];

/** Docker's ipvlan modes and flags. */
export const IPVLAN_MODES = ['l2', 'l3', 'l3s'] as const;
export type IpvlanMode = (typeof IPVLAN_MODES)[number];
export const IPVLAN_FLAGS = ['bridge', 'private', 'vepa'] as const;
export type IpvlanFlag = (typeof IPVLAN_FLAGS)[number];

/** A parent link, plain (`eth0`) or an 802.1q sub-interface to use or create (`eth0.10`). */
export interface ParentSpec {
  /** The link the children hang off: `eth0` or `eth0.10`. */
  name: string;
  /** For `IFACE.VID`: the lower link and VLAN id. */
  vlan?: { lower: string; id: number };
}

/** Typed macvlan options. */
export interface MacvlanOptions {
  kind: 'macvlan';
  parent: ParentSpec;
  mode: MacvlanMode;
}

/** Typed ipvlan options. */
export interface IpvlanOptions {
  kind: 'ipvlan';
  parent: ParentSpec;
  mode: IpvlanMode;
  flag: IpvlanFlag;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * Parses a `parent` option: a link name, where `NAME.VID` (VID 1-4094) names an 802.1q
 * sub-interface of `NAME`.
 * @throws InvalidError OPTION_INVALID for a bad name or VLAN id
 */
export function parseParent(value: string): ParentSpec {
  if (!IFNAME.test(value) || value === '.' || value === '..') {
    throw new InvalidError(
      'OPTION_INVALID',
      `Invalid parent interface "${value}": use 1 to 15 characters from A-Z, a-z, 0-9, "_", "." and "-"`,
    );
  }
  const m = /^(.+)\.(\d+)$/.exec(value);
  if (!m) return { name: value };
  const id = Number(m[2]);
  if (id < 1 || id > 4094) {
    throw new InvalidError(
      'OPTION_INVALID',
      `Invalid VLAN id "${m[2]}" in parent "${value}": it must be between 1 and 4094`,
    );
  }
  return { name: value, vlan: { lower: m[1]!, id } };
}

function oneOf<T extends string>(key: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new InvalidError(
    'OPTION_INVALID',
    `Invalid value "${value}" for option "${key}": expected one of ${allowed.join(', ')}`,
  );
}

function needParent(driver: string, parent: ParentSpec | undefined): ParentSpec {
  if (parent) return parent;
  // Docker makes a dummy link the parent of a parentless network; cnm does not (this kernel
  // has no dummy links, and a hidden parent nobody can reach is rarely what one wants).
  throw new InvalidError(
    'OPTION_INVALID',
    `Option "parent" is required for driver "${driver}": give -o parent=IFACE (cnm does not create a dummy parent)`,
  );
}

/**
 * Parses the macvlan driver's options (`parent`, `macvlan_mode`).
 * @throws InvalidError for unknown options, bad values and a missing parent
 */
export function parseMacvlanOptions(raw: Record<string, string>): MacvlanOptions {
  let parent: ParentSpec | undefined;
  let mode: MacvlanMode = 'bridge';
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case 'parent':
        parent = parseParent(value);
        break;
      case 'macvlan_mode':
        mode = oneOf(key, value, MACVLAN_MODES);
        break;
      default:
        throw new InvalidError('OPTION_UNKNOWN', `Unknown option "${key}" for driver "macvlan"`);
    }
  }
  return { kind: 'macvlan', parent: needParent('macvlan', parent), mode };
}

/**
 * Parses the ipvlan driver's options (`parent`, `ipvlan_mode`, `ipvlan_flag`).
 * @throws InvalidError for unknown options, bad values and a missing parent
 */
export function parseIpvlanOptions(raw: Record<string, string>): IpvlanOptions {
  let parent: ParentSpec | undefined;
  let mode: IpvlanMode = 'l2';
  let flag: IpvlanFlag = 'bridge';
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case 'parent':
        parent = parseParent(value);
        break;
      case 'ipvlan_mode':
        mode = oneOf(key, value, IPVLAN_MODES);
        break;
      case 'ipvlan_flag':
        flag = oneOf(key, value, IPVLAN_FLAGS);
        break;
      default:
        throw new InvalidError('OPTION_UNKNOWN', `Unknown option "${key}" for driver "ipvlan"`);
    }
  }
  return { kind: 'ipvlan', parent: needParent('ipvlan', parent), mode, flag };
}
