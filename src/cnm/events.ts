/**
 * The controller's observer seam: what it tells a name service (the embedded DNS) about networks
 * and endpoints. The controller decides which networks are served (user-defined bridges with a
 * gateway) and when an endpoint's names are live (its container is running); the observer only
 * mirrors that. Endpoint calls are synchronous so a name exists before the API call that made it
 * returns.
 */

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
