/**
 * The name table: which names each network holds and who is asking. Every change is a
 * synchronous in-memory update, so a name exists as soon as the controller says so and a lookup
 * never waits on anything. Lookups are scoped: a container sees the names of the networks it is
 * attached to, and nothing else.
 */
import { IP } from '../netaddr/index.js';
import { QTYPE, encodeName, type LocalRecord } from './wire.js';

/** A network the table serves. */
export interface NameNetwork {
  id: string;
  name: string;
  /** `--internal`: nothing leaves it, so queries from containers only on such networks are not forwarded. */
  internal: boolean;
}

/** A container's attachment to a served network, with the names it answers to there. */
export interface NameEndpoint {
  endpointId: string;
  networkId: string;
  containerId: string;
  containerName: string;
  /** Network-scoped aliases (create-time `Aliases` and connect-time `EndpointConfig.Aliases`). */
  aliases: readonly string[];
  ipv4?: string;
  ipv6?: string;
  /** The container's own `--dns` servers: its upstreams instead of the daemon's. */
  dns: readonly string[];
}

interface Ep {
  facts: NameEndpoint;
  a?: Uint8Array;
  aaaa?: Uint8Array;
  ipv4?: string;
  ipv6?: string;
  names: string[];
}

interface NameSet {
  eps: Ep[];
  /** Rotation counter: each lookup starts one further along (round robin). */
  turn: number;
}

interface Net {
  facts: NameNetwork;
  lname: string;
  names: Map<string, NameSet>;
  byIp: Map<string, Ep>;
}

/** Who sent a query: the networks whose names it may see, and where to forward. */
export interface Asker {
  /** The network the query arrived on first, then the asker's other networks. */
  networks: readonly Net[];
  /** The asker's own `--dns` servers, empty for the daemon's defaults. */
  dns: readonly string[];
  /** Every network of the asker is internal: do not forward. */
  internalOnly: boolean;
  /** The source address is a registered container endpoint. */
  known: boolean;
}

/** What a name lookup found. */
export type LookupResult =
  | { found: false }
  | {
      found: true;
      records: LocalRecord[];
      networkName: string;
      /** One endpoint holds the name: the answer is the same on every lookup (no rotation). */
      stable: boolean;
      /** Several endpoints hold the name: the rotation behind `records`, for answer caches. */
      rotor?: Rotor;
    };

/**
 * The round-robin state of a name held by several endpoints. An answer cache keeps one encoded
 * answer per starting point and asks {@link Rotor.next} which one to send, so the order keeps
 * rotating, one step per query, whichever path answers. Valid while the table's version is
 * unchanged.
 */
export interface Rotor {
  /** Number of starting points (endpoints holding the name). */
  readonly size: number;
  /** The starting point of the next answer; advances the rotation as a lookup does. */
  next(): number;
  /** The records of the answer that starts at `start` (0 ≤ start < size). */
  records(start: number): LocalRecord[];
}

function canonical(ip: string | undefined): string | undefined {
  return ip === undefined ? undefined : IP.tryParse(ip)?.toString();
}

/** The table. One per daemon; the DNS server reads it, the controller's events write it. */
export class NameTable {
  #networks = new Map<string, Net>();
  #endpoints = new Map<string, Ep>();
  #byIp = new Map<string, Ep>();
  #byContainer = new Map<string, Set<Ep>>();
  #version = 0;
  #watchers: (() => void)[] = [];

  /** Changes on every change of the table: answers remembered under an older value are stale. */
  get version(): number {
    return this.#version;
  }

  /**
   * Calls `fn` synchronously on every change of the table, before the changing call returns:
   * answer caches outside the table (the native UDP path) drop their entries there.
   */
  onChange(fn: () => void): void {
    this.#watchers.push(fn);
  }

  #changed(): void {
    this.#version++;
    for (const fn of this.#watchers) fn();
  }

  /** Adds or replaces a network (its names are kept when it is replaced). */
  addNetwork(n: NameNetwork): void {
    this.#changed();
    const old = this.#networks.get(n.id);
    if (old) {
      old.facts = { ...n };
      old.lname = n.name.toLowerCase();
      return;
    }
    this.#networks.set(n.id, {
      facts: { ...n },
      lname: n.name.toLowerCase(),
      names: new Map(),
      byIp: new Map(),
    });
  }

  /** Removes a network and every endpoint still registered on it. */
  removeNetwork(id: string): void {
    this.#changed();
    const net = this.#networks.get(id);
    if (!net) return;
    for (const ep of [...this.#endpoints.values()]) {
      if (ep.facts.networkId === id) this.removeEndpoint(ep.facts.endpointId);
    }
    this.#networks.delete(id);
  }

  /** Whether a network is served. */
  hasNetwork(id: string): boolean {
    return this.#networks.has(id);
  }

  /**
   * Registers an endpoint's names (container name, short id, aliases) on its network. Replaces an
   * earlier registration of the same endpoint. Ignored when the network is not served.
   */
  addEndpoint(e: NameEndpoint): void {
    this.#changed();
    const net = this.#networks.get(e.networkId);
    if (!net) return;
    this.removeEndpoint(e.endpointId);
    const ipv4 = canonical(e.ipv4);
    const ipv6 = canonical(e.ipv6);
    const names = [
      ...new Set(
        [e.containerName, e.containerId.slice(0, 12), ...e.aliases]
          .map((s) => s.toLowerCase().replace(/\.$/, ''))
          .filter((s) => s.length > 0),
      ),
    ];
    const ep: Ep = { facts: { ...e, aliases: [...e.aliases], dns: [...e.dns] }, names };
    if (ipv4) {
      ep.ipv4 = ipv4;
      ep.a = IP.parse(ipv4).bytes();
    }
    if (ipv6) {
      ep.ipv6 = ipv6;
      ep.aaaa = IP.parse(ipv6).bytes();
    }
    this.#endpoints.set(e.endpointId, ep);
    for (const n of names) {
      const set = net.names.get(n);
      if (set) set.eps.push(ep);
      else net.names.set(n, { eps: [ep], turn: 0 });
    }
    for (const ip of [ipv4, ipv6]) {
      if (!ip) continue;
      net.byIp.set(ip, ep);
      this.#byIp.set(ip, ep);
    }
    let mine = this.#byContainer.get(e.containerId);
    if (!mine) this.#byContainer.set(e.containerId, (mine = new Set()));
    mine.add(ep);
  }

  /** Removes an endpoint's names; a no-op for an unknown endpoint. */
  removeEndpoint(endpointId: string): void {
    const ep = this.#endpoints.get(endpointId);
    if (!ep) return;
    this.#changed();
    this.#endpoints.delete(endpointId);
    const net = this.#networks.get(ep.facts.networkId);
    for (const n of ep.names) {
      const set = net?.names.get(n);
      if (!set) continue;
      set.eps = set.eps.filter((x) => x !== ep);
      if (set.eps.length === 0) net!.names.delete(n);
    }
    for (const ip of [ep.ipv4, ep.ipv6]) {
      if (!ip) continue;
      if (net?.byIp.get(ip) === ep) net.byIp.delete(ip);
      if (this.#byIp.get(ip) === ep) this.#byIp.delete(ip);
    }
    const mine = this.#byContainer.get(ep.facts.containerId);
    mine?.delete(ep);
    if (mine?.size === 0) this.#byContainer.delete(ep.facts.containerId);
  }

  /** Number of registered endpoints (for metrics and tests). */
  get endpointCount(): number {
    return this.#endpoints.size;
  }

  /**
   * Identifies the sender of a query that arrived on network `networkId` from `srcIp`. An address
   * no container holds (another runtime's sandbox on the bridge) sees that network only.
   */
  asker(networkId: string, srcIp: string): Asker | undefined {
    const arrival = this.#networks.get(networkId);
    if (!arrival) return undefined;
    const ep = arrival.byIp.get(srcIp) ?? this.#byIp.get(srcIp);
    if (!ep)
      return { networks: [arrival], dns: [], internalOnly: arrival.facts.internal, known: false };
    const networks: Net[] = [arrival];
    for (const other of this.#byContainer.get(ep.facts.containerId) ?? []) {
      const n = this.#networks.get(other.facts.networkId);
      if (n && !networks.includes(n)) networks.push(n);
    }
    return {
      networks,
      dns: ep.facts.dns,
      internalOnly: networks.every((n) => n.facts.internal),
      known: true,
    };
  }

  /**
   * Looks a name up for an asker: first as a name on one of its networks (the arrival network
   * first), then as `NAME.NETWORK`. Records come in rotating order, one step further per lookup.
   */
  lookup(asker: Asker, name: string, qtype: number): LookupResult {
    for (const net of asker.networks) {
      const set = net.names.get(name);
      if (set) return found(set, qtype, net);
    }
    for (const net of asker.networks) {
      if (name.length > net.lname.length + 1 && name.endsWith(`.${net.lname}`)) {
        const set = net.names.get(name.slice(0, -(net.lname.length + 1)));
        if (set) return found(set, qtype, net);
      }
    }
    return { found: false };
  }

  /** The PTR target for an address on one of the asker's networks: `name.network`. */
  reverse(asker: Asker, address: string): string | undefined {
    const ip = canonical(address);
    if (!ip) return undefined;
    for (const net of asker.networks) {
      const ep = net.byIp.get(ip);
      if (ep) return `${ep.facts.containerName}.${net.facts.name}`;
    }
    return undefined;
  }

  /** PTR record data for {@link reverse}'s target. */
  static ptrRecord(target: string): LocalRecord {
    return { type: QTYPE.PTR, data: encodeName(target) };
  }
}

function found(set: NameSet, qtype: number, net: Net): LookupResult {
  const n = set.eps.length;
  const records = recordsFrom(set, qtype, n > 1 ? nextTurn(set) : 0);
  if (n <= 1) return { found: true, records, networkName: net.facts.name, stable: true };
  const rotor: Rotor = {
    size: n,
    next: () => nextTurn(set),
    records: (start) => recordsFrom(set, qtype, start),
  };
  return { found: true, records, networkName: net.facts.name, stable: false, rotor };
}

function nextTurn(set: NameSet): number {
  const start = set.turn++ % set.eps.length;
  if (set.turn > 1e9) set.turn = 0;
  return start;
}

function recordsFrom(set: NameSet, qtype: number, start: number): LocalRecord[] {
  const eps = set.eps;
  const n = eps.length;
  const out: LocalRecord[] = [];
  const wantA = qtype === QTYPE.A || qtype === QTYPE.ANY;
  const wantAaaa = qtype === QTYPE.AAAA || qtype === QTYPE.ANY;
  if (!wantA && !wantAaaa) return out;
  for (let i = 0; i < n; i++) {
    const ep = eps[(start + i) % n]!;
    if (wantA && ep.a) out.push({ type: QTYPE.A, data: ep.a });
    if (wantAaaa && ep.aaaa) out.push({ type: QTYPE.AAAA, data: ep.aaaa });
  }
  return out;
}
