/**
 * RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR: struct ifaddrmsg plus IFA_* attributes.
 */
import type { Addr } from '../types.js';
import {
  AF_INET,
  AF_INET6,
  IFA_ADDRESS,
  IFA_F_NODAD,
  IFA_FLAGS,
  IFA_LABEL,
  IFA_LOCAL,
  RT_SCOPE_UNIVERSE,
  RTM_GETADDR,
} from './constants.js';
import { attr, MessageBuilder, parseAttrs, type NlMessage } from './message.js';
import { bytesToIp, cidrToBytes } from './wire-address.js';

/** Size of struct ifaddrmsg. */
export const IFADDRMSG_LEN = 8;

/** An address request with the device resolved to its ifindex. */
export interface AddrRequest {
  index: number;
  /** `a.b.c.d/n` or `x::y/n`. */
  cidr: string;
  /** IFA_F_NODAD: skip IPv6 duplicate address detection (the address is usable at once). */
  noDad?: boolean;
  scope?: number;
}

/** Encodes RTM_NEWADDR or RTM_DELADDR. */
export function encodeAddr(type: number, flags: number, req: AddrRequest, seq = 0): Uint8Array {
  const { bytes, prefixLen } = cidrToBytes(req.cidr);
  const ifaFlags = req.noDad ? IFA_F_NODAD : 0;
  const m = new MessageBuilder(type, flags);
  m.struct(IFADDRMSG_LEN, (v) => {
    v.setUint8(0, bytes.length === 4 ? AF_INET : AF_INET6);
    v.setUint8(1, prefixLen);
    v.setUint8(2, ifaFlags);
    v.setUint8(3, req.scope ?? RT_SCOPE_UNIVERSE);
    v.setUint32(4, req.index, true);
  });
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer, equal to it unless
  // point-to-point. iproute2 sends both, and IPv4 deletion matches on IFA_LOCAL.
  m.bytes(IFA_LOCAL, bytes).bytes(IFA_ADDRESS, bytes);
  if (ifaFlags) m.u32(IFA_FLAGS, ifaFlags);
  return m.finish(seq);
}

/** Encodes an RTM_GETADDR dump request for one family (AF_UNSPEC for both). */
export function encodeAddrDump(flags: number, family: number, seq = 0): Uint8Array {
  const m = new MessageBuilder(RTM_GETADDR, flags);
  m.struct(IFADDRMSG_LEN, (v) => v.setUint8(0, family));
  return m.finish(seq);
}

/** Decodes an RTM_NEWADDR reply. */
export function decodeAddr(msg: NlMessage): Addr {
  const p = msg.payload;
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const a = parseAttrs(p, IFADDRMSG_LEN);
  // IPv4 puts the own address in IFA_LOCAL (IFA_ADDRESS may be a peer); IPv6 only has IFA_ADDRESS.
  const raw = a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS) ?? new Uint8Array(0);
  const out: Addr = {
    index: view.getUint32(4, true),
    family: view.getUint8(0) === AF_INET6 ? 6 : 4,
    address: raw.length ? bytesToIp(raw) : '',
    prefixLen: view.getUint8(1),
    scope: view.getUint8(3),
  };
  const label = attr.str(a.get(IFA_LABEL));
  if (label) out.label = label;
  return out;
}
