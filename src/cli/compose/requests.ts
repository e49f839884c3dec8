/**
 * A validated Compose project as Docker API bodies: `POST /networks/create` per project network,
 * `POST /cnm/containers/create` per service, with the labels Compose v2 puts on what it creates
 * so that `down` and `ps` find them again without the file. Pure.
 */
import type { ComposeNetwork, ComposeProject, ComposeService } from './model.js';

/** The label keys Compose v2 sets; `docker compose ls`-style tools read them too. */
export const LABELS = {
  project: 'com.docker.compose.project',
  service: 'com.docker.compose.service',
  network: 'com.docker.compose.network',
  containerNumber: 'com.docker.compose.container-number',
  oneoff: 'com.docker.compose.oneoff',
  configFiles: 'com.docker.compose.project.config_files',
  workingDir: 'com.docker.compose.project.working_dir',
} as const;

/** Where the file came from, recorded in container labels as Compose does. */
export interface ProjectSource {
  /** Absolute path of the compose file. */
  configFile: string;
  /** Absolute project directory. */
  workingDir: string;
}

/** The `POST /networks/create` body of a non-external project network. */
export function networkCreateBody(project: string, n: ComposeNetwork): Record<string, unknown> {
  const body: Record<string, unknown> = {
    Name: n.name,
    Driver: n.driver ?? 'bridge',
    Options: { ...n.driverOpts },
    Labels: { ...n.labels, [LABELS.project]: project, [LABELS.network]: n.key },
    Internal: n.internal,
    Attachable: n.attachable,
  };
  if (n.enableIPv6 !== undefined) body['EnableIPv6'] = n.enableIPv6;
  if (n.ipam !== undefined) {
    body['IPAM'] = {
      Driver: n.ipam.driver ?? 'default',
      Options: { ...n.ipam.options },
      Config: n.ipam.config.map((p) => {
        const c: Record<string, unknown> = { Subnet: p.subnet };
        if (p.ipRange !== undefined) c['IPRange'] = p.ipRange;
        if (p.gateway !== undefined) c['Gateway'] = p.gateway;
        if (p.auxAddresses !== undefined) c['AuxiliaryAddresses'] = { ...p.auxAddresses };
        return c;
      }),
    };
  }
  return body;
}

/**
 * The `POST /cnm/containers/create` body of a service. Each endpoint gets the service name as an
 * alias besides the file's aliases, as Compose does; `mac_address` goes to the first network.
 */
export function containerCreateBody(
  p: ComposeProject,
  s: ComposeService,
  src: ProjectSource,
): Record<string, unknown> {
  const netName = new Map(p.networks.map((n) => [n.key, n.name]));
  const networks =
    s.networkMode !== undefined
      ? [{ Name: s.networkMode }]
      : s.networks.map((n, i) => {
          const out: Record<string, unknown> = {
            Name: netName.get(n.key) ?? n.key,
            Aliases: [s.name, ...n.aliases.filter((a) => a !== s.name)],
          };
          if (n.ipv4Address !== undefined) out['IPv4Address'] = n.ipv4Address;
          if (n.ipv6Address !== undefined) out['IPv6Address'] = n.ipv6Address;
          if (i === 0 && s.macAddress !== undefined) out['MacAddress'] = s.macAddress;
          return out;
        });
  const body: Record<string, unknown> = {
    Name: s.containerName,
    Cmd: [...s.command],
    Env: [...s.environment],
    Labels: { ...projectLabels(p, s, src), [LABELS.containerNumber]: '1' },
    Networks: networks,
    Ports: [...s.ports],
    Dns: [...s.dns],
    DnsSearch: [...s.dnsSearch],
    DnsOptions: [...s.dnsOpt],
    Sysctls: { ...s.sysctls },
  };
  if (s.workingDir !== undefined) body['WorkingDir'] = s.workingDir;
  if (s.hostname !== undefined) body['Hostname'] = s.hostname;
  return body;
}

/**
 * The `POST /cnm/services/create` body of a service with `deploy.replicas`: a cnm service named
 * `<project>_<service>` (as `docker stack deploy` names it) on the service's one network, with the
 * service name and the file's aliases as names of its VIP (`vip`) or of every replica (`dnsrr`).
 * Replicas carry the project labels, so `ps` and `down` find them.
 */
export function serviceCreateBody(
  p: ComposeProject,
  s: ComposeService,
  src: ProjectSource,
): Record<string, unknown> {
  const n = s.networks[0];
  const netName = p.networks.find((x) => x.key === n?.key)?.name ?? n?.key ?? '';
  return {
    Name: serviceName(p.name, s.name),
    Network: netName,
    Replicas: s.deploy?.replicas ?? 1,
    EndpointMode: s.deploy?.endpointMode ?? 'vip',
    Aliases: [s.name, ...(n?.aliases ?? []).filter((a) => a !== s.name)],
    Cmd: [...s.command],
    Env: [...s.environment],
    Labels: projectLabels(p, s, src),
  };
}

/** A service's own labels plus the ones Compose puts on everything it makes for it. */
function projectLabels(
  p: ComposeProject,
  s: ComposeService,
  src: ProjectSource,
): Record<string, string> {
  return {
    ...s.labels,
    [LABELS.project]: p.name,
    [LABELS.service]: s.name,
    [LABELS.oneoff]: 'False',
    [LABELS.configFiles]: src.configFile,
    [LABELS.workingDir]: src.workingDir,
  };
}

/** The cnm service name of a Compose service with replicas: `<project>_<service>`. */
export function serviceName(project: string, service: string): string {
  return `${project}_${service.replace(/\./g, '-')}`;
}

/** The `filters` query selecting everything of `project` (containers or networks). */
export function projectFilter(project: string): string {
  return JSON.stringify({ label: { [`${LABELS.project}=${project}`]: true } });
}
