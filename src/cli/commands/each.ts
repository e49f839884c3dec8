/** The docker CLI's pattern for multi-name commands (rm, stop, start). */
import type { ApiRequest } from '../client.js';
import { CliError } from '../client.js';
import type { CliContext } from '../context.js';

/**
 * Sends one request per name, printing each name that succeeded and each error, going on past
 * failures; exit code 1 if any failed.
 */
export async function eachName(
  ctx: CliContext,
  names: string[],
  request: (name: string) => ApiRequest,
): Promise<number> {
  let failed = false;
  for (const name of names) {
    try {
      await ctx.client().json<unknown>(request(name));
      ctx.out.write(`${name}\n`);
    } catch (err) {
      if (!(err instanceof CliError) || err.message.startsWith('Cannot connect')) throw err;
      ctx.err.write(`${err.message}\n`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}
