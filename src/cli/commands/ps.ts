/** `cnm ps`: the container table, `-q` ids, or a `--format` template per container. */
import { Command } from 'commander';
import type { WireContainerSummary } from '../../api/wire.js';
import type { ApiRequest } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { ellipsis, humanDuration, labelList, shortId } from '../format.js';
import { collect, filtersQuery } from '../options.js';
import { renderList } from '../template.js';

/** Parsed flags of `ps`. */
export interface PsOptions {
  all?: boolean;
  quiet?: boolean;
  noTrunc?: boolean;
  filter?: string[];
  format?: string;
}

/** The `GET /cnm/containers/json` request for the parsed flags. */
export function psRequest(o: PsOptions): ApiRequest {
  return {
    method: 'GET',
    path: '/cnm/containers/json',
    query: { all: o.all === true ? '1' : undefined, filters: filtersQuery(o.filter) },
  };
}

const HEADERS = {
  ID: 'CONTAINER ID',
  Name: 'NAME',
  Names: 'NAMES',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Status: 'STATUS',
  State: 'STATE',
  Ports: 'PORTS',
  Networks: 'NETWORKS',
  Labels: 'LABELS',
};

/** `0.0.0.0:8080->80/tcp, 127.0.0.1:53->53/udp`, as `docker ps` shows published ports. */
export function portsText(ports: WireContainerSummary['Ports']): string {
  return ports
    .map((p) =>
      p.PublicPort === undefined
        ? `${p.PrivatePort}/${p.Type}`
        : `${p.IP?.includes(':') === true ? `[${p.IP}]` : (p.IP ?? '')}:${p.PublicPort}->${p.PrivatePort}/${p.Type}`,
    )
    .join(', ');
}

/** The fields a `ps --format` template sees, as in the docker CLI. */
export function containerRow(
  c: WireContainerSummary,
  noTrunc: boolean,
  now: Date,
): Record<string, string> {
  const name = (c.Names[0] ?? '').replace(/^\//, '');
  return {
    ID: noTrunc ? c.Id : shortId(c.Id),
    Name: name,
    Names: name,
    Command: noTrunc ? `"${c.Command}"` : `"${ellipsis(c.Command, 20)}"`,
    CreatedAt: new Date(c.Created * 1000).toISOString(),
    RunningFor: `${humanDuration(now.getTime() - c.Created * 1000)} ago`,
    Status: c.Status,
    State: c.State,
    Ports: portsText(c.Ports),
    Networks: Object.keys(c.NetworkSettings.Networks).sort().join(','),
    Labels: labelList(c.Labels),
  };
}

/** Renders the list the way `docker ps` does. */
export function renderPs(list: WireContainerSummary[], o: PsOptions, now: Date): string {
  const rows = list.map((c) => containerRow(c, o.noTrunc === true, now));
  let format =
    o.format ??
    'table {{.ID}}\t{{.Name}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Networks}}';
  if (o.quiet === true) format = '{{.ID}}';
  return renderList(format, rows, HEADERS);
}

/** Builds the `ps` command. */
export function psCommand(ctx: CliContext, act: Act): Command {
  return new Command('ps')
    .description('List containers')
    .option('-a, --all', 'show all containers (default shows just running)')
    .option('-q, --quiet', 'only display container IDs')
    .option('--no-trunc', 'do not truncate output')
    .option('-f, --filter <key=value>', 'filter output based on conditions provided', collect)
    .option('--format <template>', 'format output using a Go template')
    .action((o: PsOptions & { trunc?: boolean }) =>
      act(async () => {
        const opts = { ...o, noTrunc: o.trunc === false };
        const list = await ctx.client().json<WireContainerSummary[]>(psRequest(opts));
        ctx.out.write(renderPs(list, opts, ctx.now()));
      }),
    );
}
