/**
 * `cnm compose ps`: the project's containers as `docker compose ps` lists them (NAME, COMMAND,
 * SERVICE, CREATED, STATUS, PORTS; there is no IMAGE column since cnm has no images), `-q` ids,
 * `--services`, `--format json` (one object per line) or a Go template.
 */
import { Command } from 'commander';
import type { WireContainerSummary } from '../../api/wire.js';
import { LABELS, projectFilter } from '../compose/requests.js';
import type { Act, CliContext } from '../context.js';
import { renderList } from '../template.js';
import { projectOf, type ComposeGlobalOptions } from './compose-project.js';
import { containerRow } from './ps.js';

/** Parsed flags of `compose ps`. */
export interface ComposePsOptions {
  all?: boolean;
  quiet?: boolean;
  services?: boolean;
  format?: string;
  noTrunc?: boolean;
}

const HEADERS = {
  ID: 'CONTAINER ID',
  Name: 'NAME',
  Service: 'SERVICE',
  Project: 'PROJECT',
  Command: 'COMMAND',
  RunningFor: 'CREATED',
  Status: 'STATUS',
  State: 'STATE',
  Ports: 'PORTS',
  Networks: 'NETWORKS',
};

/** Renders the project's containers (sorted by name) the way `docker compose ps` does. */
export function renderComposePs(
  list: WireContainerSummary[],
  o: ComposePsOptions,
  now: Date,
): string {
  const rows: Record<string, string>[] = list
    .map((c): Record<string, string> => ({
      ...containerRow(c, o.noTrunc === true, now),
      Service: c.Labels[LABELS.service] ?? '',
      Project: c.Labels[LABELS.project] ?? '',
    }))
    .sort((a, b) => ((a['Name'] ?? '') < (b['Name'] ?? '') ? -1 : 1));
  if (o.services === true) return [...new Set(rows.map((r) => `${r['Service'] ?? ''}\n`))].join('');
  if (o.quiet === true) return renderList('{{.ID}}', rows, HEADERS);
  if (o.format === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  const format =
    o.format === undefined || o.format === 'table'
      ? 'table {{.Name}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}'
      : o.format;
  return renderList(format, rows, HEADERS);
}

/** Builds `compose ps`. */
export function composePsCommand(ctx: CliContext, act: Act): Command {
  return new Command('ps')
    .description("List the project's containers")
    .option('-a, --all', 'show all containers (default shows just running)')
    .option('-q, --quiet', 'only display IDs')
    .option('--services', 'display services')
    .option('--format <format>', 'table, json, or a Go template')
    .option('--no-trunc', 'do not truncate output')
    .action((o: ComposePsOptions & { trunc?: boolean }, cmd: Command) =>
      act(async () => {
        const { name } = await projectOf(ctx, cmd.optsWithGlobals<ComposeGlobalOptions>());
        const list = await ctx.client().json<WireContainerSummary[]>({
          method: 'GET',
          path: '/cnm/containers/json',
          query: { all: o.all === true ? '1' : undefined, filters: projectFilter(name) },
        });
        ctx.out.write(renderComposePs(list, { ...o, noTrunc: o.trunc === false }, ctx.now()));
      }),
    );
}
