/** `cnm stop`: SIGTERM, then SIGKILL after the grace period, for each container. */
import { Command, InvalidArgumentError } from 'commander';
import type { ApiRequest } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { eachName } from './each.js';
import { containerRequests } from './run.js';

function seconds(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('Expected a non-negative number of seconds');
  return Number(v);
}

/** The stop request for one name. */
export function stopRequest(name: string, o: { timeout?: number; time?: number }): ApiRequest {
  return containerRequests.stop(name, o.timeout ?? o.time);
}

/** Builds the `stop` command. */
export function stopCommand(ctx: CliContext, act: Act): Command {
  return new Command('stop')
    .description('Stop one or more running containers')
    .argument('<container...>')
    .option('-t, --timeout <seconds>', 'seconds to wait before killing the container', seconds)
    .option('--time <seconds>', 'deprecated alias of --timeout', seconds)
    .action((names: string[], o: { timeout?: number; time?: number }) =>
      act(() => eachName(ctx, names, (n) => stopRequest(n, o))),
    );
}
