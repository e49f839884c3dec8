/** `cnm inspect`: container inspect JSON array, or a `--format` template per container. */
import { Command } from 'commander';
import type { ApiRequest } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { inspectEach } from './network-inspect.js';

/** The `GET /cnm/containers/{id}/json` request for one name. */
export function inspectRequest(name: string): ApiRequest {
  return { method: 'GET', path: `/cnm/containers/${encodeURIComponent(name)}/json` };
}

/** Builds the `inspect` command. */
export function inspectCommand(ctx: CliContext, act: Act): Command {
  return new Command('inspect')
    .description('Display detailed information on one or more containers')
    .argument('<container...>', 'container names or ids')
    .option('-f, --format <template>', 'format output using a Go template')
    .action((names: string[], o: { format?: string }) =>
      act(() => inspectEach(ctx, names, inspectRequest, o.format)),
    );
}
