/**
 * RTM_NEWLINK / RTM_DELLINK / RTM_GETLINK: struct ifinfomsg plus IFLA_* attributes, including
 * IFLA_LINKINFO for the link kinds cnm creates.
 */
import type { AddrGenMode, Link } from '../types.js';
import {
  AF_INET6,
  AF_UNSPEC,
  IFF_LOWER_UP,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_AF_SPEC,
  IFLA_BRPORT_MODE,
  IFLA_BR_NF_CALL_IP6TABLES,
  IFLA_BR_NF_CALL_IPTABLES,
  IFLA_EXT_MASK,
  IFLA_IFALIAS,
  IFLA_IFNAME,
  IFLA_INET6_ADDR_GEN_MODE,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_INFO_SLAVE_DATA,
  IFLA_INFO_SLAVE_KIND,
  IFLA_IPVLAN_FLAGS,
  IFLA_IPVLAN_MODE,
  IFLA_LINK,
  IFLA_LINKINFO,
  IFLA_MACVLAN_MODE,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  IFLA_PROTINFO,
  IFLA_VLAN_ID,
  IFLA_VXLAN_GROUP,
  IFLA_VXLAN_GROUP6,
  IFLA_VXLAN_ID,
  IFLA_VXLAN_LEARNING,
  IFLA_VXLAN_LINK,
  IFLA_VXLAN_LOCAL,
  IFLA_VXLAN_LOCAL6,
  IFLA_VXLAN_PORT,
  IFLA_VXLAN_PROXY,
  IFLA_VXLAN_TTL,
  IN6_ADDR_GEN_MODE,
  VETH_INFO_PEER,
} from './constants.js';
import { attr, MessageBuilder, parseAttrs, type NlMessage } from './message.js';
import { bytesToMac, ipToBytes, macToBytes } from './wire-address.js';

/** Size of struct ifinfomsg. */
export const IFINFOMSG_LEN = 16;

/** The fixed header of a link message. Unset fields are 0. */
export interface IfInfoMsg {
  family?: number;
  index?: number;
  /** ifi_flags values to set... */
  flags?: number;
  /** ...and which of them to change (ifi_change). */
  change?: number;
}

/** Link attributes, with names already resolved to ifindexes and namespaces to fds. */
export interface LinkAttrs {
  name?: string;
  mtu?: number;
  mac?: string;
  /** Master ifindex; 0 releases. */
  master?: number;
  /** IFLA_LINK: parent ifindex (macvlan, ipvlan, vlan). */
  link?: number;
  alias?: string;
  /** IFLA_NET_NS_FD: create (or move) the link in this namespace. */
  nsFd?: number;
  /** IFLA_EXT_MASK (RTEXT_FILTER_*), for GETLINK requests. */
  extMask?: number;
  info?: LinkInfo;
  /**
   * IFLA_PROTINFO (nested IFLA_BRPORT_*): bridge port settings. Only an RTM_SETLINK with
   * ifi_family AF_BRIDGE and ifi_index set applies them (br_setlink); RTM_NEWLINK ignores them.
   */
  brport?: BrPortAttrs;
  /**
   * Bridge port settings as IFLA_LINKINFO slave data (`ip link set X type bridge_slave …`): an
   * RTM_NEWLINK on an existing port applies them through its master (br_port_slave_changelink)
   * before the rest of the request, so they share one request with other changes. A link
   * without a master fails EOPNOTSUPP. Not with `info` (a link kind) in the same message.
   */
  slaveBrport?: BrPortAttrs;
  /**
   * IFLA_AF_SPEC / AF_INET6 / IFLA_INET6_ADDR_GEN_MODE. Only on an existing link: the kernel
   * refuses IFLA_AF_SPEC at creation (EAFNOSUPPORT).
   */
  addrGenMode?: AddrGenMode;
}

/** Bridge port settings (IFLA_BRPORT_*). */
export interface BrPortAttrs {
  /** IFLA_BRPORT_MODE: 1 = hairpin (a frame may leave by the port it came in on). */
  hairpin?: boolean;
}

/** IFLA_LINKINFO contents per kind. */
export type LinkInfo =
  | { kind: 'veth'; peer: { header?: IfInfoMsg; attrs: LinkAttrs } }
  | {
      kind: 'vxlan';
      vni: number;
      port?: number;
      /** Local underlay address; IPv6 goes to IFLA_VXLAN_LOCAL6. */
      local?: string;
      /** Group or remote; IPv6 goes to IFLA_VXLAN_GROUP6. */
      group?: string;
      link?: number;
      learning?: boolean;
      proxy?: boolean;
      ttl?: number;
    }
  | { kind: 'macvlan'; mode: number }
  | { kind: 'ipvlan'; mode: number; flags?: number }
  | { kind: 'vlan'; id: number }
  | {
      kind: 'bridge';
      /** IFLA_BR_NF_CALL_IPTABLES and _IP6TABLES together; unset: not sent. */
      nfCall?: boolean;
    }
  | { kind: 'dummy' };

function writeIfInfo(m: MessageBuilder, h: IfInfoMsg): void {
  m.struct(IFINFOMSG_LEN, (v) => {
    v.setUint8(0, h.family ?? AF_UNSPEC);
    v.setInt32(4, h.index ?? 0, true);
    v.setUint32(8, h.flags ?? 0, true);
    v.setUint32(12, h.change ?? 0, true);
  });
}

function writeInfoData(m: MessageBuilder, info: LinkInfo): void {
  switch (info.kind) {
    case 'veth':
      m.begin(IFLA_INFO_DATA).begin(VETH_INFO_PEER);
      // The peer is a whole ifinfomsg + attributes nested inside the attribute.
      writeIfInfo(m, info.peer.header ?? {});
      writeLinkAttrs(m, info.peer.attrs);
      m.end().end();
      return;
    case 'vxlan': {
      m.begin(IFLA_INFO_DATA).u32(IFLA_VXLAN_ID, info.vni);
      if (info.group !== undefined) {
        const g = ipToBytes(info.group);
        m.bytes(g.length === 4 ? IFLA_VXLAN_GROUP : IFLA_VXLAN_GROUP6, g);
      }
      if (info.local !== undefined) {
        const l = ipToBytes(info.local);
        m.bytes(l.length === 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, l);
      }
      if (info.link !== undefined) m.u32(IFLA_VXLAN_LINK, info.link);
      if (info.ttl !== undefined) m.u8(IFLA_VXLAN_TTL, info.ttl);
      // The kernel defaults learning to on; cnm programs the FDB itself, so say it explicitly.
      m.u8(IFLA_VXLAN_LEARNING, info.learning ? 1 : 0);
      if (info.proxy !== undefined) m.u8(IFLA_VXLAN_PROXY, info.proxy ? 1 : 0);
      // Without a port the kernel picks the legacy Linux port 8472, not IANA's 4789.
      m.u16be(IFLA_VXLAN_PORT, info.port ?? 4789);
      m.end();
      return;
    }
    case 'macvlan':
      m.begin(IFLA_INFO_DATA).u32(IFLA_MACVLAN_MODE, info.mode).end();
      return;
    case 'ipvlan':
      m.begin(IFLA_INFO_DATA).u16(IFLA_IPVLAN_MODE, info.mode);
      if (info.flags !== undefined) m.u16(IFLA_IPVLAN_FLAGS, info.flags);
      m.end();
      return;
    case 'vlan':
      m.begin(IFLA_INFO_DATA).u16(IFLA_VLAN_ID, info.id).end();
      return;
    case 'bridge':
      if (info.nfCall === undefined) return;
      m.begin(IFLA_INFO_DATA);
      m.u8(IFLA_BR_NF_CALL_IPTABLES, info.nfCall ? 1 : 0);
      m.u8(IFLA_BR_NF_CALL_IP6TABLES, info.nfCall ? 1 : 0);
      m.end();
      return;
    default:
      return;
  }
}

function writeLinkAttrs(m: MessageBuilder, a: LinkAttrs): void {
  if (a.name !== undefined) m.str(IFLA_IFNAME, a.name);
  if (a.mtu !== undefined) m.u32(IFLA_MTU, a.mtu);
  if (a.mac !== undefined) m.bytes(IFLA_ADDRESS, macToBytes(a.mac));
  if (a.link !== undefined) m.u32(IFLA_LINK, a.link);
  if (a.master !== undefined) m.u32(IFLA_MASTER, a.master);
  if (a.alias !== undefined) m.str(IFLA_IFALIAS, a.alias);
  if (a.nsFd !== undefined) m.u32(IFLA_NET_NS_FD, a.nsFd);
  if (a.extMask !== undefined) m.u32(IFLA_EXT_MASK, a.extMask);
  if (a.info !== undefined) {
    m.begin(IFLA_LINKINFO).str(IFLA_INFO_KIND, a.info.kind);
    writeInfoData(m, a.info);
    m.end();
  }
  if (a.slaveBrport !== undefined) {
    m.begin(IFLA_LINKINFO).str(IFLA_INFO_SLAVE_KIND, 'bridge').begin(IFLA_INFO_SLAVE_DATA);
    if (a.slaveBrport.hairpin !== undefined) m.u8(IFLA_BRPORT_MODE, a.slaveBrport.hairpin ? 1 : 0);
    m.end().end();
  }
  if (a.addrGenMode !== undefined) {
    m.begin(IFLA_AF_SPEC).begin(AF_INET6);
    m.u8(IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE[a.addrGenMode]);
    m.end().end();
  }
  if (a.brport !== undefined) {
    // NLA_F_NESTED is what makes br_setlink parse IFLA_PROTINFO as IFLA_BRPORT_* attributes
    // (without it the attribute is the legacy single u8 STP state).
    m.begin(IFLA_PROTINFO, true);
    if (a.brport.hairpin !== undefined) m.u8(IFLA_BRPORT_MODE, a.brport.hairpin ? 1 : 0);
    m.end();
  }
}

/**
 * Encodes a link message (RTM_NEWLINK, RTM_DELLINK or RTM_GETLINK).
 * @example encodeLink(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, { flags: IFF_UP, change: IFF_UP }, { name: 'eth0' })
 */
export function encodeLink(
  type: number,
  flags: number,
  header: IfInfoMsg,
  attrs: LinkAttrs,
  seq = 0,
): Uint8Array {
  const m = new MessageBuilder(type, flags);
  writeIfInfo(m, header);
  writeLinkAttrs(m, attrs);
  return m.finish(seq);
}

/** Decodes an RTM_NEWLINK reply into a `Link`. */
export function decodeLink(msg: NlMessage): Link {
  const p = msg.payload;
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const flags = view.getUint32(8, true);
  const a = parseAttrs(p, IFINFOMSG_LEN);
  const link: Link = {
    index: view.getInt32(4, true),
    name: attr.str(a.get(IFLA_IFNAME)) ?? '',
    mtu: attr.u32(a.get(IFLA_MTU)) ?? 0,
    up: (flags & IFF_UP) !== 0,
    lowerUp: (flags & IFF_LOWER_UP) !== 0,
  };
  const info = a.get(IFLA_LINKINFO);
  if (info) {
    const li = parseAttrs(info);
    const kind = attr.str(li.get(IFLA_INFO_KIND));
    if (kind) link.kind = kind;
    const data = li.get(IFLA_INFO_DATA);
    if (kind === 'bridge' && data) {
      const nf = attr.u8(parseAttrs(data).get(IFLA_BR_NF_CALL_IPTABLES));
      if (nf !== undefined) link.bridgeNfCall = nf === 1;
    }
    // A bridge port reports its IFLA_BRPORT_* settings as slave data of its link info.
    const slaveData = li.get(IFLA_INFO_SLAVE_DATA);
    if (attr.str(li.get(IFLA_INFO_SLAVE_KIND)) === 'bridge' && slaveData) {
      const mode = attr.u8(parseAttrs(slaveData).get(IFLA_BRPORT_MODE));
      if (mode !== undefined) link.hairpin = mode === 1;
    }
  }
  const mac = a.get(IFLA_ADDRESS);
  // Tunnels without a link layer (lo has 6 zero bytes, which is still a MAC) report none.
  if (mac && mac.length === 6) link.mac = bytesToMac(mac);
  const master = attr.u32(a.get(IFLA_MASTER));
  if (master) link.master = master;
  const parent = attr.s32(a.get(IFLA_LINK));
  // IFLA_LINK equal to the own index means "no parent" for most kinds.
  if (parent !== undefined && parent !== link.index) link.link = parent;
  const alias = attr.str(a.get(IFLA_IFALIAS));
  if (alias) link.alias = alias;
  const afSpec = a.get(IFLA_AF_SPEC);
  const inet6 = afSpec ? parseAttrs(afSpec).get(AF_INET6) : undefined;
  const mode = inet6 ? attr.u8(parseAttrs(inet6).get(IFLA_INET6_ADDR_GEN_MODE)) : undefined;
  if (mode !== undefined) {
    const name = (Object.keys(IN6_ADDR_GEN_MODE) as AddrGenMode[]).find(
      (k) => IN6_ADDR_GEN_MODE[k] === mode,
    );
    if (name) link.addrGenMode = name;
  }
  return link;
}
