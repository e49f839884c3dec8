/** `cnm network connect`: attaches a container with optional addresses and aliases. */
import { Command } from 'commander';
import type { ApiRequest } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { collect, parseKeyValues } from '../options.js';

/** Parsed flags of `network connect`. */
export interface NetworkConnectOptions {
  ip?: string;
  ip6?: string;
  alias?: string[];
  driverOpt?: string[];
}

/** The `POST /networks/{id}/connect` request. */
export function networkConnectRequest(
  network: string,
  container: string,
  o: NetworkConnectOptions,
): ApiRequest {
  const endpoint: Record<string, unknown> = {};
  if (o.ip !== undefined || o.ip6 !== undefined) {
    endpoint['IPAMConfig'] = { IPv4Address: o.ip, IPv6Address: o.ip6 };
  }
  if (o.alias !== undefined) endpoint['Aliases'] = o.alias;
  if (o.driverOpt !== undefined)
    endpoint['DriverOpts'] = parseKeyValues(o.driverOpt, '--driver-opt', true);
  return {
    method: 'POST',
    path: `/networks/${encodeURIComponent(network)}/connect`,
    body: JSON.parse(JSON.stringify({ Container: container, EndpointConfig: endpoint })),
  };
}

/** Builds the `network connect` command. */
export function networkConnectCommand(ctx: CliContext, act: Act): Command {
  return new Command('connect')
    .description('Connect a container to a network')
    .argument('<network>')
    .argument('<container>')
    .option('--ip <address>', 'IPv4 address (e.g. "172.30.100.104")')
    .option('--ip6 <address>', 'IPv6 address (e.g. "2001:db8::33")')
    .option('--alias <alias>', 'add network-scoped alias for the container (repeatable)', collect)
    .option('--driver-opt <key=value>', 'driver options for the network (repeatable)', collect)
    .action((network: string, container: string, o: NetworkConnectOptions) =>
      act(async () => {
        await ctx.client().json<unknown>(networkConnectRequest(network, container, o));
      }),
    );
}
