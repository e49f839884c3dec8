/** `cnm network create`: builds Docker's network create body from docker CLI flags. */
import { Command } from 'commander';
import type { ApiRequest } from '../client.js';
import { CliError } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { subnetContains } from '../ip.js';
import { collect, parseKeyValues } from '../options.js';

/** Parsed flags of `network create`. */
export interface NetworkCreateOptions {
  driver?: string;
  subnet?: string[];
  gateway?: string[];
  ipRange?: string[];
  auxAddress?: string[];
  ipv6?: boolean;
  internal?: boolean;
  attachable?: boolean;
  ingress?: boolean;
  opt?: string[];
  label?: string[];
  ipamDriver?: string;
  ipamOpt?: string[];
  scope?: string;
  configOnly?: boolean;
  configFrom?: string;
}

interface WirePool {
  Subnet: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

function contains(subnet: string, addr: string, what: string): boolean {
  const inside = subnetContains(subnet, addr);
  if (inside === undefined) {
    throw new CliError(`Invalid ${what}: "${subnet}" or "${addr}" is not a valid address`);
  }
  return inside;
}

/**
 * Pairs each `--ip-range`, `--gateway` and `--aux-address` with the `--subnet` that contains it,
 * with the docker CLI's checks and wording (`no matching subnet for gateway x`).
 * @throws CliError on an unmatched, doubled or unparsable value
 */
export function ipamConfig(o: NetworkCreateOptions): WirePool[] {
  const subnets = o.subnet ?? [];
  const ranges = o.ipRange ?? [];
  const gateways = o.gateway ?? [];
  if (subnets.length < ranges.length || subnets.length < gateways.length) {
    throw new CliError('every ip-range or gateway must have a corresponding subnet');
  }
  const pools: WirePool[] = [];
  for (const s of subnets) {
    for (const p of pools) {
      if (contains(s, p.Subnet, 'subnet') || contains(p.Subnet, s, 'subnet')) {
        throw new CliError('multiple overlapping subnet configuration is not supported');
      }
    }
    pools.push({ Subnet: s });
  }
  for (const r of ranges) {
    const hits = pools.filter((p) => contains(p.Subnet, r, 'ip-range'));
    if (hits.length === 0) throw new CliError(`no matching subnet for range ${r}`);
    for (const p of hits) {
      if (p.IPRange !== undefined) {
        throw new CliError(
          `cannot configure multiple ranges (${r}, ${p.IPRange}) on the same subnet (${p.Subnet})`,
        );
      }
      p.IPRange = r;
    }
  }
  for (const g of gateways) {
    const hits = pools.filter((p) => contains(p.Subnet, g, 'gateway'));
    if (hits.length === 0) throw new CliError(`no matching subnet for gateway ${g}`);
    for (const p of hits) {
      if (p.Gateway !== undefined) {
        throw new CliError(
          `cannot configure multiple gateways (${g}, ${p.Gateway}) for the same subnet (${p.Subnet})`,
        );
      }
      p.Gateway = g;
    }
  }
  for (const [key, addr] of Object.entries(parseKeyValues(o.auxAddress, '--aux-address', true))) {
    const hits = pools.filter((p) => contains(p.Subnet, addr, 'aux-address'));
    if (hits.length === 0) throw new CliError(`no matching subnet for aux-address ${addr}`);
    for (const p of hits) (p.AuxiliaryAddresses ??= {})[key] = addr;
  }
  return pools;
}

/** The `POST /networks/create` request for `name` and the parsed flags. */
export function networkCreateRequest(name: string, o: NetworkCreateOptions): ApiRequest {
  const body: Record<string, unknown> = {
    Name: name,
    Driver: o.driver ?? 'bridge',
    Scope: o.scope ?? '',
    EnableIPv6: o.ipv6 === true ? true : undefined,
    IPAM: {
      Driver: o.ipamDriver ?? 'default',
      Config: ipamConfig(o),
      Options: parseKeyValues(o.ipamOpt, '--ipam-opt'),
    },
    Internal: o.internal ?? false,
    Attachable: o.attachable ?? false,
    Ingress: o.ingress ?? false,
    ConfigOnly: o.configOnly ?? false,
    ConfigFrom: o.configFrom === undefined ? undefined : { Network: o.configFrom },
    Options: parseKeyValues(o.opt, '--opt'),
    Labels: parseKeyValues(o.label, '--label'),
  };
  return { method: 'POST', path: '/networks/create', body: JSON.parse(JSON.stringify(body)) };
}

/** Builds the `network create` command. */
export function networkCreateCommand(ctx: CliContext, act: Act): Command {
  return new Command('create')
    .description('Create a network')
    .argument('<name>', 'network name')
    .option('-d, --driver <driver>', 'driver to manage the network', 'bridge')
    .option('--subnet <cidr>', 'subnet in CIDR format (repeatable)', collect)
    .option('--gateway <ip>', 'gateway for the master subnet (repeatable)', collect)
    .option('--ip-range <cidr>', 'allocate container IPs from a sub-range (repeatable)', collect)
    .option(
      '--aux-address <name=ip>',
      'auxiliary addresses used by the driver (repeatable)',
      collect,
    )
    .option('--ipv6', 'enable IPv6 networking')
    .option('--internal', 'restrict external access to the network')
    .option('--attachable', 'enable manual container attachment')
    .option('--ingress', 'create swarm routing-mesh network')
    .option('-o, --opt <key=value>', 'driver specific options (repeatable)', collect)
    .option('--label <key=value>', 'metadata on the network (repeatable)', collect)
    .option('--ipam-driver <driver>', 'IP address management driver', 'default')
    .option('--ipam-opt <key=value>', 'IPAM driver specific options (repeatable)', collect)
    .option('--scope <scope>', "control the network's scope")
    .option('--config-only', 'create a configuration only network')
    .option('--config-from <network>', 'the network from which to copy the configuration')
    .action((name: string, o: NetworkCreateOptions) =>
      act(async () => {
        const res = await ctx
          .client()
          .json<{ Id: string; Warning?: string }>(networkCreateRequest(name, o));
        if (res.Warning !== undefined && res.Warning !== '') ctx.err.write(`${res.Warning}\n`);
        ctx.out.write(`${res.Id}\n`);
      }),
    );
}
