/** `cnm logs`: prints a container's output; `-f` follows until it exits. */
import { Command } from 'commander';
import type { Act, CliContext } from '../context.js';
import { containerRequests, pipeTo } from './run.js';

/** Builds the `logs` command. */
export function logsCommand(ctx: CliContext, act: Act): Command {
  return new Command('logs')
    .description('Fetch the logs of a container')
    .argument('<container>')
    .option('-f, --follow', 'follow log output')
    .action((container: string, o: { follow?: boolean }) =>
      act(async () => {
        const res = await ctx.client().open(containerRequests.logs(container, o.follow === true));
        await pipeTo(res, ctx.out);
      }),
    );
}
