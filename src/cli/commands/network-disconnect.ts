/** `cnm network disconnect`: detaches a container from a network. */
import { Command } from 'commander';
import type { ApiRequest } from '../client.js';
import type { Act, CliContext } from '../context.js';

/** The `POST /networks/{id}/disconnect` request. */
export function networkDisconnectRequest(
  network: string,
  container: string,
  o: { force?: boolean },
): ApiRequest {
  return {
    method: 'POST',
    path: `/networks/${encodeURIComponent(network)}/disconnect`,
    body: { Container: container, Force: o.force === true },
  };
}

/** Builds the `network disconnect` command. */
export function networkDisconnectCommand(ctx: CliContext, act: Act): Command {
  return new Command('disconnect')
    .description('Disconnect a container from a network')
    .argument('<network>')
    .argument('<container>')
    .option('-f, --force', 'force the container to disconnect from a network')
    .action((network: string, container: string, o: { force?: boolean }) =>
      act(async () => {
        await ctx.client().json<unknown>(networkDisconnectRequest(network, container, o));
      }),
    );
}
