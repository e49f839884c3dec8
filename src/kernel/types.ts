/**
 * The kernel layer's contract: what the rest of cnm may ask of the host.
 *
 * Every call names the network namespace it acts in with `ns`: `undefined` is the daemon's own
 * namespace, a string is the path of a bind-mounted netns file (a sandbox key). Implementations:
 * `kernel.ts` (real: native addon + rtnetlink on a worker thread) and `fake/` (in memory).
 */

/** A network namespace: `undefined` for the daemon's own, else a netns file path. */
export type NsRef = string | undefined;

/** Link kinds cnm creates or reads. */
export type LinkKind =
  'veth' | 'bridge' | 'vxlan' | 'macvlan' | 'ipvlan' | 'vlan' | 'dummy' | string;

/** A link as read back from the kernel (RTM_GETLINK). */
export interface Link {
  index: number;
  name: string;
  /** IFLA_INFO_KIND, when the link has one. */
  kind?: string;
  mtu: number;
  /** Lower-case colon MAC, when the link has one. */
  mac?: string;
  /** IFF_UP set. */
  up: boolean;
  /** IFF_LOWER_UP / operstate up. */
  lowerUp: boolean;
  /** ifindex of the master (bridge), if enslaved. */
  master?: number;
  /** IFLA_LINK: the peer's or parent's ifindex (in the peer's namespace for veth). */
  link?: number;
  /** IFLA_IFALIAS: cnm marks its own links here. */
  alias?: string;
  /** Bridge port in hairpin mode (IFLA_BRPORT_MODE); set only for bridge ports. */
  hairpin?: boolean;
  /** IPv6 address generation mode (IFLA_INET6_ADDR_GEN_MODE), when the link has IPv6. */
  addrGenMode?: AddrGenMode;
  /** A bridge's own br_netfilter switch (IFLA_BR_NF_CALL_IPTABLES); see `BridgeAdd.nfCall`. */
  bridgeNfCall?: boolean;
}

/**
 * How the kernel makes a link's IPv6 link-local address, as `ip link set X addrgenmode …` names
 * it. `none`: no link-local address, hence no DAD, router solicitation or MLD report when the
 * link comes up (on a bridge, each of those is flooded to every port).
 */
export type AddrGenMode = 'eui64' | 'none' | 'stable_secret' | 'random';

/** Options common to every new link. */
interface LinkAddBase {
  name: string;
  mtu?: number;
  mac?: string;
  alias?: string;
  /** Bring the link up after creating it. */
  up?: boolean;
  /** Name of a bridge (in the same namespace) to enslave the new link to. */
  master?: string;
  /** Put the new bridge port (needs `master`) in hairpin mode; see `LinkSet.hairpin`. */
  hairpin?: boolean;
  /** IPv6 address generation mode, set before the link comes up; see `AddrGenMode`. */
  addrGenMode?: AddrGenMode;
}

/** A veth pair whose peer is born inside `peer.ns` under its final name (never moved). */
export interface VethAdd extends LinkAddBase {
  kind: 'veth';
  peer: { name: string; ns: NsRef; mac?: string; mtu?: number; up?: boolean };
}

export interface BridgeAdd extends LinkAddBase {
  kind: 'bridge';
  /**
   * The bridge's own br_netfilter switch (IFLA_BR_NF_CALL_IPTABLES and _IP6TABLES): its bridged
   * IPv4/IPv6 frames pass the inet netfilter hooks (conntrack, forward chains) even when the
   * namespace's `net.bridge.bridge-nf-call-iptables` is 0. Unset: the kernel's default (off).
   * Needs the br_netfilter module for any effect. Stp stays off.
   */
  nfCall?: boolean;
}

export interface VxlanAdd extends LinkAddBase {
  kind: 'vxlan';
  vni: number;
  /** UDP destination port (4789). */
  port?: number;
  /** Local underlay address (IFLA_VXLAN_LOCAL / LOCAL6). */
  local?: string;
  /** Multicast group or unicast remote (IFLA_VXLAN_GROUP). */
  group?: string;
  /** Underlay device name (IFLA_VXLAN_LINK). */
  dev?: string;
  /** IFLA_VXLAN_LEARNING; default false. */
  learning?: boolean;
  /** IFLA_VXLAN_PROXY (ARP proxy from neighbour table). */
  proxy?: boolean;
  ttl?: number;
}

export interface MacvlanAdd extends LinkAddBase {
  kind: 'macvlan';
  /** Parent link name (in the daemon's namespace). */
  parent: string;
  mode: 'private' | 'vepa' | 'bridge' | 'passthru' | 'source';
  /** Create the new link inside this namespace (IFLA_NET_NS_FD), never moved later. */
  ns?: NsRef;
}

export interface IpvlanAdd extends LinkAddBase {
  kind: 'ipvlan';
  parent: string;
  mode: 'l2' | 'l3' | 'l3s';
  flag?: 'bridge' | 'private' | 'vepa';
  ns?: NsRef;
}

export interface VlanAdd extends LinkAddBase {
  kind: 'vlan';
  parent: string;
  id: number;
}

export interface DummyAdd extends LinkAddBase {
  kind: 'dummy';
}

/** Everything `linkAdd` can create. */
export type LinkAdd = VethAdd | BridgeAdd | VxlanAdd | MacvlanAdd | IpvlanAdd | VlanAdd | DummyAdd;

/** Changes `linkSet` can make to an existing link. */
export interface LinkSet {
  up?: boolean;
  mtu?: number;
  mac?: string;
  alias?: string;
  /** Bridge name to enslave to; `null` to release. */
  master?: string | null;
  /** Rename (only while down). */
  name?: string;
  /**
   * Bridge port hairpin mode (IFLA_BRPORT_MODE, `bridge link set dev X hairpin on`): the bridge
   * may send a frame back out of the port it came in on. Only for a bridge port (applied after
   * `master`); any other link fails EOPNOTSUPP. Releasing or re-enslaving a port resets it.
   */
  hairpin?: boolean;
  /** IPv6 address generation mode; set it before the link first comes up (see AddrGenMode). */
  addrGenMode?: AddrGenMode;
  /** A bridge's own br_netfilter switch (see `BridgeAdd.nfCall`); other kinds fail. */
  bridgeNfCall?: boolean;
}

/** An address as read back (RTM_GETADDR). */
export interface Addr {
  index: number;
  family: 4 | 6;
  /** Address without prefix length. */
  address: string;
  prefixLen: number;
  /** IFA_LABEL for IPv4 when present. */
  label?: string;
  scope: number;
}

/** A route to add or as read back (RTM_NEWROUTE / RTM_GETROUTE). */
export interface Route {
  family: 4 | 6;
  /** CIDR, or `default`. */
  dst: string;
  gateway?: string;
  /** Output device name (resolved to an ifindex on add; filled on read when resolvable). */
  dev?: string;
  /** Output ifindex on read. */
  oif?: number;
  /** Preferred source address. */
  src?: string;
  /** Table id; 254 (main) when unset. */
  table?: number;
  /** RT_SCOPE_*: 0 universe, 253 link, 254 host. */
  scope?: number;
  /** RTN_*: 1 unicast, 2 local, 3 broadcast, ... */
  type?: number;
  /** RTPROT_*: 2 kernel, 3 boot, 4 static. */
  protocol?: number;
  metric?: number;
  mtu?: number;
}

/** A neighbour (ARP/NDP) entry or a bridge FDB entry. */
export interface Neigh {
  /** `4`/`6` for ARP/NDP, `'bridge'` for FDB (AF_BRIDGE). */
  family: 4 | 6 | 'bridge';
  dev: string;
  /** IP (for 4/6) or the remote VTEP's IP (NDA_DST) for a VXLAN FDB entry. */
  dst?: string;
  mac: string;
  /** NUD_PERMANENT when true (default true on add). */
  permanent?: boolean;
  /** NTF_SELF (on the device itself, e.g. VXLAN FDB) vs NTF_MASTER (on the bridge). */
  self?: boolean;
  master?: boolean;
  /** NDA_VNI. */
  vni?: number;
}

/**
 * A token bucket filter (`tc qdisc replace dev X root handle 1: tbf rate R burst B limit L`), the
 * one qdisc cnm sets: it shapes what leaves through the device.
 */
export interface Tbf {
  kind: 'tbf';
  /** Bytes per second (the kernel's unit). */
  rate: number;
  /** Bucket size in bytes: what may leave at once after an idle moment. */
  burst: number;
  /** Bytes that may wait behind the bucket; beyond that, packets are dropped. */
  limit: number;
}

/** A qdisc as read back (RTM_GETQDISC), like a line of `tc qdisc show`. */
export interface Qdisc {
  /** Device name (the ifindex as text when it cannot be resolved). */
  dev: string;
  index: number;
  kind: string;
  /** tcm_handle: `1:` is 0x10000; a device's default qdisc has 0. */
  handle: number;
  /** tcm_parent: 0xffffffff for a root qdisc. */
  parent: number;
  /** A tbf's parameters; `burst` is recomputed from the kernel's time in 64 ns ticks (±1 byte). */
  tbf?: Omit<Tbf, 'kind'>;
}

/**
 * One step of `Kernel.batch`: a kernel method and its arguments, plus errno codes that count as
 * success for this step (`EEXIST` makes an add idempotent).
 */
export type KernelStep = {
  [M in BatchableOp]: {
    op: M;
    args: Parameters<Kernel[M]>;
    ignore?: string[];
    /** Run only when the step before failed with one of its `ignore` codes (the "exists" path). */
    onlyIfPreviousIgnored?: boolean;
  };
}[BatchableOp];

/** Methods `batch` can run. */
export type BatchableOp =
  | 'linkAdd'
  | 'linkSet'
  | 'linkDel'
  | 'addrAdd'
  | 'addrDel'
  | 'routeAdd'
  | 'routeDel'
  | 'neighAdd'
  | 'neighDel'
  | 'qdiscReplace'
  | 'qdiscDel'
  | 'sysctlSet'
  | 'nftRun'
  | 'nftElements';

/** What the kernel said when a request failed. */
export interface KernelErrorInfo {
  /** Positive errno. */
  errno: number;
  /** Symbolic name, e.g. `EEXIST`. */
  code: string;
  /** NLMSGERR_ATTR_MSG extended-ack text, if the kernel gave one. */
  extack?: string;
}

/**
 * Host access. All methods are async: the real implementation runs them on a worker thread.
 * Every method throws `KernelError` (see errors in `kernel-error.ts`) with errno/code/extack.
 */
export interface Kernel {
  /** Creates a new network namespace bound at `path` (the file is created), with `lo` up. */
  netnsAdd(path: string): Promise<void>;
  /** Unmounts and removes a netns file. Missing is not an error. */
  netnsDel(path: string): Promise<void>;
  /** True when `path` is a mounted netns. */
  netnsExists(path: string): Promise<boolean>;
  /**
   * Makes `dir` a shared bind mount of itself (as `ip netns` does for /run/netns), so unmounts of
   * netns files under it propagate into containers' mount namespaces (made with slave propagation).
   */
  netnsDirEnsure(dir: string): Promise<void>;

  linkAdd(link: LinkAdd, ns?: NsRef): Promise<void>;
  linkSet(name: string, changes: LinkSet, ns?: NsRef): Promise<void>;
  /** Deletes a link. A missing link is an error (ENODEV) unless `ifExists` is true. */
  linkDel(name: string, ns?: NsRef, opts?: { ifExists?: boolean }): Promise<void>;
  linkGet(name: string, ns?: NsRef): Promise<Link | undefined>;
  linkList(ns?: NsRef): Promise<Link[]>;

  addrAdd(dev: string, cidr: string, ns?: NsRef, opts?: { noDad?: boolean }): Promise<void>;
  addrDel(dev: string, cidr: string, ns?: NsRef): Promise<void>;
  addrList(ns?: NsRef, family?: 4 | 6): Promise<Addr[]>;

  routeAdd(route: Route, ns?: NsRef, opts?: { replace?: boolean }): Promise<void>;
  routeDel(route: Route, ns?: NsRef): Promise<void>;
  /** Routes of the main table, or of `opts.table` (`'all'` for every table). */
  routeList(ns?: NsRef, family?: 4 | 6, opts?: { table?: number | 'all' }): Promise<Route[]>;

  /**
   * Adds a neighbour or FDB entry. `append` (NLM_F_APPEND) adds another remote to an existing
   * VXLAN FDB entry (e.g. several VTEPs for the all-zero MAC).
   */
  neighAdd(neigh: Neigh, ns?: NsRef, opts?: { replace?: boolean; append?: boolean }): Promise<void>;
  neighDel(neigh: Neigh, ns?: NsRef): Promise<void>;
  neighList(ns?: NsRef, family?: 4 | 6 | 'bridge'): Promise<Neigh[]>;

  /**
   * Sets the root qdisc of `dev` to `qdisc` with handle `1:`, creating it or changing an existing
   * one in place (`tc qdisc replace dev DEV root handle 1: tbf …`): packets queued stay queued.
   * @throws KernelError ENODEV for a missing device, EINVAL for parameters the kernel refuses
   */
  qdiscReplace(dev: string, qdisc: Tbf, ns?: NsRef): Promise<void>;
  /**
   * Removes the root qdisc of `dev`; the device falls back to its default (noqueue on a veth).
   * A device with only its default qdisc is an error (ENOENT) unless `ifExists` is true.
   */
  qdiscDel(dev: string, ns?: NsRef, opts?: { ifExists?: boolean }): Promise<void>;
  /** Qdiscs in `ns`, of `dev` only when given (`tc qdisc show [dev DEV]`), defaults included. */
  qdiscList(ns?: NsRef, dev?: string): Promise<Qdisc[]>;

  /** Writes `/proc/sys/<key with dots as slashes>` inside `ns`. */
  sysctlSet(key: string, value: string, ns?: NsRef): Promise<void>;
  sysctlGet(key: string, ns?: NsRef): Promise<string>;

  /**
   * Runs several steps in order in one round trip to the kernel thread, stopping at the first
   * failure that is not in that step's `ignore` list (steps already done stay done: callers
   * undo with their own inverse steps). One endpoint's veth, address and routes go this way.
   * @throws KernelError of the failed step
   */
  batch(steps: readonly KernelStep[]): Promise<void>;

  /**
   * Runs an nftables script (text syntax, one atomic transaction) through libnftables in the
   * daemon's namespace. Returns libnftables' output (JSON when `json` is true). `terse` (`nft
   * -t`) leaves set elements out of listings and out of what libnftables fetches for them: a
   * `list chain` in a table whose sets hold thousands of elements costs tens of ms without it.
   */
  nftRun(script: string, opts?: { json?: boolean; terse?: boolean }): Promise<string>;

  /**
   * Adds and deletes set/map elements of table `family table` in the daemon's namespace as one
   * atomic nf_tables transaction (one nfnetlink batch, in the order given), without
   * libnftables: the caller states each set's shape, so nothing is read from the kernel first
   * and no script is parsed. Elements are nft text
   * (`10.0.0.2 . 10.1.0.0/16 . tcp . 80-90`, `10.0.0.2 : jump c`). Sets, maps and chains are
   * created with `nftRun`.
   * @throws KernelError naming the set of the first failed change (ENOENT: deleting an absent
   *   element or unknown set/table; EEXIST: an overlapping interval) — nothing is applied then
   * @throws Error when an element does not fit its set's shape (a caller bug)
   */
  nftElements(family: string, table: string, changes: readonly NftElementChange[]): Promise<void>;

  /** Stops the worker and closes every socket. */
  close(): Promise<void>;
}

/** A field type of a set key or map value, named as nft names it. */
export type NftFieldType =
  'ipv4_addr' | 'ipv6_addr' | 'inet_proto' | 'inet_service' | 'mark' | 'ifname' | 'ether_addr';

/** What the kernel needs to know of a set to encode its elements (its nft declaration). */
export interface NftSetShape {
  /** Key fields (`type a . b`); more than one is a concatenation. */
  key: readonly NftFieldType[];
  /** `flags interval`. */
  interval: boolean;
  /** For a map: the value type (`: verdict`, `: mark`). */
  data?: NftFieldType | 'verdict';
}

/** Elements to add to or delete from one set (see `Kernel.nftElements`). */
export interface NftElementChange {
  op: 'add' | 'delete';
  set: string;
  shape: NftSetShape;
  elements: readonly string[];
}
