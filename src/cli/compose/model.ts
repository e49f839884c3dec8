/**
 * The Compose file model: parses a Compose specification file (YAML 1.2), interpolates `${VAR}`,
 * validates every key and returns a typed project in start order. Pure: no I/O, the caller passes
 * the text, the environment and the directory the project name comes from.
 */
import { parseDocument } from 'yaml';

/** A Compose file cnm cannot run, with the key at fault in the message. */
export class ComposeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ComposeError';
  }
}

/** One `ipam.config[]` entry of a top-level network. */
export interface ComposeIpamPool {
  subnet?: string;
  ipRange?: string;
  gateway?: string;
  auxAddresses?: Record<string, string>;
}

/** A top-level network, resolved to its real name. */
export interface ComposeNetwork {
  /** The key in the file (`frontend`, `default`). */
  key: string;
  /** The name on the daemon: `<project>_<key>`, `name:`, or the external network's name. */
  name: string;
  /** Declared `external`: must exist, never created or removed. */
  external: boolean;
  driver?: string;
  driverOpts: Record<string, string>;
  internal: boolean;
  attachable: boolean;
  enableIPv6?: boolean;
  labels: Record<string, string>;
  ipam?: { driver?: string; options: Record<string, string>; config: ComposeIpamPool[] };
}

/** A service's attachment to one network. */
export interface ComposeServiceNetwork {
  /** The top-level network key. */
  key: string;
  aliases: string[];
  ipv4Address?: string;
  ipv6Address?: string;
}

/** A service, resolved. */
export interface ComposeService {
  name: string;
  /** `container_name`, else `<project>-<service>-1`. */
  containerName: string;
  /** `entrypoint` + `command`, already split. */
  command: string[];
  /** `K=V` entries. */
  environment: string[];
  workingDir?: string;
  hostname?: string;
  labels: Record<string, string>;
  /** `host`, `none` or `bridge` instead of project networks. */
  networkMode?: 'host' | 'none' | 'bridge';
  /** In attach order: the first is the primary (default route). */
  networks: ComposeServiceNetwork[];
  /** `-p` style specs. */
  ports: string[];
  dns: string[];
  dnsSearch: string[];
  dnsOpt: string[];
  sysctls: Record<string, string>;
  macAddress?: string;
  /** Services started before this one. */
  dependsOn: string[];
  /**
   * `deploy.replicas` was given: the service runs as a cnm service of that many replicas on its
   * one network, reached through a VIP (`vip`, the default) or DNS round robin (`dnsrr`).
   */
  deploy?: { replicas: number; endpointMode: 'vip' | 'dnsrr' };
}

/** A validated project. */
export interface ComposeProject {
  name: string;
  /** In start order (dependencies first). */
  services: ComposeService[];
  /** Only the networks some service uses, in declaration order (`default` first when used). */
  networks: ComposeNetwork[];
  /** One-line notices for ignored keys and unset variables. */
  notices: string[];
}

/** Inputs of {@link loadCompose}. */
export interface LoadOptions {
  /** `-p`; wins over `COMPOSE_PROJECT_NAME`, the file's `name:` and the directory. */
  projectName?: string;
  /** The project directory; its base name is the project name of last resort. */
  projectDir: string;
  /** For `${VAR}` interpolation, `environment` entries without a value, `COMPOSE_PROJECT_NAME`. */
  env: Record<string, string | undefined>;
  /** The file's name, for messages. */
  fileName?: string;
}

type Obj = Record<string, unknown>;

const TOP_KEYS = new Set(['version', 'name', 'services', 'networks']);
const TOP_REFUSED: Record<string, string> = {
  volumes: 'cnm containers use the host filesystem; there are no volumes',
  secrets: 'cnm has no secrets store',
  configs: 'cnm has no configs store',
  include: 'include is not supported; merge the files into one',
};

const SERVICE_KEYS = new Set([
  'command',
  'entrypoint',
  'networks',
  'ports',
  'dns',
  'dns_search',
  'dns_opt',
  'sysctls',
  'hostname',
  'environment',
  'working_dir',
  'labels',
  'depends_on',
  'network_mode',
  'container_name',
  'mac_address',
  'deploy',
]);
/** Keys with no meaning for processes on the host filesystem: ignored with a notice. */
const SERVICE_IGNORED: Record<string, string> = {
  image: 'cnm runs host processes, not images',
  build: 'cnm runs host processes, not images',
  pull_policy: 'cnm runs host processes, not images',
  platform: 'cnm runs host processes, not images',
  expose: 'informational only; every port is reachable on the service networks',
  restart: 'cnm has no restart policies',
  healthcheck: 'cnm has no health checks',
  logging: 'cnm writes one log file per container',
  stop_signal: 'cnm stops with SIGTERM',
  stop_grace_period: 'use `cnm compose down -t`',
  tty: 'cnm containers have no terminal',
  stdin_open: 'cnm containers have no stdin',
  init: 'cnm always reaps the process',
};
/** Keys refused with the reason; anything else unknown is refused generically. */
const SERVICE_REFUSED: Record<string, string> = {
  volumes: 'cnm containers use the host filesystem; there are no volumes',
  links: 'legacy links are not supported; use networks with aliases',
  extra_hosts: 'not supported by cnm',
  env_file: 'not supported by cnm; use environment',
  profiles: 'profiles are not supported by cnm',
  scale: 'cnm runs one container per service',
  user: 'cnm runs processes as the daemon user',
  privileged: 'not supported by cnm',
  cap_add: 'not supported by cnm',
  cap_drop: 'not supported by cnm',
  devices: 'not supported by cnm',
  extends: 'extends is not supported; merge the services',
};
const SERVICE_NETWORK_KEYS = new Set([
  'aliases',
  'ipv4_address',
  'ipv6_address',
  'priority',
  'gw_priority',
]);
const NETWORK_KEYS = new Set([
  'driver',
  'driver_opts',
  'internal',
  'attachable',
  'enable_ipv6',
  'labels',
  'ipam',
  'external',
  'name',
]);
const IPAM_KEYS = new Set(['driver', 'config', 'options']);
/** `deploy` keys cnm acts on. */
const DEPLOY_KEYS = new Set(['replicas', 'endpoint_mode', 'mode']);
/** `deploy` keys with no meaning here: ignored with a notice. */
const DEPLOY_IGNORED: Record<string, string> = {
  resources: 'cnm sets no resource limits',
  restart_policy: 'cnm has no restart policies',
  placement: 'cnm runs every replica on this host',
  update_config: 'cnm has no rolling updates',
  rollback_config: 'cnm has no rolling updates',
  labels: 'cnm services carry the service labels only',
};
/** Most replicas a cnm service may have (the daemon checks too). */
const MAX_REPLICAS = 256;
const POOL_KEYS = new Set(['subnet', 'ip_range', 'gateway', 'aux_addresses']);
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const PROJECT_RE = /^[a-z0-9][a-z0-9_-]*$/;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(where: string, problem: string): never {
  throw new ComposeError(`${where}: ${problem}`);
}

function expectObj(v: unknown, where: string): Obj {
  if (!isObj(v)) fail(where, `must be a mapping, got ${typeName(v)}`);
  return v;
}

function scalar(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  fail(where, `must be a string, got ${typeName(v)}`);
}

function optString(v: unknown, where: string): string | undefined {
  return v === undefined || v === null ? undefined : scalar(v, where);
}

function bool(v: unknown, where: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') fail(where, `must be a boolean, got ${typeName(v)}`);
  return v;
}

/** A string or a list of strings (`dns`, `dns_search`). */
function stringList(v: unknown, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.map((x, i) => scalar(x, `${where}[${i}]`));
  return [scalar(v, where)];
}

/** A mapping or a `k=v` list (`labels`, `sysctls`, `driver_opts`). */
function keyValues(v: unknown, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === undefined || v === null) return out;
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      const s = scalar(item, `${where}[${i}]`);
      const eq = s.indexOf('=');
      if (eq === 0) fail(`${where}[${i}]`, `"${s}" has no key`);
      out[eq < 0 ? s : s.slice(0, eq)] = eq < 0 ? '' : s.slice(eq + 1);
    });
    return out;
  }
  for (const [k, x] of Object.entries(expectObj(v, where))) {
    out[k] = x === null ? '' : scalar(x, `${where}.${k}`);
  }
  return out;
}

function checkKeys(
  o: Obj,
  where: string,
  allowed: Set<string>,
  refused: Record<string, string> = {},
): void {
  for (const k of Object.keys(o)) {
    if (allowed.has(k) || k.startsWith('x-')) continue;
    const why = refused[k];
    fail(`${where}.${k}`, why ?? 'unknown key; cnm does not support it');
  }
}

/**
 * Splits a command string into arguments as Compose does (go-shellwords): whitespace separates,
 * single quotes are literal, double quotes group, a backslash escapes the next character outside
 * single quotes. No variable or glob expansion.
 * @throws ComposeError on an unterminated quote or a trailing backslash
 * @example splitCommand(`sh -c 'echo "hi there"'`) // ['sh', '-c', 'echo "hi there"']
 */
export function splitCommand(s: string): string[] {
  const args: string[] = [];
  let cur = '';
  let inArg = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? '';
    if (c === '\\' && quote !== "'") {
      i++;
      if (i >= s.length) throw new ComposeError(`Invalid command "${s}": trailing backslash`);
      cur += s[i] ?? '';
      inArg = true;
    } else if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inArg = true;
    } else if (/\s/.test(c)) {
      if (inArg) args.push(cur);
      cur = '';
      inArg = false;
    } else {
      cur += c;
      inArg = true;
    }
  }
  if (quote !== undefined) throw new ComposeError(`Invalid command "${s}": unterminated ${quote}`);
  if (inArg) args.push(cur);
  return args;
}

/**
 * Compose's variable interpolation in one string: `$$` is a literal `$`; `$VAR`, `${VAR}`,
 * `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`,
 * `${VAR+alt}`. Unset variables without a default read as empty and are reported in `unset`.
 * @throws ComposeError for `?` forms whose variable is unset (or empty with `:?`)
 */
export function interpolate(
  s: string,
  env: Record<string, string | undefined>,
  unset: Set<string>,
  where: string,
): string {
  return s.replace(
    /\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*)|\{[^}]*\}?)/g,
    (match, dollar: string, braced?: string, op?: string, arg?: string, bare?: string) => {
      if (dollar === '$') return '$';
      const name = braced ?? bare;
      if (name === undefined) fail(where, `invalid interpolation format "${match}"`);
      const value = env[name];
      const emptyCounts = op?.startsWith(':') === true;
      const isSet = value !== undefined && !(emptyCounts && value === '');
      switch (op?.replace(':', '')) {
        case '-':
          return isSet ? value : (arg ?? '');
        case '?':
          if (!isSet) fail(where, `required variable ${name} is missing a value: ${arg ?? ''}`);
          return value;
        case '+':
          return isSet ? (arg ?? '') : '';
        default:
          if (value === undefined) unset.add(name);
          return value ?? '';
      }
    },
  );
}

function interpolateTree(
  v: unknown,
  env: Record<string, string | undefined>,
  unset: Set<string>,
  where: string,
): unknown {
  if (typeof v === 'string') return interpolate(v, env, unset, where);
  if (Array.isArray(v)) return v.map((x, i) => interpolateTree(x, env, unset, `${where}[${i}]`));
  if (isObj(v)) {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v))
      out[k] = interpolateTree(x, env, unset, `${where}.${k}`);
    return out;
  }
  return v;
}

/**
 * Compose's project name rules: lower case, `[a-z0-9_-]`, starting with a letter or digit. A
 * directory name is normalised to fit; an explicit name must already fit.
 * @throws ComposeError when an explicit name does not fit
 */
export function projectNameOf(
  explicit: string | undefined,
  fromDir: string,
  source = '-p',
): string {
  if (explicit !== undefined && explicit !== '') {
    if (!PROJECT_RE.test(explicit)) {
      throw new ComposeError(
        `Invalid project name "${explicit}" (${source}): it must contain only characters from [a-z0-9_-] and start with [a-z0-9]`,
      );
    }
    return explicit;
  }
  const base = fromDir.replace(/\/+$/, '').split('/').pop() ?? '';
  const normalised = base.toLowerCase().replace(/[^a-z0-9_-]/g, '');
  const trimmed = normalised.replace(/^[_-]+/, '');
  if (trimmed === '') {
    throw new ComposeError(
      `Cannot derive a project name from directory "${fromDir}": use -p or a top-level name`,
    );
  }
  return trimmed;
}

function parseEnvironment(
  v: unknown,
  where: string,
  env: Record<string, string | undefined>,
): string[] {
  if (v === undefined || v === null) return [];
  const out: string[] = [];
  const add = (k: string, value: string | undefined): void => {
    // A bare key takes the CLI's own value and is left out when that is unset, as in Compose.
    if (value !== undefined) out.push(`${k}=${value}`);
  };
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      const s = scalar(item, `${where}[${i}]`);
      const eq = s.indexOf('=');
      if (eq === 0) fail(`${where}[${i}]`, `"${s}" has no variable name`);
      if (eq < 0) add(s, env[s]);
      else out.push(s);
    });
    return out;
  }
  for (const [k, x] of Object.entries(expectObj(v, where))) {
    add(k, x === null ? env[k] : scalar(x, `${where}.${k}`));
  }
  return out;
}

function parsePort(v: unknown, where: string): string {
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  const o = expectObj(v, where);
  checkKeys(o, where, new Set(['target', 'published', 'host_ip', 'protocol', 'mode', 'name']));
  const target = optString(o['target'], `${where}.target`);
  if (target === undefined) fail(`${where}.target`, 'is required');
  const published = optString(o['published'], `${where}.published`);
  const hostIp = optString(o['host_ip'], `${where}.host_ip`);
  const proto = optString(o['protocol'], `${where}.protocol`);
  const hasPublished = published !== undefined && published !== '';
  let spec = hasPublished ? `${published}:${target}` : target;
  if (hostIp !== undefined && hostIp !== '') {
    const ip = hostIp.includes(':') ? `[${hostIp}]` : hostIp;
    spec = `${ip}:${hasPublished ? published : ''}:${target}`;
  }
  return proto === undefined ? spec : `${spec}/${proto}`;
}

interface RawServiceNetwork extends ComposeServiceNetwork {
  priority: number;
  gwPriority: number;
}

function parseServiceNetworks(v: unknown, where: string): RawServiceNetwork[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) {
    return v.map((x, i) => ({
      key: scalar(x, `${where}[${i}]`),
      aliases: [],
      priority: 0,
      gwPriority: 0,
    }));
  }
  return Object.entries(expectObj(v, where)).map(([key, cfg]) => {
    const out: RawServiceNetwork = { key, aliases: [], priority: 0, gwPriority: 0 };
    if (cfg === null || cfg === undefined) return out;
    const w = `${where}.${key}`;
    const o = expectObj(cfg, w);
    checkKeys(o, w, SERVICE_NETWORK_KEYS, {
      link_local_ips: 'link-local addresses are not supported by cnm',
      driver_opts: 'endpoint driver options are not supported by cnm compose',
      mac_address: 'use the service-level mac_address',
    });
    out.aliases = stringList(o['aliases'], `${w}.aliases`);
    const v4 = optString(o['ipv4_address'], `${w}.ipv4_address`);
    if (v4 !== undefined) out.ipv4Address = v4;
    const v6 = optString(o['ipv6_address'], `${w}.ipv6_address`);
    if (v6 !== undefined) out.ipv6Address = v6;
    for (const [k, field] of [
      ['priority', 'priority'],
      ['gw_priority', 'gwPriority'],
    ] as const) {
      const p = o[k];
      if (p === undefined || p === null) continue;
      if (typeof p !== 'number' || !Number.isInteger(p)) fail(`${w}.${k}`, 'must be an integer');
      out[field] = p;
    }
    return out;
  });
}

function parseDependsOn(v: unknown, where: string, notices: string[]): string[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.map((x, i) => scalar(x, `${where}[${i}]`));
  return Object.entries(expectObj(v, where)).map(([name, cfg]) => {
    if (cfg !== null && cfg !== undefined) {
      const w = `${where}.${name}`;
      const o = expectObj(cfg, w);
      checkKeys(o, w, new Set(['condition', 'required', 'restart']));
      const cond = optString(o['condition'], `${w}.condition`);
      if (cond !== undefined && cond !== 'service_started') {
        if (cond !== 'service_healthy' && cond !== 'service_completed_successfully') {
          fail(`${w}.condition`, `unknown condition "${cond}"`);
        }
        notices.push(`${w}.condition "${cond}" is treated as service_started (start order only)`);
      }
    }
    return name;
  });
}

function parseNetwork(key: string, v: unknown, project: string): ComposeNetwork {
  const where = `networks.${key}`;
  const o = v === null || v === undefined ? {} : expectObj(v, where);
  checkKeys(o, where, NETWORK_KEYS, {
    enable_ipv4: 'IPv4 cannot be disabled in cnm',
  });
  let external = false;
  let name = optString(o['name'], `${where}.name`);
  const ext = o['external'];
  if (isObj(ext)) {
    // Legacy form `external: {name: x}`.
    checkKeys(ext, `${where}.external`, new Set(['name']));
    external = true;
    name = optString(ext['name'], `${where}.external.name`) ?? name;
  } else {
    external = bool(ext, `${where}.external`) ?? false;
  }
  if (external) {
    const extra = Object.keys(o).filter(
      (k) => !['external', 'name'].includes(k) && !k.startsWith('x-'),
    );
    if (extra.length > 0) {
      fail(where, `conflicting parameters "external" and "${extra[0]}" specified`);
    }
  }
  const net: ComposeNetwork = {
    key,
    name: name ?? (external ? key : `${project}_${key}`),
    external,
    driverOpts: keyValues(o['driver_opts'], `${where}.driver_opts`),
    internal: bool(o['internal'], `${where}.internal`) ?? false,
    attachable: bool(o['attachable'], `${where}.attachable`) ?? false,
    labels: keyValues(o['labels'], `${where}.labels`),
  };
  const driver = optString(o['driver'], `${where}.driver`);
  if (driver !== undefined) net.driver = driver;
  const v6 = bool(o['enable_ipv6'], `${where}.enable_ipv6`);
  if (v6 !== undefined) net.enableIPv6 = v6;
  if (o['ipam'] !== undefined && o['ipam'] !== null) {
    const w = `${where}.ipam`;
    const ipam = expectObj(o['ipam'], w);
    checkKeys(ipam, w, IPAM_KEYS);
    const cfg = ipam['config'];
    if (cfg !== undefined && cfg !== null && !Array.isArray(cfg)) {
      fail(`${w}.config`, `must be a list, got ${typeName(cfg)}`);
    }
    const pools = (cfg ?? []).map((p: unknown, i: number) => {
      const pw = `${w}.config[${i}]`;
      const po = expectObj(p, pw);
      checkKeys(po, pw, POOL_KEYS);
      const pool: ComposeIpamPool = {};
      const subnet = optString(po['subnet'], `${pw}.subnet`);
      if (subnet !== undefined) pool.subnet = subnet;
      const range = optString(po['ip_range'], `${pw}.ip_range`);
      if (range !== undefined) pool.ipRange = range;
      const gw = optString(po['gateway'], `${pw}.gateway`);
      if (gw !== undefined) pool.gateway = gw;
      const aux = keyValues(po['aux_addresses'], `${pw}.aux_addresses`);
      if (Object.keys(aux).length > 0) pool.auxAddresses = aux;
      if (pool.subnet === undefined && Object.keys(pool).length > 0) {
        fail(`${pw}.subnet`, 'is required with ip_range, gateway or aux_addresses');
      }
      return pool;
    });
    net.ipam = {
      options: keyValues(ipam['options'], `${w}.options`),
      config: pools.filter((p: ComposeIpamPool) => p.subnet !== undefined),
    };
    const ipamDriver = optString(ipam['driver'], `${w}.driver`);
    if (ipamDriver !== undefined) net.ipam.driver = ipamDriver;
  }
  return net;
}

interface RawService extends ComposeService {
  rawNetworks: RawServiceNetwork[];
}

function parseService(
  name: string,
  v: unknown,
  project: string,
  env: Record<string, string | undefined>,
  notices: string[],
): RawService {
  const where = `services.${name}`;
  if (!NAME_RE.test(name)) fail(where, 'service names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*');
  const o = expectObj(v, where);
  for (const k of Object.keys(o)) {
    const why = SERVICE_IGNORED[k];
    if (why !== undefined) notices.push(`${where}.${k} ignored: ${why}`);
  }
  checkKeys(o, where, new Set([...SERVICE_KEYS, ...Object.keys(SERVICE_IGNORED)]), SERVICE_REFUSED);

  const words = (key: string): string[] => {
    const x = o[key];
    if (x === undefined || x === null) return [];
    if (typeof x === 'string') return splitCommand(x);
    if (Array.isArray(x)) return x.map((a, i) => scalar(a, `${where}.${key}[${i}]`));
    fail(`${where}.${key}`, `must be a string or a list, got ${typeName(x)}`);
  };
  const command = [...words('entrypoint'), ...words('command')];
  if (command.length === 0) {
    fail(where, 'has no command; cnm runs host processes, so "command" is required');
  }
  const containerName = optString(o['container_name'], `${where}.container_name`);
  const svc: RawService = {
    name,
    containerName: containerName ?? `${project}-${name}-1`,
    command,
    environment: parseEnvironment(o['environment'], `${where}.environment`, env),
    labels: keyValues(o['labels'], `${where}.labels`),
    networks: [],
    rawNetworks: parseServiceNetworks(o['networks'], `${where}.networks`),
    ports: Array.isArray(o['ports'])
      ? o['ports'].map((p, i) => parsePort(p, `${where}.ports[${i}]`))
      : o['ports'] === undefined || o['ports'] === null
        ? []
        : fail(`${where}.ports`, `must be a list, got ${typeName(o['ports'])}`),
    dns: stringList(o['dns'], `${where}.dns`),
    dnsSearch: stringList(o['dns_search'], `${where}.dns_search`),
    dnsOpt: stringList(o['dns_opt'], `${where}.dns_opt`),
    sysctls: keyValues(o['sysctls'], `${where}.sysctls`),
    dependsOn: parseDependsOn(o['depends_on'], `${where}.depends_on`, notices),
  };
  const wd = optString(o['working_dir'], `${where}.working_dir`);
  if (wd !== undefined) svc.workingDir = wd;
  const hn = optString(o['hostname'], `${where}.hostname`);
  if (hn !== undefined) svc.hostname = hn;
  const mac = optString(o['mac_address'], `${where}.mac_address`);
  if (mac !== undefined) svc.macAddress = mac;
  const mode = optString(o['network_mode'], `${where}.network_mode`);
  if (mode !== undefined) {
    if (mode !== 'host' && mode !== 'none' && mode !== 'bridge') {
      fail(`${where}.network_mode`, `"${mode}" is not supported by cnm (use host, none or bridge)`);
    }
    if (o['networks'] !== undefined && o['networks'] !== null) {
      fail(where, 'network_mode and networks cannot be combined');
    }
    svc.networkMode = mode;
  }
  const deploy = parseDeploy(o['deploy'], `${where}.deploy`, notices);
  if (deploy !== undefined) {
    // Replicas are N containers the daemon makes from a command, environment and labels, on one
    // network and with no host port; per-container settings have nowhere to go.
    for (const k of [
      'container_name',
      'ports',
      'mac_address',
      'network_mode',
      'hostname',
      'working_dir',
      'dns',
      'dns_search',
      'dns_opt',
      'sysctls',
    ] as const) {
      if (o[k] !== undefined && o[k] !== null) {
        fail(`${where}.${k}`, 'cannot be combined with deploy.replicas');
      }
    }
    svc.deploy = deploy;
  }
  return svc;
}

function parseDeploy(
  v: unknown,
  where: string,
  notices: string[],
): ComposeService['deploy'] | undefined {
  if (v === undefined || v === null) return undefined;
  const o = expectObj(v, where);
  for (const k of Object.keys(o)) {
    const why = DEPLOY_IGNORED[k];
    if (why !== undefined) notices.push(`${where}.${k} ignored: ${why}`);
  }
  checkKeys(o, where, new Set([...DEPLOY_KEYS, ...Object.keys(DEPLOY_IGNORED)]));
  const mode = optString(o['mode'], `${where}.mode`);
  if (mode !== undefined && mode !== 'replicated') {
    fail(`${where}.mode`, `"${mode}" is not supported by cnm (only replicated)`);
  }
  const em = optString(o['endpoint_mode'], `${where}.endpoint_mode`) ?? 'vip';
  if (em !== 'vip' && em !== 'dnsrr') {
    fail(`${where}.endpoint_mode`, `"${em}" is not supported (use vip or dnsrr)`);
  }
  const r = o['replicas'];
  if (r === undefined || r === null) {
    // Without replicas, deploy changes nothing: one plain container as before.
    if (o['endpoint_mode'] !== undefined) {
      notices.push(`${where}.endpoint_mode ignored: it needs deploy.replicas`);
    }
    return undefined;
  }
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r > MAX_REPLICAS) {
    fail(`${where}.replicas`, `must be an integer from 0 to ${MAX_REPLICAS}`);
  }
  return { replicas: r, endpointMode: em };
}

/** Dependencies first; ties keep declaration order. */
function startOrder(services: RawService[]): RawService[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  for (const s of services) {
    for (const d of s.dependsOn) {
      if (!byName.has(d)) {
        fail(`services.${s.name}.depends_on`, `depends on undefined service "${d}"`);
      }
    }
  }
  const out: RawService[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: RawService, path: string[]): void => {
    const st = state.get(s.name);
    if (st === 'done') return;
    if (st === 'visiting') {
      fail('services', `dependency cycle: ${[...path, s.name].join(' -> ')}`);
    }
    state.set(s.name, 'visiting');
    for (const d of s.dependsOn) visit(byName.get(d) as RawService, [...path, s.name]);
    state.set(s.name, 'done');
    out.push(s);
  };
  for (const s of services) visit(s, []);
  return out;
}

/**
 * Parses and validates a Compose file.
 * @throws ComposeError naming the file and the key at fault (YAML syntax errors included)
 * @example loadCompose('services:\n  web:\n    command: sleep 1\n', { projectDir: '/srv/app', env: {} })
 */
export function loadCompose(text: string, opts: LoadOptions): ComposeProject {
  const file = opts.fileName ?? 'compose.yaml';
  try {
    return load(text, opts);
  } catch (err) {
    if (err instanceof ComposeError) {
      throw new ComposeError(`Invalid compose file "${file}": ${err.message}`);
    }
    throw err;
  }
}

function load(text: string, opts: LoadOptions): ComposeProject {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  const [yamlErr] = doc.errors;
  if (yamlErr !== undefined) throw new ComposeError(yamlErr.message.split('\n')[0] ?? 'bad YAML');
  const unset = new Set<string>();
  const notices: string[] = [];
  const root = interpolateTree(doc.toJS({ maxAliasCount: 100 }) as unknown, opts.env, unset, '');
  const top = expectObj(root, 'top level');
  checkKeys(top, 'top level', TOP_KEYS, TOP_REFUSED);
  for (const n of unset) {
    notices.push(`The "${n}" variable is not set. Defaulting to a blank string.`);
  }
  if (top['version'] !== undefined) {
    notices.push('the attribute "version" is obsolete, it will be ignored');
  }
  const envName = opts.env['COMPOSE_PROJECT_NAME'];
  const project =
    opts.projectName !== undefined && opts.projectName !== ''
      ? projectNameOf(opts.projectName, opts.projectDir, '-p')
      : envName !== undefined && envName !== ''
        ? projectNameOf(envName, opts.projectDir, 'COMPOSE_PROJECT_NAME')
        : top['name'] !== undefined && top['name'] !== null
          ? projectNameOf(scalar(top['name'], 'name'), opts.projectDir, 'name')
          : projectNameOf(undefined, opts.projectDir);

  const rawServices = expectObj(top['services'] ?? null, 'services');
  if (Object.keys(rawServices).length === 0) fail('services', 'must define at least one service');
  const services = Object.entries(rawServices)
    .filter(([k]) => !k.startsWith('x-'))
    .map(([k, v]) => parseService(k, v, project, opts.env, notices));

  const declared = new Map<string, ComposeNetwork>();
  const rawNetworks =
    top['networks'] === undefined || top['networks'] === null
      ? {}
      : expectObj(top['networks'], 'networks');
  for (const [k, v] of Object.entries(rawNetworks)) {
    if (k.startsWith('x-')) continue;
    if (!NAME_RE.test(k))
      fail(`networks.${k}`, 'network keys must match [a-zA-Z0-9][a-zA-Z0-9_.-]*');
    declared.set(k, parseNetwork(k, v, project));
  }

  const used = new Set<string>();
  const names = new Set<string>();
  for (const s of services) {
    if (names.has(s.containerName)) {
      fail(`services.${s.name}`, `container name "${s.containerName}" is used twice`);
    }
    names.add(s.containerName);
    if (s.networkMode !== undefined) continue;
    if (s.rawNetworks.length === 0)
      s.rawNetworks.push({ key: 'default', aliases: [], priority: 0, gwPriority: 0 });
    for (const n of s.rawNetworks) {
      if (n.key !== 'default' && !declared.has(n.key)) {
        fail(`services.${s.name}.networks`, `refers to undefined network "${n.key}"`);
      }
      used.add(n.key);
    }
    // Compose attaches by gw_priority, then priority (both descending), then name.
    s.networks = [...s.rawNetworks]
      .sort(
        (a, b) =>
          b.gwPriority - a.gwPriority ||
          b.priority - a.priority ||
          (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
      )
      .map(({ key, aliases, ipv4Address, ipv6Address }) => {
        const out: ComposeServiceNetwork = { key, aliases };
        if (ipv4Address !== undefined) out.ipv4Address = ipv4Address;
        if (ipv6Address !== undefined) out.ipv6Address = ipv6Address;
        return out;
      });
    if (s.deploy !== undefined) {
      if (s.networks.length !== 1) {
        fail(`services.${s.name}.networks`, 'deploy.replicas needs exactly one network');
      }
      const n = s.networks[0]!;
      if (n.ipv4Address !== undefined || n.ipv6Address !== undefined) {
        fail(
          `services.${s.name}.networks.${n.key}`,
          'fixed addresses cannot be combined with deploy.replicas',
        );
      }
    }
  }
  if (used.has('default') && !declared.has('default')) {
    declared.set('default', parseNetwork('default', null, project));
  }
  const networks = [...declared.values()].filter((n) => used.has(n.key));
  networks.sort((a, b) => Number(b.key === 'default') - Number(a.key === 'default'));

  const ordered = startOrder(services).map(({ rawNetworks: _raw, ...s }) => s);
  return { name: project, services: ordered, networks, notices };
}
