/**
 * Services: N replica containers of one command on one network, reached through one name. In
 * `vip` mode the name resolves to a virtual IP taken from the network's IPAM (and to an IPv6 one
 * too on a dual-stack network), and the kernel spreads connections to it over the running
 * replicas (a {@link VipBalancer}: nftables DNAT with a `numgen` map, no proxy). In `dnsrr`
 * mode the name is an alias of every replica, so DNS gives all their addresses in rotating
 * order. Both modes add the alias `tasks.<name>` to every replica.
 *
 * The manager sits on the controller's observer seam (`events.ts`): it passes every call on to
 * the embedded DNS and keeps each VIP's backends equal to the replicas whose names are live, so a
 * replica that stops, exits or is removed leaves the rotation in the same call.
 */
import { randomBytes } from 'node:crypto';
import { ConflictError, InvalidError, NotFoundError, describeError } from '../errors.js';
import type { DriverNetwork } from '../drivers/types.js';
import { CleanupStack, Mutex, runAll } from '../lifecycle.js';
import type { Store } from '../store/types.js';
import type {
  ControllerObserver,
  ObservedEndpoint,
  ObservedNetwork,
  VipBalancer,
} from './events.js';
import type {
  ContainerView,
  ControllerApi,
  ServiceApi,
  ServiceCreateRequest,
  ServiceView,
} from './types.js';

/** Label naming a replica's service (its name), as `com.docker.swarm.service.name` does. */
export const SERVICE_LABEL = 'io.cnm.service';
/** Label holding a replica's service id: how replicas are found again after a restart. */
export const SERVICE_ID_LABEL = 'io.cnm.service.id';
/** Store key prefix of service records. */
export const SERVICE_KEYS = { service: (id: string) => `services/${id}`, services: 'services/' };
/** Most replicas one service may ask for. */
const MAX_REPLICAS = 256;
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_-]*$/;

/** A service as stored. */
export interface ServiceRecord {
  id: string;
  name: string;
  created: string;
  networkId: string;
  endpointMode: 'vip' | 'dnsrr';
  /** The VIP (vip mode): allocated from the network's IPAM, released with the service. */
  vip?: string;
  /** The IPv6 VIP (vip mode on a dual-stack network), from the network's IPv6 IPAM. */
  vip6?: string;
  replicas: number;
  template: { cmd: string[]; env?: string[]; labels?: Record<string, string> };
  /** Extra names on the network: of the VIP (vip) or of every replica (dnsrr). */
  aliases?: string[];
}

/** A network as the service manager needs it. */
export interface ServiceNetwork {
  id: string;
  name: string;
  dnet: DriverNetwork;
  /** Served by the embedded DNS (a user-defined bridge with a gateway). */
  served: boolean;
  /** The driver can carry VIPs (bridge). */
  balanced: boolean;
}

/** What the manager needs from the controller that owns it. */
export interface ServiceHost {
  store: Store;
  containers: Pick<
    ControllerApi,
    'createContainer' | 'startContainer' | 'removeContainer' | 'listContainers'
  >;
  /** @throws NotFoundError NET_NOT_FOUND */
  network(idOrName: string): ServiceNetwork;
  /** Takes a free IPv4 address of the network (`want`: that one, on restore). */
  allocateVip(networkId: string, want?: string): string;
  /** Takes a free IPv6 address of the network (`want`: that one, on restore). */
  allocateVip6(networkId: string, want?: string): string;
  /** Gives a VIP of either family back to the network's IPAM. */
  releaseVip(networkId: string, ip: string): void;
  balancer?: VipBalancer;
  /** The embedded DNS, when the daemon has one. */
  observer?: ControllerObserver;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
}

interface LiveService {
  rec: ServiceRecord;
  /** Endpoint id → addresses of each replica whose names are live on the service network. */
  backends: Map<string, { ipv4: string; ipv6?: string }>;
}

function now(): string {
  return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

/** Index of a replica named `<service>.<n>`, or 0. */
function replicaIndex(service: string, name: string): number {
  const m = name.startsWith(`${service}.`) ? /^\d+$/.exec(name.slice(service.length + 1)) : null;
  return m ? Number(m[0]) : 0;
}

/** The service manager. One per controller; `observer()` goes between controller and DNS. */
export class ServiceManager implements ServiceApi {
  #host: ServiceHost;
  #services = new Map<string, LiveService>();
  /** Replica container id → service id. */
  #byContainer = new Map<string, string>();
  /** Replica endpoint id (on the service network) → service id. */
  #byEndpoint = new Map<string, string>();
  #lock = new Mutex();

  constructor(host: ServiceHost) {
    this.#host = host;
  }

  /**
   * The observer the controller calls: everything goes on to the embedded DNS, and replica
   * endpoints also set their service's VIP backends.
   */
  observer(): ControllerObserver {
    const inner = this.#host.observer;
    return {
      networkUp: async (n: ObservedNetwork) => {
        await inner?.networkUp(n);
        for (const s of this.#services.values()) {
          if (s.rec.networkId === n.id) this.#nameUp(s);
        }
      },
      networkDown: async (id: string) => {
        await inner?.networkDown(id);
      },
      endpointUp: (e: ObservedEndpoint) => {
        inner?.endpointUp(e);
        const s = this.#services.get(this.#byContainer.get(e.containerId) ?? '');
        if (!s || s.rec.networkId !== e.networkId || !e.ipv4) return;
        s.backends.set(e.endpointId, { ipv4: e.ipv4, ...(e.ipv6 ? { ipv6: e.ipv6 } : {}) });
        this.#byEndpoint.set(e.endpointId, s.rec.id);
        this.#program(s);
      },
      endpointDown: (id: string) => {
        inner?.endpointDown(id);
        const sid = this.#byEndpoint.get(id);
        if (sid === undefined) return;
        this.#byEndpoint.delete(id);
        const s = this.#services.get(sid);
        if (s?.backends.delete(id)) this.#program(s);
      },
    };
  }

  /**
   * Loads service records at daemon start, before the controller announces networks and
   * endpoints: VIPs are reserved in IPAM and programmed (with no backend until the replicas'
   * endpoints come up), replicas are found by their labels.
   */
  async restore(): Promise<void> {
    const ctrs = this.#host.containers.listContainers({ all: true });
    for (const { value: rec } of await this.#host.store.list<ServiceRecord>(
      SERVICE_KEYS.services,
    )) {
      try {
        const net = this.#host.network(rec.networkId);
        if (rec.vip) this.#host.allocateVip(net.id, rec.vip);
        if (rec.vip6) this.#host.allocateVip6(net.id, rec.vip6);
        const s: LiveService = { rec, backends: new Map() };
        this.#services.set(rec.id, s);
        for (const c of ctrs) {
          if (c.spec.labels?.[SERVICE_ID_LABEL] === rec.id) this.#byContainer.set(c.id, rec.id);
        }
        if (rec.vip && this.#host.balancer) {
          await this.#host.balancer.setVip(net.dnet, {
            serviceId: rec.id,
            vip: rec.vip,
            backends: [],
            ...(rec.vip6 ? { vip6: rec.vip6, backends6: [] } : {}),
          });
        }
      } catch (err) {
        this.#host.log('error', `Cannot restore service "${rec.name}": ${describeError(err)}`);
      }
    }
  }

  async createService(req: ServiceCreateRequest): Promise<ServiceView> {
    const name = typeof req.name === 'string' ? req.name : '';
    if (!NAME_RE.test(name) || name.length > 63) {
      throw new InvalidError(
        'SERVICE_NAME_INVALID',
        `Invalid service name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_-] are allowed, at most 63 characters`,
      );
    }
    const replicas = req.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS) {
      throw new InvalidError(
        'SERVICE_REPLICAS_INVALID',
        `Invalid replica count "${replicas}": expected 0 to ${MAX_REPLICAS}`,
      );
    }
    const mode = req.endpointMode ?? 'vip';
    if (mode !== 'vip' && mode !== 'dnsrr') {
      throw new InvalidError(
        'SERVICE_MODE_INVALID',
        `Invalid endpoint mode "${String(mode)}": expected "vip" or "dnsrr"`,
      );
    }
    if (!Array.isArray(req.cmd) || req.cmd.length === 0) {
      throw new InvalidError('CMD_INVALID', 'No command specified');
    }
    for (const a of req.aliases ?? []) {
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(a) || a.length > 253) {
        throw new InvalidError(
          'SERVICE_ALIAS_INVALID',
          `Invalid alias "${a}" for service "${name}": expected a DNS name`,
        );
      }
    }
    const net = this.#host.network(req.network);
    if (!net.served) {
      throw new InvalidError(
        'SERVICE_NETWORK_INVALID',
        `Cannot create service "${name}" on network "${net.name}": services need a user-defined bridge network`,
      );
    }
    if (mode === 'vip' && (!net.balanced || !net.dnet.ipv4 || !this.#host.balancer)) {
      throw new InvalidError(
        'SERVICE_NETWORK_INVALID',
        `Cannot create service "${name}" with a VIP on network "${net.name}": it needs IPv4 on a bridge network`,
      );
    }
    return this.#lock.run(async () => {
      for (const s of this.#services.values()) {
        if (s.rec.name === name) {
          throw new ConflictError(
            'SERVICE_NAME_IN_USE',
            `Cannot create service "${name}": the name is in use by service "${s.rec.id}"`,
          );
        }
      }
      const id = randomBytes(32).toString('hex');
      const undo = new CleanupStack();
      try {
        const rec: ServiceRecord = {
          id,
          name,
          created: now(),
          networkId: net.id,
          endpointMode: mode,
          replicas,
          template: {
            cmd: [...req.cmd],
            ...(req.env ? { env: [...req.env] } : {}),
            ...(req.labels ? { labels: { ...req.labels } } : {}),
          },
          ...(req.aliases?.length ? { aliases: [...new Set(req.aliases)] } : {}),
        };
        if (mode === 'vip') {
          const vip = this.#host.allocateVip(net.id);
          rec.vip = vip;
          undo.push('release VIP', () => this.#host.releaseVip(net.id, vip));
          if (net.dnet.ipv6) {
            const vip6 = this.#host.allocateVip6(net.id);
            rec.vip6 = vip6;
            undo.push('release IPv6 VIP', () => this.#host.releaseVip(net.id, vip6));
          }
        }
        await this.#host.store.put(SERVICE_KEYS.service(id), rec, { expectRevision: 0 });
        undo.push('store service', () =>
          this.#host.store.delete(SERVICE_KEYS.service(id)).then(() => undefined),
        );
        const s: LiveService = { rec, backends: new Map() };
        this.#services.set(id, s);
        undo.push('forget service', () => void this.#services.delete(id));
        if (rec.vip) {
          const v = { serviceId: id, vip: rec.vip, ...(rec.vip6 ? { vip6: rec.vip6 } : {}) };
          await this.#host.balancer!.setVip(net.dnet, {
            ...v,
            backends: [],
            ...(rec.vip6 ? { backends6: [] } : {}),
          });
          undo.push('VIP', () => this.#host.balancer!.deleteVip(net.dnet, v));
          this.#nameUp(s);
          undo.push('VIP name', () => this.#host.observer?.endpointDown(`svc:${id}`));
        }
        for (let i = 1; i <= replicas; i++) {
          const c = await this.#addReplica(s, i);
          undo.push(`replica ${c.name}`, () => this.#removeReplica(c.id));
        }
        undo.release();
        return this.#view(s);
      } catch (err) {
        await undo.unwindQuietly(err);
        throw err;
      }
    });
  }

  /** The name of a service attached to a network, if any (the network is then in use). */
  serviceOn(networkId: string): string | undefined {
    for (const s of this.#services.values()) if (s.rec.networkId === networkId) return s.rec.name;
    return undefined;
  }

  listServices(): ServiceView[] {
    return [...this.#services.values()]
      .sort((a, b) => a.rec.name.localeCompare(b.rec.name))
      .map((s) => this.#view(s));
  }

  inspectService(idOrName: string): ServiceView {
    return this.#view(this.#find(idOrName));
  }

  async removeService(idOrName: string): Promise<void> {
    const s = this.#find(idOrName);
    await this.#lock.run(async () => {
      if (this.#services.get(s.rec.id) !== s) return;
      const r = s.rec;
      const steps: (() => unknown)[] = this.#replicas(s).map(
        (c) => () => this.#removeReplica(c.id),
      );
      if (r.vip) {
        const vip = r.vip;
        steps.push(() => this.#host.observer?.endpointDown(`svc:${r.id}`));
        steps.push(() => {
          const net = this.#host.network(r.networkId);
          return this.#host.balancer?.deleteVip(net.dnet, {
            serviceId: r.id,
            vip,
            ...(r.vip6 ? { vip6: r.vip6 } : {}),
          });
        });
        steps.push(() => this.#host.releaseVip(r.networkId, vip));
        if (r.vip6) {
          const vip6 = r.vip6;
          steps.push(() => this.#host.releaseVip(r.networkId, vip6));
        }
      }
      steps.push(() => this.#host.store.delete(SERVICE_KEYS.service(r.id)));
      steps.push(() => {
        this.#services.delete(r.id);
        for (const [c, sid] of this.#byContainer) if (sid === r.id) this.#byContainer.delete(c);
      });
      await runAll(`Cannot remove service "${r.name}" completely`, steps);
    });
  }

  async scaleService(idOrName: string, replicas: number): Promise<ServiceView> {
    if (!Number.isInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS) {
      throw new InvalidError(
        'SERVICE_REPLICAS_INVALID',
        `Invalid replica count "${replicas}": expected 0 to ${MAX_REPLICAS}`,
      );
    }
    const s = this.#find(idOrName);
    return this.#lock.run(async () => {
      const have = this.#replicas(s).sort(
        (a, b) => replicaIndex(s.rec.name, a.name) - replicaIndex(s.rec.name, b.name),
      );
      s.rec = { ...s.rec, replicas };
      await this.#host.store.put(SERVICE_KEYS.service(s.rec.id), s.rec);
      for (const c of have.slice(replicas).reverse()) await this.#removeReplica(c.id);
      const used = new Set(have.map((c) => replicaIndex(s.rec.name, c.name)));
      let next = 1;
      for (let n = have.length; n < replicas; n++) {
        while (used.has(next)) next++;
        used.add(next);
        await this.#addReplica(s, next);
      }
      return this.#view(s);
    });
  }

  #find(idOrName: string): LiveService {
    const byId = this.#services.get(idOrName);
    if (byId) return byId;
    for (const s of this.#services.values()) if (s.rec.name === idOrName) return s;
    if (/^[0-9a-f]+$/.test(idOrName)) {
      const hits = [...this.#services.values()].filter((s) => s.rec.id.startsWith(idOrName));
      if (hits.length === 1) return hits[0]!;
    }
    throw new NotFoundError('SERVICE_NOT_FOUND', `No such service: ${idOrName}`);
  }

  /** Registers the VIP under the service name (and its short id) with the embedded DNS. */
  #nameUp(s: LiveService): void {
    if (!s.rec.vip) return;
    this.#host.observer?.endpointUp({
      endpointId: `svc:${s.rec.id}`,
      networkId: s.rec.networkId,
      containerId: s.rec.id,
      containerName: s.rec.name,
      aliases: s.rec.aliases ?? [],
      ipv4: s.rec.vip,
      ...(s.rec.vip6 ? { ipv6: s.rec.vip6 } : {}),
      dns: [],
    });
  }

  /** Hands the VIP's current backends to the balancer (in call order; see `VipBalancer`). */
  #program(s: LiveService): void {
    const { vip, vip6, id, networkId, name } = s.rec;
    if (!vip || !this.#host.balancer || this.#services.get(id) !== s) return;
    let net: ServiceNetwork;
    try {
      net = this.#host.network(networkId);
    } catch {
      return;
    }
    const all = [...s.backends.values()];
    const backends = [...new Set(all.map((b) => b.ipv4))].sort();
    const backends6 = [...new Set(all.flatMap((b) => (b.ipv6 ? [b.ipv6] : [])))].sort();
    this.#host.balancer
      .setVip(net.dnet, { serviceId: id, vip, backends, ...(vip6 ? { vip6, backends6 } : {}) })
      .catch((err: unknown) =>
        this.#host.log('error', `Cannot update VIP of service "${name}": ${describeError(err)}`),
      );
  }

  #replicas(s: LiveService): ContainerView[] {
    return this.#host.containers
      .listContainers({ all: true })
      .filter((c) => c.spec.labels?.[SERVICE_ID_LABEL] === s.rec.id);
  }

  async #addReplica(s: LiveService, index: number): Promise<ContainerView> {
    const r = s.rec;
    const net = this.#host.network(r.networkId);
    const c = await this.#host.containers.createContainer({
      name: `${r.name}.${index}`,
      cmd: [...r.template.cmd],
      ...(r.template.env ? { env: [...r.template.env] } : {}),
      labels: { ...r.template.labels, [SERVICE_LABEL]: r.name, [SERVICE_ID_LABEL]: r.id },
      networks: [
        {
          name: net.id,
          aliases:
            r.endpointMode === 'dnsrr'
              ? [r.name, `tasks.${r.name}`, ...(r.aliases ?? [])]
              : [`tasks.${r.name}`],
        },
      ],
    });
    // Before the start: the start announces the endpoint, which must find its service.
    this.#byContainer.set(c.id, r.id);
    try {
      await this.#host.containers.startContainer(c.id);
    } catch (err) {
      await this.#removeReplica(c.id).catch(() => undefined);
      throw err;
    }
    return c;
  }

  async #removeReplica(containerId: string): Promise<void> {
    await this.#host.containers.removeContainer(containerId, { force: true });
    this.#byContainer.delete(containerId);
  }

  #view(s: LiveService): ServiceView {
    const r = s.rec;
    let network = '';
    try {
      network = this.#host.network(r.networkId).name;
    } catch {
      // The network is gone; the view still names its id.
    }
    const tasks = this.#replicas(s)
      .sort((a, b) => replicaIndex(r.name, a.name) - replicaIndex(r.name, b.name))
      .map((c) => ({
        id: c.id,
        name: c.name,
        status: c.state.status,
        ipAddress:
          Object.values(c.networks).find((n) => n.networkId === r.networkId)?.ipAddress ?? '',
      }));
    return {
      id: r.id,
      name: r.name,
      created: r.created,
      networkId: r.networkId,
      network,
      endpointMode: r.endpointMode,
      vip: r.vip ?? '',
      vip6: r.vip6 ?? '',
      replicas: r.replicas,
      running: tasks.filter((t) => t.status === 'running').length,
      tasks,
      labels: { ...r.template.labels },
      aliases: [...(r.aliases ?? [])],
    };
  }
}
