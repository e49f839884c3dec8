/**
 * The records cnm keeps in the store: plain JSON intent. Kernel state is derived from them.
 */
import type { ContainerSpec, IpamPoolView, PortBinding } from './types.js';

/** Store key prefixes. */
export const KEYS = {
  network: (id: string) => `networks/${id}`,
  networks: 'networks/',
  endpoint: (id: string) => `endpoints/${id}`,
  endpoints: 'endpoints/',
  container: (id: string) => `containers/${id}`,
  containers: 'containers/',
} as const;

/** A network as stored. `options` keeps Docker's raw option strings (parsed again on load). */
export interface NetworkRecord {
  id: string;
  name: string;
  driver: string;
  scope: 'local' | 'global' | 'swarm';
  created: string;
  options: Record<string, string>;
  labels: Record<string, string>;
  ipam: { driver: string; options: Record<string, string>; config: IpamPoolView[] };
  enableIPv4: boolean;
  enableIPv6: boolean;
  internal: boolean;
  attachable: boolean;
  ingress: boolean;
  configOnly: boolean;
  configFrom?: string;
  predefined: boolean;
  /** Subnets were given by the user (static addresses are allowed only then, as in Docker). */
  userSubnets: boolean;
}

/** A container's attachment to one network. */
export interface EndpointRecord {
  id: string;
  networkId: string;
  containerId: string;
  /** Name inside the sandbox (`eth0`). */
  ifName: string;
  /** Host-side veth name. */
  hostIfName: string;
  mac: string;
  /** Addresses without prefix length. */
  ipv4?: string;
  ipv6?: string;
  aliases: string[];
  /** Carries the default route and the published ports. */
  gatewayEndpoint: boolean;
  ports: PortBinding[];
  driverOpts: Record<string, string>;
  /** Creation sequence (monotonic per daemon data root): orders endpoints and IPAM cursors. */
  seq: number;
}

/** A container's process state. */
export interface ContainerState {
  status: 'created' | 'running' | 'exited' | 'dead';
  pid: number;
  startTime: string;
  exitCode: number | null;
  startedAt: string;
  finishedAt: string;
  error: string;
}

/** A container as stored. */
export interface ContainerRecord {
  id: string;
  name: string;
  created: string;
  spec: ContainerSpec;
  /** `bridge`, `host`, `none` or the first network's name. */
  networkMode: string;
  /** Netns file, empty for host mode. */
  sandboxKey: string;
  hostname: string;
  state: ContainerState;
}
