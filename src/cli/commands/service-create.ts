/** `cnm service create`: N replicas of a command behind one name (VIP or DNS round robin). */
import { Command } from 'commander';
import type { ApiRequest } from '../client.js';
import { CliError } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { collect, parseKeyValues } from '../options.js';
import { resolveEnv } from './run.js';

/** Parsed flags of `service create`. */
export interface ServiceCreateOptions {
  name?: string;
  replicas?: string;
  network?: string;
  endpointMode?: string;
  env?: string[];
  label?: string[];
}

/** The `POST /cnm/services/create` request. */
export function serviceCreateRequest(
  cmd: string[],
  o: ServiceCreateOptions,
  env: Record<string, string | undefined>,
): ApiRequest {
  if (cmd.length === 0) throw new CliError('"cnm service create" requires a command to run');
  if (!o.name) throw new CliError('"cnm service create" requires --name');
  if (!o.network) throw new CliError('"cnm service create" requires --network');
  const replicas = o.replicas === undefined ? 1 : Number(o.replicas);
  if (!Number.isInteger(replicas) || replicas < 0) {
    throw new CliError(`Invalid --replicas "${o.replicas}": expected a whole number`);
  }
  return {
    method: 'POST',
    path: '/cnm/services/create',
    body: {
      Name: o.name,
      Network: o.network,
      Replicas: replicas,
      EndpointMode: o.endpointMode ?? 'vip',
      Cmd: cmd,
      Env: resolveEnv(o.env, env),
      Labels: parseKeyValues(o.label, '--label'),
    },
  };
}

/** Builds the `service create` command. */
export function serviceCreateCommand(ctx: CliContext, act: Act): Command {
  return new Command('create')
    .description('Create a service: replicated containers behind one name')
    .argument('<command...>', 'command and arguments (after --)')
    .passThroughOptions()
    .option('--name <name>', 'service name (replicas are <name>.1, <name>.2, ...)')
    .option('--replicas <n>', 'number of replicas', '1')
    .option('--network <network>', 'user-defined bridge network of the service')
    .option('--endpoint-mode <mode>', '"vip" (one virtual IP) or "dnsrr" (DNS round robin)')
    .option('-e, --env <key=value>', 'environment variable (repeatable)', collect)
    .option('-l, --label <key=value>', 'label of every replica (repeatable)', collect)
    .action((cmd: string[], o: ServiceCreateOptions) =>
      act(async () => {
        const view = await ctx.client().json<{ ID: string }>(serviceCreateRequest(cmd, o, ctx.env));
        ctx.out.write(`${view.ID}\n`);
      }),
    );
}
