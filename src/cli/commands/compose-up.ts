/**
 * `cnm compose up`: creates the project's networks, then one container per service in
 * dependency order, and starts them. Existing project objects are reused, so `up` twice is
 * harmless. Without `-d` it follows the containers' output until they exit or Ctrl-C stops them.
 * Progress lines go to stderr as in `docker compose`.
 */
import { Command } from 'commander';
import type { IncomingMessage } from 'node:http';
import type { WireContainer, WireNetwork } from '../../api/wire.js';
import { CliError, DaemonError, type ApiClient } from '../client.js';
import type { ComposeNetwork, ComposeProject, ComposeService } from '../compose/model.js';
import {
  LABELS,
  containerCreateBody,
  networkCreateBody,
  serviceCreateBody,
  serviceName,
  type ProjectSource,
} from '../compose/requests.js';
import type { Act, CliContext } from '../context.js';
import { writeOut } from '../frames.js';
import { loadProject, type ComposeGlobalOptions } from './compose-project.js';
import { containerRequests } from './run.js';
import type { WireService } from './service.js';

async function getOrUndefined<T>(client: ApiClient, p: string): Promise<T | undefined> {
  try {
    return await client.json<T>({ method: 'GET', path: p });
  } catch (err) {
    if (err instanceof DaemonError && err.status === 404) return undefined;
    throw err;
  }
}

async function ensureNetwork(ctx: CliContext, project: string, n: ComposeNetwork): Promise<void> {
  const client = ctx.client();
  const found = await getOrUndefined<WireNetwork>(
    client,
    `/networks/${encodeURIComponent(n.name)}`,
  );
  const existing = found?.Name === n.name ? found : undefined;
  if (n.external) {
    if (existing === undefined) {
      throw new CliError(`network ${n.name} declared as external, but could not be found`);
    }
    return;
  }
  if (existing !== undefined) {
    const owner = existing.Labels[LABELS.project];
    if (owner !== project) {
      throw new CliError(
        `network ${n.name} was found but has incorrect label ${LABELS.project} set to "${owner ?? ''}" (expected: "${project}")`,
      );
    }
    return;
  }
  await client.json<unknown>({
    method: 'POST',
    path: '/networks/create',
    body: networkCreateBody(project, n),
  });
  ctx.err.write(` Network ${n.name}  Created\n`);
}

/**
 * A service with `deploy.replicas`: creates its cnm service, or scales an existing one of the
 * project to the file's count. Returns the replicas to follow.
 */
async function ensureService(
  ctx: CliContext,
  p: ComposeProject,
  s: ComposeService,
  src: ProjectSource,
): Promise<{ name: string; id: string }[]> {
  const client = ctx.client();
  const name = serviceName(p.name, s.name);
  const path = `/cnm/services/${encodeURIComponent(name)}`;
  let sv = await getOrUndefined<WireService>(client, path);
  if (sv !== undefined && sv.Name !== name) sv = undefined;
  if (sv !== undefined && sv.Labels?.[LABELS.project] !== p.name) {
    throw new CliError(
      `service name "${name}" is already in use by a service outside project "${p.name}"`,
    );
  }
  const want = s.deploy?.replicas ?? 1;
  if (sv === undefined) {
    sv = await client.json<WireService>({
      method: 'POST',
      path: '/cnm/services/create',
      body: serviceCreateBody(p, s, src),
    });
    ctx.err.write(` Service ${name}  Created (${want} replicas)\n`);
  } else if (sv.Replicas !== want) {
    sv = await client.json<WireService>({
      method: 'POST',
      path: `${path}/scale`,
      body: { Replicas: want },
    });
    ctx.err.write(` Service ${name}  Scaled to ${want}\n`);
  } else {
    ctx.err.write(` Service ${name}  Running\n`);
  }
  return (sv.Tasks ?? []).map((t) => ({ name: t.Name, id: t.ID }));
}

/** Copies a log stream to `out`, each line prefixed, a partial last line flushed at the end. */
async function prefixLines(
  res: IncomingMessage,
  prefix: string,
  out: NodeJS.WritableStream,
): Promise<void> {
  let rest = '';
  for await (const chunk of res) {
    rest += (chunk as Buffer).toString('utf8');
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    if (lines.length > 0) await writeOut(out, lines.map((l) => `${prefix}${l}\n`).join(''));
  }
  if (rest !== '') await writeOut(out, `${prefix}${rest}\n`);
}

/** Follows every container's output; Ctrl-C stops them (twice: leave at once). */
async function attach(
  ctx: CliContext,
  containers: { name: string; id: string }[],
): Promise<number> {
  const client = ctx.client();
  const abort = new AbortController();
  const width = Math.max(...containers.map((c) => c.name.length));
  ctx.err.write(`Attaching to ${containers.map((c) => c.name).join(', ')}\n`);
  let stopping = false;
  const onSignal = (): void => {
    if (stopping) {
      abort.abort();
      return;
    }
    stopping = true;
    ctx.err.write('Gracefully stopping... (press Ctrl+C again to force)\n');
    for (const c of containers) {
      void client.json<unknown>(containerRequests.stop(c.id)).catch(() => undefined);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await Promise.all(
      containers.map(async (c) => {
        const res = await client.open(containerRequests.logs(c.id, true), abort.signal);
        await prefixLines(res, `${c.name.padEnd(width)}  | `, ctx.out);
        const view = await getOrUndefined<WireContainer>(
          client,
          `/cnm/containers/${encodeURIComponent(c.id)}/json`,
        );
        if (view !== undefined) {
          ctx.out.write(`${c.name} exited with code ${view.State.ExitCode}\n`);
        }
      }),
    );
  } catch (err) {
    if (abort.signal.aborted) return 130;
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}

/** Builds `compose up`. */
export function composeUpCommand(ctx: CliContext, act: Act): Command {
  return new Command('up')
    .description("Create and start the project's networks and containers")
    .option('-d, --detach', 'run containers in the background')
    .action((o: { detach?: boolean }, cmd: Command) =>
      act(async () => {
        const loaded = await loadProject(ctx, cmd.optsWithGlobals<ComposeGlobalOptions>());
        if (loaded === undefined) throw new CliError('no configuration file provided: not found');
        const { project } = loaded;
        const client = ctx.client();
        for (const n of project.networks) await ensureNetwork(ctx, project.name, n);
        const started: { name: string; id: string }[] = [];
        for (const s of project.services) {
          if (s.deploy !== undefined) {
            started.push(...(await ensureService(ctx, project, s, loaded)));
            continue;
          }
          let view = await getOrUndefined<WireContainer>(
            client,
            `/cnm/containers/${encodeURIComponent(s.containerName)}/json`,
          );
          if (view !== undefined && view.Config.Labels[LABELS.project] !== project.name) {
            throw new CliError(
              `container name "${s.containerName}" is already in use by a container outside project "${project.name}"`,
            );
          }
          if (view === undefined) {
            view = await client.json<WireContainer>({
              method: 'POST',
              path: '/cnm/containers/create',
              body: containerCreateBody(project, s, loaded),
            });
            ctx.err.write(` Container ${s.containerName}  Created\n`);
          }
          if (view.State.Running) {
            ctx.err.write(` Container ${s.containerName}  Running\n`);
          } else {
            await client.json<unknown>(containerRequests.start(view.Id));
            ctx.err.write(` Container ${s.containerName}  Started\n`);
          }
          started.push({ name: s.containerName, id: view.Id });
        }
        if (o.detach === true) return 0;
        return attach(ctx, started);
      }),
    );
}
