/**
 * The CNM controller: the only owner of live state. It validates requests, reserves addresses,
 * writes intent to the store first, then asks drivers to realise it, and undoes every step of a
 * change that fails. Work on one network is serialised by a per-network queue; work on one
 * container by a per-container queue; a container operation takes network queues one at a time
 * and never holds two, so there is no lock ordering to get wrong.
 */
import { randomBytes } from 'node:crypto';
import { release } from 'node:os';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BugError,
  ConflictError,
  ForbiddenError,
  InvalidError,
  NotFoundError,
  describeError,
} from '../errors.js';
import type { Driver, DriverEndpoint, DriverNetwork, DriverPort } from '../drivers/types.js';
import type { DriverRegistry } from '../drivers/registry.js';
import {
  AddressAllocator,
  buildPool,
  chooseSubnet,
  findOverlap,
  ulaSubnet,
} from '../ipam/index.js';
import type { Pool } from '../ipam/index.js';
import type { KernelFeature } from '../kernel/capabilities.js';
import type { Kernel, Qdisc, Tbf } from '../kernel/types.js';
import { startTrace } from '../kernel/step-trace.js';
import {
  execInContainer,
  listContainerProcesses,
  processAlive,
  readExitFile,
  startContainerProcess,
} from '../kernel/process.js';
import { CleanupStack, KeyedMutex, Mutex } from '../lifecycle.js';
import { IP, MAC, Prefix } from '../netaddr/index.js';
import type { Store } from '../store/types.js';
import { hostsFile, hostnameFile, resolvConf } from './container-files.js';
import type { ClusterScope } from './cluster.js';
import type {
  ControllerObserver,
  EndpointWatcher,
  ObservedNetwork,
  VipBalancer,
} from './events.js';
import { ServiceManager, type ServiceNetwork } from './services.js';
import { parseNamedPort } from '../policy/parse.js';
import { isolationOf, withoutIsolation } from './isolation.js';
import { bindPorts, parsePortSpec } from './ports.js';
import { hasQos, qdiscsOf, withRates } from './qos.js';
import { splitSysctlProfile, sysctlsForEndpoint } from './sysctl-profile.js';
import { KEYS, type ContainerRecord, type EndpointRecord, type NetworkRecord } from './records.js';
import type {
  ContainerSpec,
  ContainerUpdateRequest,
  ContainerView,
  ControllerApi,
  EndpointRequest,
  EngineInfo,
  ExecHandle,
  NetworkCreateRequest,
  NetworkView,
  PruneFilters,
  ServiceCreateRequest,
  ServiceView,
} from './types.js';

/** Paths and defaults the controller needs. */
export interface ControllerConfig {
  dataRoot: string;
  execRoot: string;
  /** Host-side veth name prefix (`cnmv`). */
  vethPrefix: string;
  /** Kernel name of the default bridge (`cnm0`). */
  defaultBridgeName: string;
  /** Subnet of the default bridge; chosen from the default pools when absent. */
  defaultBridgeSubnet?: string;
  mtu: number;
  /** Default DNS servers for containers (dockerd's `--dns`); else the host's resolv.conf. */
  dns: string[];
  /** Text of the daemon namespace's resolv.conf, read by the composition root. */
  hostResolvConf: () => string;
  /** Told about served networks and live endpoints: the embedded DNS (`src/cnm/events.ts`). */
  observer?: ControllerObserver;
  /** Told about every addressed endpoint and label change: the policy engine (`events.ts`). */
  policy?: EndpointWatcher;
  /** Programs service VIPs in the kernel: the bridge driver (`src/cnm/services.ts`). */
  balancer?: VipBalancer;
  /** The cluster store's view for global-scope (overlay) networks (`cluster.ts`). */
  cluster?: ClusterScope;
  version: string;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
}

interface LiveNetwork {
  rec: NetworkRecord;
  driver: Driver;
  dnet: DriverNetwork;
  v4?: AddressAllocator;
  v6?: AddressAllocator;
  /** Endpoint id → record. */
  endpoints: Map<string, EndpointRecord>;
  removed: boolean;
}

interface LiveContainer {
  rec: ContainerRecord;
  /** Network id → endpoint. */
  endpoints: Map<string, EndpointRecord>;
  waiters: ((code: number) => void)[];
  removed: boolean;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const PREDEFINED = new Set(['bridge', 'host', 'none']);
const API_VERSION = '1.47';
/** Sandboxes whose default route one drift pass reads (see `repairDrift`). */
const ROUTE_CHECKS_PER_PASS = 32;
/** tcm_parent of a root qdisc (TC_H_ROOT). */
const TC_ROOT = 0xffffffff;

function newId(): string {
  return randomBytes(32).toString('hex');
}

function now(): string {
  // Docker prints RFC 3339 with nanoseconds; JS has milliseconds.
  return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** The controller. Create with `new Controller(...)`, then `await init()`. */
export class Controller implements ControllerApi {
  #kernel: Kernel;
  #store: Store;
  #drivers: DriverRegistry;
  #cfg: ControllerConfig;
  #networks = new Map<string, LiveNetwork>();
  #containers = new Map<string, LiveContainer>();
  #netLocks = new KeyedMutex();
  #ctrLocks = new KeyedMutex();
  #createNetLock = new Mutex();
  #createCtrLock = new Mutex();
  #seq = 0;
  #poller: NodeJS.Timeout | undefined;
  #instanceId = newId().slice(0, 36);
  #closed = false;
  #routeChecks = { seen: new Set<string>(), budget: 0 };
  #services: ServiceManager;

  constructor(kernel: Kernel, store: Store, drivers: DriverRegistry, cfg: ControllerConfig) {
    this.#kernel = kernel;
    this.#store = store;
    this.#drivers = drivers;
    this.#services = new ServiceManager({
      store,
      containers: this,
      network: (idOrName) => this.#serviceNetwork(idOrName),
      allocateVip: (id, want) => this.#allocateVip(id, want, 4),
      allocateVip6: (id, want) => this.#allocateVip(id, want, 6),
      releaseVip: (id, ip) => {
        const addr = IP.parse(ip);
        const net = this.#networks.get(id);
        void (addr.family === 4 ? net?.v4 : net?.v6)?.release(addr);
      },
      ...(cfg.balancer ? { balancer: cfg.balancer } : {}),
      ...(cfg.observer ? { observer: cfg.observer } : {}),
      log: cfg.log,
    });
    // Services watch the same seam as the DNS: replica endpoints set their VIP's backends.
    this.#cfg = cfg.observer ? { ...cfg, observer: this.#services.observer() } : cfg;
  }

  // ---------------------------------------------------------------- start-up and recovery

  /**
   * Loads intent from the store and makes the kernel match it: drivers initialised, predefined
   * networks present, every network, sandbox, endpoint and port re-asserted, orphans removed.
   */
  async init(): Promise<void> {
    await mkdir(join(this.#cfg.execRoot, 'netns'), { recursive: true });
    await mkdir(join(this.#cfg.dataRoot, 'containers'), { recursive: true });
    await this.#kernel.netnsDirEnsure(join(this.#cfg.execRoot, 'netns'));
    for (const d of this.#drivers.all()) await d.init();

    for (const { value } of await this.#store.list<NetworkRecord>(KEYS.networks)) {
      try {
        await this.#loadNetwork(value);
      } catch (err) {
        this.#cfg.log('error', `Cannot restore network "${value.name}": ${describeError(err)}`);
      }
    }

    // Global networks live in the cluster store; they must exist before their endpoints load.
    for (const rec of (await this.#cfg.cluster?.listNetworks()) ?? []) {
      await this.#loadNetwork(rec).catch((err: unknown) =>
        this.#cfg.log('error', `Cannot restore network "${rec.name}": ${describeError(err)}`),
      );
    }
    const endpoints = (await this.#store.list<EndpointRecord>(KEYS.endpoints)).map((r) => r.value);
    endpoints.sort((a, b) => a.seq - b.seq);
    this.#seq = endpoints.reduce((m, e) => Math.max(m, e.seq), 0);
    for (const { value } of await this.#store.list<ContainerRecord>(KEYS.containers)) {
      this.#containers.set(value.id, {
        rec: value,
        endpoints: new Map(),
        waiters: [],
        removed: false,
      });
    }
    for (const ep of endpoints) {
      const net = this.#networks.get(ep.networkId);
      const ctr = this.#containers.get(ep.containerId);
      if (!net || !ctr) {
        // An endpoint whose network or container record is gone: a crash between steps.
        this.#cfg.log('warn', `Removing orphan endpoint record ${ep.id.slice(0, 12)}`);
        if (net) await this.#deleteEndpointKernel(net, ep).catch(() => undefined);
        await this.#store.delete(KEYS.endpoint(ep.id));
        continue;
      }
      for (const [fam, alloc] of [
        [ep.ipv4, net.v4],
        [ep.ipv6, net.v6],
      ] as const) {
        if (fam && alloc) {
          try {
            alloc.allocate(IP.parse(fam));
          } catch (err) {
            this.#cfg.log('error', `Endpoint ${ep.id.slice(0, 12)}: ${describeError(err)}`);
          }
        }
      }
      net.endpoints.set(ep.id, ep);
      ctr.endpoints.set(ep.networkId, ep);
    }
    for (const ctr of this.#containers.values()) {
      try {
        await this.#restoreContainer(ctr);
      } catch (err) {
        this.#cfg.log('error', `Cannot restore container "${ctr.rec.name}": ${describeError(err)}`);
      }
    }
    this.#killStrayProcesses();
    await this.#removeOrphans();
    // After the orphan sweep: a predefined network missing from the store (a new data root)
    // must not collide with a stale bridge of the same name that no record claims.
    await this.#ensurePredefined();
    await this.#services.restore();
    for (const n of this.#networks.values()) await this.#networkUp(n);
    for (const ctr of this.#containers.values()) this.#endpointsUp(ctr);
    await this.#clusterUp();
    for (const ctr of this.#containers.values()) {
      for (const ep of ctr.endpoints.values()) await this.#policyAttach(ctr, ep);
    }
    this.#poller = setInterval(() => void this.#pollProcesses(), 500);
    this.#poller.unref();
    for (const ctr of [...this.#containers.values()]) {
      if (ctr.rec.state.status === 'exited' && ctr.rec.spec.autoRemove) {
        await this.removeContainer(ctr.rec.id, { force: true }).catch(() => undefined);
      }
    }
  }

  /** Stops background work. Containers keep running (their shims outlive the daemon). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#poller) clearInterval(this.#poller);
  }

  async #ensurePredefined(): Promise<void> {
    const have = new Set([...this.#networks.values()].map((n) => n.rec.name));
    for (const name of ['bridge', 'host', 'none'] as const) {
      if (have.has(name)) continue;
      const req: NetworkCreateRequest =
        name === 'bridge'
          ? {
              name,
              driver: 'bridge',
              options: {
                'com.docker.network.bridge.default_bridge': 'true',
                'com.docker.network.bridge.enable_icc': 'true',
                'com.docker.network.bridge.enable_ip_masquerade': 'true',
                'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
                'com.docker.network.bridge.name': this.#cfg.defaultBridgeName,
                'com.docker.network.driver.mtu': String(this.#cfg.mtu),
              },
              ...(this.#cfg.defaultBridgeSubnet
                ? { ipam: { config: [{ subnet: this.#cfg.defaultBridgeSubnet }] } }
                : {}),
            }
          : { name, driver: name };
      await this.#createNetwork(req, true);
    }
  }

  async #loadNetwork(rec: NetworkRecord): Promise<void> {
    const live = this.#buildLive(rec);
    this.#networks.set(rec.id, live);
    if (!rec.configOnly) await live.driver.ensureNetwork(live.dnet);
  }

  #buildLive(rec: NetworkRecord): LiveNetwork {
    const driver = this.#drivers.get(rec.driver);
    const options = rec.configOnly
      ? {}
      : driver.parseOptions(splitSysctlProfile(withoutIsolation(rec.options)).driverOptions, {
          name: rec.name,
          predefined: rec.predefined,
        });
    const dnet: DriverNetwork = { id: rec.id, name: rec.name, options, internal: rec.internal };
    const live: LiveNetwork = { rec, driver, dnet, endpoints: new Map(), removed: false };
    for (const cfg of rec.ipam.config) {
      const pool = buildPool({ ...cfg, subnet: cfg.subnet }, { gateway: 'required' });
      const fam = { subnet: pool.subnet, ...(pool.gateway ? { gateway: pool.gateway } : {}) };
      if (pool.family === 4) {
        dnet.ipv4 = fam;
        live.v4 = new AddressAllocator(pool);
      } else {
        dnet.ipv6 = fam;
        live.v6 = new AddressAllocator(pool);
      }
    }
    return live;
  }

  async #restoreContainer(ctr: LiveContainer): Promise<void> {
    const rec = ctr.rec;
    if (rec.sandboxKey && !(await this.#kernel.netnsExists(rec.sandboxKey))) {
      // The sandbox is gone (reboot, or a crash before it was made). A process that was in it
      // cannot still be running there: re-create an empty sandbox and mark the process dead.
      // A crash between creating the netns file and mounting it leaves a plain file: remove it.
      await this.#kernel.netnsDel(rec.sandboxKey);
      await this.#kernel.netnsAdd(rec.sandboxKey);
      await this.#applySysctls(rec);
    }
    for (const ep of ctr.endpoints.values()) {
      const net = this.#networks.get(ep.networkId)!;
      await net.driver.ensureEndpoint(net.dnet, this.#driverEndpoint(rec, ep));
      await this.#applyNetworkSysctls(net, rec, ep);
      if (hasQos(rec.spec)) await this.#applyQos(rec, net, ep);
      if (ep.ports.length > 0) {
        await net.driver.publishPorts(net.dnet, this.#driverEndpoint(rec, ep), ep.ports);
      }
    }
    if (rec.state.status === 'running' && !processAlive(rec.state.pid, rec.state.startTime)) {
      await this.#markExited(ctr);
    }
  }

  /**
   * A container whose record is not running has no processes: cnmd killed between spawning a
   * container's shim and recording its PID leaves a process no record knows (and a second
   * start would run the command twice). Such processes, and those of containers with no
   * record at all, are found by their environment marker and killed.
   */
  #killStrayProcesses(): void {
    for (const [id, pids] of listContainerProcesses(this.#cfg.execRoot)) {
      const ctr = this.#containers.get(id);
      if (ctr?.rec.state.status === 'running') continue;
      for (const pid of pids) {
        this.#cfg.log('warn', `Killing stray process ${pid} of container ${id.slice(0, 12)}`);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
  }

  /**
   * Drift repair: re-creates what the records say cnm owns and someone removed behind its back
   * — a network's bridge, an endpoint's veth (the peer, addresses and routes come with it), a
   * macvlan/ipvlan child inside its sandbox, a container's default route; a re-made interface
   * gets the container's and the network's sysctls again. Reads the kernel without locks, then
   * repairs each object under its network's queue after checking again, so it never races a request. Never removes
   * anything. Returns one line per repair made (empty when nothing had drifted).
   */
  /**
   * True for at most `ROUTE_CHECKS_PER_PASS` endpoints per drift pass, rotating, so every
   * endpoint's default route is looked at within `ceil(n / ROUTE_CHECKS_PER_PASS)` passes.
   */
  #routeCheckDue(endpointId: string): boolean {
    if (this.#routeChecks.budget <= 0) return false;
    if (this.#routeChecks.seen.has(endpointId)) return false;
    this.#routeChecks.seen.add(endpointId);
    this.#routeChecks.budget--;
    return true;
  }

  /**
   * Endpoints of a veth network whose tbf is missing or not the container's limit. The host ends
   * (ingress limits) are all read in one dump of the daemon's namespace; the sandbox ends
   * (egress) cost a round trip each, so they share the rotating per-pass budget of the route
   * checks. A qdisc on an endpoint without a limit is left alone.
   */
  async #qosDrift(net: LiveNetwork, skip: ReadonlySet<EndpointRecord>): Promise<EndpointRecord[]> {
    const out: EndpointRecord[] = [];
    let host: Map<string, Qdisc> | undefined;
    const root = (qs: readonly Qdisc[], dev: string): Qdisc | undefined =>
      qs.find((q) => q.dev === dev && q.parent === TC_ROOT);
    // The rate is what a user sees; burst is read back through the kernel's time units (±1 B).
    const same = (q: Qdisc | undefined, want: Tbf): boolean =>
      q?.kind === 'tbf' && q.tbf?.rate === want.rate;
    for (const ep of net.endpoints.values()) {
      if (skip.has(ep)) continue;
      const ctr = this.#containers.get(ep.containerId);
      if (!ctr || ctr.removed || !ctr.rec.sandboxKey) continue;
      const want = qdiscsOf(ctr.rec.spec);
      if (want.ingress) {
        host ??= new Map(
          (await this.#kernel.qdiscList().catch(() => []))
            .filter((q) => q.parent === TC_ROOT)
            .map((q) => [q.dev, q]),
        );
        if (!same(host.get(ep.hostIfName), want.ingress)) {
          out.push(ep);
          continue;
        }
      }
      if (want.egress && this.#routeCheckDue(`${ep.id}/qos`)) {
        const qs = await this.#kernel.qdiscList(ctr.rec.sandboxKey, ep.ifName).catch(() => null);
        // null: the sandbox cannot be read (being removed); an absent link is the veth check's.
        if (qs && qs.some((q) => q.dev === ep.ifName) && !same(root(qs, ep.ifName), want.egress))
          out.push(ep);
      }
    }
    return out;
  }

  async repairDrift(): Promise<string[]> {
    if (this.#closed) return [];
    this.#routeChecks.budget = ROUTE_CHECKS_PER_PASS;
    const done: string[] = [];
    const present = new Set((await this.#kernel.linkList()).map((l) => l.name));
    for (const net of [...this.#networks.values()]) {
      // Bridge and overlay networks: endpoints are veths in the daemon's namespace (an overlay's
      // own links are its bridge and VXLAN device; re-making them re-programs the remote FDB
      // and neighbour entries). macvlan/ipvlan: the endpoint is a child link inside the
      // sandbox, checked there like the default route.
      const veths = net.driver.capabilities.hostVeth;
      const children = net.rec.driver === 'macvlan' || net.rec.driver === 'ipvlan';
      if (net.rec.configOnly || net.removed || !(veths || children)) continue;
      const owned = net.driver.ownedLinks(net.dnet);
      const bridgeGone = owned.some((l) => !present.has(l));
      const vethGone = veths
        ? [...net.endpoints.values()].filter((ep) => !present.has(ep.hostIfName))
        : [];
      const vethGoneSet = new Set(vethGone);
      const routeGone: EndpointRecord[] = [];
      for (const ep of net.endpoints.values()) {
        const routed = ep.gatewayEndpoint && !net.rec.internal;
        if ((!routed && !children) || vethGoneSet.has(ep) || bridgeGone) continue;
        // Reading routes costs a round trip into each sandbox: check a bounded, rotating share
        // per pass so that the check never crowds out requests on the kernel thread (a full
        // sweep of 1000 sandboxes every second made container creation 3x slower).
        if (!this.#routeCheckDue(ep.id)) continue;
        const ctr = this.#containers.get(ep.containerId);
        if (!ctr?.rec.sandboxKey || ctr.removed) continue;
        if (children) {
          // undefined: the child is gone; null: the sandbox cannot be read (being removed).
          const link = await this.#kernel.linkGet(ep.ifName, ctr.rec.sandboxKey).catch(() => null);
          if (link === undefined) vethGone.push(ep);
          if (!link || !routed) continue;
        }
        for (const fam of [4, 6] as const) {
          const has =
            fam === 4 ? ep.ipv4 && net.dnet.ipv4?.gateway : ep.ipv6 && net.dnet.ipv6?.gateway;
          if (!has) continue;
          const routes = await this.#kernel
            .routeList(ctr.rec.sandboxKey, fam)
            .catch(() => undefined);
          if (routes && !routes.some((r) => r.dst === 'default')) {
            routeGone.push(ep);
            break;
          }
        }
      }
      const qosGone = veths && !bridgeGone ? await this.#qosDrift(net, vethGoneSet) : [];
      if (!bridgeGone && vethGone.length === 0 && routeGone.length === 0 && qosGone.length === 0)
        continue;
      const repaired = this.#netLocks.run(net.rec.id, async () => {
        if (net.removed) return;
        for (const ep of qosGone) {
          const ctr = this.#containers.get(ep.containerId);
          if (!ctr || ctr.removed || net.endpoints.get(ep.id) !== ep) continue;
          await this.#applyQos(ctr.rec, net, ep);
          done.push(`container "${ctr.rec.name}" on "${net.rec.name}": bandwidth limit restored`);
        }
        const eps = bridgeGone ? [...net.endpoints.values()] : [...vethGone, ...routeGone];
        if (bridgeGone) {
          await net.driver.ensureNetwork(net.dnet);
          done.push(`network "${net.rec.name}": bridge re-created`);
        }
        for (const ep of eps) {
          const ctr = this.#containers.get(ep.containerId);
          if (!ctr || ctr.removed || net.endpoints.get(ep.id) !== ep) continue;
          const dep = this.#driverEndpoint(ctr.rec, ep);
          // Port elements name the container's address, not the veth: they are still there.
          await net.driver.ensureEndpoint(net.dnet, dep);
          if (bridgeGone || vethGone.includes(ep)) {
            // A new interface has the kernel's defaults: its sysctls (`--sysctl`, the network's
            // `io.cnm.sysctl.*` profile) must be set again.
            await this.#applySysctls(ctr.rec);
            await this.#applyNetworkSysctls(net, ctr.rec, ep);
          }
          // A re-created veth has lost its bandwidth limits (both ends are new).
          if (hasQos(ctr.rec.spec)) await this.#applyQos(ctr.rec, net, ep);
          const what = vethGone.includes(ep)
            ? `${veths ? 'veth' : net.rec.driver} re-created`
            : routeGone.includes(ep)
              ? 'default route restored'
              : 're-attached';
          done.push(`container "${ctr.rec.name}" on "${net.rec.name}": ${what}`);
        }
      });
      // One network's failure (a macvlan parent someone deleted) must not stop the others'.
      await repaired.catch((err: unknown) => {
        this.#cfg.log('error', `Cannot repair network "${net.rec.name}": ${describeError(err)}`);
      });
    }
    // Budget left over means every endpoint that has a route to check had its turn: start the
    // rotation again next pass. (Counting endpoints instead would stall it: internal, macvlan and
    // gateway-less endpoints are never checked.)
    if (this.#routeChecks.budget > 0) this.#routeChecks.seen.clear();
    for (const line of done) this.#cfg.log('warn', `Drift repaired: ${line}`);
    return done;
  }

  /** Removes kernel objects cnm owns that no record claims: links and sandboxes. */
  async #removeOrphans(): Promise<void> {
    const claimed = new Set<string>();
    for (const n of this.#networks.values()) {
      if (!n.rec.configOnly) for (const l of n.driver.ownedLinks(n.dnet)) claimed.add(l);
      for (const ep of n.endpoints.values()) claimed.add(ep.hostIfName);
    }
    for (const link of await this.#kernel.linkList()) {
      if (link.alias?.startsWith('cnm:') && !claimed.has(link.name)) {
        this.#cfg.log('warn', `Removing orphan link "${link.name}"`);
        await this.#kernel.linkDel(link.name, undefined, { ifExists: true }).catch(() => undefined);
      }
    }
    const sandboxes = new Set([...this.#containers.values()].map((c) => c.rec.sandboxKey));
    const { readdir } = await import('node:fs/promises');
    const dir = join(this.#cfg.execRoot, 'netns');
    for (const f of await readdir(dir)) {
      const path = join(dir, f);
      if (!sandboxes.has(path)) {
        this.#cfg.log('warn', `Removing orphan sandbox "${path}"`);
        await this.#kernel.netnsDel(path).catch(() => undefined);
      }
    }
  }

  // ---------------------------------------------------------------- lookups

  #findNetwork(idOrName: string): LiveNetwork {
    for (const n of this.#networks.values()) if (n.rec.id === idOrName) return n;
    for (const n of this.#networks.values()) if (n.rec.name === idOrName) return n;
    if (idOrName.length > 0 && /^[0-9a-f]+$/.test(idOrName)) {
      const hits = [...this.#networks.values()].filter((n) => n.rec.id.startsWith(idOrName));
      if (hits.length === 1) return hits[0]!;
      if (hits.length > 1) {
        throw new InvalidError(
          'NET_AMBIGUOUS',
          `network ${idOrName} is ambiguous (${hits.length} matches found based on ID prefix)`,
        );
      }
    }
    throw new NotFoundError('NET_NOT_FOUND', `network ${idOrName} not found`);
  }

  #findContainer(idOrName: string): LiveContainer {
    const name = idOrName.startsWith('/') ? idOrName.slice(1) : idOrName;
    for (const c of this.#containers.values()) if (c.rec.id === name) return c;
    for (const c of this.#containers.values()) if (c.rec.name === name) return c;
    if (name.length > 0 && /^[0-9a-f]+$/.test(name)) {
      const hits = [...this.#containers.values()].filter((c) => c.rec.id.startsWith(name));
      if (hits.length === 1) return hits[0]!;
      if (hits.length > 1) {
        throw new InvalidError(
          'CONTAINER_AMBIGUOUS',
          `multiple containers found with provided prefix: ${name}`,
        );
      }
    }
    throw new NotFoundError('CONTAINER_NOT_FOUND', `No such container: ${idOrName}`);
  }

  // ---------------------------------------------------------------- networks

  // ---------------------------------------------------------------- services (services.ts)

  /** Creates a service: its VIP (vip mode), its record, its replicas. */
  createService(req: ServiceCreateRequest): Promise<ServiceView> {
    return this.#services.createService(req);
  }

  listServices(): ServiceView[] {
    return this.#services.listServices();
  }

  inspectService(idOrName: string): ServiceView {
    return this.#services.inspectService(idOrName);
  }

  removeService(idOrName: string): Promise<void> {
    return this.#services.removeService(idOrName);
  }

  scaleService(idOrName: string, replicas: number): Promise<ServiceView> {
    return this.#services.scaleService(idOrName, replicas);
  }

  #serviceNetwork(idOrName: string): ServiceNetwork {
    const net = this.#findNetwork(idOrName);
    const r = net.rec;
    const gateway = net.dnet.ipv4?.gateway ?? net.dnet.ipv6?.gateway;
    return {
      id: r.id,
      name: r.name,
      dnet: net.dnet,
      served: r.driver === 'bridge' && !r.predefined && !r.configOnly && gateway !== undefined,
      balanced: r.driver === 'bridge',
    };
  }

  /** Takes a VIP from a network's IPv4 or IPv6 IPAM (`want` on restore). */
  #allocateVip(networkId: string, want: string | undefined, family: 4 | 6): string {
    const net = this.#networks.get(networkId);
    const pool = family === 4 ? net?.v4 : net?.v6;
    if (!pool) {
      throw new InvalidError(
        'SERVICE_NETWORK_INVALID',
        `Network "${networkId}" has no IPv${family}`,
      );
    }
    return pool.allocate(want === undefined ? undefined : IP.parse(want)).toString();
  }

  info(): EngineInfo {
    const all = [...this.#containers.values()];
    const running = all.filter((c) => c.rec.state.status === 'running').length;
    const kernelVersion = release();
    return {
      version: this.#cfg.version,
      apiVersion: API_VERSION,
      minApiVersion: '1.24',
      os: 'linux',
      arch: process.arch === 'x64' ? 'amd64' : process.arch,
      kernelVersion,
      name: 'cnmd',
      id: this.#instanceId,
      containers: { total: all.length, running, stopped: all.length - running },
      dataRoot: this.#cfg.dataRoot,
      execRoot: this.#cfg.execRoot,
      drivers: this.#drivers.names(),
    };
  }

  listNetworks(): NetworkView[] {
    return [...this.#networks.values()]
      .sort(
        (a, b) =>
          a.rec.created.localeCompare(b.rec.created) || a.rec.name.localeCompare(b.rec.name),
      )
      .map((n) => this.#networkView(n));
  }

  inspectNetwork(idOrName: string): NetworkView {
    return this.#networkView(this.#findNetwork(idOrName));
  }

  #networkView(n: LiveNetwork): NetworkView {
    const r = n.rec;
    const containers: NetworkView['containers'] = {};
    for (const ep of n.endpoints.values()) {
      const ctr = this.#containers.get(ep.containerId);
      containers[ep.containerId] = {
        name: ctr?.rec.name ?? '',
        endpointId: ep.id,
        macAddress: ep.mac,
        ipv4Address: ep.ipv4 ? `${ep.ipv4}/${n.dnet.ipv4!.subnet.bits}` : '',
        ipv6Address: ep.ipv6 ? `${ep.ipv6}/${n.dnet.ipv6!.subnet.bits}` : '',
      };
    }
    return {
      id: r.id,
      name: r.name,
      created: r.created,
      scope: r.scope,
      driver: r.driver,
      enableIPv4: r.enableIPv4,
      enableIPv6: r.enableIPv6,
      ipam: clone(r.ipam),
      internal: r.internal,
      attachable: r.attachable,
      ingress: r.ingress,
      ...(r.configFrom ? { configFrom: r.configFrom } : {}),
      configOnly: r.configOnly,
      containers,
      options: { ...r.options },
      labels: { ...r.labels },
      predefined: r.predefined,
    };
  }

  async createNetwork(req: NetworkCreateRequest): Promise<{ id: string; warning: string }> {
    return this.#createNetwork(req, false);
  }

  async #createNetwork(
    req: NetworkCreateRequest,
    predefined: boolean,
  ): Promise<{ id: string; warning: string }> {
    const name = req.name;
    if (typeof name !== 'string' || !NAME_RE.test(name) || name.length > 128) {
      throw new InvalidError(
        'NET_NAME_INVALID',
        `Invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at most 128 characters`,
      );
    }
    const driverName = req.driver || 'bridge';
    const driver = this.#drivers.get(driverName);
    // `swarm` is what the docker CLI sends for global-scope networks.
    const scope = req.scope === 'swarm' ? 'global' : req.scope;
    if (scope && scope !== driver.capabilities.scope) {
      throw new InvalidError(
        'NET_SCOPE_INVALID',
        `Cannot create network "${name}": scope "${req.scope}" is not supported by driver "${driverName}"`,
      );
    }
    if (req.ingress) {
      throw new InvalidError(
        'NET_INGRESS',
        `Cannot create network "${name}": ingress networks need swarm mode, which cnm does not have`,
      );
    }
    const ipamDriver = req.ipam?.driver || 'default';
    if (ipamDriver !== 'default') {
      throw new InvalidError(
        'IPAM_DRIVER_UNKNOWN',
        `Cannot create network "${name}": IPAM driver "${ipamDriver}" is not available (cnm has "default")`,
      );
    }
    const cluster = driver.capabilities.scope === 'global' ? this.#requireCluster(name) : undefined;
    const enableIPv6 = req.enableIPv6 === true;
    const enableIPv4 = req.enableIPv4 !== false;
    if (!enableIPv4 && !enableIPv6) {
      throw new InvalidError(
        'NET_NO_FAMILY',
        `Cannot create network "${name}": IPv4 and IPv6 cannot both be disabled`,
      );
    }

    return this.#createNetLock.run(async () => {
      for (const n of this.#networks.values()) {
        if (n.rec.name === name) {
          throw new ConflictError('NET_NAME_IN_USE', `network with name ${name} already exists`);
        }
      }
      if (!predefined && driver.capabilities.singleton) {
        throw new ForbiddenError(
          'NET_SINGLETON',
          `only one instance of "${driverName}" network is allowed`,
        );
      }
      let options = { ...(req.options ?? {}) };
      let ipamCfg = clone(req.ipam?.config ?? []);
      let internal = req.internal === true;
      let configFrom: string | undefined;
      if (req.configFrom) {
        const src = this.#findNetwork(req.configFrom);
        if (!src.rec.configOnly) {
          throw new InvalidError(
            'NET_CONFIG_FROM',
            `Cannot create network "${name}": network "${src.rec.name}" is not a config-only network`,
          );
        }
        if (ipamCfg.length > 0 || Object.keys(options).length > 0) {
          throw new InvalidError(
            'NET_CONFIG_FROM',
            `Cannot create network "${name}": network-specific settings cannot be given with --config-from`,
          );
        }
        options = { ...src.rec.options };
        ipamCfg = clone(src.rec.ipam.config);
        configFrom = src.rec.name;
      }
      const configOnly = req.configOnly === true;
      if (configOnly && predefined) throw new BugError('predefined config-only network');

      const id = newId();
      isolationOf(options, configOnly ? undefined : driverName);
      const profile = splitSysctlProfile(withoutIsolation(options));
      if (Object.keys(profile.sysctls).length > 0 && !driver.capabilities.ownNamespace) {
        throw new InvalidError(
          'SYSCTL_INVALID',
          `Cannot create network "${name}": driver "${driverName}" gives containers no namespace of their own to set sysctls in`,
        );
      }
      const typed = configOnly
        ? {}
        : driver.parseOptions(profile.driverOptions, { name, predefined });
      const userSubnets = ipamCfg.length > 0;
      const resolved = configOnly
        ? ipamCfg
        : await this.#resolveIpam(name, driver, ipamCfg, { enableIPv4, enableIPv6, predefined });
      let rec: NetworkRecord = {
        id,
        name,
        driver: driverName,
        scope: driver.capabilities.scope,
        created: now(),
        options,
        labels: { ...(req.labels ?? {}) },
        ipam: { driver: 'default', options: { ...(req.ipam?.options ?? {}) }, config: resolved },
        enableIPv4: driver.capabilities.usesIpam || configOnly ? enableIPv4 : false,
        enableIPv6: driver.capabilities.usesIpam || configOnly ? enableIPv6 : false,
        internal,
        attachable: req.attachable === true,
        ingress: false,
        configOnly,
        ...(configFrom ? { configFrom } : {}),
        predefined,
        userSubnets,
      };
      void typed;
      if (cluster) {
        // Name, VNI and subnets are reserved cluster-wide by compare-and-swap; subnets are
        // chosen again (avoiding every global network's) each time another host wins a race.
        rec = await cluster.createNetwork(rec, (taken) =>
          this.#resolveIpam(name, driver, ipamCfg, { enableIPv4, enableIPv6, predefined, taken }),
        );
      }
      let live: LiveNetwork;
      const undo = new CleanupStack();
      try {
        if (cluster) {
          // Pushed before validation: a network refused by the driver must not stay reserved
          // cluster-wide.
          const made = rec;
          undo.push('cluster network', () => cluster.removeNetwork(made));
        }
        live = this.#buildLive(rec);
        if (!configOnly) {
          live.driver.validateNetwork(
            live.dnet,
            [...this.#networks.values()]
              .filter((n) => !n.rec.configOnly && n.rec.driver === driverName)
              .map((n) => n.dnet),
          );
        }
        if (!cluster) {
          await this.#store.put(KEYS.network(id), rec, { expectRevision: 0 });
          undo.push('store network', () =>
            this.#store.delete(KEYS.network(id)).then(() => undefined),
          );
        }
        if (!configOnly) {
          undo.push('delete network objects', () => live.driver.deleteNetwork(live.dnet));
          await live.driver.ensureNetwork(live.dnet);
        }
        undo.release();
      } catch (err) {
        await undo.unwindQuietly(err);
        throw err;
      }
      this.#networks.set(id, live);
      await this.#networkUp(live);
      this.#cfg.log('info', `Created network "${name}" (${id.slice(0, 12)}, driver ${driverName})`);
      return { id, warning: '' };
    });
  }

  /** Validates the IPAM config, or picks subnets from the default pools; returns it resolved. */
  async #resolveIpam(
    name: string,
    driver: Driver,
    cfg: NonNullable<NetworkCreateRequest['ipam']>['config'] & object,
    opts: { enableIPv4: boolean; enableIPv6: boolean; predefined: boolean; taken?: Prefix[] },
  ): Promise<NetworkRecord['ipam']['config']> {
    if (!driver.capabilities.usesIpam) {
      if (cfg.length > 0) {
        throw new InvalidError(
          'IPAM_NOT_SUPPORTED',
          `Cannot create network "${name}": driver "${driver.name}" takes no IPAM configuration`,
        );
      }
      return [];
    }
    const others: { prefix: Prefix; owner: string }[] = [];
    for (const n of this.#networks.values()) {
      for (const c of n.rec.configOnly ? [] : n.rec.ipam.config) {
        others.push({ prefix: Prefix.parse(c.subnet), owner: `network "${n.rec.name}"` });
      }
    }
    for (const prefix of opts.taken ?? [])
      others.push({ prefix, owner: 'a network of the cluster' });
    const pools: Pool[] = [];
    for (const c of cfg) {
      if (!c.subnet) {
        throw new InvalidError(
          'SUBNET_INVALID',
          `Cannot create network "${name}": an IPAM config entry needs a subnet`,
        );
      }
      const pool = buildPool({ ...c, subnet: c.subnet }, { gateway: 'required' });
      if (pools.some((p) => p.family === pool.family)) {
        throw new InvalidError(
          'SUBNET_INVALID',
          `Cannot create network "${name}": cnm takes one subnet per address family`,
        );
      }
      if (pool.family === 6 && !opts.enableIPv6) {
        throw new InvalidError(
          'SUBNET_INVALID',
          `Cannot create network "${name}": IPv6 subnet "${c.subnet}" given without --ipv6`,
        );
      }
      if (pool.family === 4 && !opts.enableIPv4) {
        throw new InvalidError(
          'SUBNET_INVALID',
          `Cannot create network "${name}": IPv4 subnet "${c.subnet}" given with IPv4 disabled`,
        );
      }
      const hit = findOverlap(pool.subnet, others);
      if (hit) {
        throw new ForbiddenError(
          'SUBNET_OVERLAP',
          `Pool overlaps with other one on this address space: subnet "${pool.subnet}" overlaps ${hit.owner}`,
        );
      }
      pools.push(pool);
    }
    if (opts.enableIPv4 && !pools.some((p) => p.family === 4)) {
      const taken = others.map((o) => o.prefix);
      for (const r of await this.#kernel.routeList(undefined, 4)) {
        if (r.dst !== 'default' && r.dst !== '0.0.0.0/0') taken.push(Prefix.parse(r.dst));
      }
      for (const a of await this.#kernel.addrList(undefined, 4)) {
        if (!a.address.startsWith('127.')) taken.push(Prefix.parse(`${a.address}/32`));
      }
      const subnet = chooseSubnet(taken, { skipFirst: !opts.predefined });
      if (!subnet) {
        throw new ForbiddenError(
          'POOL_EXHAUSTED',
          'all predefined address pools have been fully subnetted',
        );
      }
      pools.push(buildPool({ subnet: subnet.toString() }, { gateway: 'required' }));
    }
    if (opts.enableIPv6 && !pools.some((p) => p.family === 6)) {
      pools.push(
        buildPool({ subnet: ulaSubnet(randomBytes(5)).toString() }, { gateway: 'required' }),
      );
    }
    return pools.map((p) => {
      const out: NetworkRecord['ipam']['config'][number] = { subnet: p.subnet.toString() };
      const given = cfg.find((c) => c.subnet && Prefix.parse(c.subnet).family === p.family);
      if (given?.ipRange) out.ipRange = p.range.toString();
      if (p.gateway) out.gateway = p.gateway.toString();
      if (p.aux.size > 0)
        out.auxAddresses = Object.fromEntries([...p.aux].map(([k, v]) => [k, v.toString()]));
      return out;
    });
  }

  async removeNetwork(idOrName: string): Promise<void> {
    const net = this.#findNetwork(idOrName);
    await this.#netLocks.run(net.rec.id, async () => {
      if (net.removed) throw new NotFoundError('NET_NOT_FOUND', `network ${idOrName} not found`);
      if (net.rec.predefined) {
        throw new ForbiddenError(
          'NET_PREDEFINED',
          `${net.rec.name} is a pre-defined network and cannot be removed`,
        );
      }
      if (net.endpoints.size > 0) {
        throw new ForbiddenError(
          'NET_IN_USE',
          `error while removing network: network ${net.rec.name} id ${net.rec.id} has active endpoints`,
        );
      }
      const service = this.#services.serviceOn(net.rec.id);
      if (service !== undefined) {
        // As Docker: a network a service is attached to stays, even with 0 replicas.
        throw new ForbiddenError(
          'NET_IN_USE',
          `error while removing network: network ${net.rec.name} id ${net.rec.id} is in use by service "${service}"`,
        );
      }
      for (const n of this.#networks.values()) {
        if (n.rec.configFrom === net.rec.name) {
          throw new ForbiddenError(
            'NET_IN_USE',
            `configuration network "${net.rec.name}" is in use`,
          );
        }
      }
      // Cluster record first: it refuses while any host has endpoints, and it is the truth.
      const cluster = net.rec.scope === 'global' ? this.#requireCluster(net.rec.name) : undefined;
      if (cluster) await cluster.removeNetwork(net.rec);
      // Record last: a crash after the kernel step leaves a record that start-up re-creates.
      if (!net.rec.configOnly) await net.driver.deleteNetwork(net.dnet);
      if (!cluster) await this.#store.delete(KEYS.network(net.rec.id));
      net.removed = true;
      this.#networks.delete(net.rec.id);
      await this.#cfg.observer?.networkDown(net.rec.id);
      this.#cfg.log('info', `Removed network "${net.rec.name}"`);
    });
  }

  async pruneNetworks(filters: PruneFilters): Promise<string[]> {
    const removed: string[] = [];
    const matches = (labels: Record<string, string>, f: string): boolean => {
      const eq = f.indexOf('=');
      return eq < 0 ? f in labels : labels[f.slice(0, eq)] === f.slice(eq + 1);
    };
    for (const n of [...this.#networks.values()]) {
      if (n.rec.predefined || n.endpoints.size > 0) continue;
      if (filters.until && new Date(n.rec.created) >= filters.until) continue;
      if (filters.label && !filters.label.every((f) => matches(n.rec.labels, f))) continue;
      if (filters.labelNot && filters.labelNot.some((f) => matches(n.rec.labels, f))) continue;
      try {
        await this.removeNetwork(n.rec.id);
        removed.push(n.rec.name);
      } catch (err) {
        this.#cfg.log('warn', `Prune skipped network "${n.rec.name}": ${describeError(err)}`);
      }
    }
    return removed;
  }

  // ---------------------------------------------------------------- endpoints

  #driverEndpoint(ctr: ContainerRecord, ep: EndpointRecord): DriverEndpoint {
    const net = this.#networks.get(ep.networkId);
    const out: DriverEndpoint = {
      id: ep.id,
      ns: ctr.sandboxKey || undefined,
      ifName: ep.ifName,
      hostIfName: ep.hostIfName,
      mac: MAC.parse(ep.mac),
      gatewayEndpoint: ep.gatewayEndpoint,
    };
    if (ep.ipv4 && net?.dnet.ipv4)
      out.ipv4 = { address: IP.parse(ep.ipv4), prefixLen: net.dnet.ipv4.subnet.bits };
    if (ep.ipv6 && net?.dnet.ipv6)
      out.ipv6 = { address: IP.parse(ep.ipv6), prefixLen: net.dnet.ipv6.subnet.bits };
    return out;
  }

  /**
   * Attaches a container to a network: address, record, kernel objects, ports. Undoes every
   * step when one fails. Caller holds the container's lock.
   */
  async #attach(
    ctr: LiveContainer,
    net: LiveNetwork,
    req: EndpointRequest,
    opts: { gatewayEndpoint: boolean; ports: string[] },
  ): Promise<EndpointRecord> {
    return this.#netLocks.run(net.rec.id, async () => {
      if (net.removed)
        throw new NotFoundError('NET_NOT_FOUND', `network ${net.rec.name} not found`);
      if (net.rec.configOnly) {
        throw new ForbiddenError(
          'NET_CONFIG_ONLY',
          `Cannot attach to network "${net.rec.name}": it is a config-only network`,
        );
      }
      if (ctr.endpoints.has(net.rec.id)) {
        throw new ForbiddenError(
          'ENDPOINT_EXISTS',
          `endpoint with name ${ctr.rec.name} already exists in network ${net.rec.name}`,
        );
      }
      const caps = net.driver.capabilities;
      this.#checkQos(ctr.rec.spec, net);
      if ((req.aliases?.length ?? 0) > 0 && net.rec.name === 'bridge') {
        throw new InvalidError(
          'ALIAS_UNSUPPORTED',
          'network-scoped alias is supported only for containers in user defined networks',
        );
      }
      const staticIp = req.ipv4 || req.ipv6;
      if (staticIp && (!net.rec.userSubnets || net.rec.predefined)) {
        throw new InvalidError(
          'STATIC_IP_UNSUPPORTED',
          'user specified IP address is supported only when connecting to networks with user configured subnets',
        );
      }
      const id = newId();
      const used = new Set([...ctr.endpoints.values()].map((e) => e.ifName));
      let n = 0;
      while (used.has(`eth${n}`)) n++;
      const ep: EndpointRecord = {
        id,
        networkId: net.rec.id,
        containerId: ctr.rec.id,
        ifName: `eth${n}`,
        hostIfName: `${this.#cfg.vethPrefix}${id.slice(0, 15 - this.#cfg.vethPrefix.length)}`,
        mac: '',
        aliases: [...(req.aliases ?? [])],
        gatewayEndpoint: opts.gatewayEndpoint,
        ports: [],
        driverOpts: { ...(req.driverOpts ?? {}) },
        seq: ++this.#seq,
      };
      const undo = new CleanupStack();
      const trace = startTrace('attach');
      try {
        if (caps.usesIpam) {
          if (req.ipv4 && !net.v4) {
            throw new InvalidError(
              'ADDRESS_INVALID',
              `Cannot use address "${req.ipv4}": network "${net.rec.name}" has no IPv4 subnet`,
            );
          }
          if (req.ipv6 && !net.v6) {
            throw new InvalidError(
              'ADDRESS_INVALID',
              `Cannot use address "${req.ipv6}": network "${net.rec.name}" has no IPv6 subnet`,
            );
          }
          if (net.v4) {
            const want = req.ipv4 ? IP.parse(req.ipv4) : undefined;
            if (want && want.family !== 4)
              throw new InvalidError('ADDRESS_INVALID', `Invalid IPv4 address "${req.ipv4}"`);
            const ip = net.v4.allocate(want);
            undo.push('release IPv4', () => void net.v4!.release(ip));
            ep.ipv4 = ip.toString();
          }
          if (net.v6) {
            const want = req.ipv6 ? IP.parse(req.ipv6) : undefined;
            if (want && want.family !== 6)
              throw new InvalidError('ADDRESS_INVALID', `Invalid IPv6 address "${req.ipv6}"`);
            const ip = net.v6.allocate(want);
            undo.push('release IPv6', () => void net.v6!.release(ip));
            ep.ipv6 = ip.toString();
          }
        }
        ep.mac = req.mac
          ? MAC.parse(req.mac).toString()
          : ep.ipv4
            ? MAC.fromIPv4(IP.parse(ep.ipv4)).toString()
            : MAC.random(randomBytes(6)).toString();
        if (net.rec.scope === 'global') await this.#publishGlobal(ctr, net, ep, req, undo);
        const dep = this.#driverEndpoint(ctr.rec, ep);
        if (opts.ports.length > 0) {
          if (!caps.publishesPorts) {
            throw new InvalidError(
              'PORTS_UNSUPPORTED',
              `Cannot publish ports on network "${net.rec.name}": driver "${net.driver.name}" has no published ports`,
            );
          }
          if (net.rec.internal) {
            throw new InvalidError(
              'PORTS_UNSUPPORTED',
              `Cannot publish ports on internal network "${net.rec.name}"`,
            );
          }
          for (const s of opts.ports) {
            const bindings = bindPorts(parsePortSpec(s), (hostIp, proto, port) =>
              this.#portTaken(hostIp, proto, port, ep.ports),
            );
            for (const b of bindings) {
              if (this.#portTaken(b.hostIp, b.proto, b.hostPort, ep.ports)) {
                throw new ConflictError(
                  'PORT_IN_USE',
                  `Bind for ${b.hostIp || '0.0.0.0'}:${b.hostPort} failed: port is already allocated`,
                );
              }
              ep.ports.push(b);
            }
          }
        }
        trace?.mark('prepare');
        await this.#store.put(KEYS.endpoint(id), ep, { expectRevision: 0 });
        undo.push('store endpoint', () =>
          this.#store.delete(KEYS.endpoint(id)).then(() => undefined),
        );
        trace?.mark('store');
        if (caps.endpointInterface) {
          undo.push('delete endpoint objects', () => net.driver.deleteEndpoint(net.dnet, dep));
          await net.driver.ensureEndpoint(net.dnet, dep);
          trace?.mark('driver');
          await this.#applyNetworkSysctls(net, ctr.rec, ep);
          if (hasQos(ctr.rec.spec)) await this.#applyQos(ctr.rec, net, ep);
        }
        if (ep.ports.length > 0) {
          await net.driver.publishPorts(net.dnet, dep, ep.ports as DriverPort[]);
          undo.push('unpublish ports', () => net.driver.unpublishPorts(net.dnet, dep, ep.ports));
        }
        // Policies before the endpoint becomes visible: if they cannot be applied, nothing of
        // the endpoint stays behind.
        undo.push('detach from policies', async () => {
          await this.#cfg.policy?.endpointDetached(ep.id);
        });
        await this.#policyAttach(ctr, ep);
        trace?.mark('policy');
        trace?.end();
        undo.release();
      } catch (err) {
        await undo.unwindQuietly(err);
        throw err;
      }
      net.endpoints.set(id, ep);
      ctr.endpoints.set(net.rec.id, ep);
      this.#endpointsUp(ctr, ep);
      return ep;
    });
  }

  #portTaken(
    hostIp: string,
    proto: 'tcp' | 'udp',
    port: number,
    pending: readonly DriverPort[],
  ): boolean {
    const anyIp = (ip: string) => ip === '' || ip === '0.0.0.0';
    for (const p of pending) {
      if (
        p.proto === proto &&
        p.hostPort === port &&
        (anyIp(p.hostIp) || anyIp(hostIp) || p.hostIp === hostIp)
      ) {
        return true;
      }
    }
    return this.#drivers
      .all()
      .some((d) => d.capabilities.publishesPorts && d.portInUse({ hostIp, proto, hostPort: port }));
  }

  async #deleteEndpointKernel(net: LiveNetwork, ep: EndpointRecord): Promise<void> {
    const ctr = this.#containers.get(ep.containerId);
    const dep = this.#driverEndpoint(ctr?.rec ?? ({ sandboxKey: '' } as ContainerRecord), ep);
    if (ep.ports.length > 0) await net.driver.unpublishPorts(net.dnet, dep, ep.ports);
    if (net.driver.capabilities.endpointInterface) await net.driver.deleteEndpoint(net.dnet, dep);
  }

  /** Detaches a container from a network. Caller holds the container's lock. */
  async #detach(ctr: LiveContainer, net: LiveNetwork): Promise<void> {
    await this.#netLocks.run(net.rec.id, async () => {
      const ep = ctr.endpoints.get(net.rec.id);
      if (!ep) return;
      // The cluster first: while it is unreachable the change is refused and nothing moves.
      if (net.rec.scope === 'global') await this.#requireCluster(net.rec.name).withdrawEndpoint(ep);
      // Names go first: no answer may point at an interface being torn down.
      this.#cfg.observer?.endpointDown(ep.id);
      await this.#cfg.policy?.endpointDetached(ep.id);
      await this.#deleteEndpointKernel(net, ep);
      await this.#store.delete(KEYS.endpoint(ep.id));
      if (ep.ipv4) net.v4?.release(IP.parse(ep.ipv4));
      if (ep.ipv6) net.v6?.release(IP.parse(ep.ipv6));
      net.endpoints.delete(ep.id);
      ctr.endpoints.delete(net.rec.id);
    });
  }

  async connect(network: string, container: string, req: EndpointRequest = {}): Promise<void> {
    const net = this.#findNetwork(network);
    const ctr = this.#findContainer(container);
    await this.#ctrLocks.run(ctr.rec.id, async () => {
      if (ctr.removed)
        throw new NotFoundError('CONTAINER_NOT_FOUND', `No such container: ${container}`);
      const current = [...ctr.endpoints.keys()].map((id) => this.#networks.get(id)!);
      const exclusive = ctr.rec.networkMode === 'host' || ctr.rec.networkMode === 'none';
      if (exclusive || net.driver.capabilities.exclusive) {
        if (ctr.rec.networkMode === 'host' || net.rec.driver === 'host') {
          throw new ForbiddenError(
            'NET_HOST_CONNECT',
            'container cannot be disconnected from host network or connected to host network',
          );
        }
        throw new ForbiddenError(
          'NET_EXCLUSIVE',
          `container ${ctr.rec.name} is on network "none" and cannot be connected to other networks`,
        );
      }
      await this.#attach(ctr, net, req, { gatewayEndpoint: current.length === 0, ports: [] });
      await this.#rewriteFiles(ctr);
    });
  }

  async disconnect(
    network: string,
    container: string,
    opts: { force?: boolean } = {},
  ): Promise<void> {
    const net = this.#findNetwork(network);
    let ctr: LiveContainer;
    try {
      ctr = this.#findContainer(container);
    } catch (err) {
      if (opts.force) return;
      throw err;
    }
    await this.#ctrLocks.run(ctr.rec.id, async () => {
      if (net.rec.driver === 'host') {
        throw new ForbiddenError(
          'NET_HOST_CONNECT',
          'container cannot be disconnected from host network or connected to host network',
        );
      }
      if (!ctr.endpoints.has(net.rec.id)) {
        throw new ForbiddenError(
          'NOT_CONNECTED',
          `container ${ctr.rec.id} is not connected to network ${net.rec.name}`,
        );
      }
      await this.#detach(ctr, net);
      await this.#rewriteFiles(ctr);
    });
  }

  // ---------------------------------------------------------------- network policy (events.ts)

  /** Tells the policy engine about an endpoint with addresses. */
  async #policyAttach(ctr: LiveContainer, ep: EndpointRecord): Promise<void> {
    if (!this.#cfg.policy || (!ep.ipv4 && !ep.ipv6)) return;
    const net = this.#networks.get(ep.networkId)?.rec;
    await this.#cfg.policy.endpointAttached({
      endpointId: ep.id,
      containerId: ctr.rec.id,
      networkId: ep.networkId,
      ...(net && isolationOf(net.options) === 'tenant'
        ? { tenantIsolation: net.ipam.config.map((c) => c.subnet) }
        : {}),
      labels: { ...(ctr.rec.spec.labels ?? {}) },
      portNames: [...(ctr.rec.spec.portNames ?? [])],
      ...(ep.ipv4 ? { ipv4: ep.ipv4 } : {}),
      ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}),
    });
  }

  /**
   * Turns br_netfilter on or off for a network's bridge (the policy engine's seam); a network
   * that is gone, config-only or without a bridge is left alone.
   */
  async setBridgedFiltering(networkId: string, on: boolean): Promise<void> {
    const net = this.#networks.get(networkId);
    if (!net || net.removed || net.rec.configOnly) return;
    await net.driver.setBridgedFiltering?.(net.dnet, on);
  }

  /**
   * Sets and removes a container's labels (kept in its spec); network policies follow before
   * this returns.
   * @throws NotFoundError CONTAINER_NOT_FOUND
   */
  async updateContainerLabels(
    idOrName: string,
    set: Record<string, string>,
    remove: readonly string[],
  ): Promise<void> {
    const ctr = this.#findContainer(idOrName);
    await this.#ctrLocks.run(ctr.rec.id, async () => {
      if (ctr.removed)
        throw new NotFoundError('CONTAINER_NOT_FOUND', `No such container: ${idOrName}`);
      const labels = { ...(ctr.rec.spec.labels ?? {}), ...set };
      for (const k of remove) delete labels[k];
      const rec = { ...ctr.rec, spec: { ...ctr.rec.spec, labels } };
      await this.#store.put(KEYS.container(rec.id), rec);
      ctr.rec = rec;
      await this.#cfg.policy?.containerLabelsChanged(rec.id, { ...labels });
    });
  }

  // ---------------------------------------------------------------- bandwidth (qos.ts)

  /** Limits need a veth with its host end here (ingress is shaped there): refuse the rest. */
  #checkQos(spec: ContainerSpec, net: LiveNetwork): void {
    if (net.driver.capabilities.hostVeth || !hasQos(spec)) return;
    throw new InvalidError(
      'QOS_UNSUPPORTED',
      `Cannot limit bandwidth on network "${net.rec.name}": driver "${net.driver.name}" has no veth pair to shape (bridge and overlay networks have)`,
    );
  }

  /**
   * Makes an endpoint's qdiscs match the container's limits, in one round trip: a tbf on the
   * host end shapes ingress, one on the sandbox end shapes egress; a direction without a limit
   * has its tbf removed (if any).
   */
  async #applyQos(rec: ContainerRecord, net: LiveNetwork, ep: EndpointRecord): Promise<void> {
    if (!net.driver.capabilities.hostVeth || !rec.sandboxKey) return;
    const { ingress, egress } = qdiscsOf(rec.spec);
    const ns = rec.sandboxKey;
    await this.#kernel.batch([
      ingress
        ? { op: 'qdiscReplace', args: [ep.hostIfName, ingress] }
        : { op: 'qdiscDel', args: [ep.hostIfName, undefined, { ifExists: true }] },
      egress
        ? { op: 'qdiscReplace', args: [ep.ifName, egress, ns] }
        : { op: 'qdiscDel', args: [ep.ifName, ns, { ifExists: true }] },
    ]);
  }

  async updateContainer(idOrName: string, req: ContainerUpdateRequest): Promise<ContainerView> {
    const ctr = this.#findContainer(idOrName);
    if (req.ingressRate === undefined && req.egressRate === undefined) {
      throw new InvalidError(
        'UPDATE_EMPTY',
        `Cannot update container "${ctr.rec.name}": give an ingress or egress rate`,
      );
    }
    const spec = withRates(ctr.rec.spec, req);
    await this.#ctrLocks.run(ctr.rec.id, async () => {
      if (ctr.removed)
        throw new NotFoundError('CONTAINER_NOT_FOUND', `No such container: ${idOrName}`);
      const nets = [...ctr.endpoints.keys()].map((id) => this.#networks.get(id)!);
      if (hasQos(spec)) {
        if (nets.length === 0) {
          throw new InvalidError(
            'QOS_UNSUPPORTED',
            `Cannot limit bandwidth of container "${ctr.rec.name}": network mode "${ctr.rec.networkMode}" has no interface to shape`,
          );
        }
        for (const net of nets) this.#checkQos(spec, net);
      }
      const old = ctr.rec;
      const rec = { ...old, spec };
      // Intent first; on a kernel failure the old limits go back, in the kernel and the store.
      await this.#store.put(KEYS.container(rec.id), rec);
      ctr.rec = rec;
      const undo = new CleanupStack();
      undo.push('restore record', async () => {
        ctr.rec = old;
        await this.#store.put(KEYS.container(old.id), old);
      });
      try {
        for (const net of nets) {
          await this.#netLocks.run(net.rec.id, async () => {
            const ep = ctr.endpoints.get(net.rec.id);
            if (!ep || net.removed) return;
            undo.push(`restore limits on "${net.rec.name}"`, () => this.#applyQos(old, net, ep));
            await this.#applyQos(rec, net, ep);
          });
        }
        undo.release();
      } catch (err) {
        await undo.unwindQuietly(err);
        throw err;
      }
    });
    this.#cfg.log('info', `Updated bandwidth limits of container "${ctr.rec.name}"`);
    return this.#containerView(ctr);
  }

  // ---------------------------------------------------------------- cluster (cluster.ts)

  #requireCluster(name: string): ClusterScope {
    if (!this.#cfg.cluster) {
      throw new ForbiddenError(
        'CLUSTER_REQUIRED',
        `Cannot use global-scope network "${name}": cnmd runs without a cluster store (start it with --cluster-store and --advertise-addr)`,
      );
    }
    return this.#cfg.cluster;
  }

  /**
   * Claims the endpoint's addresses cluster-wide and publishes it. A dynamic IPv4 address held
   * by another host stays reserved here too, and the next one is tried.
   */
  async #publishGlobal(
    ctr: LiveContainer,
    net: LiveNetwork,
    ep: EndpointRecord,
    req: EndpointRequest,
    undo: CleanupStack,
  ): Promise<void> {
    const cluster = this.#requireCluster(net.rec.name);
    for (let attempt = 0; ; attempt++) {
      try {
        await cluster.publishEndpoint(ep, ctr.rec.name);
        undo.push('withdraw endpoint from the cluster', () => cluster.withdrawEndpoint(ep));
        return;
      } catch (err) {
        const taken = err instanceof ConflictError && err.code === 'ADDRESS_IN_USE';
        if (!taken || attempt >= 256) throw err;
        // Each host allocates from its own view; another host may hold the address this one
        // picked. The cluster names the taken address: pick the next one of that family.
        const v6Taken = ep.ipv6 !== undefined && err.message.includes(`"${ep.ipv6}"`);
        if (v6Taken) {
          if (req.ipv6 || !net.v6) throw err;
          const ip = net.v6.allocate();
          undo.push('release IPv6', () => void net.v6!.release(ip));
          ep.ipv6 = ip.toString();
          continue;
        }
        if (req.ipv4 || !net.v4) throw err;
        const ip = net.v4.allocate();
        undo.push('release IPv4', () => void net.v4!.release(ip));
        ep.ipv4 = ip.toString();
        if (!req.mac) ep.mac = MAC.fromIPv4(ip).toString();
      }
    }
  }

  /** At start: publishes restored endpoints of global networks, follows other hosts' networks. */
  async #clusterUp(): Promise<void> {
    const cluster = this.#cfg.cluster;
    if (!cluster) return;
    cluster.setObserver(this.#cfg.observer);
    for (const net of this.#networks.values()) {
      if (net.rec.scope !== 'global') continue;
      for (const ep of net.endpoints.values()) {
        const name = this.#containers.get(ep.containerId)?.rec.name ?? '';
        await cluster.publishEndpoint(ep, name).catch((err: unknown) => {
          this.#cfg.log('error', `Cannot publish endpoint of "${name}": ${describeError(err)}`);
        });
      }
    }
    cluster.watchNetworks((c) => void this.#onClusterNetwork(c));
  }

  /** A global network was created or removed (on any host). */
  async #onClusterNetwork(c: {
    type: 'put' | 'delete';
    id: string;
    rec?: NetworkRecord;
  }): Promise<void> {
    try {
      if (c.type === 'put' && c.rec) {
        const rec = c.rec;
        await this.#createNetLock.run(async () => {
          if (this.#closed || this.#networks.has(rec.id)) return;
          await this.#loadNetwork(rec);
          await this.#networkUp(this.#networks.get(rec.id)!);
          this.#cfg.log('info', `Network "${rec.name}" appeared in the cluster`);
        });
        return;
      }
      const net = this.#networks.get(c.id);
      if (c.type !== 'delete' || !net) return;
      await this.#netLocks.run(c.id, async () => {
        if (net.removed) return;
        if (net.endpoints.size > 0) {
          this.#cfg.log('warn', `Network "${net.rec.name}" left the cluster with local endpoints`);
          return;
        }
        await net.driver.deleteNetwork(net.dnet);
        net.removed = true;
        this.#networks.delete(c.id);
        await this.#cfg.observer?.networkDown(c.id);
        this.#cfg.log('info', `Network "${net.rec.name}" was removed from the cluster`);
      });
    } catch (err) {
      this.#cfg.log('error', `Cannot follow cluster network "${c.id}": ${describeError(err)}`);
    }
  }

  // ---------------------------------------------------------------- name service (events.ts)

  /** The network as the embedded DNS sees it, when it serves it: user-defined bridges, as Docker. */
  #dnsNetwork(net: LiveNetwork): ObservedNetwork | undefined {
    const r = net.rec;
    if (!this.#cfg.observer || r.predefined || r.configOnly) return;
    if (r.driver !== 'bridge' && r.driver !== 'overlay') return;
    const fams = [net.dnet.ipv4, net.dnet.ipv6].filter((f) => f?.gateway !== undefined);
    if (fams.length === 0) return undefined;
    return {
      id: r.id,
      name: r.name,
      internal: r.internal,
      gateways: fams.map((f) => f!.gateway!.toString()),
      subnets: fams.map((f) => f!.subnet.toString()),
    };
  }

  async #networkUp(net: LiveNetwork): Promise<void> {
    const n = this.#dnsNetwork(net);
    if (!n) return;
    await this.#cfg
      .observer!.networkUp(n)
      .catch((err) =>
        this.#cfg.log('error', `Cannot serve DNS on network "${n.name}": ${describeError(err)}`),
      );
  }

  /** Makes a running container's names live: all its endpoints, or just `only`. */
  #endpointsUp(ctr: LiveContainer, only?: EndpointRecord): void {
    const obs = this.#cfg.observer;
    if (!obs || ctr.removed || ctr.rec.state.status !== 'running') return;
    for (const ep of only ? [only] : ctr.endpoints.values()) {
      const net = this.#networks.get(ep.networkId);
      if (!net || !this.#dnsNetwork(net)) continue;
      obs.endpointUp({
        endpointId: ep.id,
        networkId: ep.networkId,
        containerId: ctr.rec.id,
        containerName: ctr.rec.name,
        aliases: [...ep.aliases],
        ...(ep.ipv4 ? { ipv4: ep.ipv4 } : {}),
        ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}),
        dns: [...(ctr.rec.spec.dns ?? [])],
      });
    }
  }

  /**
   * Writes `/etc/resolv.conf`: the embedded DNS (gateway of the first served network) when the
   * container is on one, else the `--dns` or host servers. Written in place, so a running
   * container sees a connect or disconnect change it.
   */
  #writeResolvConf(ctr: LiveContainer): void {
    const r = ctr.rec;
    if (r.networkMode === 'host') return;
    let nameserver: string | undefined;
    for (const ep of [...ctr.endpoints.values()].sort((a, b) => a.seq - b.seq)) {
      const net = this.#networks.get(ep.networkId);
      const served = net && this.#dnsNetwork(net);
      if (served) {
        nameserver = served.gateways[0];
        break;
      }
    }
    writeFileSync(
      join(this.#containerDir(r.id), 'resolv.conf'),
      resolvConf({
        hostResolvConf: this.#cfg.hostResolvConf(),
        dns: r.spec.dns?.length ? r.spec.dns : this.#cfg.dns,
        dnsSearch: r.spec.dnsSearch ?? [],
        dnsOptions: r.spec.dnsOptions ?? [],
        ...(nameserver ? { nameserver } : {}),
      }),
    );
  }

  // ---------------------------------------------------------------- containers

  #containerDir(id: string): string {
    return join(this.#cfg.dataRoot, 'containers', id);
  }

  #containerView(c: LiveContainer): ContainerView {
    const r = c.rec;
    const dir = this.#containerDir(r.id);
    const networks: ContainerView['networks'] = {};
    const ports: ContainerView['ports'] = [];
    for (const ep of c.endpoints.values()) {
      const net = this.#networks.get(ep.networkId);
      if (!net) continue;
      networks[net.rec.name] = {
        networkId: net.rec.id,
        endpointId: ep.id,
        ipAddress: ep.ipv4 ?? '',
        ipPrefixLen: ep.ipv4 ? net.dnet.ipv4!.subnet.bits : 0,
        gateway: ep.ipv4 ? (net.dnet.ipv4?.gateway?.toString() ?? '') : '',
        ipv6Address: ep.ipv6 ?? '',
        ipv6PrefixLen: ep.ipv6 ? net.dnet.ipv6!.subnet.bits : 0,
        ipv6Gateway: ep.ipv6 ? (net.dnet.ipv6?.gateway?.toString() ?? '') : '',
        macAddress: ep.mac,
        aliases: [...ep.aliases],
        dnsNames: net.rec.name === 'bridge' ? [] : [r.name, r.id.slice(0, 12), ...ep.aliases],
      };
      ports.push(...ep.ports);
    }
    if (r.networkMode === 'host' || r.networkMode === 'none') {
      const net = [...this.#networks.values()].find((n) => n.rec.name === r.networkMode);
      if (net) {
        networks[r.networkMode] = {
          networkId: net.rec.id,
          endpointId: '',
          ipAddress: '',
          ipPrefixLen: 0,
          gateway: '',
          ipv6Address: '',
          ipv6PrefixLen: 0,
          ipv6Gateway: '',
          macAddress: '',
          aliases: [],
          dnsNames: [],
        };
      }
    }
    return {
      id: r.id,
      name: r.name,
      created: r.created,
      spec: clone(r.spec),
      state: {
        status: c.removed ? 'removing' : r.state.status,
        running: r.state.status === 'running',
        pid: r.state.status === 'running' ? r.state.pid : 0,
        exitCode: r.state.exitCode,
        startedAt: r.state.startedAt,
        finishedAt: r.state.finishedAt,
        error: r.state.error,
      },
      networkMode: r.networkMode,
      sandboxKey: r.sandboxKey,
      hostname: r.hostname,
      networks,
      ports,
      logPath: join(dir, 'container.log'),
      resolvConfPath: r.networkMode === 'host' ? '/etc/resolv.conf' : join(dir, 'resolv.conf'),
      hostsPath: r.networkMode === 'host' ? '/etc/hosts' : join(dir, 'hosts'),
      hostnamePath: join(dir, 'hostname'),
    };
  }

  listContainers(opts: { all?: boolean } = {}): ContainerView[] {
    return [...this.#containers.values()]
      .filter((c) => opts.all || c.rec.state.status === 'running')
      .sort((a, b) => b.rec.created.localeCompare(a.rec.created))
      .map((c) => this.#containerView(c));
  }

  inspectContainer(idOrName: string): ContainerView {
    return this.#containerView(this.#findContainer(idOrName));
  }

  #validateSpec(spec: ContainerSpec): void {
    if (
      !Array.isArray(spec.cmd) ||
      spec.cmd.length === 0 ||
      spec.cmd.some((a) => typeof a !== 'string')
    ) {
      throw new InvalidError('CMD_INVALID', 'No command specified');
    }
    if (
      spec.name !== undefined &&
      (!NAME_RE.test(spec.name.replace(/^\//, '')) || spec.name.length > 128)
    ) {
      throw new InvalidError(
        'CONTAINER_NAME_INVALID',
        `Invalid container name "${spec.name}", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`,
      );
    }
    if (spec.hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(spec.hostname)) {
      throw new InvalidError('HOSTNAME_INVALID', `Invalid hostname "${spec.hostname}"`);
    }
    for (const d of spec.dns ?? []) {
      if (!IP.tryParse(d))
        throw new InvalidError('DNS_INVALID', `Invalid DNS server address "${d}"`);
    }
    for (const s of [...(spec.dnsSearch ?? []), ...(spec.dnsOptions ?? [])]) {
      if (!/^[\x21-\x7e]+$/.test(s))
        throw new InvalidError('DNS_INVALID', `Invalid DNS search domain or option "${s}"`);
    }
    for (const [k, v] of Object.entries(spec.sysctls ?? {})) {
      if (!/^net\.[a-z0-9_.-]+$/i.test(k) || k.includes('..')) {
        throw new InvalidError(
          'SYSCTL_INVALID',
          `Invalid sysctl "${k}": only per-namespace "net.*" keys are allowed`,
        );
      }
      if (!/^[\x20-\x7e]*$/.test(v))
        throw new InvalidError('SYSCTL_INVALID', `Invalid value for sysctl "${k}"`);
    }
    for (const e of spec.env ?? []) {
      if (typeof e !== 'string' || !/^[^=\0]+=/.test(e))
        throw new InvalidError(
          'ENV_INVALID',
          `Invalid environment variable "${e}": expected KEY=value`,
        );
    }
    for (const p of spec.ports ?? []) parsePortSpec(p);
    for (const p of spec.portNames ?? []) parseNamedPort(p);
    qdiscsOf(spec);
  }

  async createContainer(spec: ContainerSpec): Promise<ContainerView> {
    this.#validateSpec(spec);
    const requested =
      spec.networks && spec.networks.length > 0 ? spec.networks : [{ name: 'bridge' }];
    const nets = requested.map((r) => ({ req: r, net: this.#findNetwork(r.name) }));
    const seen = new Set<string>();
    for (const { net } of nets) {
      if (seen.has(net.rec.id)) {
        throw new InvalidError(
          'NET_DUPLICATE',
          `Container cannot join network "${net.rec.name}" twice`,
        );
      }
      seen.add(net.rec.id);
      if (net.driver.capabilities.exclusive && nets.length > 1) {
        throw new InvalidError(
          'NET_EXCLUSIVE',
          `Container cannot be connected to network "${net.rec.name}" and to other networks`,
        );
      }
      if (net.rec.configOnly) {
        throw new InvalidError(
          'NET_CONFIG_ONLY',
          `Container cannot be connected to config-only network "${net.rec.name}"`,
        );
      }
      this.#checkQos(spec, net);
    }
    const primary = nets[0]!.net;
    const mode =
      primary.rec.driver === 'host'
        ? 'host'
        : primary.rec.driver === 'none'
          ? 'none'
          : primary.rec.name;
    if ((spec.ports?.length ?? 0) > 0 && !primary.driver.capabilities.publishesPorts) {
      throw new InvalidError(
        'PORTS_UNSUPPORTED',
        `Cannot publish ports with network mode "${mode}"`,
      );
    }
    if (mode === 'host' && spec.hostname !== undefined) {
      throw new InvalidError(
        'HOSTNAME_INVALID',
        'Conflicting options: hostname and the network mode host',
      );
    }

    return this.#createCtrLock.run(async () => {
      const id = newId();
      const name = spec.name ? spec.name.replace(/^\//, '') : this.#generateName();
      for (const c of this.#containers.values()) {
        if (c.rec.name === name) {
          throw new ConflictError(
            'CONTAINER_NAME_IN_USE',
            `Conflict. The container name "/${name}" is already in use by container "${c.rec.id}". You have to remove (or rename) that container to be able to reuse that name.`,
          );
        }
      }
      const rec: ContainerRecord = {
        id,
        name,
        created: now(),
        spec: { ...withRates(clone(spec), spec), name },
        networkMode: mode,
        sandboxKey: mode === 'host' ? '' : join(this.#cfg.execRoot, 'netns', id.slice(0, 12)),
        hostname: mode === 'host' ? '' : (spec.hostname ?? id.slice(0, 12)),
        state: {
          status: 'created',
          pid: 0,
          startTime: '',
          exitCode: null,
          startedAt: '0001-01-01T00:00:00Z',
          finishedAt: '0001-01-01T00:00:00Z',
          error: '',
        },
      };
      const ctr: LiveContainer = { rec, endpoints: new Map(), waiters: [], removed: false };
      // Held from the moment the container can be found by name: a remove or connect that
      // arrives meanwhile waits for the whole creation (#attach expects this lock held).
      await this.#ctrLocks.run(id, async () => {
        const undo = new CleanupStack();
        const trace = startTrace('create');
        let sandbox: Promise<void> | undefined;
        try {
          if (rec.sandboxKey) {
            // First, and not awaited before the endpoints: the kernel thread makes the sandbox
            // while this thread writes the records, and runs calls in order, so the endpoints'
            // batches queue behind it while this thread allocates and records them (a round
            // trip less per create). Handled at once: a failure surfaces below.
            const add = this.#kernel.netnsAdd(rec.sandboxKey);
            add.catch(() => undefined);
            sandbox = add;
            undo.push('sandbox', () => add.then(() => this.#kernel.netnsDel(rec.sandboxKey)));
          }
          await this.#store.put(KEYS.container(id), rec, { expectRevision: 0 });
          undo.push('store container', () =>
            this.#store.delete(KEYS.container(id)).then(() => undefined),
          );
          this.#containers.set(id, ctr);
          undo.push('forget container', () => void this.#containers.delete(id));
          trace?.mark('store');
          if (rec.sandboxKey) await this.#applySysctls(rec);
          if (mode !== 'host' && mode !== 'none') {
            for (const [i, { req, net }] of nets.entries()) {
              const { name: _n, ...epReq } = req;
              await this.#attach(ctr, net, epReq, {
                gatewayEndpoint: i === 0,
                ports: i === 0 ? (spec.ports ?? []) : [],
              });
              undo.push(`detach ${net.rec.name}`, () => this.#detach(ctr, net));
            }
          }
          await sandbox;
          trace?.mark('netns+attach');
          // The container's directory with its hostname, hosts, resolv.conf and log is made
          // when it starts (as dockerd does), from the endpoints it has then: 0.3–0.8 ms less
          // per create.
          trace?.end({ n: this.#containers.size });
          undo.release();
        } catch (err) {
          // Without its sandbox every later kernel step fails as well: report the cause.
          const cause = sandbox
            ? await sandbox.then(
                () => err,
                (e: unknown) => e,
              )
            : err;
          await undo.unwindQuietly(cause);
          throw cause;
        }
      });
      this.#cfg.log('info', `Created container "${name}" (${id.slice(0, 12)})`);
      return this.#containerView(ctr);
    });
  }

  #generateName(): string {
    const adjectives = [
      'brave',
      'calm',
      'eager',
      'fancy',
      'gentle',
      'happy',
      'jolly',
      'keen',
      'lucid',
      'merry',
      'nifty',
      'proud',
      'quick',
      'sharp',
      'tender',
      'vivid',
      'witty',
      'zealous',
    ];
    const nouns = [
      'bohr',
      'curie',
      'dijkstra',
      'euler',
      'fermi',
      'gauss',
      'hopper',
      'knuth',
      'lovelace',
      'noether',
      'pascal',
      'ritchie',
      'shannon',
      'turing',
      'wozniak',
    ];
    for (;;) {
      const b = randomBytes(2);
      const name = `${adjectives[b[0]! % adjectives.length]}_${nouns[b[1]! % nouns.length]}`;
      const taken = [...this.#containers.values()].some((c) => c.rec.name === name);
      if (!taken) return name;
      const withNum = `${name}${randomBytes(1)[0]! % 10}`;
      if (![...this.#containers.values()].some((c) => c.rec.name === withNum)) return withNum;
    }
  }

  /**
   * Sets the network's sysctl profile (`-o io.cnm.sysctl.*`) in the container's namespace; keys
   * the container sets itself (`--sysctl`) win.
   */
  async #applyNetworkSysctls(
    net: LiveNetwork,
    rec: ContainerRecord,
    ep: EndpointRecord,
  ): Promise<void> {
    if (!net.driver.capabilities.ownNamespace || !rec.sandboxKey) return;
    const own = rec.spec.sysctls ?? {};
    const profile = splitSysctlProfile(net.rec.options).sysctls;
    for (const [k, v] of sysctlsForEndpoint(profile, ep.ifName)) {
      if (k in own) continue;
      try {
        await this.#kernel.sysctlSet(k, v, rec.sandboxKey);
      } catch (err) {
        throw new InvalidError(
          'SYSCTL_INVALID',
          `Cannot set sysctl "${k}" to "${v}" from network "${net.rec.name}" in the container's namespace`,
          { cause: err },
        );
      }
    }
  }

  /** Kernel features each network needs beyond cnmd's own, for `cnm doctor`. */
  kernelNeeds(): { network: string; driver: string; features: readonly KernelFeature[] }[] {
    const out: { network: string; driver: string; features: readonly KernelFeature[] }[] = [];
    for (const n of this.#networks.values()) {
      if (n.rec.configOnly || !n.driver.kernelFeatures) continue;
      out.push({
        network: n.rec.name,
        driver: n.rec.driver,
        features: n.driver.kernelFeatures(n.dnet),
      });
    }
    return out;
  }

  async #applySysctls(rec: ContainerRecord): Promise<void> {
    for (const [k, v] of Object.entries(rec.spec.sysctls ?? {})) {
      try {
        await this.#kernel.sysctlSet(k, v, rec.sandboxKey);
      } catch (err) {
        throw new InvalidError(
          'SYSCTL_INVALID',
          `Cannot set sysctl "${k}" to "${v}" in the container's namespace`,
          { cause: err },
        );
      }
    }
  }

  /**
   * Makes the container's directory, writes its hostname, hosts and resolv.conf (bind-mounted
   * over /etc) and creates its log, at every start: a container that never ran has none of
   * them. Small files, written synchronously: through the thread pool each write costs more
   * than the write itself.
   */
  async #writeFiles(ctr: LiveContainer): Promise<void> {
    const r = ctr.rec;
    const dir = this.#containerDir(r.id);
    mkdirSync(dir, { recursive: true });
    if (r.networkMode !== 'host') {
      writeFileSync(join(dir, 'hostname'), hostnameFile(r.hostname));
      this.#writeResolvConf(ctr);
      await this.#writeHosts(ctr);
    }
    writeFileSync(join(dir, 'container.log'), '', { flag: 'a' });
  }

  /**
   * Rewrites hosts and resolv.conf after the container's endpoints changed, in place (a running
   * container sees them change); nothing for a container that never started (no files yet).
   */
  async #rewriteFiles(ctr: LiveContainer): Promise<void> {
    if (!existsSync(this.#containerDir(ctr.rec.id))) return;
    await this.#writeHosts(ctr);
    this.#writeResolvConf(ctr);
  }

  async #writeHosts(ctr: LiveContainer): Promise<void> {
    if (ctr.rec.networkMode === 'host') return;
    const addrs: string[] = [];
    for (const ep of [...ctr.endpoints.values()].sort((a, b) => a.seq - b.seq)) {
      if (ep.ipv4) addrs.push(ep.ipv4);
      if (ep.ipv6) addrs.push(ep.ipv6);
    }
    writeFileSync(
      join(this.#containerDir(ctr.rec.id), 'hosts'),
      hostsFile(ctr.rec.hostname, addrs),
    );
  }

  async startContainer(idOrName: string): Promise<void> {
    const ctr = this.#findContainer(idOrName);
    await this.#ctrLocks.run(ctr.rec.id, async () => {
      if (ctr.removed)
        throw new NotFoundError('CONTAINER_NOT_FOUND', `No such container: ${idOrName}`);
      if (ctr.rec.state.status === 'running') return;
      const r = ctr.rec;
      const dir = this.#containerDir(r.id);
      const exitPath = join(dir, 'exit');
      await rm(exitPath, { force: true });
      await this.#writeFiles(ctr);
      const binds =
        r.networkMode === 'host'
          ? []
          : [
              { source: join(dir, 'resolv.conf'), target: '/etc/resolv.conf' },
              { source: join(dir, 'hosts'), target: '/etc/hosts' },
              { source: join(dir, 'hostname'), target: '/etc/hostname' },
            ];
      let started;
      try {
        started = await startContainerProcess({
          containerId: r.id,
          execRoot: this.#cfg.execRoot,
          cmd: r.spec.cmd,
          env: r.spec.env ?? [],
          ...(r.spec.workingDir ? { cwd: r.spec.workingDir } : {}),
          ...(r.sandboxKey ? { netns: r.sandboxKey } : {}),
          ...(r.networkMode !== 'host' ? { hostname: r.hostname } : {}),
          binds,
          logPath: join(dir, 'container.log'),
          exitPath,
        });
      } catch (err) {
        r.state = {
          ...r.state,
          status: 'exited',
          exitCode: 127,
          error: describeError(err),
          finishedAt: now(),
        };
        await this.#store.put(KEYS.container(r.id), r);
        throw new InvalidError(
          'START_FAILED',
          `Cannot start container "${r.name}": ${describeError(err)}`,
          { cause: err },
        );
      }
      r.state = {
        status: 'running',
        pid: started.pid,
        startTime: started.startTime,
        exitCode: null,
        startedAt: now(),
        finishedAt: '0001-01-01T00:00:00Z',
        error: '',
      };
      this.#endpointsUp(ctr);
      await this.#store.put(KEYS.container(r.id), r);
      void started.exited.then(() => this.#onProcessGone(ctr, started.pid));
    });
  }

  async #onProcessGone(ctr: LiveContainer, pid: number): Promise<void> {
    if (ctr.removed || ctr.rec.state.status !== 'running' || ctr.rec.state.pid !== pid) return;
    await this.#ctrLocks.run(ctr.rec.id, async () => {
      if (ctr.rec.state.status !== 'running' || ctr.rec.state.pid !== pid) return;
      await this.#markExited(ctr);
    });
    if (ctr.rec.spec.autoRemove && !ctr.removed && !this.#closed) {
      await this.removeContainer(ctr.rec.id, { force: true }).catch((err) =>
        this.#cfg.log(
          'warn',
          `Cannot auto-remove container "${ctr.rec.name}": ${describeError(err)}`,
        ),
      );
    }
  }

  async #markExited(ctr: LiveContainer): Promise<void> {
    const r = ctr.rec;
    for (const ep of ctr.endpoints.values()) this.#cfg.observer?.endpointDown(ep.id);
    // The shim writes the exit file right after reaping; give it a moment when racing it.
    let code = readExitFile(join(this.#containerDir(r.id), 'exit'));
    for (let i = 0; code === undefined && i < 20; i++) {
      await new Promise((res) => setTimeout(res, 25));
      code = readExitFile(join(this.#containerDir(r.id), 'exit'));
    }
    r.state = {
      ...r.state,
      status: 'exited',
      exitCode: code ?? 255,
      finishedAt: now(),
      error: code === undefined ? 'exit status was lost' : '',
    };
    await this.#store.put(KEYS.container(r.id), r);
    const waiters = ctr.waiters.splice(0);
    for (const w of waiters) w(r.state.exitCode ?? 255);
    this.#cfg.log('info', `Container "${r.name}" exited with ${r.state.exitCode}`);
  }

  async #pollProcesses(): Promise<void> {
    for (const ctr of this.#containers.values()) {
      const s = ctr.rec.state;
      if (s.status === 'running' && !processAlive(s.pid, s.startTime)) {
        await this.#onProcessGone(ctr, s.pid).catch(() => undefined);
      }
    }
  }

  async stopContainer(idOrName: string, opts: { timeoutSec?: number } = {}): Promise<void> {
    const ctr = this.#findContainer(idOrName);
    if (ctr.rec.state.status !== 'running') return;
    const { pid, startTime } = ctr.rec.state;
    const exited = this.waitContainer(ctr.rec.id);
    if (processAlive(pid, startTime)) signalQuietly(pid, 'SIGTERM');
    const timeout = (opts.timeoutSec ?? 10) * 1000;
    const timer = new Promise<'timeout'>((res) =>
      setTimeout(() => res('timeout'), timeout).unref(),
    );
    if ((await Promise.race([exited, timer])) === 'timeout') {
      if (processAlive(pid, startTime)) signalQuietly(pid, 'SIGKILL');
      await exited;
    }
  }

  async removeContainer(idOrName: string, opts: { force?: boolean } = {}): Promise<void> {
    const ctr = this.#findContainer(idOrName);
    if (ctr.rec.state.status === 'running') {
      if (!opts.force) {
        throw new ConflictError(
          'CONTAINER_RUNNING',
          `You cannot remove a running container ${ctr.rec.id}. Stop the container before attempting removal or force remove`,
        );
      }
      await this.stopContainer(ctr.rec.id, { timeoutSec: 0 });
    }
    await this.#ctrLocks.run(ctr.rec.id, async () => {
      if (ctr.removed) return;
      if (ctr.rec.state.status === 'running') {
        throw new ConflictError(
          'CONTAINER_RUNNING',
          `Cannot remove container ${ctr.rec.name}: it was started again`,
        );
      }
      ctr.removed = true;
      const errors: unknown[] = [];
      for (const netId of [...ctr.endpoints.keys()]) {
        const net = this.#networks.get(netId);
        if (net) await this.#detach(ctr, net).catch((err) => errors.push(err));
      }
      // The sandbox stays while an endpoint does: the record still names both, and a retry (or
      // the restore after a restart) finds the endpoint's interface where the record says.
      if (ctr.rec.sandboxKey && errors.length === 0)
        await this.#kernel.netnsDel(ctr.rec.sandboxKey).catch((err) => errors.push(err));
      if (errors.length > 0) {
        ctr.removed = false;
        throw new AggregateError(errors, `Cannot remove container "${ctr.rec.name}" completely`);
      }
      await this.#store.delete(KEYS.container(ctr.rec.id));
      this.#containers.delete(ctr.rec.id);
      await rm(this.#containerDir(ctr.rec.id), { recursive: true, force: true });
      this.#cfg.log('info', `Removed container "${ctr.rec.name}"`);
    });
  }

  waitContainer(idOrName: string, signal?: AbortSignal): Promise<{ exitCode: number }> {
    const ctr = this.#findContainer(idOrName);
    // A created container is waited for until its next exit (`run --rm` opens the wait before
    // it starts the container); an exited one answers at once.
    if (ctr.rec.state.status === 'exited' || ctr.rec.state.status === 'dead') {
      return Promise.resolve({ exitCode: ctr.rec.state.exitCode ?? 0 });
    }
    return new Promise((resolve, reject) => {
      const waiter = (code: number) => resolve({ exitCode: code });
      ctr.waiters.push(waiter);
      signal?.addEventListener('abort', () => {
        const i = ctr.waiters.indexOf(waiter);
        if (i >= 0) ctr.waiters.splice(i, 1);
        reject(signal.reason);
      });
    });
  }

  async execContainer(
    idOrName: string,
    cmd: string[],
    opts: { env?: string[] } = {},
  ): Promise<ExecHandle> {
    const ctr = this.#findContainer(idOrName);
    if (ctr.rec.state.status !== 'running') {
      throw new ConflictError('CONTAINER_NOT_RUNNING', `Container ${ctr.rec.id} is not running`);
    }
    if (!Array.isArray(cmd) || cmd.length === 0)
      throw new InvalidError('CMD_INVALID', 'No exec command specified');
    const child = execInContainer({
      ...(ctr.rec.networkMode === 'host' ? {} : { pid: ctr.rec.state.pid }),
      cmd,
      env: [...(ctr.rec.spec.env ?? []), ...(opts.env ?? [])],
    });
    const exit = new Promise<number>((resolve) => {
      child.once('error', () => resolve(126));
      child.once('close', (code, sig) => resolve(code ?? (sig ? 128 + (osSignal(sig) ?? 0) : 255)));
    });
    return {
      stdout: child.stdout!,
      stderr: child.stderr!,
      exit,
      kill: (s) => void child.kill(s ?? 'SIGTERM'),
    };
  }
}

function osSignal(sig: NodeJS.Signals): number | undefined {
  const table: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGKILL: 9,
    SIGTERM: 15,
  };
  return table[sig];
}

/**
 * Sends a signal to a process that was alive a moment ago. ESRCH (it exited in between) is the
 * outcome the caller wanted anyway; anything else is a real failure.
 */
function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
