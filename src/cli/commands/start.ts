/** `cnm start`: starts created or stopped containers. */
import { Command } from 'commander';
import type { Act, CliContext } from '../context.js';
import { eachName } from './each.js';
import { containerRequests } from './run.js';

/** Builds the `start` command. */
export function startCommand(ctx: CliContext, act: Act): Command {
  return new Command('start')
    .description('Start one or more stopped containers')
    .argument('<container...>')
    .action((names: string[]) => act(() => eachName(ctx, names, containerRequests.start)));
}
