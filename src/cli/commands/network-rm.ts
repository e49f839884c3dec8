/** `cnm network rm`: removes each network, going on past failures. */
import { Command } from 'commander';
import type { ApiRequest } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { eachName } from './each.js';

/** The `DELETE /networks/{id}` request for one name. */
export function networkRmRequest(name: string): ApiRequest {
  return { method: 'DELETE', path: `/networks/${encodeURIComponent(name)}` };
}

/** Builds the `network rm` command. */
export function networkRmCommand(ctx: CliContext, act: Act): Command {
  return new Command('rm')
    .alias('remove')
    .description('Remove one or more networks')
    .argument('<network...>', 'network names or ids')
    .action((names: string[]) => act(() => eachName(ctx, names, networkRmRequest)));
}
