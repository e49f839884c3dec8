/**
 * Docker Engine API wire shapes (PascalCase, key order as dockerd prints them) and the mapping
 * from the controller's views. Field names here are a compatibility contract: the docker CLI,
 * dockerode and users' `--format` templates read them.
 */
import type {
  ContainerNetworkView,
  ContainerSpec,
  ContainerView,
  IpamPoolView,
  NetworkView,
  PortBinding,
} from '../cnm/types.js';

/** Go's zero `time.Time`, which dockerd prints for times that never happened. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** One `IPAM.Config[]` entry; empty optional fields are omitted as dockerd does. */
export interface WireIpamConfig {
  Subnet: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

/** A container in a network's `Containers` map. */
export interface WireNetworkContainer {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  IPv4Address: string;
  IPv6Address: string;
}

/** `GET /networks/{id}` and each item of `GET /networks`. */
export interface WireNetwork {
  Name: string;
  Id: string;
  Created: string;
  Scope: string;
  Driver: string;
  EnableIPv4: boolean;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string>; Config: WireIpamConfig[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Containers: Record<string, WireNetworkContainer>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

function toWireIpamConfig(p: IpamPoolView): WireIpamConfig {
  const out: WireIpamConfig = { Subnet: p.subnet };
  if (p.ipRange !== undefined && p.ipRange !== '') out.IPRange = p.ipRange;
  if (p.gateway !== undefined && p.gateway !== '') out.Gateway = p.gateway;
  if (p.auxAddresses !== undefined && Object.keys(p.auxAddresses).length > 0) {
    out.AuxiliaryAddresses = { ...p.auxAddresses };
  }
  return out;
}

/**
 * Maps a network view to dockerd's inspect shape. `withContainers: false` gives the list form,
 * whose `Containers` dockerd leaves empty since API 1.28.
 */
export function toWireNetwork(n: NetworkView, opts: { withContainers: boolean }): WireNetwork {
  const containers: Record<string, WireNetworkContainer> = {};
  if (opts.withContainers) {
    for (const [id, c] of Object.entries(n.containers)) {
      containers[id] = {
        Name: c.name,
        EndpointID: c.endpointId,
        MacAddress: c.macAddress,
        IPv4Address: c.ipv4Address,
        IPv6Address: c.ipv6Address,
      };
    }
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: n.scope,
    Driver: n.driver,
    EnableIPv4: n.enableIPv4,
    EnableIPv6: n.enableIPv6,
    IPAM: {
      Driver: n.ipam.driver,
      Options: { ...n.ipam.options },
      Config: n.ipam.config.map(toWireIpamConfig),
    },
    Internal: n.internal,
    Attachable: n.attachable,
    Ingress: n.ingress,
    ConfigFrom: { Network: n.configFrom ?? '' },
    ConfigOnly: n.configOnly,
    Containers: containers,
    Options: { ...n.options },
    Labels: { ...n.labels },
  };
}

/** One host binding in `Ports` / `PortBindings` maps. */
export interface WirePortBinding {
  HostIp: string;
  HostPort: string;
}

/** A container's attachment (`NetworkSettings.Networks[name]`, Docker's `EndpointSettings`). */
export interface WireEndpointSettings {
  IPAMConfig: { IPv4Address?: string; IPv6Address?: string } | null;
  Links: null;
  Aliases: string[] | null;
  MacAddress: string;
  DriverOpts: Record<string, string> | null;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  DNSNames: string[] | null;
}

/** `GET /cnm/containers/{id}/json`: Docker's container inspect where it applies. */
export interface WireContainer {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: {
    Status: string;
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    OOMKilled: boolean;
    Dead: boolean;
    Pid: number;
    ExitCode: number;
    Error: string;
    StartedAt: string;
    FinishedAt: string;
  };
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  LogPath: string;
  Name: string;
  Config: {
    Hostname: string;
    Domainname: string;
    User: string;
    Tty: boolean;
    ExposedPorts: Record<string, Record<string, never>> | null;
    Env: string[];
    Cmd: string[];
    Image: string;
    WorkingDir: string;
    Entrypoint: null;
    Labels: Record<string, string>;
  };
  HostConfig: {
    NetworkMode: string;
    PortBindings: Record<string, WirePortBinding[]>;
    RestartPolicy: { Name: string; MaximumRetryCount: number };
    AutoRemove: boolean;
    Dns: string[];
    DnsOptions: string[];
    DnsSearch: string[];
    Sysctls: Record<string, string>;
    /** cnm: bandwidth limits as set (tc units), `""` for none. */
    IngressRate: string;
    EgressRate: string;
  };
  NetworkSettings: {
    SandboxID: string;
    SandboxKey: string;
    Ports: Record<string, WirePortBinding[]>;
    Networks: Record<string, WireEndpointSettings>;
  };
}

/** An item of `GET /cnm/containers/json` (Docker's container summary). */
export interface WireContainerSummary {
  Id: string;
  Names: string[];
  Command: string;
  /** Unix seconds. */
  Created: number;
  Ports: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[];
  Labels: Record<string, string>;
  State: string;
  Status: string;
  HostConfig: { NetworkMode: string };
  NetworkSettings: { Networks: Record<string, WireEndpointSettings> };
}

/**
 * Parses a `-p` spec loosely for display (`HostConfig.PortBindings`); the controller does the
 * authoritative parsing, so anything unparsable is simply left out here.
 */
export function parsePublishSpec(spec: string): { key: string; binding: WirePortBinding }[] {
  const slash = spec.lastIndexOf('/');
  const proto = slash >= 0 ? spec.slice(slash + 1) : 'tcp';
  let rest = slash >= 0 ? spec.slice(0, slash) : spec;
  let hostIp = '';
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(rest);
  if (v6 !== null) {
    hostIp = v6[1] ?? '';
    rest = v6[2] ?? '';
  }
  const parts = rest.split(':');
  let hostPart = '';
  let ctrPart: string;
  if (parts.length === 1) ctrPart = parts[0] ?? '';
  else if (parts.length === 2) [hostPart, ctrPart] = [parts[0] ?? '', parts[1] ?? ''];
  else if (parts.length === 3 && v6 === null) {
    [hostIp, hostPart, ctrPart] = [parts[0] ?? '', parts[1] ?? '', parts[2] ?? ''];
  } else return [];
  const range = (s: string): [number, number] | undefined => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(s);
    if (m === null) return undefined;
    const a = Number(m[1]);
    return [a, m[2] === undefined ? a : Number(m[2])];
  };
  const ctr = range(ctrPart);
  const host = hostPart === '' ? undefined : range(hostPart);
  if (ctr === undefined || (hostPart !== '' && host === undefined) || ctr[1] - ctr[0] > 65535) {
    return [];
  }
  const out: { key: string; binding: WirePortBinding }[] = [];
  for (let p = ctr[0]; p <= ctr[1]; p++) {
    let hostPort = '';
    if (host !== undefined) {
      // A host range paired with a container range maps one to one; a single host port or a
      // wider host range is left to the controller to pick from.
      hostPort =
        host[0] === host[1]
          ? String(host[0])
          : host[1] - host[0] === ctr[1] - ctr[0]
            ? String(host[0] + (p - ctr[0]))
            : `${host[0]}-${host[1]}`;
    }
    out.push({ key: `${p}/${proto}`, binding: { HostIp: hostIp, HostPort: hostPort } });
  }
  return out;
}

function portMap(ports: PortBinding[]): Record<string, WirePortBinding[]> {
  const out: Record<string, WirePortBinding[]> = {};
  for (const p of ports) {
    const key = `${p.containerPort}/${p.proto}`;
    (out[key] ??= []).push({
      HostIp: p.hostIp === '' ? '0.0.0.0' : p.hostIp,
      HostPort: String(p.hostPort),
    });
  }
  return out;
}

function toWireEndpoint(
  net: ContainerNetworkView,
  requested: NonNullable<ContainerSpec['networks']>[number] | undefined,
): WireEndpointSettings {
  let ipamConfig: WireEndpointSettings['IPAMConfig'] = null;
  if (requested?.ipv4 !== undefined || requested?.ipv6 !== undefined) {
    ipamConfig = {};
    if (requested.ipv4 !== undefined) ipamConfig.IPv4Address = requested.ipv4;
    if (requested.ipv6 !== undefined) ipamConfig.IPv6Address = requested.ipv6;
  }
  return {
    IPAMConfig: ipamConfig,
    Links: null,
    Aliases: net.aliases.length > 0 ? [...net.aliases] : null,
    MacAddress: net.macAddress,
    DriverOpts: requested?.driverOpts !== undefined ? { ...requested.driverOpts } : null,
    NetworkID: net.networkId,
    EndpointID: net.endpointId,
    Gateway: net.gateway,
    IPAddress: net.ipAddress,
    IPPrefixLen: net.ipPrefixLen,
    IPv6Gateway: net.ipv6Gateway,
    GlobalIPv6Address: net.ipv6Address,
    GlobalIPv6PrefixLen: net.ipv6PrefixLen,
    DNSNames: net.dnsNames.length > 0 ? [...net.dnsNames] : null,
  };
}

function toWireNetworks(c: ContainerView): Record<string, WireEndpointSettings> {
  const out: Record<string, WireEndpointSettings> = {};
  for (const [name, net] of Object.entries(c.networks)) {
    const requested = c.spec.networks?.find((n) => n.name === name || n.name === net.networkId);
    out[name] = toWireEndpoint(net, requested);
  }
  return out;
}

/** Maps a container view to Docker's container inspect shape. */
export function toWireContainer(c: ContainerView): WireContainer {
  const portBindings: Record<string, WirePortBinding[]> = {};
  const exposed: Record<string, Record<string, never>> = {};
  for (const spec of c.spec.ports ?? []) {
    for (const { key, binding } of parsePublishSpec(spec)) {
      (portBindings[key] ??= []).push(binding);
      exposed[key] = {};
    }
  }
  const cmd = [...c.spec.cmd];
  return {
    Id: c.id,
    Created: c.created,
    Path: cmd[0] ?? '',
    Args: cmd.slice(1),
    State: {
      Status: c.state.status,
      Running: c.state.running,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: c.state.status === 'dead',
      Pid: c.state.pid,
      ExitCode: c.state.exitCode ?? 0,
      Error: c.state.error,
      StartedAt: c.state.startedAt === '' ? ZERO_TIME : c.state.startedAt,
      FinishedAt: c.state.finishedAt === '' ? ZERO_TIME : c.state.finishedAt,
    },
    ResolvConfPath: c.resolvConfPath,
    HostnamePath: c.hostnamePath,
    HostsPath: c.hostsPath,
    LogPath: c.logPath,
    Name: `/${c.name}`,
    Config: {
      Hostname: c.hostname,
      Domainname: '',
      User: '',
      Tty: false,
      ExposedPorts: Object.keys(exposed).length > 0 ? exposed : null,
      Env: [...(c.spec.env ?? [])],
      Cmd: cmd,
      Image: '',
      WorkingDir: c.spec.workingDir ?? '',
      Entrypoint: null,
      Labels: { ...(c.spec.labels ?? {}) },
    },
    HostConfig: {
      NetworkMode: c.networkMode,
      PortBindings: portBindings,
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: c.spec.autoRemove ?? false,
      Dns: [...(c.spec.dns ?? [])],
      DnsOptions: [...(c.spec.dnsOptions ?? [])],
      DnsSearch: [...(c.spec.dnsSearch ?? [])],
      Sysctls: { ...(c.spec.sysctls ?? {}) },
      IngressRate: c.spec.ingressRate ?? '',
      EgressRate: c.spec.egressRate ?? '',
    },
    NetworkSettings: {
      // The view has no separate sandbox id; a cnm container owns exactly one sandbox.
      SandboxID: c.id,
      SandboxKey: c.sandboxKey,
      Ports: portMap(c.ports),
      Networks: toWireNetworks(c),
    },
  };
}

/**
 * The go-units `HumanDuration` dockerd uses in `Status` ("Up 5 minutes").
 * @example humanDuration(90_000) // "About a minute"
 */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

/** dockerd's human status: `Up 2 minutes`, `Exited (0) 5 seconds ago`, `Created`. */
export function statusText(c: ContainerView, now: Date): string {
  const since = (iso: string): number => Math.max(0, now.getTime() - Date.parse(iso));
  switch (c.state.status) {
    case 'running':
      return `Up ${humanDuration(since(c.state.startedAt))}`;
    case 'exited':
      return c.state.finishedAt === '' || c.state.finishedAt === ZERO_TIME
        ? `Exited (${c.state.exitCode ?? 0})`
        : `Exited (${c.state.exitCode ?? 0}) ${humanDuration(since(c.state.finishedAt))} ago`;
    case 'created':
      return 'Created';
    case 'dead':
      return 'Dead';
    case 'removing':
      return 'Removal In Progress';
  }
}

/** Maps a container view to Docker's container list item. */
export function toWireContainerSummary(c: ContainerView, now: Date): WireContainerSummary {
  const created = Date.parse(c.created);
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Command: c.spec.cmd.join(' '),
    Created: Number.isNaN(created) ? 0 : Math.floor(created / 1000),
    Ports: c.ports.map((p) => ({
      IP: p.hostIp === '' ? '0.0.0.0' : p.hostIp,
      PrivatePort: p.containerPort,
      PublicPort: p.hostPort,
      Type: p.proto,
    })),
    Labels: { ...(c.spec.labels ?? {}) },
    State: c.state.status,
    Status: statusText(c, now),
    HostConfig: { NetworkMode: c.networkMode },
    NetworkSettings: { Networks: toWireNetworks(c) },
  };
}
