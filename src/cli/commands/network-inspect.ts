/** `cnm network inspect`: JSON array (4-space indent) or a `--format` template per network. */
import { Command } from 'commander';
import type { ApiRequest } from '../client.js';
import { CliError } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { inspectJson } from '../format.js';
import { Template } from '../template.js';

/** The `GET /networks/{id}` request for one name. */
export function networkInspectRequest(name: string, o: { verbose?: boolean }): ApiRequest {
  return {
    method: 'GET',
    path: `/networks/${encodeURIComponent(name)}`,
    query: { verbose: o.verbose === true ? 'true' : undefined },
  };
}

/**
 * Fetches each item, prints what was found (as docker does, even when some are missing), then
 * the errors; exit 1 if any failed. Shared by `network inspect` and `inspect`.
 */
export async function inspectEach(
  ctx: CliContext,
  names: string[],
  request: (name: string) => ApiRequest,
  format: string | undefined,
): Promise<number> {
  const tpl = format === undefined ? undefined : Template.parse(format);
  const found: unknown[] = [];
  const errors: string[] = [];
  for (const name of names) {
    try {
      found.push(await ctx.client().json<unknown>(request(name)));
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      if (err.message.startsWith('Cannot connect')) throw err;
      errors.push(err.message);
    }
  }
  if (tpl === undefined) ctx.out.write(inspectJson(found));
  else for (const item of found) ctx.out.write(`${tpl.execute(item)}\n`);
  for (const e of errors) ctx.err.write(`${e}\n`);
  return errors.length > 0 ? 1 : 0;
}

/** Builds the `network inspect` command. */
export function networkInspectCommand(ctx: CliContext, act: Act): Command {
  return new Command('inspect')
    .description('Display detailed information on one or more networks')
    .argument('<network...>', 'network names or ids')
    .option('-f, --format <template>', 'format output using a Go template')
    .option('-v, --verbose', 'verbose output for diagnostics')
    .action((names: string[], o: { format?: string; verbose?: boolean }) =>
      act(() => inspectEach(ctx, names, (n) => networkInspectRequest(n, o), o.format)),
    );
}
