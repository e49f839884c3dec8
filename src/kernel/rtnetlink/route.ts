/**
 * RTM_NEWROUTE / RTM_DELROUTE / RTM_GETROUTE: struct rtmsg plus RTA_* attributes.
 */
import type { Route } from '../types.js';
import {
  AF_INET,
  AF_INET6,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_GATEWAY,
  RTA_METRICS,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTAX_MTU,
  RTM_DELROUTE,
  RTN_UNICAST,
  RTPROT_STATIC,
  RTM_GETROUTE,
} from './constants.js';
import { attr, MessageBuilder, parseAttrs, type NlMessage } from './message.js';
import { bytesToIp, cidrToBytes, ipFamily, ipToBytes } from './wire-address.js';

/** Size of struct rtmsg. */
export const RTMSG_LEN = 12;

/** A route request with the device resolved (`oif`). `dev` is ignored here. */
export type RouteRequest = Route & { oif?: number };

/** The family of a route: explicit, else from dst/gateway syntax. */
function familyOf(r: Route): 4 | 6 {
  if (r.family) return r.family;
  if (r.dst !== 'default') return ipFamily(r.dst);
  return r.gateway ? ipFamily(r.gateway) : 4;
}

/**
 * Encodes RTM_NEWROUTE or RTM_DELROUTE. Defaults follow `ip route`: main table, unicast,
 * scope link for a route without gateway, universe with one; protocol static.
 */
export function encodeRoute(type: number, flags: number, r: RouteRequest, seq = 0): Uint8Array {
  const family = familyOf(r);
  const { bytes, prefixLen } = cidrToBytes(r.dst, family);
  const table = r.table ?? RT_TABLE_MAIN;
  const rtType = r.type ?? RTN_UNICAST;
  // As iproute2: deletes match any scope (NOWHERE); a unicast route without gateway is on-link.
  const scope =
    r.scope ??
    (type === RTM_DELROUTE
      ? RT_SCOPE_NOWHERE
      : r.gateway === undefined && rtType === RTN_UNICAST
        ? RT_SCOPE_LINK
        : RT_SCOPE_UNIVERSE);
  const m = new MessageBuilder(type, flags);
  m.struct(RTMSG_LEN, (v) => {
    v.setUint8(0, family === 6 ? AF_INET6 : AF_INET);
    v.setUint8(1, prefixLen);
    // rtm_table is 8 bits; RTA_TABLE carries the full id.
    v.setUint8(4, table < 256 ? table : 0);
    // On delete, protocol 0 matches any; on add cnm marks its routes static.
    v.setUint8(5, r.protocol ?? (type === RTM_DELROUTE ? 0 : RTPROT_STATIC));
    v.setUint8(6, scope);
    v.setUint8(7, rtType);
  });
  m.u32(RTA_TABLE, table);
  if (prefixLen > 0) m.bytes(RTA_DST, bytes);
  if (r.gateway !== undefined) m.bytes(RTA_GATEWAY, ipToBytes(r.gateway));
  if (r.oif !== undefined) m.u32(RTA_OIF, r.oif);
  if (r.src !== undefined) m.bytes(RTA_PREFSRC, ipToBytes(r.src));
  if (r.metric !== undefined) m.u32(RTA_PRIORITY, r.metric);
  if (r.mtu !== undefined) m.begin(RTA_METRICS).u32(RTAX_MTU, r.mtu).end();
  return m.finish(seq);
}

/** Encodes an RTM_GETROUTE dump request for one family. */
export function encodeRouteDump(flags: number, family: number, seq = 0): Uint8Array {
  const m = new MessageBuilder(RTM_GETROUTE, flags);
  m.struct(RTMSG_LEN, (v) => v.setUint8(0, family));
  return m.finish(seq);
}

/** Decodes an RTM_NEWROUTE reply; `dev` is left for the caller to resolve from `oif`. */
export function decodeRoute(msg: NlMessage): Route {
  const p = msg.payload;
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const a = parseAttrs(p, RTMSG_LEN);
  const family: 4 | 6 = view.getUint8(0) === AF_INET6 ? 6 : 4;
  const dstLen = view.getUint8(1);
  const dst = a.get(RTA_DST);
  const route: Route = {
    family,
    dst:
      dstLen === 0
        ? 'default'
        : `${dst ? bytesToIp(dst) : family === 6 ? '::' : '0.0.0.0'}/${dstLen}`,
    table: attr.u32(a.get(RTA_TABLE)) ?? view.getUint8(4),
    protocol: view.getUint8(5),
    scope: view.getUint8(6),
    type: view.getUint8(7),
  };
  const gw = a.get(RTA_GATEWAY);
  if (gw) route.gateway = bytesToIp(gw);
  const oif = attr.u32(a.get(RTA_OIF));
  if (oif !== undefined) route.oif = oif;
  const src = a.get(RTA_PREFSRC);
  if (src) route.src = bytesToIp(src);
  const metric = attr.u32(a.get(RTA_PRIORITY));
  if (metric !== undefined) route.metric = metric;
  const metrics = a.get(RTA_METRICS);
  if (metrics) {
    const mtu = attr.u32(parseAttrs(metrics).get(RTAX_MTU));
    if (mtu !== undefined) route.mtu = mtu;
  }
  return route;
}
