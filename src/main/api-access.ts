/**
 * cnmd's API access flags, dockerd's names and meanings: `-H` (repeatable), `-G/--group`,
 * `--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey`; and cnm's `--insecure-tcp`
 * and `--audit-log`. The same keys are read from daemon.json (`hosts`, `group`, `tls`, …);
 * flags win. Opens the listeners with the socket group created when missing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestListener } from 'node:http';
import { Command, Option } from 'commander';
import { AuditLog } from '../api/audit.js';
import {
  ApiListeners,
  checkApiAccess,
  formatApiAddress,
  parseApiHost,
  type ApiAddress,
  type ApiTls,
} from '../api/listen.js';
import { ensureGroup } from '../kernel/host-group.js';
import { peerCredentials } from '../kernel/peer-credentials.js';

/** The default unix socket. */
export const DEFAULT_SOCKET = '/run/cnm/cnm.sock';
/** The default socket group, created when missing (dockerd's is `docker`). */
export const DEFAULT_GROUP = 'cnm';
const CERT_DIR = '/etc/cnm';

/** API access settings after flags and config file are merged. */
export interface ApiAccessConfig {
  addresses: ApiAddress[];
  /** Group of the unix sockets; `''` leaves them root:root. */
  group: string;
  /** TLS on TCP (`--tls`, implied by `--tlsverify`). */
  tls: boolean;
  /** Require client certificates signed by `tlsCaCert` (mTLS). */
  tlsVerify: boolean;
  tlsCaCert: string;
  tlsCert: string;
  tlsKey: string;
  insecureTcp: boolean;
  /** JSON-lines audit file. */
  auditLog: string;
}

const collect = (v: string, acc: string[]): string[] => [...acc, v];

function parseBool(flag: string): (v: string) => boolean {
  return (v) => {
    if (['true', '1'].includes(v)) return true;
    if (['false', '0'].includes(v)) return false;
    throw new Error(`Invalid value "${v}" for --${flag}: expected true or false`);
  };
}

/** Adds the API access flags to cnmd's command line. */
export function addApiAccessOptions(program: Command): Command {
  return program
    .option(
      '-H, --host <addr>',
      `daemon socket(s) to listen on: unix:///path, tcp://ADDR:PORT (repeatable; default unix://${DEFAULT_SOCKET})`,
      collect,
      [] as string[],
    )
    .option('-G, --group <group>', 'group of the unix socket (created when missing)', DEFAULT_GROUP)
    .addOption(
      new Option('--tls [bool]', 'use TLS on TCP; implied by --tlsverify').argParser(
        parseBool('tls'),
      ),
    )
    .addOption(
      new Option('--tlsverify [bool]', 'use TLS and require client certificates (mTLS)').argParser(
        parseBool('tlsverify'),
      ),
    )
    .option(
      '--tlscacert <file>',
      'trust client certificates signed by this CA',
      `${CERT_DIR}/ca.pem`,
    )
    .option('--tlscert <file>', 'server TLS certificate', `${CERT_DIR}/cert.pem`)
    .option('--tlskey <file>', 'server TLS key', `${CERT_DIR}/key.pem`)
    .option('--insecure-tcp', 'allow tcp:// hosts without TLS (anyone reaching the port is root)')
    .option(
      '--audit-log <file>',
      'audit log of state-changing requests (default <data-root>/audit.log)',
    );
}

/**
 * Reads the API access settings from the parsed flags and the config file (`hosts`, `group`,
 * `tls`, `tlsverify`, `tlscacert`, `tlscert`, `tlskey`, `insecure-tcp`, `audit-log`).
 * @throws Error for a bad address, a bad value, or TCP without TLS and without --insecure-tcp
 */
export function readApiAccessConfig(
  program: Command,
  file: Record<string, unknown>,
  dataRoot: string,
): ApiAccessConfig {
  const o = program.opts<Record<string, unknown>>();
  const pick = (flag: string, key: string): unknown => {
    const src = program.getOptionValueSource(flag);
    if (src === 'cli' || !(key in file)) return o[flag];
    return file[key];
  };
  const bool = (flag: string, key: string): boolean => {
    const v = pick(flag, key);
    if (v === undefined) return false;
    if (typeof v !== 'boolean')
      throw new Error(`Invalid "${key}" in the config file: expected true or false`);
    return v;
  };
  const str = (flag: string, key: string): string => {
    const v = pick(flag, key);
    if (typeof v !== 'string')
      throw new Error(`Invalid "${key}" in the config file: expected a string`);
    return v;
  };
  const tlsVerify = bool('tlsverify', 'tlsverify');
  const tls = tlsVerify || bool('tls', 'tls');
  let hosts = pick('host', 'hosts');
  if (!Array.isArray(hosts) || !hosts.every((h) => typeof h === 'string')) {
    throw new Error('Invalid "hosts" in the config file: expected an array of strings');
  }
  if (hosts.length === 0) hosts = [`unix://${DEFAULT_SOCKET}`];
  const addresses = (hosts as string[]).map((h) =>
    parseApiHost(h, { tls, defaultSocket: DEFAULT_SOCKET }),
  );
  const insecureTcp = bool('insecureTcp', 'insecure-tcp');
  checkApiAccess(addresses, { tls, insecureTcp });
  const audit = pick('auditLog', 'audit-log');
  return {
    addresses,
    group: str('group', 'group'),
    tls,
    tlsVerify,
    tlsCaCert: str('tlscacert', 'tlscacert'),
    tlsCert: str('tlscert', 'tlscert'),
    tlsKey: str('tlskey', 'tlskey'),
    insecureTcp,
    auditLog: typeof audit === 'string' && audit !== '' ? audit : join(dataRoot, 'audit.log'),
  };
}

function readPem(what: string, flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`Cannot read ${what} "${path}" (${flag})`, { cause: err });
  }
}

/**
 * Opens the audit log and every listener: unix sockets root:GROUP 0660 (the group created when
 * missing), TCP with TLS or mTLS as configured.
 * @throws Error when a file cannot be read, the group cannot be made, or an address cannot be bound
 */
export async function openApi(
  handler: RequestListener,
  cfg: ApiAccessConfig,
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void,
): Promise<{ listeners: ApiListeners; audit: AuditLog }> {
  const hasTcp = cfg.addresses.some((a) => a.kind === 'tcp');
  let tls: ApiTls | undefined;
  if (cfg.tls && hasTcp) {
    tls = {
      cert: readPem('TLS certificate', '--tlscert', cfg.tlsCert),
      key: readPem('TLS key', '--tlskey', cfg.tlsKey),
      ...(cfg.tlsVerify ? { ca: readPem('CA certificate', '--tlscacert', cfg.tlsCaCert) } : {}),
      verify: cfg.tlsVerify,
    };
  }
  let socketGid: number | undefined;
  if (cfg.group !== '' && cfg.addresses.some((a) => a.kind === 'unix')) {
    const g = await ensureGroup(cfg.group);
    if (g.created) log('info', `Created group "${g.name}" (gid ${g.gid}) for the API socket`);
    socketGid = g.gid;
  }
  const audit = await AuditLog.open(cfg.auditLog);
  try {
    const listeners = await ApiListeners.listen(handler, {
      addresses: cfg.addresses,
      ...(tls ? { tls } : {}),
      insecureTcp: cfg.insecureTcp,
      ...(socketGid !== undefined ? { socketGid } : {}),
      audit,
      unixPeer: peerCredentials,
      log,
    });
    for (const a of cfg.addresses) {
      const how =
        a.kind === 'unix'
          ? `root:${cfg.group || 'root'} 0660`
          : tls
            ? tls.verify
              ? 'TLS, client certificates required'
              : 'TLS'
            : 'plain TCP (--insecure-tcp)';
      log(
        a.kind === 'tcp' && !tls ? 'warn' : 'info',
        `API listening on ${formatApiAddress(a)} (${how})`,
      );
    }
    return { listeners, audit };
  } catch (err) {
    await audit.close();
    throw err;
  }
}
