/**
 * The cluster: what one host shares with the others through the cluster store (etcd), for
 * global-scope (overlay) networks only. The local store keeps everything else.
 *
 * Keys (under the store's namespace):
 * - `hosts/<addr>`: this host's registration, under its lease (TTL `leaseTtlSec`).
 * - `ipam`: one record with every global network's name, VNI and subnets. Creating or removing
 *   a network is a compare-and-swap on its revision together with the network record, so two
 *   hosts creating at once never get the same name, VNI or subnet: the loser re-reads and
 *   picks again.
 * - `networks/<id>`: the network record, as on a local store.
 * - `addresses/<netId>/<ip>`: an address claim, created only if absent, under the owner's lease.
 * - `endpoints/<netId>/<epId>`: where an endpoint lives (MAC, addresses, VTEP), under the
 *   owner's lease: when a host dies its lease expires and every other host sees the deletes.
 *
 * Each host watches `endpoints/` and programs the overlay driver's FDB and neighbour entries for
 * the others' endpoints, and `networks/` to create or remove networks made elsewhere. The data
 * plane never depends on the store being reachable: while it is not, entries stay as they were
 * and writes fail with `UnavailableError` (HTTP 503). When the store comes back, a lost lease
 * is replaced and this host's records are written again; a periodic resync repairs anything a
 * broken watch missed.
 */
import { hostname } from 'node:os';
import { ConflictError, ForbiddenError, UnavailableError, describeError } from '../errors.js';
import type { RemoteEndpoint } from '../drivers/overlay/overlay-driver.js';
import { OVERLAY_OPTIONS, VNI_FIRST, VNI_MAX, parseVni } from '../drivers/overlay/options.js';
import { Prefix } from '../netaddr/index.js';
import type { Expect, Store, StoreRecord, TxnOp, WatchEvent } from '../store/types.js';
import type { ControllerObserver } from './events.js';
import type { EndpointRecord, NetworkRecord } from './records.js';

/** A store with leases: what the cluster needs beyond the store contract (`EtcdStore`). */
export interface LeasingStore extends Store {
  grantLease(
    ttlSec: number,
    onLost: (err: unknown) => void,
  ): Promise<{ id: string; revoke(): Promise<void>; release(): void }>;
  txn(expects: Expect[], ops: TxnOp[], opts?: { lease?: { id: string } }): Promise<number>;
}

/** Where remote endpoints are programmed: the overlay driver. */
export interface RemoteEndpointSink {
  setRemote(networkId: string, ep: RemoteEndpoint): Promise<void>;
  deleteRemote(networkId: string, endpointId: string): Promise<void>;
  remotes(networkId: string): RemoteEndpoint[];
  remoteNetworks(): string[];
}

/** An endpoint as the cluster store has it. */
export interface ClusterEndpoint {
  id: string;
  networkId: string;
  containerId: string;
  containerName: string;
  aliases: string[];
  mac: string;
  ipv4?: string;
  ipv6?: string;
  /** Underlay address of the owning host: its VTEP and its id. */
  host: string;
}

interface IpamRecord {
  names: Record<string, string>;
  vnis: Record<string, string>;
  subnets: Record<string, string>;
}

/** Settings of the cluster. */
export interface ClusterConfig {
  /** This host's underlay address (`--advertise-addr`). */
  advertiseAddr: string;
  /** Lease TTL: a dead host's endpoints vanish from the others within this time. */
  leaseTtlSec?: number;
  /** Full resync of remote endpoints every this many ms (repairs a watch that missed events). */
  resyncMs?: number;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
}

/** What the controller asks of the cluster (see `Controller`). */
export interface ClusterScope {
  listNetworks(): Promise<NetworkRecord[]>;
  createNetwork(
    rec: NetworkRecord,
    resolve: (taken: Prefix[]) => Promise<NetworkRecord['ipam']['config']>,
  ): Promise<NetworkRecord>;
  removeNetwork(rec: NetworkRecord): Promise<void>;
  publishEndpoint(ep: EndpointRecord, containerName: string): Promise<void>;
  withdrawEndpoint(ep: EndpointRecord): Promise<void>;
  watchNetworks(
    listener: (change: { type: 'put' | 'delete'; id: string; rec?: NetworkRecord }) => void,
  ): void;
  setObserver(observer: ControllerObserver | undefined): void;
}

const CAS_ATTEMPTS = 20;

/** The cluster agent of one host. Create, then `await start()`. */
export class Cluster implements ClusterScope {
  readonly #store: LeasingStore;
  readonly #sink: RemoteEndpointSink;
  readonly #cfg: Required<Omit<ClusterConfig, 'log'>> & Pick<ClusterConfig, 'log'>;
  #lease: { id: string; revoke(): Promise<void>; release(): void } | undefined;
  /** This host's published endpoints, written again under a new lease. */
  readonly #local = new Map<string, ClusterEndpoint>();
  /** Remote endpoints by key, as last applied. */
  readonly #applied = new Map<string, ClusterEndpoint>();
  #observer: ControllerObserver | undefined;
  #stops: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #reRegistering = false;
  #closed = false;
  /** Serialises programming so events and resyncs never interleave. */
  #queue: Promise<void> = Promise.resolve();

  constructor(store: LeasingStore, sink: RemoteEndpointSink, cfg: ClusterConfig) {
    this.#store = store;
    this.#sink = sink;
    this.#cfg = { leaseTtlSec: 10, resyncMs: 5000, ...cfg };
  }

  /** This host's id in the cluster (its underlay address). */
  get hostId(): string {
    return this.#cfg.advertiseAddr;
  }

  /**
   * Registers this host under a new lease, programs every remote endpoint, starts watching.
   * @throws UnavailableError when the store cannot be reached
   */
  async start(): Promise<void> {
    await this.#register();
    this.#stops.push(
      this.#store.watch<ClusterEndpoint>('endpoints/', (e) =>
        this.#enqueue(() => this.#onEndpoint(e)),
      ),
    );
    await this.#enqueue(() => this.#resync());
    this.#timer = setInterval(() => {
      void this.#enqueue(() => this.#resync()).catch(() => undefined);
    }, this.#cfg.resyncMs);
    this.#timer.unref();
  }

  /** Stops watching; the lease is left to expire unless `revoke` (a clean leave). */
  async close(opts: { revoke?: boolean } = {}): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const stop of this.#stops) stop();
    if (opts.revoke) await this.#lease?.revoke().catch(() => undefined);
    this.#lease?.release();
    await this.#queue.catch(() => undefined);
  }

  setObserver(observer: ControllerObserver | undefined): void {
    this.#observer = observer;
    // Remote endpoints applied before the name service was wired get their names now.
    for (const [key, ep] of this.#applied) void this.#enqueue(() => this.#apply(key, ep));
  }

  async #register(): Promise<void> {
    const lease = await this.#store.grantLease(this.#cfg.leaseTtlSec, (err) =>
      this.#onLeaseLost(err),
    );
    this.#lease = lease;
    await this.#store.txn(
      [],
      [
        {
          op: 'put',
          key: `hosts/${this.hostId}`,
          value: { addr: this.hostId, hostname: hostname(), since: new Date().toISOString() },
        },
      ],
      { lease },
    );
    for (const ep of this.#local.values()) await this.#writeEndpoint(ep);
    this.#cfg.log('info', `Registered in the cluster as "${this.hostId}" (lease ${lease.id})`);
  }

  #onLeaseLost(err: unknown): void {
    if (this.#closed || this.#reRegistering) return;
    this.#reRegistering = true;
    this.#cfg.log('warn', `Cluster lease lost (${describeError(err)}); registering again`);
    const retry = (): void => {
      if (this.#closed) return;
      this.#register().then(
        () => {
          this.#reRegistering = false;
        },
        () => setTimeout(retry, 1000).unref(),
      );
    };
    retry();
  }

  // ------------------------------------------------------------------ networks

  async listNetworks(): Promise<NetworkRecord[]> {
    return (await this.#store.list<NetworkRecord>('networks/')).map((r) => r.value);
  }

  watchNetworks(
    listener: (change: { type: 'put' | 'delete'; id: string; rec?: NetworkRecord }) => void,
  ): void {
    this.#stops.push(
      this.#store.watch<NetworkRecord>('networks/', (e) =>
        listener({
          type: e.type,
          id: e.key.slice('networks/'.length),
          ...(e.type === 'put' && e.value ? { rec: e.value } : {}),
        }),
      ),
    );
  }

  async createNetwork(
    rec: NetworkRecord,
    resolve: (taken: Prefix[]) => Promise<NetworkRecord['ipam']['config']>,
  ): Promise<NetworkRecord> {
    const wanted = rec.options[OVERLAY_OPTIONS.vni];
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const cur = await this.#store.get<IpamRecord>('ipam');
      const ipam: IpamRecord = cur?.value ?? { names: {}, vnis: {}, subnets: {} };
      const owner = ipam.names[rec.name];
      if (owner) {
        throw new ConflictError('NET_NAME_IN_USE', `network with name ${rec.name} already exists`);
      }
      const config = await resolve(Object.keys(ipam.subnets).map((s) => Prefix.parse(s)));
      let vni: number;
      if (wanted) {
        vni = parseVni(wanted);
        if (ipam.vnis[vni]) {
          throw new ConflictError(
            'VNI_IN_USE',
            `Cannot create network "${rec.name}": VXLAN id ${vni} is used by another overlay network`,
          );
        }
      } else {
        vni = VNI_FIRST;
        while (ipam.vnis[vni]) vni++;
        if (vni > VNI_MAX) {
          throw new ForbiddenError(
            'VNI_EXHAUSTED',
            'Cannot create network: every VXLAN id is in use',
          );
        }
      }
      const out: NetworkRecord = {
        ...rec,
        scope: 'global',
        options: { ...rec.options, [OVERLAY_OPTIONS.vni]: String(vni) },
        ipam: { ...rec.ipam, config },
      };
      const next: IpamRecord = {
        names: { ...ipam.names, [rec.name]: rec.id },
        vnis: { ...ipam.vnis, [vni]: rec.id },
        subnets: { ...ipam.subnets },
      };
      for (const c of config) next.subnets[c.subnet] = rec.id;
      try {
        await this.#store.txn(
          [
            { key: 'ipam', revision: cur?.revision ?? 0 },
            { key: `networks/${rec.id}`, revision: 0 },
          ],
          [
            { op: 'put', key: 'ipam', value: next },
            { op: 'put', key: `networks/${rec.id}`, value: out },
          ],
        );
        return out;
      } catch (err) {
        if (!(err instanceof ConflictError && err.code === 'STORE_REVISION_MISMATCH')) throw err;
        // Another host changed the global IPAM meanwhile: read again, choose again.
      }
    }
    throw new UnavailableError(
      'CLUSTER_BUSY',
      `Cannot create network "${rec.name}": the cluster's IPAM kept changing, try again`,
    );
  }

  async removeNetwork(rec: NetworkRecord): Promise<void> {
    const eps = await this.#store.list<ClusterEndpoint>(`endpoints/${rec.id}/`);
    if (eps.length > 0) {
      const hosts = [...new Set(eps.map((e) => e.value.host))].join(', ');
      throw new ForbiddenError(
        'NET_IN_USE',
        `error while removing network: network ${rec.name} id ${rec.id} has active endpoints (on hosts ${hosts})`,
      );
    }
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const cur = await this.#store.get<IpamRecord>('ipam');
      const ipam: IpamRecord = cur?.value ?? { names: {}, vnis: {}, subnets: {} };
      const drop = (m: Record<string, string>): Record<string, string> =>
        Object.fromEntries(Object.entries(m).filter(([, id]) => id !== rec.id));
      const next: IpamRecord = {
        names: drop(ipam.names),
        vnis: drop(ipam.vnis),
        subnets: drop(ipam.subnets),
      };
      try {
        await this.#store.txn(cur ? [{ key: 'ipam', revision: cur.revision }] : [], [
          { op: 'put', key: 'ipam', value: next },
          { op: 'delete', key: `networks/${rec.id}` },
        ]);
        return;
      } catch (err) {
        if (!(err instanceof ConflictError && err.code === 'STORE_REVISION_MISMATCH')) throw err;
      }
    }
    throw new UnavailableError(
      'CLUSTER_BUSY',
      `Cannot remove network "${rec.name}": the cluster's IPAM kept changing, try again`,
    );
  }

  // ------------------------------------------------------------------ endpoints

  /**
   * Claims the endpoint's addresses cluster-wide and publishes it, under this host's lease.
   * Publishing the same endpoint again (restart, new lease) is allowed.
   * @throws ConflictError ADDRESS_IN_USE when another endpoint holds an address
   * @throws UnavailableError when the store cannot be reached
   */
  async publishEndpoint(ep: EndpointRecord, containerName: string): Promise<void> {
    const cep: ClusterEndpoint = {
      id: ep.id,
      networkId: ep.networkId,
      containerId: ep.containerId,
      containerName,
      aliases: [...ep.aliases],
      mac: ep.mac,
      ...(ep.ipv4 ? { ipv4: ep.ipv4 } : {}),
      ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}),
      host: this.hostId,
    };
    await this.#writeEndpoint(cep);
    this.#local.set(ep.id, cep);
  }

  async #writeEndpoint(ep: ClusterEndpoint): Promise<void> {
    if (!this.#lease)
      throw new UnavailableError(
        'CLUSTER_NOT_REGISTERED',
        'Cannot publish endpoint: this host is not registered in the cluster',
      );
    const expects: Expect[] = [];
    const ops: TxnOp[] = [];
    for (const ip of [ep.ipv4, ep.ipv6]) {
      if (!ip) continue;
      const key = `addresses/${ep.networkId}/${ip}`;
      const cur = await this.#store.get<{ endpointId: string }>(key);
      if (cur && cur.value.endpointId !== ep.id) {
        throw new ConflictError(
          'ADDRESS_IN_USE',
          `Address already in use: "${ip}" is held by an endpoint on another host`,
        );
      }
      expects.push({ key, revision: cur?.revision ?? 0 });
      ops.push({ op: 'put', key, value: { endpointId: ep.id, host: this.hostId } });
    }
    ops.push({ op: 'put', key: `endpoints/${ep.networkId}/${ep.id}`, value: ep });
    try {
      await this.#store.txn(expects, ops, { lease: this.#lease });
    } catch (err) {
      if (err instanceof ConflictError && err.code === 'STORE_REVISION_MISMATCH') {
        // The store's error names the first key that did not match: name that address.
        const taken =
          [ep.ipv4, ep.ipv6].find(
            (ip) => ip && err.message.includes(`"addresses/${ep.networkId}/${ip}"`),
          ) ??
          ep.ipv4 ??
          ep.ipv6;
        throw new ConflictError(
          'ADDRESS_IN_USE',
          `Address already in use: "${taken}" was claimed by another host meanwhile`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Withdraws an endpoint and releases its addresses. @throws UnavailableError */
  async withdrawEndpoint(ep: EndpointRecord): Promise<void> {
    const ops: TxnOp[] = [{ op: 'delete', key: `endpoints/${ep.networkId}/${ep.id}` }];
    for (const ip of [ep.ipv4, ep.ipv6]) {
      if (ip) ops.push({ op: 'delete', key: `addresses/${ep.networkId}/${ip}` });
    }
    await this.#store.txn([], ops);
    this.#local.delete(ep.id);
  }

  // ------------------------------------------------------------------ remote programming

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(fn).catch((err: unknown) => {
      this.#cfg.log('error', `Cluster: ${describeError(err)}`);
    });
    this.#queue = next;
    return next;
  }

  async #onEndpoint(e: WatchEvent<ClusterEndpoint>): Promise<void> {
    const ep = e.value;
    if (!ep || ep.host === this.hostId) return;
    if (e.type === 'put') await this.#apply(e.key, ep);
    else await this.#unapply(e.key);
  }

  async #apply(key: string, ep: ClusterEndpoint): Promise<void> {
    this.#applied.set(key, ep);
    await this.#sink.setRemote(ep.networkId, {
      id: ep.id,
      mac: ep.mac,
      ...(ep.ipv4 ? { ipv4: ep.ipv4 } : {}),
      ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}),
      vtep: ep.host,
    });
    this.#observer?.endpointUp({
      endpointId: ep.id,
      networkId: ep.networkId,
      containerId: ep.containerId,
      containerName: ep.containerName,
      aliases: [...ep.aliases],
      ...(ep.ipv4 ? { ipv4: ep.ipv4 } : {}),
      ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}),
      dns: [],
    });
  }

  async #unapply(key: string): Promise<void> {
    const old = this.#applied.get(key);
    if (!old) return;
    this.#applied.delete(key);
    this.#observer?.endpointDown(old.id);
    await this.#sink.deleteRemote(old.networkId, old.id);
  }

  /** Makes the programmed remote endpoints equal the store's. */
  async #resync(): Promise<void> {
    let recs: StoreRecord<ClusterEndpoint>[];
    try {
      recs = await this.#store.list<ClusterEndpoint>('endpoints/');
    } catch {
      return; // unreachable: keep what is programmed (the data plane must not depend on it)
    }
    const seen = new Set<string>();
    for (const r of recs) {
      if (r.value.host === this.hostId) continue;
      seen.add(r.key);
      const old = this.#applied.get(r.key);
      if (!old || JSON.stringify(old) !== JSON.stringify(r.value))
        await this.#apply(r.key, r.value);
    }
    for (const key of [...this.#applied.keys()]) if (!seen.has(key)) await this.#unapply(key);
  }
}
