#!/usr/bin/env node
/**
 * cnmd: the daemon. Parses dockerd-style flags (and an optional daemon.json-style config file),
 * wires kernel, store, drivers, controller and API, and runs until SIGTERM/SIGINT. This is the
 * only place that picks implementations.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, Option } from 'commander';
import { createApiHandler } from '../api/server.js';
import { Controller } from '../cnm/controller.js';
import { startReconciler } from '../cnm/reconciler.js';
import { PolicyEngine } from '../cnm/policy-engine.js';
import { BridgeDriver } from '../drivers/bridge/bridge-driver.js';
import { OverlayDriver } from '../drivers/overlay/overlay-driver.js';
import { Cluster } from '../cnm/cluster.js';
import { EtcdStore } from '../store/etcd/etcd-store.js';
import { ipvlanDriver, macvlanDriver } from '../drivers/macvlan/macvlan-driver.js';
import { hostDriver, noneDriver } from '../drivers/null-drivers.js';
import { DriverRegistry } from '../drivers/registry.js';
import { DnsService } from '../dns/service.js';
import { dnsUdpAvailable, openDnsUdp } from '../kernel/dns-udp.js';
import { describeError } from '../errors.js';
import {
  assessHost,
  detectCapabilities,
  readHostTuning,
  type KernelFeature,
} from '../kernel/capabilities.js';
import { createKernel } from '../kernel/kernel.js';
import { SqliteStore } from '../store/index.js';
import {
  addApiAccessOptions,
  openApi,
  readApiAccessConfig,
  type ApiAccessConfig,
} from './api-access.js';
import { VERSION } from './version.js';

type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Daemon settings after flags and config file are merged. */
export interface DaemonConfig {
  /** `-H`, `-G`, `--tls*`, `--insecure-tcp`, `--audit-log` (api-access.ts). */
  api: ApiAccessConfig;
  dataRoot: string;
  execRoot: string;
  pidfile: string;
  logLevel: Level;
  mtu: number;
  dns: string[];
  /** resolv.conf of the daemon's namespace: containers' default servers and DNS upstreams. */
  resolvConf: string;
  bip?: string;
  bridgeName: string;
  nftTable: string;
  /** `etcd://H1:2379,H2:2379`: global-scope (overlay) networks shared through etcd. */
  clusterStore?: string;
  /** This host's underlay address: its VTEP and its id in the cluster. */
  advertiseAddr?: string;
  /** dockerd's `--cluster-store-opt`: `kv.cacertfile`, `kv.certfile`, `kv.keyfile`. */
  clusterStoreOpts: string[];
}

/** Bounded wait for in-flight API requests on SIGTERM/SIGINT. */
const SHUTDOWN_GRACE_MS = 5000;

function parseConfig(argv: string[]): DaemonConfig {
  const program = new Command('cnmd')
    .description('cnm daemon: container networking (Docker CNM) on Linux')
    .version(VERSION, '-v, --version');
  addApiAccessOptions(program)
    .option('--data-root <dir>', 'root directory of persistent state', '/var/lib/cnm')
    .option('--exec-root <dir>', 'root directory of run-time state (sandboxes)', '/run/cnm')
    .option('-p, --pidfile <file>', 'path to the PID file', '/run/cnm/cnmd.pid')
    .addOption(
      new Option('-l, --log-level <level>', 'log level')
        .choices(['debug', 'info', 'warn', 'error'])
        .default('info'),
    )
    .option('--mtu <n>', 'default MTU of bridge networks', '1500')
    .option(
      '--dns <ip>',
      'DNS server for containers (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--resolv-conf <file>',
      "resolv.conf naming the daemon's upstream DNS servers (re-read when it changes)",
      '/etc/resolv.conf',
    )
    .option('--bip <cidr>', 'address and prefix of the default bridge, e.g. 172.17.0.1/16')
    .option('--bridge-name <name>', 'kernel name of the default bridge', 'cnm0')
    .option('--cluster-store <url>', 'etcd cluster for overlay networks: etcd://H1:2379,H2:2379')
    .option('--advertise-addr <ip>', "this host's underlay address (VXLAN endpoint)")
    .option(
      '--cluster-store-opt <k=v>',
      'kv.cacertfile, kv.certfile, kv.keyfile (TLS to etcd; repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--config-file <file>',
      'daemon configuration file (JSON, dockerd daemon.json keys)',
      '/etc/cnm/daemon.json',
    )
    .allowExcessArguments(false);
  program.parse(argv);
  const o = program.opts<Record<string, string | string[]>>();
  let file: Record<string, unknown> = {};
  const cfgPath = o.configFile as string;
  if (existsSync(cfgPath)) {
    try {
      file = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`Cannot read config file "${cfgPath}"`, { cause: err });
    }
  }
  // Flags given on the command line win over the file, as with dockerd.
  const pick = <T>(flag: string, key: string, conv: (v: unknown) => T): T => {
    const src = program.getOptionValueSource(flag);
    if (src === 'cli' || !(key in file)) return conv(o[flag]);
    return conv(file[key]);
  };
  const bip = pick('bip', 'bip', (v) => (v === undefined ? undefined : String(v)));
  const dataRoot = pick('dataRoot', 'data-root', String);
  return {
    api: readApiAccessConfig(program, file, dataRoot),
    dataRoot,
    execRoot: pick('execRoot', 'exec-root', String),
    pidfile: pick('pidfile', 'pidfile', String),
    logLevel: pick('logLevel', 'log-level', (v) => String(v) as Level),
    mtu: pick('mtu', 'mtu', Number),
    dns: pick('dns', 'dns', (v) => (Array.isArray(v) ? v.map(String) : [])),
    resolvConf: pick('resolvConf', 'resolv-conf', String),
    ...(bip ? { bip } : {}),
    bridgeName: pick('bridgeName', 'bridge-name', String),
    ...(o.clusterStore ? { clusterStore: String(o.clusterStore) } : {}),
    ...(o.advertiseAddr ? { advertiseAddr: String(o.advertiseAddr) } : {}),
    clusterStoreOpts: (o.clusterStoreOpt as string[] | undefined) ?? [],
    nftTable: 'cnm',
  };
}

function makeLogger(level: Level) {
  return (l: Level, msg: string): void => {
    if (LEVELS[l] < LEVELS[level]) return;
    process.stderr.write(`${new Date().toISOString()} ${l.toUpperCase().padEnd(5)} ${msg}\n`);
  };
}

function bipSubnet(bip: string): string {
  const [addr, bits] = bip.split('/');
  return `${addr}/${bits}`;
}

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv);
  const log = makeLogger(cfg.logLevel);
  if (!Number.isInteger(cfg.mtu) || cfg.mtu < 68 || cfg.mtu > 65535)
    throw new Error(`Invalid --mtu "${cfg.mtu}"`);
  for (const d of [cfg.dataRoot, cfg.execRoot, dirname(cfg.pidfile)])
    mkdirSync(d, { recursive: true });
  if (existsSync(cfg.pidfile)) {
    const pid = Number(readFileSync(cfg.pidfile, 'utf8').trim());
    if (pid > 0 && pid !== process.pid && existsSync(`/proc/${pid}`)) {
      throw new Error(`pid file found, ensure cnmd is not running or delete ${cfg.pidfile}`);
    }
  }
  writeFileSync(cfg.pidfile, `${process.pid}\n`);

  const kernel = await createKernel();
  // Probed once, by trying, in a temporary namespace under the exec root (and the daemon's own
  // for nftables); drivers get the result injected.
  const probeStarted = Date.now();
  const capabilities = await detectCapabilities(kernel, {
    probeNs: join(cfg.execRoot, `probe-${process.pid}`),
  });
  const lacking = Object.entries(capabilities).filter(([, v]) => v.present === false);
  log(
    'info',
    `Probed kernel features in ${Date.now() - probeStarted} ms; missing: ${lacking.map(([k]) => k).join(', ') || 'none'}`,
  );
  const store = SqliteStore.open(join(cfg.dataRoot, 'cnm.db'));
  const drivers = new DriverRegistry();
  const bridgeDriver = new BridgeDriver(kernel, {
    table: cfg.nftTable,
    bridgePrefix: 'cnmbr-',
    defaultBridgeName: cfg.bridgeName,
    mtu: cfg.mtu,
  });
  drivers.register(bridgeDriver);
  drivers.register(hostDriver());
  drivers.register(noneDriver());
  drivers.register(macvlanDriver({ kernel, capabilities }));
  drivers.register(ipvlanDriver({ kernel, capabilities }));
  const overlayDriver = new OverlayDriver(kernel, bridgeDriver, {
    table: cfg.nftTable,
    ...(cfg.clusterStore && cfg.advertiseAddr ? { advertiseAddr: cfg.advertiseAddr } : {}),
  });
  drivers.register(overlayDriver);
  const cluster = cfg.clusterStore ? await joinCluster(cfg, overlayDriver, log) : undefined;
  let defaultBridgeSubnet: string | undefined;
  if (cfg.bip) defaultBridgeSubnet = bipSubnet(cfg.bip);
  // The addon's UDP listeners answer repeated queries off the JS thread; dgram otherwise.
  const nativeDns = dnsUdpAvailable();
  if (!nativeDns)
    log('warn', 'DNS serves UDP through node:dgram: the addon has no native listeners');
  const dns = new DnsService({
    servers: cfg.dns,
    resolvConfPath: cfg.resolvConf,
    log,
    ...(nativeDns ? { udp: openDnsUdp } : {}),
  });
  // The policy engine changes labels through the controller, which tells it back (events.ts).
  let controllerRef: Controller | undefined;
  const policy = new PolicyEngine(kernel, store, {
    table: `${cfg.nftTable}_policy`,
    log,
    relabel: (id, set, remove) => controllerRef!.updateContainerLabels(id, set, remove),
    bridgedFiltering: (id, on) => controllerRef!.setBridgedFiltering(id, on),
  });
  await policy.init();
  const controller = new Controller(kernel, store, drivers, {
    dataRoot: cfg.dataRoot,
    execRoot: cfg.execRoot,
    vethPrefix: 'cnmv',
    defaultBridgeName: cfg.bridgeName,
    ...(defaultBridgeSubnet ? { defaultBridgeSubnet } : {}),
    mtu: cfg.mtu,
    dns: cfg.dns,
    hostResolvConf: () => {
      try {
        return readFileSync(cfg.resolvConf, 'utf8');
      } catch {
        return '';
      }
    },
    observer: dns,
    balancer: bridgeDriver,
    policy,
    ...(cluster ? { cluster: cluster.agent } : {}),
    version: VERSION,
    log,
  });
  controllerRef = controller;
  const started = Date.now();
  await controller.init();
  // Drift repair: what cnm owns and someone removed comes back within about a second.
  const reconciler = startReconciler({
    checks: [
      {
        name: 'nftables',
        run: async () => {
          const done = await bridgeDriver.repairFirewall();
          for (const line of done) log('warn', `Drift repaired: nftables ${line}`);
          return done;
        },
      },
      {
        name: 'policy',
        // Listing a large policy table holds the engine's lock for tens of ms: at most 3% of
        // the time (every pass while it is small).
        share: 0.03,
        run: async () => {
          const done = await policy.verify();
          for (const line of done) log('warn', `Drift repaired: policy ${line}`);
          return done;
        },
      },
      { name: 'links', run: () => controller.repairDrift() },
    ],
    log,
  });
  log('info', `Restored state in ${Date.now() - started} ms`);

  // cnmd itself always runs the bridge driver (the predefined `bridge` network).
  const daemonNeeds: KernelFeature[] = [
    'netns',
    'veth',
    'bridge',
    'nftables',
    'nft-inet',
    'nft-bridge',
  ];
  const doctor = async () =>
    assessHost({
      capabilities,
      tuning: await readHostTuning(kernel),
      requirements: [
        { by: 'cnmd', features: daemonNeeds },
        ...controller.kernelNeeds().map((n) => ({
          by: `network "${n.network}" (driver ${n.driver})`,
          features: n.features,
        })),
      ],
    });
  const handler = createApiHandler(controller, {
    log: (l, m) => log(l as Level, m),
    doctor,
    policy,
    services: controller,
    dnsMetrics: () => dns.stats(),
  });
  const { listeners, audit } = await openApi(handler, cfg.api, log);
  log('info', `cnmd ${VERSION} ready; audit log ${audit.path}`);

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log('info', `Received ${signal}, shutting down (containers keep running)`);
    // Stop accepting, let requests in flight finish (bounded), then stop the rest.
    const r = await listeners.shutdown(SHUTDOWN_GRACE_MS);
    log(
      'info',
      `API closed: ${r.inFlight - r.cut} of ${r.inFlight} requests in flight finished, ${r.cut} cut after ${SHUTDOWN_GRACE_MS} ms, ${r.streamsCut} streams ended`,
    );
    await reconciler.stop();
    await controller.close();
    await cluster?.agent.close();
    await cluster?.store.close();
    await dns.close();
    await store.close();
    await kernel.close();
    await audit.close();
    rmSync(cfg.pidfile, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/**
 * Connects to etcd (retrying for a while: the cluster may be starting too), registers this host
 * and starts following the other hosts' endpoints.
 */
async function joinCluster(
  cfg: DaemonConfig,
  sink: OverlayDriver,
  log: (l: Level, m: string) => void,
): Promise<{ store: EtcdStore; agent: Cluster }> {
  const url = cfg.clusterStore!;
  if (!url.startsWith('etcd://')) {
    throw new Error(`Invalid --cluster-store "${url}": cnm speaks to etcd only (etcd://H1:2379,…)`);
  }
  if (!cfg.advertiseAddr) throw new Error('--cluster-store needs --advertise-addr');
  const opts = Object.fromEntries(cfg.clusterStoreOpts.map((kv) => kv.split(/=(.*)/s, 2)));
  const tls = opts['kv.cacertfile'] !== undefined;
  const endpoints = url
    .slice('etcd://'.length)
    .split(',')
    .map((h) => `${tls ? 'https' : 'http'}://${h}`);
  const read = (k: string): Buffer | undefined =>
    opts[k] !== undefined ? readFileSync(opts[k] as string) : undefined;
  let store: EtcdStore | undefined;
  for (let attempt = 0; !store; attempt++) {
    try {
      store = await EtcdStore.connect({
        endpoints,
        namespace: 'cnm/',
        ...(tls
          ? {
              tls: {
                ca: read('kv.cacertfile')!,
                ...(read('kv.certfile') ? { cert: read('kv.certfile')! } : {}),
                ...(read('kv.keyfile') ? { key: read('kv.keyfile')! } : {}),
              },
            }
          : {}),
        onListenerError: (err, ev) =>
          log('error', `Cluster watcher failed on "${ev.key}": ${describeError(err)}`),
      });
    } catch (err) {
      if (attempt >= 20) throw err;
      log('warn', `${describeError(err)}; retrying`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const agent = new Cluster(store, sink, { advertiseAddr: cfg.advertiseAddr, log });
  await agent.start();
  return { store, agent };
}

main().catch((err: unknown) => {
  process.stderr.write(`cnmd: ${describeError(err)}\n`);
  process.exit(1);
});
