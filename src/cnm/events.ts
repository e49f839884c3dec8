/**
 * The controller's observer seam: what it tells a name service (the embedded DNS) about networks
 * and endpoints. The controller decides which networks are served (user-defined bridges with a
 * gateway) and when an endpoint's names are live (its container is running); the observer only
 * mirrors that. Endpoint calls are synchronous so a name exists before the API call that made it
 * returns.
 */
import type { DriverNetwork } from '../drivers/types.js';

/** A network whose containers get the embedded DNS. */
export interface ObservedNetwork {
  id: string;
  name: string;
  internal: boolean;
  /** Gateway addresses (IPv4 and/or IPv6) the daemon holds on the network's bridge. */
  gateways: string[];
  subnets: string[];
}

/** A live endpoint of a running container on an observed network. */
export interface ObservedEndpoint {
  endpointId: string;
  networkId: string;
  containerId: string;
  containerName: string;
  aliases: string[];
  ipv4?: string;
  ipv6?: string;
  /** The container's own `--dns` servers. */
  dns: string[];
}

/** What the controller calls. Implementations must not throw from the endpoint calls. */
export interface ControllerObserver {
  /** A served network exists (created, or restored at start-up). */
  networkUp(n: ObservedNetwork): Promise<void>;
  /** A served network is gone. */
  networkDown(networkId: string): Promise<void>;
  /** An endpoint's names are live: its container runs (started, or connected while running). */
  endpointUp(e: ObservedEndpoint): void;
  /** An endpoint's names are gone: container stopped, removed or disconnected. */
  endpointDown(endpointId: string): void;
}

/**
 * An endpoint with addresses, from the moment it is attached (container created or connected)
 * until it is detached: what network policy sees as a "pod" address. Unlike `ObservedEndpoint`
 * this does not wait for the process to run, so a policy is in force before the process starts.
 */
export interface AttachedEndpoint {
  endpointId: string;
  containerId: string;
  /** The container's labels (its namespace is the `io.cnm.namespace` label). */
  labels: Record<string, string>;
  /** `--port-name` values (`http=8080/tcp`). */
  portNames: string[];
  networkId: string;
  /** The network's subnets when it has `io.cnm.isolation=tenant` (`isolation.ts`). */
  tenantIsolation?: string[];
  ipv4?: string;
  ipv6?: string;
}

/**
 * What the controller tells the policy engine. Calls are awaited, so the kernel matches before
 * the API call that caused them returns; implementations log their own failures and never throw.
 */
export interface EndpointWatcher {
  endpointAttached(e: AttachedEndpoint): Promise<void>;
  endpointDetached(endpointId: string): Promise<void>;
  /** A container's labels changed (`cnm label`), at once for every endpoint of it. */
  containerLabelsChanged(containerId: string, labels: Record<string, string>): Promise<void>;
}

/** A service's virtual IP as the balancer programs it. */
export interface BalancedVip {
  serviceId: string;
  vip: string;
  /** IPv4 addresses of the service's running replicas on the VIP's network. */
  backends: readonly string[];
  /** The IPv6 VIP of a service on a dual-stack network. */
  vip6?: string;
  /** IPv6 addresses of the running replicas (with `vip6`). */
  backends6?: readonly string[];
}

/**
 * The kernel side of service VIPs (the bridge driver implements it): connections to a VIP are
 * spread over its backends in the kernel. Calls take effect in call order, each one handed to the
 * kernel before the call returns its promise, so a replica taken out by `setVip` receives no new
 * connection once any later kernel request of the caller has run.
 */
export interface VipBalancer {
  /** Creates the VIP on the network or replaces its backends. */
  setVip(net: DriverNetwork, v: BalancedVip): Promise<void>;
  /** Removes the VIP from the network; unknown VIPs are ignored. */
  deleteVip(
    net: DriverNetwork,
    v: { serviceId: string; vip: string; vip6?: string },
  ): Promise<void>;
}
