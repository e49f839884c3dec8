/**
 * The overlay driver's options, parsed from Docker's option names into one typed value.
 */
import { ForbiddenError, InvalidError } from '../../errors.js';
import { IP } from '../../netaddr/index.js';
import { parseBool, parseMtu } from '../bridge/options.js';

/** Docker's option keys the overlay driver understands (and cnm's own). */
export const OVERLAY_OPTIONS = {
  vni: 'com.docker.network.driver.overlay.vxlanid_list',
  mtu: 'com.docker.network.driver.mtu',
  encrypted: 'encrypted',
  mode: 'io.cnm.overlay.mode',
  group: 'io.cnm.overlay.group',
} as const;

/** Lowest VNI cnm hands out by itself (Docker's overlay starts at 4096 + 1 as well). */
export const VNI_FIRST = 4097;
/** VXLAN's VNI is 24 bits. */
export const VNI_MAX = 0xffffff;

/**
 * How BUM traffic (broadcast, unknown unicast, multicast) and remote MACs are handled:
 * `unicast` (default): static FDB entries from the cluster store, no learning, nothing flooded;
 * `multicast`: BUM traffic goes to an underlay multicast group, MACs are learnt from the wire.
 */
export type OverlayMode = 'unicast' | 'multicast';

/** Typed overlay options. */
export interface OverlayOptions {
  /** The network's VXLAN id; 0 until the cluster has allocated one. */
  vni: number;
  /** 0: derived from the underlay interface's MTU minus the VXLAN overhead. */
  mtu: number;
  /** Absent: unicast. */
  mode?: OverlayMode;
  /** The underlay multicast group (IPv4 or IPv6), in multicast mode only. */
  group?: string;
}

/**
 * Parses the multicast group option.
 * @throws InvalidError OPTION_INVALID when it is not an IPv4 or IPv6 multicast address
 */
export function parseGroup(value: string): string {
  // An IPv4-mapped IPv6 address is neither: the kernel takes it as IPv6, where it is unicast.
  const parsed = IP.tryParse(value.trim());
  const ip = parsed && parsed.unmap().family !== parsed.family ? undefined : parsed;
  if (ip === undefined) {
    throw new InvalidError(
      'OPTION_INVALID',
      `Invalid value "${value}" for option "${OVERLAY_OPTIONS.group}": not an IPv4 or IPv6 address`,
    );
  }
  if (!ip.isMulticast) {
    throw new InvalidError(
      'OPTION_INVALID',
      `Invalid value "${value}" for option "${OVERLAY_OPTIONS.group}": not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)`,
    );
  }
  return ip.toString();
}

/**
 * Parses a VNI option value (Docker accepts a comma-separated list; one network uses one VNI).
 * @throws InvalidError OPTION_INVALID
 */
export function parseVni(value: string): number {
  const first = value.split(',')[0]!.trim();
  const vni = /^\d+$/.test(first) ? Number(first) : NaN;
  if (!(vni >= 1 && vni <= VNI_MAX) || value.includes(',')) {
    throw new InvalidError(
      'OPTION_INVALID',
      `Invalid value "${value}" for option "${OVERLAY_OPTIONS.vni}": expected one VXLAN id between 1 and ${VNI_MAX}`,
    );
  }
  return vni;
}

/**
 * Parses the options of an overlay network.
 * @throws InvalidError OPTION_INVALID for bad values, an unknown mode, a group that is not
 *   multicast, multicast mode without a group or a group without multicast mode
 * @throws ForbiddenError OVERLAY_ENCRYPTION_UNSUPPORTED for `encrypted`
 */
export function parseOverlayOptions(raw: Record<string, string>): OverlayOptions {
  const out: OverlayOptions = { vni: 0, mtu: 0 };
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case OVERLAY_OPTIONS.vni:
        out.vni = parseVni(value);
        break;
      case OVERLAY_OPTIONS.mtu:
        out.mtu = parseMtu(key, value);
        break;
      case OVERLAY_OPTIONS.encrypted:
        // Docker sets `encrypted` with an empty value for `--opt encrypted`.
        if (value === '' || parseBool(key, value)) {
          throw new ForbiddenError(
            'OVERLAY_ENCRYPTION_UNSUPPORTED',
            "Cannot create an encrypted overlay network: it needs the kernel's IPsec ESP support (XFRM with esp4), which this kernel lacks",
          );
        }
        break;
      case OVERLAY_OPTIONS.mode:
        if (value !== 'unicast' && value !== 'multicast') {
          throw new InvalidError(
            'OPTION_INVALID',
            `Invalid value "${value}" for option "${key}": expected "unicast" (static FDB entries from the cluster store) or "multicast" (with "${OVERLAY_OPTIONS.group}")`,
          );
        }
        if (value === 'multicast') out.mode = value;
        break;
      case OVERLAY_OPTIONS.group:
        out.group = parseGroup(value);
        break;
      default:
        // Like dockerd: driver options it does not know are kept on the network and ignored
        // (compose files carry options meant for other drivers).
        break;
    }
  }
  if (out.mode === 'multicast' && out.group === undefined) {
    throw new InvalidError(
      'OPTION_INVALID',
      `Option "${OVERLAY_OPTIONS.mode}=multicast" needs a multicast group: add "${OVERLAY_OPTIONS.group}=239.x.y.z"`,
    );
  }
  if (out.mode !== 'multicast' && out.group !== undefined) {
    throw new InvalidError(
      'OPTION_INVALID',
      `Option "${OVERLAY_OPTIONS.group}" is used in multicast mode only: add "${OVERLAY_OPTIONS.mode}=multicast"`,
    );
  }
  return out;
}
