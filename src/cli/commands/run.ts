/**
 * `cnm run`: create, start, and (in the foreground) stream logs until the process exits, then
 * exit with its code. The wait is registered before the start, so `--rm` containers that the
 * daemon removes on exit still report their exit code.
 */
import { Command } from 'commander';
import type { IncomingMessage } from 'node:http';
import type { WireContainer } from '../../api/wire.js';
import type { ApiRequest } from '../client.js';
import { CliError } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { writeOut } from '../frames.js';
import { collect, parseKeyValues } from '../options.js';

/** Parsed flags of `run`. */
export interface RunOptions {
  detach?: boolean;
  rm?: boolean;
  name?: string;
  network?: string[];
  net?: string[];
  ip?: string;
  ip6?: string;
  macAddress?: string;
  networkAlias?: string[];
  alias?: string[];
  hostname?: string;
  sysctl?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOpt?: string[];
  dnsOption?: string[];
  label?: string[];
  publish?: string[];
  portName?: string[];
  env?: string[];
  workdir?: string;
  ingressRate?: string;
  egressRate?: string;
}

/**
 * `-e` values: `K=V` as given; a bare `K` takes the CLI's own value and is dropped when unset,
 * as the docker CLI does.
 */
export function resolveEnv(
  list: string[] | undefined,
  env: Record<string, string | undefined>,
): string[] {
  const out: string[] = [];
  for (const item of list ?? []) {
    if (item.includes('=')) out.push(item);
    else if (env[item] !== undefined) out.push(`${item}=${env[item]}`);
  }
  return out;
}

/**
 * The `POST /cnm/containers/create` request. `--ip`, `--ip6`, `--mac-address` and aliases apply
 * to the first network, as in the docker CLI; with no `--network` they go to `bridge`.
 */
export function runCreateRequest(
  cmd: string[],
  o: RunOptions,
  env: Record<string, string | undefined>,
): ApiRequest {
  if (cmd.length === 0) throw new CliError('"cnm run" requires a command to run');
  const names = [...(o.network ?? []), ...(o.net ?? [])];
  const aliases = [...(o.networkAlias ?? []), ...(o.alias ?? [])];
  const firstOnly =
    o.ip !== undefined || o.ip6 !== undefined || o.macAddress !== undefined || aliases.length > 0;
  if (names.length === 0 && firstOnly) names.push('bridge');
  const networks = names.map((name, i) =>
    i === 0
      ? {
          Name: name,
          IPv4Address: o.ip,
          IPv6Address: o.ip6,
          MacAddress: o.macAddress,
          Aliases: aliases.length > 0 ? aliases : undefined,
        }
      : { Name: name },
  );
  const body = {
    Name: o.name,
    Cmd: cmd,
    Env: resolveEnv(o.env, env),
    WorkingDir: o.workdir,
    Hostname: o.hostname,
    Labels: parseKeyValues(o.label, '--label'),
    Networks: networks.length > 0 ? networks : undefined,
    Ports: o.publish,
    PortNames: o.portName,
    Dns: o.dns,
    DnsSearch: o.dnsSearch,
    DnsOptions: [...(o.dnsOpt ?? []), ...(o.dnsOption ?? [])],
    Sysctls: parseKeyValues(o.sysctl, '--sysctl', true),
    AutoRemove: o.rm === true,
    IngressRate: o.ingressRate,
    EgressRate: o.egressRate,
  };
  return { method: 'POST', path: '/cnm/containers/create', body: JSON.parse(JSON.stringify(body)) };
}

/** Container sub-resource requests by id. */
export const containerRequests = {
  start: (id: string): ApiRequest => ({
    method: 'POST',
    path: `/cnm/containers/${encodeURIComponent(id)}/start`,
  }),
  wait: (id: string): ApiRequest => ({
    method: 'POST',
    path: `/cnm/containers/${encodeURIComponent(id)}/wait`,
  }),
  logs: (id: string, follow: boolean): ApiRequest => ({
    method: 'GET',
    path: `/cnm/containers/${encodeURIComponent(id)}/logs`,
    query: { follow: follow ? '1' : undefined },
  }),
  stop: (id: string, t?: number): ApiRequest => ({
    method: 'POST',
    path: `/cnm/containers/${encodeURIComponent(id)}/stop`,
    query: { t: t === undefined ? undefined : String(t) },
  }),
  remove: (id: string, force: boolean): ApiRequest => ({
    method: 'DELETE',
    path: `/cnm/containers/${encodeURIComponent(id)}`,
    query: { force: force ? '1' : undefined },
  }),
};

async function readJson<T>(res: IncomingMessage): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
}

/** Copies a streamed response to `out` until it ends. */
export async function pipeTo(res: IncomingMessage, out: NodeJS.WritableStream): Promise<void> {
  for await (const chunk of res) await writeOut(out, chunk as Buffer);
}

async function runForeground(ctx: CliContext, id: string, autoRemove: boolean): Promise<number> {
  const client = ctx.client();
  const abort = new AbortController();
  const wait = await client.open(containerRequests.wait(id), abort.signal);
  const logs = await client.open(containerRequests.logs(id, true), abort.signal);
  try {
    await client.json<unknown>(containerRequests.start(id));
  } catch (err) {
    abort.abort();
    if (autoRemove)
      await client.json<unknown>(containerRequests.remove(id, true)).catch(() => undefined);
    throw err;
  }
  // Ctrl-C stops the container (its output still drains); a second one leaves at once.
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    if (interrupts > 1) {
      abort.abort();
      return;
    }
    void client.json<unknown>(containerRequests.stop(id)).catch(() => undefined);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const [result] = await Promise.all([
      readJson<{ StatusCode: number; Error?: { Message: string } }>(wait),
      pipeTo(logs, ctx.out),
    ]);
    if (result.Error !== undefined)
      throw new CliError(`Error waiting for container: ${result.Error.Message}`, 125);
    return result.StatusCode;
  } catch (err) {
    if (abort.signal.aborted) return 130;
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Builds the `run` command. */
export function runCommand(ctx: CliContext, act: Act): Command {
  return new Command('run')
    .description('Create and run a new container from a command on the host filesystem')
    .argument('<command...>', 'command and arguments (after --)')
    .passThroughOptions()
    .option('-d, --detach', 'run in the background and print the container ID')
    .option('--rm', 'automatically remove the container when it exits')
    .option('--name <name>', 'assign a name to the container')
    .option('--network <network>', 'connect a container to a network (repeatable)', collect)
    .option('--net <network>', 'alias of --network', collect)
    .option('--ip <address>', 'IPv4 address on the first network')
    .option('--ip6 <address>', 'IPv6 address on the first network')
    .option('--mac-address <mac>', 'MAC address on the first network')
    .option('--network-alias <alias>', 'network-scoped alias on the first network', collect)
    .option('--alias <alias>', 'alias of --network-alias', collect)
    .option('--hostname <name>', 'container host name')
    .option('--sysctl <key=value>', 'namespaced net.* sysctl (repeatable)', collect)
    .option('--dns <ip>', 'custom DNS server (repeatable)', collect)
    .option('--dns-search <domain>', 'custom DNS search domain (repeatable)', collect)
    .option('--dns-opt <option>', 'DNS option (repeatable)', collect)
    .option('--dns-option <option>', 'alias of --dns-opt', collect)
    .option('-l, --label <key=value>', 'container label (repeatable)', collect)
    .option('-p, --publish <spec>', "publish a container's port to the host (repeatable)", collect)
    .option('--port-name <name=port/proto>', 'named port for policies (repeatable)', collect)
    .option('-e, --env <key=value>', 'environment variable (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--ingress-rate <rate>', 'limit traffic toward the container (tc units: 10mbit)')
    .option('--egress-rate <rate>', 'limit traffic the container sends (tc units: 5mbit)')
    .action((cmd: string[], o: RunOptions) =>
      act(async () => {
        const view = await ctx.client().json<WireContainer>(runCreateRequest(cmd, o, ctx.env));
        if (o.detach === true) {
          await ctx.client().json<unknown>(containerRequests.start(view.Id));
          ctx.out.write(`${view.Id}\n`);
          return 0;
        }
        return runForeground(ctx, view.Id, o.rm === true);
      }),
    );
}
