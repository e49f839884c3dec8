/** `cnm rm`: removes containers; `-f` removes running ones too. */
import { Command } from 'commander';
import type { Act, CliContext } from '../context.js';
import { eachName } from './each.js';
import { containerRequests } from './run.js';

/** Builds the `rm` command. */
export function rmCommand(ctx: CliContext, act: Act): Command {
  return new Command('rm')
    .description('Remove one or more containers')
    .argument('<container...>')
    .option('-f, --force', 'force the removal of a running container')
    .action((names: string[], o: { force?: boolean }) =>
      act(() => eachName(ctx, names, (n) => containerRequests.remove(n, o.force === true))),
    );
}
