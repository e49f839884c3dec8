/**
 * The driver contract. A driver realises networks and endpoints in the kernel; the controller
 * owns validation order, IPAM, records and rollback. Options are parsed into a typed value at
 * the edge (`parseOptions`) so that nothing later handles untyped option maps.
 */
import type { IP, MAC, Prefix } from '../netaddr/index.js';
import type { KernelFeature } from '../kernel/capabilities.js';
import type { NsRef } from '../kernel/types.js';

/** What a driver can do, as data. */
export interface DriverCapabilities {
  /** `local`: one host; `global`: shared through a cluster store. */
  scope: 'local' | 'global';
  /** The network has subnets and endpoints get addresses from IPAM. */
  usesIpam: boolean;
  /** Endpoints get their own namespace (false for `host`: the container shares the host's). */
  ownNamespace: boolean;
  /** Endpoints get an interface (false for `none` and `host`). */
  endpointInterface: boolean;
  /** Published ports are possible on this network. */
  publishesPorts: boolean;
  /** At most one network of this driver may exist (`host`, `none`). */
  singleton: boolean;
  /** The container joining this network must join no other (`host`, `none`). */
  exclusive: boolean;
  /**
   * An endpoint is a veth pair with its host end (`DriverEndpoint.hostIfName`) in the daemon's
   * namespace, where traffic toward the container can be shaped (bandwidth limits).
   */
  hostVeth: boolean;
}

/** An address family's settings on a network. */
export interface NetworkFamily {
  subnet: Prefix;
  gateway?: IP;
}

/** A network as a driver sees it. */
export interface DriverNetwork<O = unknown> {
  id: string;
  name: string;
  options: O;
  internal: boolean;
  ipv4?: NetworkFamily;
  ipv6?: NetworkFamily;
}

/** An endpoint as a driver sees it. */
export interface DriverEndpoint {
  id: string;
  /** Sandbox network namespace. */
  ns: NsRef;
  /** Name inside the sandbox: `eth0`, `eth1`, ... */
  ifName: string;
  /** Name of the host-side interface (veth), already chosen by the controller. */
  hostIfName: string;
  mac: MAC;
  ipv4?: { address: IP; prefixLen: number };
  ipv6?: { address: IP; prefixLen: number };
  /** This endpoint carries the sandbox's default route. */
  gatewayEndpoint: boolean;
}

/** A published port resolved to one endpoint address. */
export interface DriverPort {
  /** `''` for every host address. */
  hostIp: string;
  hostPort: number;
  proto: 'tcp' | 'udp';
  containerPort: number;
}

/** One driver. All kernel work must be idempotent where the method says `ensure`. */
export interface Driver<O = unknown> {
  readonly name: string;
  readonly capabilities: DriverCapabilities;
  /** Sets up the driver's host-wide state (for bridge: the nftables tables) at daemon start. */
  init(): Promise<void>;
  /**
   * Turns Docker-style string options into this driver's typed options.
   * @throws InvalidError naming the bad option
   */
  parseOptions(raw: Record<string, string>, ctx: { name: string; predefined: boolean }): O;
  /** Checks a network about to be created against the others (for example a bridge name in use). */
  validateNetwork(net: DriverNetwork<O>, others: readonly DriverNetwork[]): void;
  /** Creates or verifies the network's kernel objects. */
  ensureNetwork(net: DriverNetwork<O>): Promise<void>;
  /** Removes the network's kernel objects; missing objects are not an error. */
  deleteNetwork(net: DriverNetwork<O>): Promise<void>;
  /** Creates or verifies the endpoint's kernel objects (interface, addresses, routes). */
  ensureEndpoint(net: DriverNetwork<O>, ep: DriverEndpoint): Promise<void>;
  /** Removes the endpoint's kernel objects; missing objects are not an error. */
  deleteEndpoint(net: DriverNetwork<O>, ep: DriverEndpoint): Promise<void>;
  /**
   * Publishes ports of an endpoint (only when `capabilities.publishesPorts`).
   * @throws ConflictError PORT_IN_USE when a host port is taken (nothing changed)
   */
  publishPorts(
    net: DriverNetwork<O>,
    ep: DriverEndpoint,
    ports: readonly DriverPort[],
  ): Promise<void>;
  /** Withdraws ports published by `publishPorts`; unknown ports are ignored. */
  unpublishPorts(
    net: DriverNetwork<O>,
    ep: DriverEndpoint,
    ports: readonly DriverPort[],
  ): Promise<void>;
  /** True when the host port is already published through this driver. */
  portInUse(port: Pick<DriverPort, 'hostIp' | 'hostPort' | 'proto'>): boolean;
  /**
   * Turns br_netfilter on or off for the network's bridge: while on, frames bridged between its
   * endpoints pass the inet netfilter hooks (conntrack and the policy table); while off they
   * cost nothing there. The policy engine keeps it on while an endpoint of the network is
   * isolated by a policy. The setting outlives a re-made bridge (drift repair, restart).
   * Drivers without a bridge leave it out.
   */
  setBridgedFiltering?(net: DriverNetwork<O>, on: boolean): Promise<void>;
  /** Names of the host-namespace links this network owns (for leak detection). */
  ownedLinks(net: DriverNetwork<O>): string[];
  /**
   * Kernel features a network of this driver needs beyond what cnmd itself needs (netns, veth,
   * bridge, nftables), for `cnm doctor`. Optional so that drivers needing nothing more
   * (`bridge`, `host`, `none`) need not declare it.
   */
  kernelFeatures?(net: DriverNetwork<O>): readonly KernelFeature[];
}
