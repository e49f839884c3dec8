/** `cnm service ls|inspect|rm|scale`, and the `service` command group. */
import { Command } from 'commander';
import type { ApiRequest } from '../client.js';
import { CliError } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { shortId } from '../format.js';
import { renderList } from '../template.js';
import { eachName } from './each.js';
import { inspectEach } from './network-inspect.js';
import { serviceCreateCommand } from './service-create.js';

/** A service as `GET /cnm/services` returns it. */
export interface WireService {
  ID: string;
  Name: string;
  Network: string;
  EndpointMode: string;
  VirtualIP: string;
  Replicas: number;
  Running: number;
  Labels?: Record<string, string>;
  Tasks?: { ID: string; Name: string; Status: string; IPAddress: string }[];
}

const path = (name: string) => `/cnm/services/${encodeURIComponent(name)}`;

/** The `ls` table (sorted by name) or one `--format` line per service. */
export function renderServiceList(
  list: WireService[],
  o: { format?: string; quiet?: boolean },
): string {
  const rows = [...list]
    .sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0))
    .map((s) => ({
      ID: shortId(s.ID),
      Name: s.Name,
      Mode: s.EndpointMode,
      Replicas: `${s.Running}/${s.Replicas}`,
      Network: s.Network,
      VIP: s.VirtualIP,
    }));
  let format =
    o.format ?? 'table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Network}}\t{{.VIP}}';
  if (o.quiet === true) format = '{{.ID}}';
  return renderList(format, rows, {
    ID: 'ID',
    Name: 'NAME',
    Mode: 'ENDPOINT MODE',
    Replicas: 'REPLICAS',
    Network: 'NETWORK',
    VIP: 'VIP',
  });
}

/** The `POST /cnm/services/{id}/scale` request for `name=N`. */
export function serviceScaleRequest(arg: string): ApiRequest {
  const eq = arg.lastIndexOf('=');
  const n = Number(arg.slice(eq + 1));
  if (eq <= 0 || !Number.isInteger(n) || n < 0) {
    throw new CliError(`Invalid scale "${arg}": expected SERVICE=REPLICAS`);
  }
  return { method: 'POST', path: `${path(arg.slice(0, eq))}/scale`, body: { Replicas: n } };
}

/** Builds the `service` command group. */
export function serviceCommand(ctx: CliContext, act: Act): Command {
  // `create` passes options after the command through to it, which commander allows only
  // when every parent parses positional options.
  const service = new Command('service').description('Manage services').enablePositionalOptions();
  service.addCommand(serviceCreateCommand(ctx, act));
  service.addCommand(
    new Command('ls')
      .alias('list')
      .description('List services')
      .option('--format <template>', 'format output using a Go template')
      .option('-q, --quiet', 'only display service IDs')
      .action((o: { format?: string; quiet?: boolean }) =>
        act(async () => {
          const list = await ctx
            .client()
            .json<WireService[]>({ method: 'GET', path: '/cnm/services' });
          ctx.out.write(renderServiceList(list, o));
        }),
      ),
  );
  service.addCommand(
    new Command('inspect')
      .description('Display detailed information on one or more services')
      .argument('<service...>', 'service names or ids')
      .option('-f, --format <template>', 'format output using a Go template')
      .action((names: string[], o: { format?: string }) =>
        act(() => inspectEach(ctx, names, (n) => ({ method: 'GET', path: path(n) }), o.format)),
      ),
  );
  service.addCommand(
    new Command('rm')
      .alias('remove')
      .description('Remove one or more services (their replicas and VIP)')
      .argument('<service...>', 'service names or ids')
      .action((names: string[]) =>
        act(() => eachName(ctx, names, (n) => ({ method: 'DELETE', path: path(n) }))),
      ),
  );
  service.addCommand(
    new Command('scale')
      .description('Scale one or more services')
      .argument('<service=replicas...>', 'e.g. api=5')
      .action((args: string[]) =>
        act(async () => {
          for (const a of args) {
            const v = await ctx.client().json<WireService>(serviceScaleRequest(a));
            ctx.out.write(`${v.Name} scaled to ${v.Replicas}\n`);
          }
        }),
      ),
  );
  return service;
}
