/**
 * The bridge driver's options, parsed from Docker's option names into one typed value.
 */
import { InvalidError } from '../../errors.js';
import { IP } from '../../netaddr/index.js';

/** Docker's option keys the bridge driver understands. */
export const BRIDGE_OPTIONS = {
  name: 'com.docker.network.bridge.name',
  icc: 'com.docker.network.bridge.enable_icc',
  masquerade: 'com.docker.network.bridge.enable_ip_masquerade',
  hostBinding: 'com.docker.network.bridge.host_binding_ipv4',
  defaultBridge: 'com.docker.network.bridge.default_bridge',
  mtu: 'com.docker.network.driver.mtu',
} as const;

/** Typed bridge options. */
export interface BridgeOptions {
  /** Kernel name of the bridge. */
  bridgeName: string;
  icc: boolean;
  masquerade: boolean;
  /** Default host address for published ports (`''` = every address). */
  hostBindingIpv4: string;
  mtu: number;
  defaultBridge: boolean;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** True when `name` is a valid Linux interface name cnm accepts. */
export function isValidIfName(name: string): boolean {
  return IFNAME.test(name) && name !== '.' && name !== '..';
}

/** Parses Docker's boolean option strings (`true`, `false`, `1`, `0`, case-insensitive). */
export function parseBool(key: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1' || v === 't') return true;
  if (v === 'false' || v === '0' || v === 'f') return false;
  throw new InvalidError(
    'OPTION_INVALID',
    `Invalid value "${value}" for option "${key}": expected true or false`,
  );
}

/** Parses an MTU option. */
export function parseMtu(key: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) {
    throw new InvalidError(
      'OPTION_INVALID',
      `Invalid value "${value}" for option "${key}": expected an integer`,
    );
  }
  const mtu = Number(value);
  if (mtu < 68 || mtu > 65535) {
    throw new InvalidError(
      'OPTION_INVALID',
      `Invalid MTU "${value}": it must be between 68 and 65535`,
    );
  }
  return mtu;
}

/**
 * Parses the bridge driver's options.
 * @throws InvalidError for unknown options and bad values
 */
export function parseBridgeOptions(
  raw: Record<string, string>,
  defaults: { bridgeName: string; mtu: number; predefined: boolean },
): BridgeOptions {
  const opts: BridgeOptions = {
    bridgeName: defaults.bridgeName,
    icc: true,
    masquerade: true,
    hostBindingIpv4: '',
    mtu: defaults.mtu,
    defaultBridge: false,
  };
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case BRIDGE_OPTIONS.name:
        if (!isValidIfName(value)) {
          throw new InvalidError(
            'OPTION_INVALID',
            `Invalid bridge name "${value}": use 1 to 15 characters from A-Z, a-z, 0-9, "_", "." and "-"`,
          );
        }
        opts.bridgeName = value;
        break;
      case BRIDGE_OPTIONS.icc:
        opts.icc = parseBool(key, value);
        break;
      case BRIDGE_OPTIONS.masquerade:
        opts.masquerade = parseBool(key, value);
        break;
      case BRIDGE_OPTIONS.hostBinding: {
        const ip = IP.tryParse(value);
        if (!ip || ip.family !== 4) {
          throw new InvalidError(
            'OPTION_INVALID',
            `Invalid value "${value}" for option "${key}": expected an IPv4 address`,
          );
        }
        opts.hostBindingIpv4 = ip.isUnspecified ? '' : ip.toString();
        break;
      }
      case BRIDGE_OPTIONS.mtu:
        opts.mtu = parseMtu(key, value);
        break;
      case BRIDGE_OPTIONS.defaultBridge:
        opts.defaultBridge = parseBool(key, value);
        if (opts.defaultBridge && !defaults.predefined) {
          throw new InvalidError(
            'OPTION_INVALID',
            `Option "${key}" is reserved for the predefined "bridge" network`,
          );
        }
        break;
      default:
        throw new InvalidError('OPTION_UNKNOWN', `Unknown option "${key}" for driver "bridge"`);
    }
  }
  return opts;
}
