/**
 * RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH: struct ndmsg plus NDA_* attributes, for ARP/NDP
 * entries (AF_INET/AF_INET6) and bridge/VXLAN FDB entries (AF_BRIDGE).
 */
import {
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  NDA_DST,
  NDA_LLADDR,
  NDA_MASTER,
  NDA_VNI,
  NTF_MASTER,
  NTF_SELF,
  NUD_PERMANENT,
  RTM_GETNEIGH,
} from './constants.js';
import { attr, MessageBuilder, parseAttrs, type NlMessage } from './message.js';
import { bytesToIp, bytesToMac, ipToBytes, macToBytes } from './wire-address.js';

/** Size of struct ndmsg. */
export const NDMSG_LEN = 12;

/** A neighbour request with the device resolved. */
export interface NeighRequest {
  family: 4 | 6 | 'bridge';
  index: number;
  /** IP (ARP/NDP) or the remote VTEP (FDB on a VXLAN device). */
  dst?: string;
  mac?: string;
  /** ndm_state; NUD_PERMANENT by default. */
  state?: number;
  /** ndm_flags (NTF_SELF, NTF_MASTER). */
  flags?: number;
  vni?: number;
  /** NDA_MASTER: bridge ifindex (FDB). */
  master?: number;
}

/** A neighbour as decoded, device as ifindex. */
export interface NeighEntry {
  family: 4 | 6 | 'bridge';
  index: number;
  dst?: string;
  mac?: string;
  state: number;
  flags: number;
  vni?: number;
  master?: number;
}

function familyNumber(f: 4 | 6 | 'bridge'): number {
  return f === 'bridge' ? AF_BRIDGE : f === 6 ? AF_INET6 : AF_INET;
}

/** Encodes RTM_NEWNEIGH or RTM_DELNEIGH. */
export function encodeNeigh(type: number, flags: number, n: NeighRequest, seq = 0): Uint8Array {
  const m = new MessageBuilder(type, flags);
  m.struct(NDMSG_LEN, (v) => {
    v.setUint8(0, familyNumber(n.family));
    v.setInt32(4, n.index, true);
    v.setUint16(8, n.state ?? NUD_PERMANENT, true);
    v.setUint8(10, n.flags ?? 0);
  });
  if (n.dst !== undefined) m.bytes(NDA_DST, ipToBytes(n.dst));
  if (n.mac !== undefined) m.bytes(NDA_LLADDR, macToBytes(n.mac));
  if (n.vni !== undefined) m.u32(NDA_VNI, n.vni);
  if (n.master !== undefined) m.u32(NDA_MASTER, n.master);
  return m.finish(seq);
}

/** Encodes an RTM_GETNEIGH dump request for one family. */
export function encodeNeighDump(flags: number, family: 4 | 6 | 'bridge', seq = 0): Uint8Array {
  const m = new MessageBuilder(RTM_GETNEIGH, flags);
  m.struct(NDMSG_LEN, (v) => v.setUint8(0, familyNumber(family)));
  return m.finish(seq);
}

/** Decodes an RTM_NEWNEIGH reply. */
export function decodeNeigh(msg: NlMessage): NeighEntry {
  const p = msg.payload;
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const fam = view.getUint8(0);
  const a = parseAttrs(p, NDMSG_LEN);
  const out: NeighEntry = {
    family: fam === AF_BRIDGE ? 'bridge' : fam === AF_INET6 ? 6 : 4,
    index: view.getInt32(4, true),
    state: view.getUint16(8, true),
    flags: view.getUint8(10),
  };
  const dst = a.get(NDA_DST);
  if (dst && (dst.length === 4 || dst.length === 16)) out.dst = bytesToIp(dst);
  const mac = a.get(NDA_LLADDR);
  if (mac && mac.length > 0) out.mac = bytesToMac(mac);
  const vni = attr.u32(a.get(NDA_VNI));
  if (vni !== undefined) out.vni = vni;
  const master = attr.u32(a.get(NDA_MASTER));
  if (master !== undefined) out.master = master;
  return out;
}

/** ndm_flags for a request from the `self`/`master` booleans of the Kernel API. */
export function fdbFlags(self?: boolean, master?: boolean): number {
  return (self ? NTF_SELF : 0) | (master ? NTF_MASTER : 0);
}
