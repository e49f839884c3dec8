/**
 * `cnm compose down`: removes the project's services (`deploy.replicas`), stops and removes its
 * containers (dependents first when the file is at hand), then removes the networks the project
 * created. Found by the
 * `com.docker.compose.project` label, so it also works with `-p` alone; external networks are
 * never removed. Goes on past failures and exits 1 if any.
 */
import { Command, InvalidArgumentError } from 'commander';
import type { WireContainerSummary, WireNetwork } from '../../api/wire.js';
import { CliError, DaemonError } from '../client.js';
import { LABELS, projectFilter } from '../compose/requests.js';
import type { Act, CliContext } from '../context.js';
import { projectOf, type ComposeGlobalOptions } from './compose-project.js';
import { containerRequests } from './run.js';
import type { WireService } from './service.js';

function seconds(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('Expected a non-negative number of seconds');
  return Number(v);
}

/** Builds `compose down`. */
export function composeDownCommand(ctx: CliContext, act: Act): Command {
  return new Command('down')
    .description("Stop and remove the project's containers and networks")
    .option('-t, --timeout <seconds>', 'seconds to wait before killing a container', seconds)
    .option('--remove-orphans', 'accepted for compatibility: every project container is removed')
    .action((o: { timeout?: number }, cmd: Command) =>
      act(async () => {
        const { name, loaded } = await projectOf(ctx, cmd.optsWithGlobals<ComposeGlobalOptions>());
        const client = ctx.client();
        const filters = projectFilter(name);
        let failed = false;
        const attempt = async (what: string, fn: () => Promise<void>): Promise<void> => {
          try {
            await fn();
          } catch (err) {
            if (!(err instanceof CliError) || err.message.startsWith('Cannot connect')) throw err;
            ctx.err.write(`${what}: ${err.message}\n`);
            failed = true;
          }
        };

        // Services (deploy.replicas) first: removing one removes its replicas and its VIP.
        const services = await client
          .json<WireService[]>({ method: 'GET', path: '/cnm/services' })
          .catch((err: unknown) => {
            // A daemon without services (503) has none to remove.
            if (err instanceof DaemonError && err.status === 503) return [];
            throw err;
          });
        for (const sv of services.filter((x) => x.Labels?.[LABELS.project] === name)) {
          await attempt(`Service ${sv.Name}`, async () => {
            await client.json<unknown>({
              method: 'DELETE',
              path: `/cnm/services/${encodeURIComponent(sv.ID)}`,
            });
            ctx.err.write(` Service ${sv.Name}  Removed\n`);
          });
        }

        const containers = await client.json<WireContainerSummary[]>({
          method: 'GET',
          path: '/cnm/containers/json',
          query: { all: '1', filters },
        });
        // Reverse start order: dependents go first. Services not in the file go before all.
        const order = (loaded?.project.services ?? []).map((s) => s.name).reverse();
        const rank = (c: WireContainerSummary): number =>
          order.indexOf(c.Labels[LABELS.service] ?? '');
        containers.sort((a, b) => rank(a) - rank(b));
        for (const c of containers) {
          const cname = (c.Names[0] ?? c.Id).replace(/^\//, '');
          await attempt(`Container ${cname}`, async () => {
            if (c.State === 'running') {
              await client.json<unknown>(containerRequests.stop(c.Id, o.timeout));
              ctx.err.write(` Container ${cname}  Stopped\n`);
            }
            await client.json<unknown>(containerRequests.remove(c.Id, true));
            ctx.err.write(` Container ${cname}  Removed\n`);
          });
        }

        const external = new Set(
          (loaded?.project.networks ?? []).filter((n) => n.external).map((n) => n.name),
        );
        const networks = await client.json<WireNetwork[]>({
          method: 'GET',
          path: '/networks',
          query: { filters },
        });
        for (const n of networks) {
          if (external.has(n.Name)) continue;
          await attempt(`Network ${n.Name}`, async () => {
            await client.json<unknown>({
              method: 'DELETE',
              path: `/networks/${encodeURIComponent(n.Id)}`,
            });
            ctx.err.write(` Network ${n.Name}  Removed\n`);
          });
        }
        return failed ? 1 : 0;
      }),
    );
}
