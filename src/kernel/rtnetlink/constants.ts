/**
 * Numbers from the kernel's uapi headers (linux/netlink.h, rtnetlink.h, if_link.h, neighbour.h,
 * if_addr.h) that the codec uses. Names keep the kernel's spelling so they can be grepped.
 */

/** Netlink protocol numbers for `socket(AF_NETLINK, ..., protocol)`. */
export const NETLINK_ROUTE = 0;

/** Address families. */
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

/** nlmsghdr.nlmsg_type control messages. */
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

/** nlmsghdr.nlmsg_flags. */
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
/** Flags on an NLMSG_ERROR reply. */
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

/** Extended-ack attributes inside NLMSG_ERROR / NLMSG_DONE. */
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

/** nlattr.nla_type high bits. */
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** rtnetlink message types. */
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
/** With ifi_family AF_BRIDGE: bridge port settings (rtnl_bridge_setlink, by ifi_index only). */
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

/** ifinfomsg.ifi_flags. */
export const IFF_UP = 0x1;
export const IFF_LOWER_UP = 0x10000;

/** IFLA_* (struct ifinfomsg attributes). */
export const IFLA_ADDRESS = 1;
export const IFLA_BROADCAST = 2;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
/** Bridge port attributes (IFLA_BRPORT_*), nested, in an AF_BRIDGE RTM_SETLINK. */
export const IFLA_PROTINFO = 12;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_IFALIAS = 20;
/** Per-family link settings, nested by address family (AF_INET6 → IFLA_INET6_*). */
export const IFLA_AF_SPEC = 26;
export const IFLA_NET_NS_FD = 28;
export const IFLA_EXT_MASK = 29;
/** RTEXT_FILTER_SKIP_STATS: leave the big stats blocks out of dumps. */
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

/** IFLA_INFO_* (inside IFLA_LINKINFO). */
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const IFLA_INFO_SLAVE_KIND = 4;
export const IFLA_INFO_SLAVE_DATA = 5;

/** IFLA_INET6_* (inside IFLA_AF_SPEC / AF_INET6). */
export const IFLA_INET6_ADDR_GEN_MODE = 8;
/** IN6_ADDR_GEN_MODE_* values, indexed as iproute2 names them (`addrgenmode`). */
export const IN6_ADDR_GEN_MODE = { eui64: 0, none: 1, stable_secret: 2, random: 3 } as const;

/** IFLA_BRPORT_* (inside IFLA_PROTINFO, and IFLA_INFO_SLAVE_DATA of a bridge port). */
export const IFLA_BRPORT_MODE = 4;

/**
 * IFLA_BR_* (inside IFLA_INFO_DATA of a bridge): br_netfilter per bridge. Bridged IPv4/IPv6
 * frames pass the inet netfilter hooks when the namespace's `bridge-nf-call-ip(6)tables` switch
 * or this bridge's own switch is on (`ip link set B type bridge nf_call_iptables 1`).
 */
export const IFLA_BR_NF_CALL_IPTABLES = 36;
export const IFLA_BR_NF_CALL_IP6TABLES = 37;

/** VETH_INFO_* (inside IFLA_INFO_DATA of a veth). */
export const VETH_INFO_PEER = 1;

/** IFLA_VXLAN_*. */
export const IFLA_VXLAN_ID = 1;
export const IFLA_VXLAN_GROUP = 2;
export const IFLA_VXLAN_LINK = 3;
export const IFLA_VXLAN_LOCAL = 4;
export const IFLA_VXLAN_TTL = 5;
export const IFLA_VXLAN_LEARNING = 7;
export const IFLA_VXLAN_PROXY = 11;
/** Big-endian u16. */
export const IFLA_VXLAN_PORT = 15;
export const IFLA_VXLAN_GROUP6 = 16;
export const IFLA_VXLAN_LOCAL6 = 17;

/** IFLA_MACVLAN_* and modes. */
export const IFLA_MACVLAN_MODE = 1;
export const MACVLAN_MODE = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 } as const;

/** IFLA_IPVLAN_* and modes/flags (u16). */
export const IFLA_IPVLAN_MODE = 1;
export const IFLA_IPVLAN_FLAGS = 2;
export const IPVLAN_MODE = { l2: 0, l3: 1, l3s: 2 } as const;
export const IPVLAN_FLAG = { bridge: 0, private: 1, vepa: 2 } as const;

/** IFLA_VLAN_ID (u16). */
export const IFLA_VLAN_ID = 1;

/** IFA_* (struct ifaddrmsg attributes) and flags. */
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_BROADCAST = 4;
export const IFA_FLAGS = 8;
export const IFA_F_NODAD = 0x02;

/** RTA_* (struct rtmsg attributes). */
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_METRICS = 8;
export const RTA_TABLE = 15;
/** RTAX_MTU inside RTA_METRICS. */
export const RTAX_MTU = 2;

export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_ANYCAST = 4;
export const RTN_MULTICAST = 5;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;

/** NDA_* (struct ndmsg attributes). */
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NDA_PORT = 6;
export const NDA_VNI = 7;
export const NDA_IFINDEX = 8;
export const NDA_MASTER = 9;

/** ndmsg.ndm_state. */
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;

/** ndmsg.ndm_flags. */
export const NTF_SELF = 0x02;
export const NTF_MASTER = 0x04;

/** Traffic control (linux/rtnetlink.h, linux/pkt_sched.h): qdisc messages, struct tcmsg. */
export const RTM_NEWQDISC = 36;
export const RTM_DELQDISC = 37;
export const RTM_GETQDISC = 38;
/** TCA_* (struct tcmsg attributes). */
export const TCA_KIND = 1;
export const TCA_OPTIONS = 2;
/** tcm_parent of a device's root (egress) qdisc. */
export const TC_H_ROOT = 0xffffffff;
/** TCA_TBF_* (inside TCA_OPTIONS of a tbf qdisc). */
export const TCA_TBF_PARMS = 1;
export const TCA_TBF_RATE64 = 4;
export const TCA_TBF_BURST = 6;
/** tc_ratespec.linklayer: anything but UNAWARE (0) makes the kernel skip the legacy rate table. */
export const TC_LINKLAYER_ETHERNET = 1;
/** The kernel's scheduler tick (PSCHED_SHIFT 6): 64 ns. TBF's `buffer` field counts these. */
export const PSCHED_TICK_NS = 64;
