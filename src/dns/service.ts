/**
 * The embedded DNS service: the name table, the listeners and the forwarder behind one object
 * that the controller feeds through its observer seam (`src/cnm/events.ts`). Table changes are
 * synchronous; listeners come and go with networks.
 */
import { Forwarder, type ForwarderOptions } from './forwarder.js';
import { LATENCY_BUCKETS_MS, newMetrics, type DnsMetrics } from './metrics.js';
import { NameTable, type NameEndpoint } from './names.js';
import { ResolvConfWatcher } from './resolv-conf.js';
import { DnsServer, type UdpOpener } from './server.js';

/** A network the service is told about. */
export interface DnsNetwork {
  id: string;
  name: string;
  internal: boolean;
  /** Gateway addresses: where the service listens for this network. */
  gateways: readonly string[];
  /** Subnets: sources the service answers on this network. */
  subnets: readonly string[];
}

/** Service settings. */
export interface DnsServiceOptions {
  /** The daemon's `--dns` servers: the upstreams when a container has none of its own. */
  servers: readonly string[];
  /** resolv.conf of the daemon's namespace: the upstreams when `servers` is empty. */
  resolvConfPath: string;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
  /** Listening port; 53 except in tests. */
  port?: number;
  forwarder?: ForwarderOptions;
  /** Native UDP listeners (the daemon passes the addon's); without it, `node:dgram`. */
  udp?: UdpOpener;
}

/** What {@link DnsService.stats} reports. */
export interface DnsStats {
  metrics: DnsMetrics;
  /** Upper bounds (ms) of the forward-latency buckets; the last bucket counts everything above. */
  latencyBucketsMs: readonly number[];
  upstreams: Record<string, { down: boolean; srttMs: number }>;
  cacheEntries: number;
  endpoints: number;
}

/** The service. Create it before the controller's `init()`, close it after `close()`. */
export class DnsService {
  #table = new NameTable();
  #metrics = newMetrics();
  #forwarder: Forwarder;
  #server: DnsServer;

  constructor(opts: DnsServiceOptions) {
    const watcher = new ResolvConfWatcher(opts.resolvConfPath);
    const servers = [...opts.servers];
    this.#forwarder = new Forwarder(this.#metrics, opts.forwarder);
    this.#server = new DnsServer({
      table: this.#table,
      forwarder: this.#forwarder,
      metrics: this.#metrics,
      defaultUpstreams: () => (servers.length > 0 ? servers : watcher.servers()),
      log: opts.log,
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.udp !== undefined ? { udp: opts.udp } : {}),
    });
  }

  /** Serves a network: its names become resolvable and its gateways listen. */
  async networkUp(n: DnsNetwork): Promise<void> {
    this.#table.addNetwork({ id: n.id, name: n.name, internal: n.internal });
    await this.#server.listen({ networkId: n.id, addresses: n.gateways, subnets: n.subnets });
  }

  /** Stops serving a network. */
  async networkDown(networkId: string): Promise<void> {
    await this.#server.unlisten(networkId);
    this.#table.removeNetwork(networkId);
  }

  /** Registers an endpoint's names; they resolve from the next query on. */
  endpointUp(e: NameEndpoint): void {
    this.#table.addEndpoint(e);
  }

  /** Removes an endpoint's names at once. */
  endpointDown(endpointId: string): void {
    this.#table.removeEndpoint(endpointId);
  }

  /** Counters and upstream state, as plain data. */
  stats(): DnsStats {
    this.#server.syncMetrics();
    return {
      metrics: this.#metrics,
      latencyBucketsMs: LATENCY_BUCKETS_MS,
      upstreams: this.#forwarder.health.snapshot(),
      cacheEntries: this.#forwarder.cacheSize,
      endpoints: this.#table.endpointCount,
    };
  }

  /** Closes every listener and stops upstream probing. */
  async close(): Promise<void> {
    await this.#server.close();
    this.#forwarder.close();
  }
}
