/**
 * The controller's public face: requests it takes and views it returns. `api/` maps these to
 * Docker's wire shapes; nothing outside `cnm/` sees the live objects behind them.
 */
import type { Readable } from 'node:stream';

/** One IPAM config entry of a network (Docker's `IPAM.Config[]`). */
export interface IpamPoolView {
  subnet: string;
  ipRange?: string;
  gateway?: string;
  auxAddresses?: Record<string, string>;
}

/** A network create request (Docker's `POST /networks/create`, camelCased). */
export interface NetworkCreateRequest {
  name: string;
  /** Default `bridge`. */
  driver?: string;
  options?: Record<string, string>;
  labels?: Record<string, string>;
  ipam?: {
    driver?: string;
    options?: Record<string, string>;
    config?: IpamPoolView[];
  };
  enableIPv4?: boolean;
  enableIPv6?: boolean;
  internal?: boolean;
  attachable?: boolean;
  ingress?: boolean;
  /** Default `local`. */
  scope?: string;
  configOnly?: boolean;
  /** Name or id of a config-only network to take IPAM and options from. */
  configFrom?: string;
}

/** A container's attachment as shown in a network's `Containers` map. */
export interface NetworkContainerView {
  name: string;
  endpointId: string;
  macAddress: string;
  /** CIDR form (`172.18.0.2/16`) or empty. */
  ipv4Address: string;
  ipv6Address: string;
}

/** What `inspectNetwork` returns (Docker's network inspect shape, camelCased). */
export interface NetworkView {
  id: string;
  name: string;
  /** RFC 3339 with nanoseconds, as Docker prints it. */
  created: string;
  scope: 'local' | 'global' | 'swarm';
  driver: string;
  enableIPv4: boolean;
  enableIPv6: boolean;
  ipam: { driver: string; options: Record<string, string>; config: IpamPoolView[] };
  internal: boolean;
  attachable: boolean;
  ingress: boolean;
  configFrom?: string;
  configOnly: boolean;
  /** Keyed by container id. */
  containers: Record<string, NetworkContainerView>;
  options: Record<string, string>;
  labels: Record<string, string>;
  /** True for the predefined `bridge`, `host` and `none`. */
  predefined: boolean;
}

/** Per-network settings when attaching a container (Docker's `EndpointSettings`). */
export interface EndpointRequest {
  ipv4?: string;
  ipv6?: string;
  mac?: string;
  aliases?: string[];
  driverOpts?: Record<string, string>;
}

/** A published port as requested: `[hostIp:]hostPort[-end]:containerPort[-end][/proto]`. */
export interface PortSpec {
  /** `''` for every host address. */
  hostIp: string;
  /** 0 = pick a free ephemeral port. */
  hostPort: number;
  hostPortEnd?: number;
  containerPort: number;
  containerPortEnd?: number;
  proto: 'tcp' | 'udp';
}

/** A published port as bound: one host port to one container port. */
export interface PortBinding {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  proto: 'tcp' | 'udp';
}

/** A container create request (`POST /cnm/containers/create`). */
export interface ContainerSpec {
  name?: string;
  /** Command and arguments; run on the host's filesystem inside the container's namespaces. */
  cmd: string[];
  env?: string[];
  workingDir?: string;
  hostname?: string;
  labels?: Record<string, string>;
  /**
   * Networks to join, in order; the first is the primary (default route). Empty or absent: the
   * default `bridge`. `host` and `none` must be alone.
   */
  networks?: ({ name: string } & EndpointRequest)[];
  /** `-p` specs as strings (`8080:80/tcp`), parsed by the controller. */
  ports?: string[];
  /** Named ports for network policy (`--port-name http=8080/tcp`), `name=port[/proto]`. */
  portNames?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** `net.*` sysctls applied inside the container's namespace. */
  sysctls?: Record<string, string>;
  /** Remove the container when its process exits (`--rm`). */
  autoRemove?: boolean;
  /** Bandwidth limit toward the container, tc units (`10mbit`); absent: none (`qos.ts`). */
  ingressRate?: string;
  /** Bandwidth limit of what the container sends, tc units (`5mbit`); absent: none. */
  egressRate?: string;
}

/**
 * A container update (`POST /cnm/containers/{id}/update`, `cnm update`): a rate as in
 * `ContainerSpec`, `0` or `none` to remove that limit, absent to leave it as it is.
 */
export interface ContainerUpdateRequest {
  ingressRate?: string;
  egressRate?: string;
}

/** A container's view of one attachment (Docker's `NetworkSettings.Networks[name]`). */
export interface ContainerNetworkView {
  networkId: string;
  endpointId: string;
  ipAddress: string;
  ipPrefixLen: number;
  gateway: string;
  ipv6Address: string;
  ipv6PrefixLen: number;
  ipv6Gateway: string;
  macAddress: string;
  aliases: string[];
  dnsNames: string[];
}

export type ContainerStatus = 'created' | 'running' | 'exited' | 'dead' | 'removing';

/** What `inspectContainer` returns. */
export interface ContainerView {
  id: string;
  name: string;
  created: string;
  spec: ContainerSpec;
  state: {
    status: ContainerStatus;
    running: boolean;
    pid: number;
    /** null while running or when unknown. */
    exitCode: number | null;
    startedAt: string;
    finishedAt: string;
    error: string;
  };
  /** Network mode: `bridge`, `host`, `none`, or a network name. */
  networkMode: string;
  /** Netns file of the sandbox (`/run/cnm/netns/<id12>`), empty for `host`. */
  sandboxKey: string;
  hostname: string;
  /** Keyed by network name. */
  networks: Record<string, ContainerNetworkView>;
  ports: PortBinding[];
  logPath: string;
  resolvConfPath: string;
  hostsPath: string;
  hostnamePath: string;
}

/** A running `exec`: output streams and the exit code. */
export interface ExecHandle {
  stdout: Readable;
  stderr: Readable;
  /** Resolves with the exit code (128+signal when killed by a signal). */
  exit: Promise<number>;
  /** Sends a signal to the exec'd process. */
  kill(signal?: NodeJS.Signals): void;
}

/** Network prune filters (Docker's `label`, `label!`, `until`). */
export interface PruneFilters {
  /** `key` or `key=value`; all must match. */
  label?: string[];
  /** `key` or `key=value`; none may match. */
  labelNot?: string[];
  /** Only networks created before this time. */
  until?: Date;
}

/** Version facts for `/version` and `/info`. */
export interface EngineInfo {
  version: string;
  apiVersion: string;
  minApiVersion: string;
  os: string;
  arch: string;
  kernelVersion: string;
  name: string;
  id: string;
  containers: { total: number; running: number; stopped: number };
  dataRoot: string;
  execRoot: string;
  drivers: string[];
}

/**
 * Everything the API layer may ask of the controller. Errors are `CnmError`s whose kind the API
 * maps to a status code.
 */
export interface ControllerApi {
  info(): EngineInfo;

  createNetwork(req: NetworkCreateRequest): Promise<{ id: string; warning: string }>;
  listNetworks(): NetworkView[];
  /** @throws NotFoundError NET_NOT_FOUND (`network x not found`) */
  inspectNetwork(idOrName: string): NetworkView;
  removeNetwork(idOrName: string): Promise<void>;
  /** Removes unused user networks; returns their names. */
  pruneNetworks(filters: PruneFilters): Promise<string[]>;
  connect(network: string, container: string, req?: EndpointRequest): Promise<void>;
  disconnect(network: string, container: string, opts?: { force?: boolean }): Promise<void>;

  /** Creates the sandbox and its endpoints; the process is not started. */
  createContainer(spec: ContainerSpec): Promise<ContainerView>;
  startContainer(idOrName: string): Promise<void>;
  listContainers(opts?: { all?: boolean }): ContainerView[];
  /** @throws NotFoundError CONTAINER_NOT_FOUND (`No such container: x`) */
  inspectContainer(idOrName: string): ContainerView;
  /** SIGTERM, then SIGKILL after `timeoutSec` (default 10). */
  stopContainer(idOrName: string, opts?: { timeoutSec?: number }): Promise<void>;
  /** @throws ConflictError CONTAINER_RUNNING unless `force` */
  removeContainer(idOrName: string, opts?: { force?: boolean }): Promise<void>;
  /** Resolves with the exit code once the container's process has exited. */
  waitContainer(idOrName: string, signal?: AbortSignal): Promise<{ exitCode: number }>;
  /**
   * Changes a container's bandwidth limits at run time (also while stopped); the new limits are
   * in the kernel when this resolves.
   * @throws InvalidError RATE_INVALID, QOS_UNSUPPORTED; NotFoundError CONTAINER_NOT_FOUND
   */
  updateContainer(idOrName: string, req: ContainerUpdateRequest): Promise<ContainerView>;
  /** Runs a command inside the running container's namespaces. */
  execContainer(idOrName: string, cmd: string[], opts?: { env?: string[] }): Promise<ExecHandle>;
}

/** A service create request (`POST /cnm/services/create`). */
export interface ServiceCreateRequest {
  name: string;
  /** Network name or id: a user-defined bridge network. */
  network: string;
  /** Default 1. */
  replicas?: number;
  /** `vip` (default): the name resolves to one virtual IP; `dnsrr`: to every replica. */
  endpointMode?: 'vip' | 'dnsrr';
  /** The replicas' command. */
  cmd: string[];
  env?: string[];
  labels?: Record<string, string>;
  /** More names of the service on its network: of the VIP (`vip`) or of every replica (`dnsrr`). */
  aliases?: string[];
}

/** One replica of a service. */
export interface ServiceTaskView {
  id: string;
  name: string;
  status: ContainerStatus;
  /** The replica's IPv4 address on the service network, or empty. */
  ipAddress: string;
}

/** What `inspectService` returns. */
export interface ServiceView {
  id: string;
  name: string;
  created: string;
  networkId: string;
  network: string;
  endpointMode: 'vip' | 'dnsrr';
  /** The virtual IP (vip mode), else empty. */
  vip: string;
  /** The IPv6 virtual IP (vip mode on a dual-stack network), else empty. */
  vip6: string;
  /** Desired replicas. */
  replicas: number;
  /** Replicas whose container runs. */
  running: number;
  tasks: ServiceTaskView[];
  /** The replicas' labels (the service's template). */
  labels: Record<string, string>;
  /** The service's extra names (besides its own name). */
  aliases: string[];
}

/** Services (`/cnm/services`): replicated containers behind one name. */
export interface ServiceApi {
  /** @throws ConflictError SERVICE_NAME_IN_USE, InvalidError, NotFoundError NET_NOT_FOUND */
  createService(req: ServiceCreateRequest): Promise<ServiceView>;
  listServices(): ServiceView[];
  /** @throws NotFoundError SERVICE_NOT_FOUND */
  inspectService(idOrName: string): ServiceView;
  /** Removes the replicas, the VIP and the record. */
  removeService(idOrName: string): Promise<void>;
  /** Adds replicas (`name.N+1`, ...) or removes the highest-numbered ones. */
  scaleService(idOrName: string, replicas: number): Promise<ServiceView>;
}
