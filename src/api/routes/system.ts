/** `/_ping`, `/version` and `/info`: what the docker CLI needs before anything else. */
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import os from 'node:os';
import type { EngineInfo } from '../../cnm/types.js';
import { sendJson } from '../respond.js';
import type { Router } from '../router.js';
import type { RouteDeps } from '../server.js';
import { API_VERSION, MIN_API_VERSION } from '../version.js';

/** Go's GOARCH names, which `docker version` prints. */
function goArch(arch: string): string {
  const names: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' };
  return names[arch] ?? arch;
}

let osName: string | undefined;

/** `PRETTY_NAME` from os-release, read once: `docker info` shows it as Operating System. */
function operatingSystem(): string {
  if (osName !== undefined) return osName;
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text);
    osName = m?.[1] ?? 'Linux';
  } catch {
    osName = 'Linux'; // no os-release (minimal containers): a generic name is enough
  }
  return osName;
}

/** Docker's `GET /version` body. */
export function versionBody(info: EngineInfo): Record<string, unknown> {
  const arch = goArch(info.arch);
  const goVersion = `node${process.versions.node}`;
  return {
    Platform: { Name: `cnm ${info.version}` },
    Components: [
      {
        Name: 'Engine',
        Version: info.version,
        Details: {
          ApiVersion: API_VERSION,
          Arch: arch,
          BuildTime: '',
          Experimental: 'false',
          GitCommit: '',
          GoVersion: goVersion,
          KernelVersion: info.kernelVersion,
          MinAPIVersion: MIN_API_VERSION,
          Os: info.os,
        },
      },
    ],
    Version: info.version,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: '',
    GoVersion: goVersion,
    Os: info.os,
    Arch: arch,
    KernelVersion: info.kernelVersion,
    BuildTime: '',
  };
}

/** Docker's `GET /info` body, with every field the docker CLI dereferences present. */
export function infoBody(info: EngineInfo, now: Date): Record<string, unknown> {
  return {
    ID: info.id,
    Containers: info.containers.total,
    ContainersRunning: info.containers.running,
    ContainersPaused: 0,
    ContainersStopped: info.containers.stopped,
    Images: 0,
    Driver: 'none',
    DriverStatus: [],
    Plugins: { Volume: [], Network: [...info.drivers], Authorization: null, Log: [] },
    MemoryLimit: false,
    SwapLimit: false,
    CpuCfsPeriod: false,
    CpuCfsQuota: false,
    CPUShares: false,
    CPUSet: false,
    PidsLimit: false,
    IPv4Forwarding: true,
    Debug: false,
    NFd: 0,
    OomKillDisable: false,
    NGoroutines: 0,
    SystemTime: now.toISOString(),
    LoggingDriver: 'cnm-file',
    CgroupDriver: 'none',
    CgroupVersion: '2',
    NEventsListener: 0,
    KernelVersion: info.kernelVersion,
    OperatingSystem: operatingSystem(),
    OSVersion: '',
    OSType: info.os,
    Architecture: os.machine(),
    IndexServerAddress: '',
    RegistryConfig: {
      InsecureRegistryCIDRs: [],
      IndexConfigs: {},
      Mirrors: [],
    },
    NCPU: os.availableParallelism(),
    MemTotal: os.totalmem(),
    GenericResources: null,
    DockerRootDir: info.dataRoot,
    HttpProxy: '',
    HttpsProxy: '',
    NoProxy: '',
    Name: info.name,
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: info.version,
    Runtimes: {},
    DefaultRuntime: '',
    Swarm: {
      NodeID: '',
      NodeAddr: '',
      LocalNodeState: 'inactive',
      ControlAvailable: false,
      Error: '',
      RemoteManagers: null,
    },
    LiveRestoreEnabled: false,
    Isolation: '',
    InitBinary: '',
    ContainerdCommit: { ID: '' },
    RuncCommit: { ID: '' },
    InitCommit: { ID: '' },
    SecurityOptions: [],
    CDISpecDirs: [],
    Warnings: [],
  };
}

/** Registers `/_ping`, `/version` and `/info`. */
export function registerSystemRoutes(router: Router, deps: RouteDeps): void {
  const ping = (res: ServerResponse, withBody: boolean): void => {
    res.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': '2',
      'API-Version': API_VERSION,
      OSType: 'linux',
      'Docker-Experimental': 'false',
      'Cache-Control': 'no-cache, no-store, must-revalidate',
      Pragma: 'no-cache',
      // Newer docker CLIs read swarm state from here instead of calling /info.
      Swarm: 'inactive',
    });
    res.end(withBody ? 'OK' : undefined);
  };
  router
    .add('GET', '/_ping', ({ res }) => ping(res, true))
    .add('HEAD', '/_ping', ({ res }) => ping(res, false))
    .add('GET', '/version', ({ res }) => sendJson(res, 200, versionBody(deps.controller.info())))
    .add('GET', '/info', ({ res }) =>
      sendJson(res, 200, infoBody(deps.controller.info(), deps.now())),
    );
}
