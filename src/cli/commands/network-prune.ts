/** `cnm network prune`: removes unused custom networks after a confirmation. */
import { Command } from 'commander';
import type { ApiRequest } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { collect, filtersQuery } from '../options.js';

/** The docker CLI's prompt, kept word for word. */
export const PRUNE_WARNING =
  'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ';

/** The `POST /networks/prune` request for the `--filter` flags. */
export function networkPruneRequest(o: { filter?: string[] }): ApiRequest {
  return { method: 'POST', path: '/networks/prune', query: { filters: filtersQuery(o.filter) } };
}

/** Reads one line from `input` (`''` at end of input). */
export async function readLine(input: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const done = (): void => {
      input.off('data', onData);
      input.off('end', done);
      input.pause();
      resolve(text.split('\n')[0] ?? '');
    };
    const onData = (chunk: Buffer | string): void => {
      text += chunk.toString();
      if (text.includes('\n')) done();
    };
    input.on('data', onData);
    input.on('end', done);
    input.resume();
  });
}

/** Builds the `network prune` command. */
export function networkPruneCommand(ctx: CliContext, act: Act): Command {
  return new Command('prune')
    .description('Remove all unused networks')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <key=value>', 'provide filter values (e.g. "until=<timestamp>")', collect)
    .action((o: { force?: boolean; filter?: string[] }) =>
      act(async () => {
        if (o.force !== true) {
          // Like the docker CLI, read the answer from stdin even when it is not a terminal, so
          // `echo y | cnm network prune` works; end of input means no.
          ctx.out.write(PRUNE_WARNING);
          const answer = (await readLine(ctx.stdin)).trim();
          if (answer !== 'y' && answer !== 'Y') return 0;
        }
        const res = await ctx
          .client()
          .json<{ NetworksDeleted: string[] | null }>(networkPruneRequest(o));
        const deleted = res.NetworksDeleted ?? [];
        if (deleted.length > 0)
          ctx.out.write(`Deleted Networks:\n${deleted.map((n) => `${n}\n`).join('')}`);
        return 0;
      }),
    );
}
