/**
 * `cnm compose`: `up`, `down` and `ps` for a Compose file. `-f` and `-p` belong to `compose`
 * and may also follow the subcommand (`cnm compose up -f app.yaml -p demo -d`), as in
 * `docker compose`. The file model is `../compose/`; `compose-project.ts` finds and loads it.
 */
import { Command } from 'commander';
import type { Act, CliContext } from '../context.js';
import { composeDownCommand } from './compose-down.js';
import { composePsCommand } from './compose-ps.js';
import { composeUpCommand } from './compose-up.js';

/** Builds the `compose` command group. */
export function composeCommand(ctx: CliContext, act: Act): Command {
  const compose = new Command('compose')
    .description('Run a Compose file: networks and one container per service')
    .option('-f, --file <file>', 'compose file (default: compose.yaml in the current directory)')
    .option('-p, --project-name <name>', 'project name (default: the file directory name)');
  for (const make of [composeUpCommand, composeDownCommand, composePsCommand]) {
    compose.addCommand(make(ctx, act));
  }
  return compose;
}
