/**
 * An in-memory `Kernel` with the real kernel's error behaviour, for controller and driver tests
 * that must run without root. Same errnos and messages as the real one for the cases cnm meets;
 * the shared suite `kernel.case.test.ts` holds both to the same behaviour.
 */
import { KernelError, NFT_RUN_ACTION, errnoFromCode, nftElementsAction } from '../kernel-error.js';
import type {
  Addr,
  AddrGenMode,
  Kernel,
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
} from '../types.js';

/** Kernel methods whose next call `failNext` can make fail. */
export type FakeKernelMethod = Exclude<keyof Kernel, 'close'>;

interface FakeLink {
  index: number;
  name: string;
  kind: string;
  mtu: number;
  mac: string;
  up: boolean;
  alias?: string;
  master?: number;
  /** Bridge port hairpin mode; reset whenever the port is released or re-enslaved. */
  hairpin?: boolean;
  /** Only when set: the real kernel reports its default (eui64) as well. */
  addrGenMode?: AddrGenMode;
  /** A bridge's br_netfilter switch; the real kernel reports it (off by default) for bridges. */
  nfCall?: boolean;
  /** veth peer (namespace key + name). */
  peer?: { ns: string; name: string };
  /** Parent of a macvlan/ipvlan/vlan (namespace key + ifindex): deleting it deletes the child. */
  parent?: { ns: string; index: number };
  /** Root qdisc set with `qdiscReplace`; absent means the default (noqueue, handle 0). */
  qdisc?: Tbf;
}

interface FakeNs {
  links: Map<string, FakeLink>;
  nextIndex: number;
  addrs: Addr[];
  routes: Route[];
  neighs: { neigh: Neigh; index: number }[];
  sysctls: Map<string, string>;
}

/** Key of the daemon's own namespace in the table. */
const OWN = '';
const IFNAMSIZ = 16;
const RTPROT_KERNEL = 2;
const RT_SCOPE_LINK = 253;
const TC_H_ROOT = 0xffffffff;

function key(ns: NsRef): string {
  return ns ?? OWN;
}

function suffix(ns: NsRef): string {
  return ns === undefined ? '' : ` in netns "${ns}"`;
}

function fail(action: string, code: string, extack?: string): never {
  throw new KernelError(action, {
    errno: errnoFromCode(code),
    code,
    ...(extack ? { extack } : {}),
  });
}

/** Parses an address to a bigint and its bit width, for prefix matching. */
function ipBits(ip: string): { value: bigint; bits: number } {
  if (ip.includes(':')) {
    const [head = '', tail = ''] = ip.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = ip.includes('::')
      ? [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t]
      : h;
    return {
      value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n),
      bits: 128,
    };
  }
  return { value: ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n), bits: 32 };
}

/** True when `ip` lies in `cidr` (`net/prefixLen`). */
function inCidr(ip: string, cidr: string): boolean {
  const [net = '', len = '0'] = cidr.split('/');
  const prefixLen = Number(len);
  const a = ipBits(ip);
  const n = ipBits(net);
  if (a.bits !== n.bits) return false;
  const shift = BigInt(a.bits - prefixLen);
  return a.value >> shift === n.value >> shift;
}

/** The network address of `ip/prefixLen` in text form. */
function networkOf(ip: string, prefixLen: number): string {
  const { value, bits } = ipBits(ip);
  const shift = BigInt(bits - prefixLen);
  const net = (value >> shift) << shift;
  if (bits === 32) return [24n, 16n, 8n, 0n].map((s) => String((net >> s) & 255n)).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((net >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Compress the first longest zero run, as the real kernel's reply decoding does.
  const text = groups.join(':');
  const runs = [...text.matchAll(/(^|:)0(:0)+(:|$)/g)].sort((x, y) => y[0].length - x[0].length);
  const best = runs[0];
  if (!best || best.index === undefined) return text;
  return `${text.slice(0, best.index)}::${text.slice(best.index + best[0].length)}`;
}

let macCounter = 0;
function newMac(): string {
  macCounter++;
  // Locally administered unicast: 02:xx...
  return [
    '02',
    'fa',
    ...[16, 8, 0].map((s) => ((macCounter >> s) & 255).toString(16).padStart(2, '0')),
    '01',
  ].join(':');
}

/**
 * In-memory kernel. Namespaces exist once `netnsAdd` made them; the daemon's own namespace
 * starts with `lo` plus any `hostLinks` given (e.g. an uplink `eth0` for macvlan tests).
 *
 * @example
 * const k = new FakeKernel({ hostLinks: ['eth0'] });
 * k.failNext('addrAdd', 'EADDRINUSE'); // the next addrAdd throws KernelError EADDRINUSE
 */
export class FakeKernel implements Kernel {
  /** Every nftables script run, in order. */
  readonly nftScripts: string[] = [];
  /** Every `nftElements` call, in order (the fake keeps no element state). */
  readonly nftElementBatches: {
    family: string;
    table: string;
    changes: NftElementChange[];
  }[] = [];
  /** Directories made shared with `netnsDirEnsure`. */
  readonly sharedDirs = new Set<string>();
  /** Answers `nftRun` (default: empty output); `terse` as asked (`nft -t`: no set elements). */
  nftOutput: (script: string, json: boolean, terse: boolean) => string = () => '';
  #ns = new Map<string, FakeNs>();
  #failures = new Map<FakeKernelMethod, string[]>();
  #closed = false;

  constructor(opts: { hostLinks?: string[] } = {}) {
    this.#ns.set(OWN, this.#newNs());
    for (const name of opts.hostLinks ?? []) {
      this.#insert(OWN, { name, kind: 'dummy', mtu: 1500, mac: newMac(), up: true });
    }
  }

  /**
   * Makes the next call of `method` throw a KernelError with `errnoCode` (e.g. `EEXIST`)
   * without changing any state. Calls queue up: two failNext for one method fail two calls.
   */
  failNext(method: FakeKernelMethod, errnoCode: string): void {
    const q = this.#failures.get(method) ?? [];
    q.push(errnoCode);
    this.#failures.set(method, q);
  }

  /** Namespace paths that exist now (not the daemon's own). */
  namespaces(): string[] {
    return [...this.#ns.keys()].filter((k) => k !== OWN);
  }

  #newNs(): FakeNs {
    const ns: FakeNs = {
      links: new Map(),
      nextIndex: 1,
      addrs: [],
      routes: [],
      neighs: [],
      sysctls: new Map(),
    };
    ns.links.set('lo', {
      index: ns.nextIndex++,
      name: 'lo',
      kind: '',
      mtu: 65536,
      mac: '00:00:00:00:00:00',
      up: true,
    });
    ns.addrs.push(
      { index: 1, family: 4, address: '127.0.0.1', prefixLen: 8, scope: 254, label: 'lo' },
      { index: 1, family: 6, address: '::1', prefixLen: 128, scope: 254 },
    );
    return ns;
  }

  #enter(method: FakeKernelMethod, action: string): void {
    if (this.#closed) throw new Error('Kernel is closed');
    const code = this.#failures.get(method)?.shift();
    if (code) fail(action, code, 'Injected by FakeKernel.failNext');
  }

  #space(ns: NsRef, action: string): FakeNs {
    const space = this.#ns.get(key(ns));
    // The real kernel fails to open the namespace file.
    if (!space) fail(action, 'ENOENT');
    return space;
  }

  #link(space: FakeNs, name: string, action: string): FakeLink {
    const link = space.links.get(name);
    if (!link) fail(action, 'ENODEV');
    return link;
  }

  #byIndex(space: FakeNs, index: number): FakeLink | undefined {
    for (const l of space.links.values()) if (l.index === index) return l;
    return undefined;
  }

  #insert(nsKey: string, l: Omit<FakeLink, 'index'>): FakeLink {
    const space = this.#ns.get(nsKey)!;
    const link: FakeLink = { ...l, index: space.nextIndex++ };
    space.links.set(link.name, link);
    return link;
  }

  #checkName(name: string, action: string): void {
    if (name.length === 0 || name.length >= IFNAMSIZ || /[/\s:]/.test(name)) {
      fail(action, 'EINVAL', 'Attribute failed policy validation');
    }
  }

  /** Removes a link and everything hanging off it: addresses, routes, neighbours, peer, children. */
  #remove(nsKey: string, name: string): void {
    const space = this.#ns.get(nsKey);
    const link = space?.links.get(name);
    if (!space || !link) return;
    space.links.delete(name);
    space.addrs = space.addrs.filter((a) => a.index !== link.index);
    space.routes = space.routes.filter((r) => r.oif !== link.index);
    space.neighs = space.neighs.filter((n) => n.index !== link.index);
    for (const l of space.links.values()) {
      if (l.master !== link.index) continue;
      delete l.master;
      delete l.hairpin;
    }
    if (link.peer) this.#remove(link.peer.ns, link.peer.name);
    for (const [k, s] of this.#ns) {
      for (const child of [...s.links.values()]) {
        if (child.parent?.ns === nsKey && child.parent.index === link.index)
          this.#remove(k, child.name);
      }
    }
  }

  #view(space: FakeNs, l: FakeLink): Link {
    const out: Link = {
      index: l.index,
      name: l.name,
      mtu: l.mtu,
      up: l.up,
      lowerUp: this.#lowerUp(l),
    };
    if (l.kind) out.kind = l.kind;
    out.mac = l.mac;
    if (l.master !== undefined) {
      out.master = l.master;
      out.hairpin = l.hairpin ?? false;
    }
    if (l.peer) {
      const peer = this.#ns.get(l.peer.ns)?.links.get(l.peer.name);
      if (peer) out.link = peer.index;
    } else if (l.parent) {
      out.link = l.parent.index;
    }
    if (l.alias !== undefined) out.alias = l.alias;
    if (l.addrGenMode !== undefined) out.addrGenMode = l.addrGenMode;
    if (l.kind === 'bridge') out.bridgeNfCall = l.nfCall ?? false;
    void space;
    return out;
  }

  #lowerUp(l: FakeLink): boolean {
    if (!l.up) return false;
    if (!l.peer) return true;
    // A veth has carrier only when both ends are up.
    return this.#ns.get(l.peer.ns)?.links.get(l.peer.name)?.up ?? false;
  }

  async netnsAdd(path: string): Promise<void> {
    const action = `Cannot add netns "${path}"`;
    this.#enter('netnsAdd', action);
    if (this.#ns.has(path)) fail(action, 'EEXIST');
    this.#ns.set(path, this.#newNs());
  }

  async netnsDel(path: string): Promise<void> {
    this.#enter('netnsDel', `Cannot delete netns "${path}"`);
    const space = this.#ns.get(path);
    if (!space) return;
    // Links die with their namespace, and so do their veth peers and children elsewhere.
    for (const name of [...space.links.keys()]) this.#remove(path, name);
    this.#ns.delete(path);
  }

  async netnsExists(path: string): Promise<boolean> {
    this.#enter('netnsExists', `Cannot check netns "${path}"`);
    return this.#ns.has(path);
  }

  async netnsDirEnsure(dir: string): Promise<void> {
    this.#enter('netnsDirEnsure', `Cannot make netns directory "${dir}" shared`);
    this.sharedDirs.add(dir);
  }

  async linkAdd(link: LinkAdd, ns?: NsRef): Promise<void> {
    const action = `Cannot add link "${link.name}"${suffix(ns)}`;
    this.#enter('linkAdd', action);
    const space = this.#space(ns, action);
    this.#checkName(link.name, action);
    const master =
      link.master !== undefined
        ? this.#link(space, link.master, `Cannot find link "${link.master}"${suffix(ns)}`)
        : undefined;
    let target = key(ns);
    let parent: FakeLink['parent'];
    if (link.kind === 'macvlan' || link.kind === 'ipvlan' || link.kind === 'vlan') {
      const p = this.#link(space, link.parent, `Cannot find link "${link.parent}"${suffix(ns)}`);
      parent = { ns: key(ns), index: p.index };
      if (link.kind !== 'vlan' && link.ns !== undefined) target = key(link.ns);
    }
    if (link.kind === 'vxlan' && link.dev !== undefined) {
      this.#link(space, link.dev, `Cannot find link "${link.dev}"${suffix(ns)}`);
    }
    const targetSpace = this.#ns.get(target) ?? fail(action, 'ENOENT');
    if (targetSpace.links.has(link.name)) fail(action, 'EEXIST');
    // Hairpin is a bridge port setting: the real kernel refuses it on a link without a master.
    if (link.hairpin !== undefined && !master) fail(action, 'EOPNOTSUPP');
    const base = {
      name: link.name,
      kind: link.kind,
      mtu: link.mtu ?? 1500,
      mac: link.mac ?? newMac(),
      up: link.up ?? false,
      ...(link.alias !== undefined ? { alias: link.alias } : {}),
      ...(link.addrGenMode !== undefined ? { addrGenMode: link.addrGenMode } : {}),
      ...(master ? { master: master.index } : {}),
      ...(master && link.hairpin !== undefined ? { hairpin: link.hairpin } : {}),
      ...(link.kind === 'bridge' && link.nfCall !== undefined ? { nfCall: link.nfCall } : {}),
    };
    if (link.kind === 'veth') {
      const p = link.peer;
      this.#checkName(p.name, action);
      const peerKey = key(p.ns);
      const peerSpace = this.#ns.get(peerKey) ?? fail(action, 'ENOENT');
      if (peerSpace.links.has(p.name) || (peerKey === target && p.name === link.name))
        fail(action, 'EEXIST');
      this.#insert(target, { ...base, peer: { ns: peerKey, name: p.name } });
      this.#insert(peerKey, {
        name: p.name,
        kind: 'veth',
        mtu: p.mtu ?? link.mtu ?? 1500,
        mac: p.mac ?? newMac(),
        up: p.up ?? false,
        peer: { ns: target, name: link.name },
      });
      return;
    }
    this.#insert(target, { ...base, ...(parent ? { parent } : {}) });
  }

  async linkSet(name: string, changes: LinkSet, ns?: NsRef): Promise<void> {
    const action = `Cannot set link "${name}"${suffix(ns)}`;
    this.#enter('linkSet', action);
    const space = this.#space(ns, action);
    const link = this.#link(
      space,
      name,
      changes.name !== undefined && changes.name !== name
        ? `Cannot find link "${name}"${suffix(ns)}`
        : action,
    );
    let master: number | undefined | null;
    if (changes.master === null) master = null;
    else if (changes.master !== undefined)
      master = this.#link(
        space,
        changes.master,
        `Cannot find link "${changes.master}"${suffix(ns)}`,
      ).index;
    if (changes.name !== undefined && changes.name !== name) {
      this.#checkName(changes.name, action);
      if (space.links.has(changes.name)) fail(action, 'EEXIST');
      // The kernel refuses to rename a running interface.
      if (link.up && changes.up !== false) fail(action, 'EBUSY');
    }
    // Hairpin is a bridge port setting (br_setlink): a link without a master has no port.
    if (changes.hairpin !== undefined && (master === null || (master ?? link.master) === undefined))
      fail(action, 'EOPNOTSUPP');
    // IFLA_INFO_KIND "bridge" on a link of another kind: the kernel refuses the request.
    if (changes.bridgeNfCall !== undefined && link.kind !== 'bridge') fail(action, 'EOPNOTSUPP');
    if (changes.mtu !== undefined) link.mtu = changes.mtu;
    if (changes.mac !== undefined) link.mac = changes.mac;
    if (changes.alias !== undefined) link.alias = changes.alias;
    if (changes.addrGenMode !== undefined) link.addrGenMode = changes.addrGenMode;
    if (changes.bridgeNfCall !== undefined) link.nfCall = changes.bridgeNfCall;
    // The bridge driver refuses to enslave a bridge to a bridge.
    if (typeof master === 'number' && link.kind === 'bridge') {
      fail(action, 'ELOOP', 'Can not enslave a bridge to a bridge');
    }
    // A released or re-enslaved port is a new bridge port: its settings start from defaults.
    if (master !== undefined && master !== link.master) delete link.hairpin;
    if (master === null) delete link.master;
    else if (master !== undefined) link.master = master;
    if (changes.hairpin !== undefined) link.hairpin = changes.hairpin;
    if (changes.up !== undefined) {
      link.up = changes.up;
      // IPv4 routes through a device that goes down are flushed by the kernel.
      if (!changes.up)
        space.routes = space.routes.filter((r) => r.family !== 4 || r.oif !== link.index);
    }
    if (changes.name !== undefined && changes.name !== name) {
      space.links.delete(name);
      link.name = changes.name;
      space.links.set(link.name, link);
      if (link.peer) {
        const peer = this.#ns.get(link.peer.ns)?.links.get(link.peer.name);
        if (peer?.peer) peer.peer.name = link.name;
      }
    }
  }

  async linkDel(name: string, ns?: NsRef, opts?: { ifExists?: boolean }): Promise<void> {
    const action = `Cannot delete link "${name}"${suffix(ns)}`;
    this.#enter('linkDel', action);
    const space = this.#space(ns, action);
    if (!space.links.has(name)) {
      if (opts?.ifExists) return;
      fail(action, 'ENODEV');
    }
    this.#remove(key(ns), name);
  }

  async linkGet(name: string, ns?: NsRef): Promise<Link | undefined> {
    const action = `Cannot get link "${name}"${suffix(ns)}`;
    this.#enter('linkGet', action);
    const space = this.#space(ns, action);
    const l = space.links.get(name);
    return l ? this.#view(space, l) : undefined;
  }

  async linkList(ns?: NsRef): Promise<Link[]> {
    const action = `Cannot list links${suffix(ns)}`;
    this.#enter('linkList', action);
    const space = this.#space(ns, action);
    return [...space.links.values()]
      .sort((a, b) => a.index - b.index)
      .map((l) => this.#view(space, l));
  }

  async addrAdd(dev: string, cidr: string, ns?: NsRef, opts?: { noDad?: boolean }): Promise<void> {
    const action = `Cannot add address "${cidr}" to "${dev}"${suffix(ns)}`;
    this.#enter('addrAdd', action);
    void opts;
    const space = this.#space(ns, action);
    const link = this.#link(space, dev, `Cannot find link "${dev}"${suffix(ns)}`);
    const [address = '', len] = cidr.split('/');
    const family: 4 | 6 = address.includes(':') ? 6 : 4;
    const prefixLen = len === undefined ? (family === 4 ? 32 : 128) : Number(len);
    if (
      space.addrs.some(
        (a) => a.index === link.index && a.address === address && a.prefixLen === prefixLen,
      )
    ) {
      fail(action, 'EEXIST');
    }
    const addr: Addr = { index: link.index, family, address, prefixLen, scope: 0 };
    if (family === 4) addr.label = link.name;
    space.addrs.push(addr);
  }

  async addrDel(dev: string, cidr: string, ns?: NsRef): Promise<void> {
    const action = `Cannot delete address "${cidr}" from "${dev}"${suffix(ns)}`;
    this.#enter('addrDel', action);
    const space = this.#space(ns, action);
    const link = this.#link(space, dev, `Cannot find link "${dev}"${suffix(ns)}`);
    const [address = '', len] = cidr.split('/');
    const i = space.addrs.findIndex(
      (a) =>
        a.index === link.index &&
        a.address === address &&
        (len === undefined || a.prefixLen === Number(len)),
    );
    if (i < 0) fail(action, 'EADDRNOTAVAIL');
    space.addrs.splice(i, 1);
  }

  async addrList(ns?: NsRef, family?: 4 | 6): Promise<Addr[]> {
    const action = `Cannot list addresses${suffix(ns)}`;
    this.#enter('addrList', action);
    const space = this.#space(ns, action);
    return space.addrs
      .filter((a) => family === undefined || a.family === family)
      .map((a) => ({ ...a }));
  }

  /** Routes the kernel derives from addresses on up links (proto kernel). */
  #connected(space: FakeNs): Route[] {
    const out: Route[] = [];
    for (const a of space.addrs) {
      const link = this.#byIndex(space, a.index);
      if (!link?.up || a.scope === 254) continue;
      const maxLen = a.family === 4 ? 32 : 128;
      if (a.prefixLen === maxLen) continue;
      const r: Route = {
        family: a.family,
        dst: `${networkOf(a.address, a.prefixLen)}/${a.prefixLen}`,
        table: 254,
        protocol: RTPROT_KERNEL,
        scope: a.family === 4 ? RT_SCOPE_LINK : 0,
        type: 1,
        oif: a.index,
        dev: link.name,
      };
      if (a.family === 4) r.src = a.address;
      else r.metric = 256;
      out.push(r);
    }
    return out;
  }

  async routeAdd(route: Route, ns?: NsRef, opts?: { replace?: boolean }): Promise<void> {
    const action = `Cannot add route "${route.dst}"${route.gateway ? ` via "${route.gateway}"` : ''}${suffix(ns)}`;
    this.#enter('routeAdd', action);
    const space = this.#space(ns, action);
    const dev =
      route.dev !== undefined
        ? this.#link(space, route.dev, `Cannot find link "${route.dev}"${suffix(ns)}`)
        : undefined;
    if (dev && !dev.up) fail(action, 'ENETDOWN', 'Nexthop device is not up');
    let oif = dev?.index;
    if (route.gateway !== undefined) {
      // The gateway must be on-link: inside a connected prefix (of `dev`, when given).
      const via = this.#connected(space).find(
        (r) =>
          r.family === route.family &&
          (oif === undefined || r.oif === oif) &&
          inCidr(route.gateway!, r.dst),
      );
      if (!via) fail(action, 'ENETUNREACH', 'Nexthop has invalid gateway');
      oif = via.oif;
    } else if (!dev) {
      fail(action, 'EINVAL', 'Nexthop device is required');
    }
    const table = route.table ?? 254;
    const same = (r: Route): boolean =>
      r.family === route.family &&
      r.dst === route.dst &&
      (r.table ?? 254) === table &&
      (r.metric ?? 0) === (route.metric ?? 0);
    const existing = space.routes.findIndex(same);
    if (existing >= 0 && !opts?.replace) fail(action, 'EEXIST');
    const stored: Route = {
      family: route.family,
      dst: route.dst,
      table,
      protocol: route.protocol ?? 4,
      scope: route.scope ?? (route.gateway === undefined ? RT_SCOPE_LINK : 0),
      type: route.type ?? 1,
      ...(oif !== undefined ? { oif } : {}),
      ...(route.gateway !== undefined ? { gateway: route.gateway } : {}),
      ...(route.src !== undefined ? { src: route.src } : {}),
      ...(route.metric !== undefined ? { metric: route.metric } : {}),
      ...(route.mtu !== undefined ? { mtu: route.mtu } : {}),
    };
    if (existing >= 0) space.routes.splice(existing, 1, stored);
    else space.routes.push(stored);
  }

  async routeDel(route: Route, ns?: NsRef): Promise<void> {
    const action = `Cannot delete route "${route.dst}"${suffix(ns)}`;
    this.#enter('routeDel', action);
    const space = this.#space(ns, action);
    const table = route.table ?? 254;
    const oif =
      route.dev !== undefined
        ? this.#link(space, route.dev, `Cannot find link "${route.dev}"${suffix(ns)}`).index
        : undefined;
    const i = space.routes.findIndex(
      (r) =>
        r.family === route.family &&
        r.dst === route.dst &&
        r.table === table &&
        (route.gateway === undefined || r.gateway === route.gateway) &&
        (oif === undefined || r.oif === oif),
    );
    // The kernel says ESRCH ("No such process") for a route it does not have.
    if (i < 0) fail(action, 'ESRCH');
    space.routes.splice(i, 1);
  }

  async routeList(ns?: NsRef, family?: 4 | 6, opts?: { table?: number | 'all' }): Promise<Route[]> {
    const action = `Cannot list routes${suffix(ns)}`;
    this.#enter('routeList', action);
    const space = this.#space(ns, action);
    const table = opts?.table ?? 254;
    return [...space.routes, ...this.#connected(space)]
      .filter(
        (r) =>
          (family === undefined || r.family === family) && (table === 'all' || r.table === table),
      )
      .map((r) => {
        const dev = r.oif !== undefined ? this.#byIndex(space, r.oif)?.name : undefined;
        return { ...r, ...(dev ? { dev } : {}) };
      });
  }

  #neighMatch(a: Neigh, b: Neigh): boolean {
    if (a.family !== b.family || a.dev !== b.dev) return false;
    if (a.family === 'bridge') return a.mac === b.mac && (a.dst ?? '') === (b.dst ?? '');
    return a.dst === b.dst;
  }

  async neighAdd(
    neigh: Neigh,
    ns?: NsRef,
    opts?: { replace?: boolean; append?: boolean },
  ): Promise<void> {
    const action = `Cannot add neighbour "${neigh.dst ?? neigh.mac}" on "${neigh.dev}"${suffix(ns)}`;
    this.#enter('neighAdd', action);
    const space = this.#space(ns, action);
    const link = this.#link(space, neigh.dev, `Cannot find link "${neigh.dev}"${suffix(ns)}`);
    const stored: Neigh = { ...neigh, permanent: neigh.permanent !== false };
    if (neigh.family === 'bridge') {
      stored.self = neigh.self || !neigh.master;
      stored.master = neigh.master ?? false;
    }
    const i = space.neighs.findIndex((n) => this.#neighMatch(n.neigh, stored));
    if (i >= 0 && !opts?.replace) fail(action, 'EEXIST');
    if (i >= 0) space.neighs.splice(i, 1, { neigh: stored, index: link.index });
    else space.neighs.push({ neigh: stored, index: link.index });
  }

  async neighDel(neigh: Neigh, ns?: NsRef): Promise<void> {
    const action = `Cannot delete neighbour "${neigh.dst ?? neigh.mac}" on "${neigh.dev}"${suffix(ns)}`;
    this.#enter('neighDel', action);
    const space = this.#space(ns, action);
    this.#link(space, neigh.dev, `Cannot find link "${neigh.dev}"${suffix(ns)}`);
    const i = space.neighs.findIndex((n) => this.#neighMatch(n.neigh, neigh));
    if (i < 0) fail(action, 'ENOENT');
    space.neighs.splice(i, 1);
  }

  async neighList(ns?: NsRef, family?: 4 | 6 | 'bridge'): Promise<Neigh[]> {
    const action = `Cannot list neighbours${suffix(ns)}`;
    this.#enter('neighList', action);
    const space = this.#space(ns, action);
    return space.neighs
      .filter((n) =>
        family === undefined ? n.neigh.family !== 'bridge' : n.neigh.family === family,
      )
      .map((n) => ({ ...n.neigh, dev: this.#byIndex(space, n.index)?.name ?? n.neigh.dev }));
  }

  async qdiscReplace(dev: string, qdisc: Tbf, ns?: NsRef): Promise<void> {
    const action = `Cannot set qdisc "${qdisc.kind}" on "${dev}"${suffix(ns)}`;
    this.#enter('qdiscReplace', action);
    const space = this.#space(ns, action);
    const link = this.#link(space, dev, `Cannot find link "${dev}"${suffix(ns)}`);
    // tbf_change refuses an empty bucket ("!max_size").
    if (qdisc.burst === 0) fail(action, 'EINVAL');
    link.qdisc = { ...qdisc };
  }

  async qdiscDel(dev: string, ns?: NsRef, opts?: { ifExists?: boolean }): Promise<void> {
    const action = `Cannot delete qdisc on "${dev}"${suffix(ns)}`;
    this.#enter('qdiscDel', action);
    const space = this.#space(ns, action);
    const link = this.#link(space, dev, action);
    if (!link.qdisc) {
      // The kernel will not delete a device's default qdisc (handle 0): ENOENT.
      if (opts?.ifExists) return;
      fail(action, 'ENOENT', 'Cannot find specified qdisc on specified device');
    }
    delete link.qdisc;
  }

  async qdiscList(ns?: NsRef, dev?: string): Promise<Qdisc[]> {
    const action = `Cannot list qdiscs${suffix(ns)}`;
    this.#enter('qdiscList', action);
    const space = this.#space(ns, action);
    const only = dev === undefined ? undefined : this.#link(space, dev, action);
    return [...space.links.values()]
      .filter((l) => only === undefined || l === only)
      .sort((a, b) => a.index - b.index)
      .map((l) => {
        const base = { dev: l.name, index: l.index, parent: TC_H_ROOT };
        if (!l.qdisc) return { ...base, kind: 'noqueue', handle: 0 };
        const { rate, burst, limit } = l.qdisc;
        return { ...base, kind: l.qdisc.kind, handle: 0x10000, tbf: { rate, burst, limit } };
      });
  }

  /** Per-device keys (`net.ipv4.conf.<dev>.x`) exist only while the device does. */
  #checkSysctl(space: FakeNs, k: string, action: string): void {
    const m = /^net\.ipv[46]\.(?:conf|neigh)\.([^.]+)\./.exec(k);
    const dev = m?.[1];
    if (dev && dev !== 'all' && dev !== 'default' && !space.links.has(dev)) fail(action, 'ENOENT');
  }

  async sysctlSet(k: string, value: string, ns?: NsRef): Promise<void> {
    const action = `Cannot set sysctl "${k}" to "${value}"${suffix(ns)}`;
    this.#enter('sysctlSet', action);
    const space = this.#space(ns, action);
    this.#checkSysctl(space, k, action);
    space.sysctls.set(k, value);
  }

  /** Unset keys read as "0", the usual kernel default for the flags cnm toggles. */
  async sysctlGet(k: string, ns?: NsRef): Promise<string> {
    const action = `Cannot get sysctl "${k}"${suffix(ns)}`;
    this.#enter('sysctlGet', action);
    const space = this.#space(ns, action);
    this.#checkSysctl(space, k, action);
    return space.sysctls.get(k) ?? '0';
  }

  async batch(steps: readonly KernelStep[]): Promise<void> {
    type Method = (...args: unknown[]) => Promise<unknown>;
    let previousIgnored = false;
    for (const step of steps) {
      const fn = (this as unknown as Record<string, Method>)[step.op]!;
      if (step.onlyIfPreviousIgnored && !previousIgnored) continue;
      previousIgnored = false;
      try {
        await fn.apply(this, step.args);
      } catch (err) {
        if (err instanceof KernelError && step.ignore?.includes(err.errnoCode)) {
          previousIgnored = true;
          continue;
        }
        throw err;
      }
    }
  }

  async nftRun(script: string, opts?: { json?: boolean; terse?: boolean }): Promise<string> {
    this.#enter('nftRun', NFT_RUN_ACTION);
    this.nftScripts.push(script);
    return this.nftOutput(script, opts?.json ?? false, opts?.terse ?? false);
  }

  async nftElements(
    family: string,
    table: string,
    changes: readonly NftElementChange[],
  ): Promise<void> {
    this.#enter('nftElements', nftElementsAction(family, table));
    this.nftElementBatches.push({ family, table, changes: structuredClone([...changes]) });
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
