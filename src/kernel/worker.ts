/**
 * The kernel thread. Runs every host change synchronously, in request order, so the main event
 * loop never waits on the kernel. Holds one NETLINK_ROUTE socket per namespace (opened inside
 * that namespace by the addon; this thread itself never changes namespace, so libnftables and
 * plain file access here act in the daemon's namespace).
 *
 * `HostKernel` is the synchronous implementation; the bottom of the file wires it to the port.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { KernelError, NFT_RUN_ACTION, errnoFromCode, nftElementsAction } from './kernel-error.js';
import { loadAddon, type NativeAddon } from './native-addon.js';
import { NETLINK_NETFILTER } from './nftables/constants.js';
import { NftElementSyntaxError, encodeElementBatch } from './nftables/setelem.js';
import { NetlinkBatchError, NetlinkSocket, NetlinkStatusError } from './netlink-socket.js';
import { decodeAddr, encodeAddr, encodeAddrDump } from './rtnetlink/addr.js';
import {
  AF_BRIDGE,
  AF_UNSPEC,
  IFF_UP,
  NETLINK_ROUTE,
  NLM_F_ACK,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  NTF_MASTER,
  NTF_SELF,
  NUD_NOARP,
  NUD_PERMANENT,
  NUD_REACHABLE,
  IPVLAN_FLAG,
  IPVLAN_MODE,
  MACVLAN_MODE,
  RT_TABLE_MAIN,
  RTEXT_FILTER_SKIP_STATS,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_SETLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTM_DELQDISC,
  RTM_NEWQDISC,
  TC_H_ROOT,
} from './rtnetlink/constants.js';
import {
  decodeLink,
  encodeLink,
  type IfInfoMsg,
  type LinkAttrs,
  type LinkInfo,
} from './rtnetlink/link.js';
import {
  decodeNeigh,
  encodeNeigh,
  encodeNeighDump,
  fdbFlags,
  type NeighRequest,
} from './rtnetlink/neigh.js';
import { CNM_QDISC_HANDLE, decodeQdisc, encodeQdisc, encodeQdiscDump } from './rtnetlink/qdisc.js';
import { decodeRoute, encodeRoute, encodeRouteDump } from './rtnetlink/route.js';
import type {
  Addr,
  KernelStep,
  Link,
  LinkAdd,
  LinkSet,
  Neigh,
  NftElementChange,
  NsRef,
  Qdisc,
  Route,
  Tbf,
} from './types.js';
import type { WorkerOptions, WorkerReply, WorkerRequest } from './worker-protocol.js';
import { activeTrace, startTrace } from './step-trace.js';

/** statfs magic of nsfs: a mounted namespace file. */
const NSFS_MAGIC = 0x6e736673;

const REQ_ACK = NLM_F_REQUEST | NLM_F_ACK;

/** A cached socket and the identity of the namespace file it was opened for. */
interface NsSocket {
  sock: NetlinkSocket;
  dev: number;
  ino: number;
}

/** Turns an addon/fs error (with `.code`/`.errno`) or netlink status into a KernelError. */
function toKernelError(action: string, err: unknown): unknown {
  if (err instanceof KernelError) return err;
  if (err instanceof NetlinkStatusError) {
    return new KernelError(action, {
      errno: err.errno,
      code: '',
      ...(err.extack ? { extack: err.extack } : {}),
    });
  }
  const e = err as { code?: unknown; errno?: unknown };
  if (err instanceof Error && typeof e.code === 'string' && e.code.startsWith('E')) {
    // Node fs errors carry a negative errno; the addon's carry a positive one.
    const errno = typeof e.errno === 'number' ? Math.abs(e.errno) : errnoFromCode(e.code);
    return new KernelError(action, { errno, code: e.code }, { cause: err });
  }
  return err;
}

/** Runs `fn`, rethrowing failures as KernelError naming `action`. */
function attempt<T>(action: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toKernelError(action, err);
  }
}

/**
 * The kernel operations, synchronous. Method names and arguments mirror the `Kernel` contract.
 */
export class HostKernel {
  #native: NativeAddon;
  #sockets = new Map<string, NsSocket>();
  #own: NetlinkSocket | undefined;
  /** nfnetlink socket for element batches (`nftElements`), in the daemon's netns. */
  #nfnl: NetlinkSocket | undefined;

  constructor(native: NativeAddon) {
    this.#native = native;
  }

  /** The netlink socket for `ns`, reopened when the namespace file now names another netns. */
  #socket(ns: NsRef): NetlinkSocket {
    if (ns === undefined) {
      this.#own ??= this.#open(null);
      return this.#own;
    }
    const st = fs.statSync(ns);
    const cached = this.#sockets.get(ns);
    if (cached && cached.dev === st.dev && cached.ino === st.ino) return cached.sock;
    // The path was deleted and re-created (or unmounted) behind our back: the old socket would
    // act in, and keep alive, a namespace nobody can reach any more.
    cached?.sock.close();
    this.#sockets.delete(ns);
    const sock = this.#open(ns);
    this.#sockets.set(ns, { sock, dev: st.dev, ino: st.ino });
    return sock;
  }

  #open(ns: string | null): NetlinkSocket {
    return new NetlinkSocket(this.#native.openNetlink(NETLINK_ROUTE, ns), (fd) =>
      this.#native.closeFd(fd),
    );
  }

  /** Closes the cached socket of `ns`; a socket would keep a deleted namespace alive. */
  #forget(ns: string): void {
    this.#sockets.get(ns)?.sock.close();
    this.#sockets.delete(ns);
  }

  /** Resolves a link name to its ifindex in `ns` (RTM_GETLINK by IFLA_IFNAME). */
  #index(sock: NetlinkSocket, name: string): number {
    const [msg] = sock.request(
      encodeLink(RTM_GETLINK, NLM_F_REQUEST, {}, { name, extMask: RTEXT_FILTER_SKIP_STATS }),
    );
    if (!msg) throw new NetlinkStatusError(errnoFromCode('ENODEV'));
    return decodeLink(msg).index;
  }

  /** Resolves `name` in `ns` with its own error action (so "which link" is in the message). */
  #resolve(sock: NetlinkSocket, name: string, ns: NsRef): number {
    return attempt(`Cannot find link "${name}"${nsSuffix(ns)}`, () => this.#index(sock, name));
  }

  /** Runs `fn` with an fd of the namespace at `ns` (daemon's own for undefined). */
  #withNsFd<T>(ns: NsRef, fn: (fd: number) => T): T {
    // /proc/self/ns/net is the main thread's netns, which this thread shares (it never setns).
    const fd = fs.openSync(ns ?? '/proc/self/ns/net', 'r');
    try {
      return fn(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  netnsAdd(path: string): void {
    const trace = (activeTrace.current = startTrace('netnsAdd'));
    try {
      this.#netnsAdd(path);
    } finally {
      activeTrace.current = undefined;
      trace?.end();
    }
  }

  #netnsAdd(path: string): void {
    attempt(`Cannot add netns "${path}"`, () => {
      // The addon opens the new namespace's netlink socket on the thread that created it.
      const fd = this.#native.netnsCreate(path, NETLINK_ROUTE)!;
      activeTrace.current?.mark('create');
      const st = fs.statSync(path);
      const sock = new NetlinkSocket(fd, (f) => this.#native.closeFd(f));
      this.#sockets.get(path)?.sock.close();
      this.#sockets.set(path, { sock, dev: st.dev, ino: st.ino });
      try {
        // A new namespace's lo is down; everything local (including 127.0.0.1 DNS) needs it.
        sock.request(
          encodeLink(RTM_NEWLINK, REQ_ACK, { flags: IFF_UP, change: IFF_UP }, { name: 'lo' }),
        );
      } catch (err) {
        this.#forget(path);
        this.#native.netnsDelete(path);
        throw err;
      }
    });
  }

  netnsDel(path: string): void {
    this.#forget(path);
    attempt(`Cannot delete netns "${path}"`, () => this.#native.netnsDelete(path));
  }

  netnsExists(path: string): boolean {
    try {
      return fs.statfsSync(path).type === NSFS_MAGIC;
    } catch (err) {
      // Missing (or a missing parent) simply means no namespace there.
      const code = (err as { code?: string }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw toKernelError(`Cannot check netns "${path}"`, err);
    }
  }

  netnsDirEnsure(dir: string): void {
    attempt(`Cannot make netns directory "${dir}" shared`, () => this.#native.makeSharedDir(dir));
  }

  linkAdd(link: LinkAdd, ns: NsRef): void {
    const action = `Cannot add link "${link.name}"${nsSuffix(ns)}`;
    const sock = attempt(action, () => this.#socket(ns));
    const attrs: LinkAttrs = { name: link.name };
    if (link.mtu !== undefined) attrs.mtu = link.mtu;
    if (link.mac !== undefined) attrs.mac = link.mac;
    if (link.master !== undefined) attrs.master = this.#resolve(sock, link.master, ns);
    // Where the new link lands: macvlan/ipvlan children may be born in another namespace.
    let target: NsRef = ns;
    // Extra namespace a netns fd is needed for (IFLA_NET_NS_FD), if any.
    let fdFor: { ns: NsRef } | undefined;
    let info: LinkInfo;
    switch (link.kind) {
      case 'veth': {
        const p = link.peer;
        const peer: LinkAttrs = { name: p.name };
        const peerMtu = p.mtu ?? link.mtu;
        if (peerMtu !== undefined) peer.mtu = peerMtu;
        if (p.mac !== undefined) peer.mac = p.mac;
        // The peer is born in its namespace under its final name: moving or renaming later
        // costs 15-35 ms of RCU synchronisation. IFF_UP in the peer's own ifinfomsg fails with
        // ENOTCONN (veth_open runs before the pair is linked), so it is brought up afterwards.
        info = { kind: 'veth', peer: { attrs: peer } };
        if (p.ns !== ns) fdFor = { ns: p.ns };
        break;
      }
      case 'vxlan':
        info = {
          kind: 'vxlan',
          vni: link.vni,
          ...(link.port !== undefined ? { port: link.port } : {}),
          ...(link.local !== undefined ? { local: link.local } : {}),
          ...(link.group !== undefined ? { group: link.group } : {}),
          ...(link.dev !== undefined ? { link: this.#resolve(sock, link.dev, ns) } : {}),
          ...(link.learning !== undefined ? { learning: link.learning } : {}),
          ...(link.proxy !== undefined ? { proxy: link.proxy } : {}),
          ...(link.ttl !== undefined ? { ttl: link.ttl } : {}),
        };
        break;
      case 'vlan':
        attrs.link = this.#resolve(sock, link.parent, ns);
        info = { kind: 'vlan', id: link.id };
        break;
      case 'macvlan':
      case 'ipvlan':
        attrs.link = this.#resolve(sock, link.parent, ns);
        info =
          link.kind === 'macvlan'
            ? { kind: 'macvlan', mode: MACVLAN_MODE[link.mode] }
            : {
                kind: 'ipvlan',
                mode: IPVLAN_MODE[link.mode],
                ...(link.flag ? { flags: IPVLAN_FLAG[link.flag] } : {}),
              };
        if (link.ns !== undefined && link.ns !== ns) {
          target = link.ns;
          fdFor = { ns: link.ns };
        }
        break;
      case 'bridge':
        info = { kind: 'bridge', ...(link.nfCall !== undefined ? { nfCall: link.nfCall } : {}) };
        break;
      default:
        // dummy and any other kind the kernel knows, without kind-specific data.
        info = { kind: link.kind } as LinkInfo;
    }
    // IFF_UP at creation is fine for a link that stays here; one born elsewhere is brought up
    // in its namespace afterwards, like the veth peer.
    const upNow = link.up === true && target === ns;
    const header: IfInfoMsg = upNow ? { flags: IFF_UP, change: IFF_UP } : {};
    const create = (nsFd?: number): void => {
      const peer = info.kind === 'veth' ? info.peer.attrs : attrs;
      if (nsFd !== undefined) peer.nsFd = nsFd;
      sock.request(
        encodeLink(RTM_NEWLINK, REQ_ACK | NLM_F_CREATE | NLM_F_EXCL, header, { ...attrs, info }),
      );
    };
    attempt(action, () => (fdFor ? this.#withNsFd(fdFor.ns, create) : create()));
    try {
      // rtnl_create_link ignores IFLA_IFALIAS: the alias needs a request of its own.
      const after: LinkSet = {};
      if (link.alias !== undefined) after.alias = link.alias;
      if (link.addrGenMode !== undefined) after.addrGenMode = link.addrGenMode;
      if (link.up && !upNow) after.up = true;
      // Bridge port settings are their own AF_BRIDGE request (see linkSet).
      if (link.hairpin !== undefined) after.hairpin = link.hairpin;
      if (Object.keys(after).length > 0) this.linkSet(link.name, after, target);
      if (link.kind === 'veth' && link.peer.up)
        this.linkSet(link.peer.name, { up: true }, link.peer.ns);
    } catch (err) {
      // Leave nothing half-made (for a veth, deleting one end deletes both).
      this.linkDel(link.name, target, { ifExists: true });
      throw err;
    }
  }

  linkSet(name: string, changes: LinkSet, ns: NsRef): void {
    const action = `Cannot set link "${name}"${nsSuffix(ns)}`;
    const sock = attempt(action, () => this.#socket(ns));
    const header: IfInfoMsg = {};
    const attrs: LinkAttrs = {};
    if (changes.up !== undefined) {
      header.flags = changes.up ? IFF_UP : 0;
      header.change = IFF_UP;
    }
    if (changes.mtu !== undefined) attrs.mtu = changes.mtu;
    if (changes.mac !== undefined) attrs.mac = changes.mac;
    if (changes.alias !== undefined) attrs.alias = changes.alias;
    if (changes.addrGenMode !== undefined) attrs.addrGenMode = changes.addrGenMode;
    if (changes.bridgeNfCall !== undefined)
      attrs.info = { kind: 'bridge', nfCall: changes.bridgeNfCall };
    if (changes.master === null) attrs.master = 0;
    else if (changes.master !== undefined) attrs.master = this.#resolve(sock, changes.master, ns);
    // Without a master change, hairpin rides in this request as slave data (applied before the
    // rest of it): no ifindex lookup and no AF_BRIDGE request of its own. A master change in
    // the same request would be applied after it and reset it: then it is a request of its own.
    const hairpinHere = changes.hairpin !== undefined && changes.master === undefined;
    if (hairpinHere) attrs.slaveBrport = { hairpin: changes.hairpin! };
    const generic = header.change !== undefined || Object.keys(attrs).length > 0;
    let finalName = name;
    if (changes.name !== undefined && changes.name !== name) {
      // A rename addresses the link by index: IFLA_IFNAME then carries the new name.
      header.index = this.#resolve(sock, name, ns);
      attrs.name = changes.name;
      finalName = changes.name;
    } else {
      // The kernel looks the link up by IFLA_IFNAME when ifi_index is 0: one round trip less.
      attrs.name = name;
    }
    if (generic || changes.name !== undefined || changes.hairpin === undefined)
      attempt(action, () => sock.request(encodeLink(RTM_NEWLINK, REQ_ACK, header, attrs)));
    if (changes.hairpin !== undefined && !hairpinHere) {
      // Bridge port settings go to the bridge (rtnl_bridge_setlink -> br_setlink): RTM_SETLINK
      // with ifi_family AF_BRIDGE, the port by ifi_index only, IFLA_PROTINFO nested. As
      // `bridge link set dev X hairpin on` sends it. After the master change above, if any.
      const index = header.index ?? this.#resolve(sock, finalName, ns);
      attempt(action, () =>
        sock.request(
          encodeLink(
            RTM_SETLINK,
            REQ_ACK,
            { family: AF_BRIDGE, index },
            { brport: { hairpin: changes.hairpin! } },
          ),
        ),
      );
    }
  }

  linkDel(name: string, ns: NsRef, opts?: { ifExists?: boolean }): void {
    try {
      const sock = this.#socket(ns);
      sock.request(encodeLink(RTM_DELLINK, REQ_ACK, {}, { name }));
    } catch (err) {
      const e = toKernelError(`Cannot delete link "${name}"${nsSuffix(ns)}`, err);
      // ENODEV: no such link, which is what ifExists asks to tolerate.
      if (opts?.ifExists && e instanceof KernelError && e.errnoCode === 'ENODEV') return;
      throw e;
    }
  }

  linkGet(name: string, ns: NsRef): Link | undefined {
    try {
      const sock = this.#socket(ns);
      const [msg] = sock.request(
        encodeLink(RTM_GETLINK, NLM_F_REQUEST, {}, { name, extMask: RTEXT_FILTER_SKIP_STATS }),
      );
      return msg ? decodeLink(msg) : undefined;
    } catch (err) {
      const e = toKernelError(`Cannot get link "${name}"${nsSuffix(ns)}`, err);
      // ENODEV is the kernel's "no such link": an answer, not a failure.
      if (e instanceof KernelError && e.errnoCode === 'ENODEV') return undefined;
      throw e;
    }
  }

  linkList(ns: NsRef): Link[] {
    return attempt(`Cannot list links${nsSuffix(ns)}`, () => this.#dumpLinks(this.#socket(ns)));
  }

  #dumpLinks(sock: NetlinkSocket): Link[] {
    const msgs = sock.request(
      encodeLink(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, {}, { extMask: RTEXT_FILTER_SKIP_STATS }),
    );
    const links = msgs.map(decodeLink);
    activeTrace.current?.mark('decode');
    return links;
  }

  addrAdd(dev: string, cidr: string, ns: NsRef, opts?: { noDad?: boolean }): void {
    const action = `Cannot add address "${cidr}" to "${dev}"${nsSuffix(ns)}`;
    const sock = attempt(action, () => this.#socket(ns));
    const index = this.#resolve(sock, dev, ns);
    attempt(action, () =>
      sock.request(
        encodeAddr(RTM_NEWADDR, REQ_ACK | NLM_F_CREATE | NLM_F_EXCL, {
          index,
          cidr,
          ...(opts?.noDad ? { noDad: true } : {}),
        }),
      ),
    );
  }

  addrDel(dev: string, cidr: string, ns: NsRef): void {
    const action = `Cannot delete address "${cidr}" from "${dev}"${nsSuffix(ns)}`;
    const sock = attempt(action, () => this.#socket(ns));
    const index = this.#resolve(sock, dev, ns);
    attempt(action, () => sock.request(encodeAddr(RTM_DELADDR, REQ_ACK, { index, cidr })));
  }

  addrList(ns: NsRef, family?: 4 | 6): Addr[] {
    return attempt(`Cannot list addresses${nsSuffix(ns)}`, () => {
      const sock = this.#socket(ns);
      const af = family === 4 ? 2 : family === 6 ? 10 : AF_UNSPEC;
      return sock.request(encodeAddrDump(NLM_F_REQUEST | NLM_F_DUMP, af)).map(decodeAddr);
    });
  }

  routeAdd(route: Route, ns: NsRef, opts?: { replace?: boolean }): void {
    const action = `Cannot add route "${route.dst}"${route.gateway ? ` via "${route.gateway}"` : ''}${nsSuffix(ns)}`;
    const sock = attempt(action, () => this.#socket(ns));
    const req = { ...route, ...(route.dev ? { oif: this.#resolve(sock, route.dev, ns) } : {}) };
    const flags = REQ_ACK | NLM_F_CREATE | (opts?.replace ? NLM_F_REPLACE : NLM_F_EXCL);
    attempt(action, () => sock.request(encodeRoute(RTM_NEWROUTE, flags, req)));
  }

  routeDel(route: Route, ns: NsRef): void {
    const action = `Cannot delete route "${route.dst}"${nsSuffix(ns)}`;
    const sock = attempt(action, () => this.#socket(ns));
    const req = { ...route, ...(route.dev ? { oif: this.#resolve(sock, route.dev, ns) } : {}) };
    attempt(action, () => sock.request(encodeRoute(RTM_DELROUTE, REQ_ACK, req)));
  }

  routeList(ns: NsRef, family?: 4 | 6, opts?: { table?: number | 'all' }): Route[] {
    return attempt(`Cannot list routes${nsSuffix(ns)}`, () => {
      const sock = this.#socket(ns);
      const names = this.#names(sock);
      const table = opts?.table ?? RT_TABLE_MAIN;
      const out: Route[] = [];
      for (const f of family ? [family] : ([4, 6] as const)) {
        for (const msg of sock.request(
          encodeRouteDump(NLM_F_REQUEST | NLM_F_DUMP, f === 6 ? 10 : 2),
        )) {
          const r = decodeRoute(msg);
          if (table !== 'all' && r.table !== table) continue;
          if (r.oif !== undefined) {
            const dev = names.get(r.oif);
            if (dev) r.dev = dev;
          }
          out.push(r);
        }
      }
      return out;
    });
  }

  #names(sock: NetlinkSocket): Map<number, string> {
    return new Map(this.#dumpLinks(sock).map((l) => [l.index, l.name]));
  }

  neighAdd(neigh: Neigh, ns: NsRef, opts?: { replace?: boolean; append?: boolean }): void {
    const action = `Cannot add neighbour "${neigh.dst ?? neigh.mac}" on "${neigh.dev}"${nsSuffix(ns)}`;
    const sock = attempt(action, () => this.#socket(ns));
    const index = this.#resolve(sock, neigh.dev, ns);
    const mode = opts?.replace ? NLM_F_REPLACE : opts?.append ? NLM_F_APPEND : NLM_F_EXCL;
    attempt(action, () =>
      sock.request(
        encodeNeigh(RTM_NEWNEIGH, REQ_ACK | NLM_F_CREATE | mode, neighRequest(neigh, index)),
      ),
    );
  }

  neighDel(neigh: Neigh, ns: NsRef): void {
    const action = `Cannot delete neighbour "${neigh.dst ?? neigh.mac}" on "${neigh.dev}"${nsSuffix(ns)}`;
    const sock = attempt(action, () => this.#socket(ns));
    const index = this.#resolve(sock, neigh.dev, ns);
    attempt(action, () =>
      sock.request(encodeNeigh(RTM_DELNEIGH, REQ_ACK, neighRequest(neigh, index))),
    );
  }

  neighList(ns: NsRef, family?: 4 | 6 | 'bridge'): Neigh[] {
    return attempt(`Cannot list neighbours${nsSuffix(ns)}`, () => {
      const sock = this.#socket(ns);
      const names = this.#names(sock);
      const out: Neigh[] = [];
      for (const f of family ? [family] : ([4, 6] as const)) {
        for (const msg of sock.request(encodeNeighDump(NLM_F_REQUEST | NLM_F_DUMP, f))) {
          const e = decodeNeigh(msg);
          // NOARP entries are the kernel's own (multicast, loopback), not neighbours anyone added.
          if (e.family !== 'bridge' && e.state & NUD_NOARP) continue;
          const n: Neigh = {
            family: e.family,
            dev: names.get(e.index) ?? String(e.index),
            mac: e.mac ?? '',
            permanent: (e.state & NUD_PERMANENT) !== 0,
          };
          if (e.dst !== undefined) n.dst = e.dst;
          if (e.family === 'bridge') {
            n.self = (e.flags & NTF_SELF) !== 0;
            n.master = (e.flags & NTF_MASTER) !== 0;
          }
          if (e.vni !== undefined) n.vni = e.vni;
          out.push(n);
        }
      }
      return out;
    });
  }

  qdiscReplace(dev: string, qdisc: Tbf, ns: NsRef): void {
    const action = `Cannot set qdisc "${qdisc.kind}" on "${dev}"${nsSuffix(ns)}`;
    const sock = attempt(action, () => this.#socket(ns));
    const index = this.#resolve(sock, dev, ns);
    const { rate, burst, limit } = qdisc;
    // CREATE|REPLACE with handle 1: grafts a new tbf over the default qdisc, and changes an
    // existing tbf 1: in place (tbf_change): its queue survives a rate change.
    attempt(action, () =>
      sock.request(
        encodeQdisc(RTM_NEWQDISC, REQ_ACK | NLM_F_CREATE | NLM_F_REPLACE, {
          index,
          handle: CNM_QDISC_HANDLE,
          tbf: { rate, burst, limit },
        }),
      ),
    );
  }

  qdiscDel(dev: string, ns: NsRef, opts?: { ifExists?: boolean }): void {
    const action = `Cannot delete qdisc on "${dev}"${nsSuffix(ns)}`;
    try {
      const sock = this.#socket(ns);
      const index = this.#index(sock, dev);
      // Handle 0 matches whatever root qdisc is there; the default one (handle 0) is ENOENT.
      sock.request(encodeQdisc(RTM_DELQDISC, REQ_ACK, { index, parent: TC_H_ROOT }));
    } catch (err) {
      const e = toKernelError(action, err);
      if (opts?.ifExists && e instanceof KernelError && e.errnoCode === 'ENOENT') return;
      throw e;
    }
  }

  qdiscList(ns: NsRef, dev?: string): Qdisc[] {
    return attempt(`Cannot list qdiscs${nsSuffix(ns)}`, () => {
      const sock = this.#socket(ns);
      const names = this.#names(sock);
      // The kernel ignores tcm_ifindex in a dump (iproute2 filters too): filter here.
      const only = dev === undefined ? undefined : this.#index(sock, dev);
      const out: Qdisc[] = [];
      for (const msg of sock.request(encodeQdiscDump(NLM_F_REQUEST | NLM_F_DUMP))) {
        const q = decodeQdisc(msg);
        if (only !== undefined && q.index !== only) continue;
        out.push({
          dev: names.get(q.index) ?? String(q.index),
          index: q.index,
          kind: q.kind,
          handle: q.handle,
          parent: q.parent,
          ...(q.tbf ? { tbf: q.tbf } : {}),
        });
      }
      return out;
    });
  }

  sysctlSet(key: string, value: string, ns: NsRef): void {
    const path = sysctlPath(key);
    attempt(`Cannot set sysctl "${key}" to "${value}"${nsSuffix(ns)}`, () => {
      // /proc/sys/net is per netns as of open(): open from a thread inside the namespace.
      const fd = this.#native.openInNetns(ns ?? null, path, fs.constants.O_WRONLY);
      try {
        fs.writeSync(fd, value);
      } finally {
        this.#native.closeFd(fd);
      }
    });
  }

  sysctlGet(key: string, ns: NsRef): string {
    const path = sysctlPath(key);
    return attempt(`Cannot get sysctl "${key}"${nsSuffix(ns)}`, () => {
      const fd = this.#native.openInNetns(ns ?? null, path, fs.constants.O_RDONLY);
      try {
        const buf = Buffer.alloc(4096);
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        return buf.toString('utf8', 0, n).trimEnd();
      } finally {
        this.#native.closeFd(fd);
      }
    });
  }

  batch(steps: readonly KernelStep[]): void {
    const trace = (activeTrace.current = startTrace('batch'));
    try {
      this.#batch(steps);
    } finally {
      activeTrace.current = undefined;
      trace?.end();
    }
  }

  #batch(steps: readonly KernelStep[]): void {
    type Method = (...args: unknown[]) => unknown;
    let previousIgnored = false;
    for (const step of steps) {
      const fn = (this as unknown as Record<string, Method>)[step.op];
      if (typeof fn !== 'function') throw new TypeError(`Unknown batch operation "${step.op}"`);
      if (step.onlyIfPreviousIgnored && !previousIgnored) continue;
      previousIgnored = false;
      try {
        fn.apply(this, step.args);
        activeTrace.current?.mark(step.op);
      } catch (err) {
        if (err instanceof KernelError && step.ignore?.includes(err.errnoCode)) {
          previousIgnored = true;
          continue;
        }
        throw err;
      }
    }
  }

  nftRun(script: string, opts?: { json?: boolean; terse?: boolean }): string {
    const trace = startTrace('nftRun');
    try {
      return this.#native.nftRun(script, opts?.json ?? false, opts?.terse ?? false).output;
    } catch (err) {
      const e = err as Error & { code?: string; errno?: number };
      if (typeof e.errno !== 'number') throw err;
      // libnftables' error text (with the offending line and carets) is the useful part.
      throw new KernelError(NFT_RUN_ACTION, {
        errno: e.errno,
        code: e.code ?? '',
        extack: e.message,
      });
    } finally {
      trace?.end({ bytes: script.length });
    }
  }

  nftElements(family: string, table: string, changes: readonly NftElementChange[]): void {
    let parts;
    try {
      parts = encodeElementBatch(family, table, changes);
    } catch (err) {
      // Text that does not fit the declared shape is the caller's bug, not a kernel failure.
      if (err instanceof NftElementSyntaxError) throw new TypeError(err.message, { cause: err });
      throw err;
    }
    if (parts.length === 2) return; // begin and end only: nothing to change
    try {
      // One NETLINK_NETFILTER socket in the daemon's (= this thread's) netns, opened on first use.
      this.#nfnl ??= new NetlinkSocket(this.#native.openNetlink(NETLINK_NETFILTER, null), (fd) =>
        this.#native.closeFd(fd),
      );
      this.#nfnl.requestBatch(parts.map((p) => p.bytes));
    } catch (err) {
      const index = err instanceof NetlinkBatchError ? err.index : 0;
      const c = changes[parts[index]?.change ?? -1];
      throw toKernelError(nftElementsAction(family, table, c), err);
    }
  }

  /** Closes every socket. */
  shutdown(): void {
    this.#nfnl?.close();
    this.#nfnl = undefined;
    this.#own?.close();
    this.#own = undefined;
    for (const s of this.#sockets.values()) s.sock.close();
    this.#sockets.clear();
  }
}

/** ` in netns "<path>"` for messages about a sandbox; nothing for the daemon's own. */
function nsSuffix(ns: NsRef): string {
  return ns === undefined ? '' : ` in netns "${ns}"`;
}

/** `/proc/sys/...` for a dotted key; a key with slashes is taken as a path (names with dots). */
function sysctlPath(key: string): string {
  return `/proc/sys/${key.includes('/') ? key.replace(/^\/+/, '') : key.replace(/\./g, '/')}`;
}

function neighRequest(n: Neigh, index: number): NeighRequest {
  const req: NeighRequest = {
    family: n.family,
    index,
    state: n.permanent === false ? NUD_REACHABLE : NUD_PERMANENT,
  };
  if (n.dst !== undefined) req.dst = n.dst;
  if (n.mac) req.mac = n.mac;
  if (n.vni !== undefined) req.vni = n.vni;
  // `bridge fdb add` defaults to NTF_SELF; an FDB entry must say where it lives.
  if (n.family === 'bridge') req.flags = n.self || n.master ? fdbFlags(n.self, n.master) : NTF_SELF;
  return req;
}

/** Plain-data form of an error for `postMessage`. */
function replyError(id: number, err: unknown): WorkerReply {
  if (err instanceof KernelError)
    return { id, ok: false, kernel: { action: err.action, info: err.toInfo() } };
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    id,
    ok: false,
    other: { name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) },
  };
}

if (parentPort) {
  const port = parentPort;
  const opts = (workerData ?? {}) as WorkerOptions;
  const host = new HostKernel(loadAddon(opts.addonPath));
  // id 0 tells createKernel() the addon loaded; a load failure surfaces as the 'error' event.
  port.postMessage({ id: 0, ok: true, value: 'ready' } satisfies WorkerReply);
  type Method = (...args: unknown[]) => unknown;
  port.on('message', (req: WorkerRequest) => {
    let reply: WorkerReply;
    try {
      const fn = (host as unknown as Record<string, Method>)[req.op];
      if (typeof fn !== 'function') throw new TypeError(`Unknown kernel operation "${req.op}"`);
      const trace = (activeTrace.current = startTrace(`call ${req.op}`));
      reply = { id: req.id, ok: true, value: fn.apply(host, req.args) };
      activeTrace.current = undefined;
      trace?.end();
    } catch (err) {
      reply = replyError(req.id, err);
    }
    port.postMessage(reply);
  });
}
