/** `cnm network ls`: the network table, `-q` ids, or a `--format` template per network. */
import { Command } from 'commander';
import type { WireNetwork } from '../../api/wire.js';
import type { ApiRequest } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { labelList, shortId } from '../format.js';
import { collect, filtersQuery } from '../options.js';
import { renderList } from '../template.js';

/** Parsed flags of `network ls`. */
export interface NetworkLsOptions {
  filter?: string[];
  format?: string;
  noTrunc?: boolean;
  quiet?: boolean;
}

/** The `GET /networks` request for the parsed flags. */
export function networkLsRequest(o: NetworkLsOptions): ApiRequest {
  return { method: 'GET', path: '/networks', query: { filters: filtersQuery(o.filter) } };
}

const HEADERS = {
  ID: 'NETWORK ID',
  Name: 'NAME',
  Driver: 'DRIVER',
  Scope: 'SCOPE',
  IPv6: 'IPV6',
  Internal: 'INTERNAL',
  Labels: 'LABELS',
  CreatedAt: 'CREATED AT',
};

/** Go's `time.Time.String()` form the docker CLI shows for `.CreatedAt`. */
function goTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}

/** The fields a `network ls --format` template sees, as in the docker CLI. */
export function networkRow(n: WireNetwork, noTrunc: boolean): Record<string, string> {
  return {
    ID: noTrunc ? n.Id : shortId(n.Id),
    Name: n.Name,
    Driver: n.Driver,
    Scope: n.Scope,
    IPv6: String(n.EnableIPv6),
    Internal: String(n.Internal),
    Labels: labelList(n.Labels),
    CreatedAt: goTime(n.Created),
  };
}

/** Renders the list the way `docker network ls` does (sorted by name). */
export function renderNetworkList(list: WireNetwork[], o: NetworkLsOptions): string {
  const sorted = [...list].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
  const rows = sorted.map((n) => networkRow(n, o.noTrunc === true));
  let format = o.format ?? 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}';
  if (o.quiet === true) format = '{{.ID}}';
  return renderList(format, rows, HEADERS);
}

/** Builds the `network ls` command. */
export function networkLsCommand(ctx: CliContext, act: Act): Command {
  return new Command('ls')
    .alias('list')
    .description('List networks')
    .option('-f, --filter <key=value>', 'provide filter values (e.g. "driver=bridge")', collect)
    .option('--format <template>', 'format output using a Go template')
    .option('--no-trunc', 'do not truncate the output')
    .option('-q, --quiet', 'only display network IDs')
    .action((o: NetworkLsOptions & { trunc?: boolean }) =>
      act(async () => {
        const opts = { ...o, noTrunc: o.trunc === false };
        const list = await ctx.client().json<WireNetwork[]>(networkLsRequest(opts));
        ctx.out.write(renderNetworkList(list, opts));
      }),
    );
}
