/**
 * cnm's own container routes under `/cnm/containers`: create, start, list, inspect, stop,
 * remove, wait, logs and exec. Shapes follow Docker's container API where one applies.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  ContainerSpec,
  ContainerUpdateRequest,
  ContainerView,
  ControllerApi,
} from '../../cnm/types.js';
import { CnmError, InvalidError, isKind } from '../../errors.js';
import { FieldReader, queryBool, queryString, queryUint, readJsonBody } from '../body.js';
import { invalidField } from '../errors.js';
import { CONTAINER_FILTER_KEYS, filterContainers, parseFilters } from '../filters.js';
import { STREAM, encodeExitFrame, encodeFrame } from '../frames.js';
import { sendEmpty, sendJson, writeChunk } from '../respond.js';
import type { RouteContext, Router } from '../router.js';
import type { RouteDeps } from '../server.js';
import { toWireContainer, toWireContainerSummary } from '../wire.js';

/**
 * Turns a `POST /cnm/containers/create` body (PascalCase `ContainerSpec`) into the controller's
 * spec. `?name=` is accepted as in Docker when the body has no `Name`.
 * @throws InvalidError naming the first field of the wrong type
 */
export function parseContainerCreate(body: unknown, queryName?: string): ContainerSpec {
  const b = FieldReader.root(body);
  const cmd = b.stringArray('Cmd');
  if (cmd === undefined || cmd.length === 0) throw invalidField('Cmd', 'is required');
  const spec: ContainerSpec = { cmd };
  const name = b.optionalString('Name') ?? (queryName === '' ? undefined : queryName);
  if (name !== undefined) spec.name = name;
  const env = b.stringArray('Env');
  if (env !== undefined) spec.env = env;
  const workingDir = b.optionalString('WorkingDir');
  if (workingDir !== undefined) spec.workingDir = workingDir;
  const hostname = b.optionalString('Hostname');
  if (hostname !== undefined) spec.hostname = hostname;
  const labels = b.stringMap('Labels');
  if (labels !== undefined) spec.labels = labels;
  const networks = b.objectArray('Networks');
  if (networks !== undefined) {
    spec.networks = networks.map((n) => {
      const out: NonNullable<ContainerSpec['networks']>[number] = {
        name: n.string('Name', { required: true }) ?? '',
      };
      const ipv4 = n.optionalString('IPv4Address');
      if (ipv4 !== undefined) out.ipv4 = ipv4;
      const ipv6 = n.optionalString('IPv6Address');
      if (ipv6 !== undefined) out.ipv6 = ipv6;
      const mac = n.optionalString('MacAddress');
      if (mac !== undefined) out.mac = mac;
      const aliases = n.stringArray('Aliases');
      if (aliases !== undefined && aliases.length > 0) out.aliases = aliases;
      const driverOpts = n.stringMap('DriverOpts');
      if (driverOpts !== undefined && Object.keys(driverOpts).length > 0) {
        out.driverOpts = driverOpts;
      }
      return out;
    });
  }
  const ports = b.stringArray('Ports');
  if (ports !== undefined) spec.ports = ports;
  const portNames = b.stringArray('PortNames');
  if (portNames !== undefined && portNames.length > 0) spec.portNames = portNames;
  const dns = b.stringArray('Dns');
  if (dns !== undefined) spec.dns = dns;
  const dnsSearch = b.stringArray('DnsSearch');
  if (dnsSearch !== undefined) spec.dnsSearch = dnsSearch;
  const dnsOptions = b.stringArray('DnsOptions');
  if (dnsOptions !== undefined) spec.dnsOptions = dnsOptions;
  const sysctls = b.stringMap('Sysctls');
  if (sysctls !== undefined) spec.sysctls = sysctls;
  const autoRemove = b.bool('AutoRemove');
  if (autoRemove !== undefined) spec.autoRemove = autoRemove;
  Object.assign(spec, parseContainerUpdate(body));
  return spec;
}

/**
 * Reads the bandwidth fields `IngressRate` and `EgressRate` (tc units, `0`/`none` for no limit)
 * of a create or `POST /cnm/containers/{id}/update` body; the controller checks the values.
 */
export function parseContainerUpdate(body: unknown): ContainerUpdateRequest {
  const b = FieldReader.root(body);
  const out: ContainerUpdateRequest = {};
  const ingress = b.optionalString('IngressRate');
  if (ingress !== undefined) out.ingressRate = ingress;
  const egress = b.optionalString('EgressRate');
  if (egress !== undefined) out.egressRate = egress;
  return out;
}

/** Turns a `POST /cnm/containers/{id}/exec` body into command and environment. */
export function parseExec(body: unknown): { cmd: string[]; env?: string[] } {
  const b = FieldReader.root(body);
  const cmd = b.stringArray('Cmd');
  if (cmd === undefined || cmd.length === 0) throw invalidField('Cmd', 'is required');
  const env = b.stringArray('Env');
  return env === undefined ? { cmd } : { cmd, env };
}

/** True while a container may still write to its log (not yet started counts). */
function mayWriteLog(controller: ControllerApi, id: string): boolean {
  try {
    const s = controller.inspectContainer(id).state.status;
    return s === 'created' || s === 'running';
  } catch (err) {
    if (isKind(err, 'not-found')) return false; // removed (`--rm`): nothing more will come
    throw err;
  }
}

/**
 * Streams the log file from the start; with `follow`, polls for more until the container stops
 * writing (exited, dead, removed) or the client leaves. A log file that does not exist yet
 * (container not started) reads as empty.
 */
async function streamLogs(
  ctx: RouteContext,
  deps: RouteDeps,
  c: ContainerView,
  follow: boolean,
): Promise<void> {
  const { res, signal } = ctx;
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.flushHeaders();
  let fh: FileHandle | undefined;
  let pos = 0;
  const buf = Buffer.alloc(64 * 1024);
  const drain = async (): Promise<void> => {
    if (fh === undefined) {
      try {
        fh = await open(c.logPath, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
    }
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      await writeChunk(res, Buffer.from(buf.subarray(0, bytesRead)));
      if (signal.aborted) return;
    }
  };
  try {
    await drain();
    while (follow && !signal.aborted) {
      const live = mayWriteLog(deps.controller, c.id);
      await drain();
      if (!live) break; // the drain after seeing it stopped picked up its last writes
      await sleep(deps.logPollMs, undefined, { signal }).catch(() => undefined);
    }
  } finally {
    await fh?.close();
    res.end();
  }
}

/**
 * Runs an exec and streams its output in Docker's multiplexed framing, ending with the exit
 * frame. A client that leaves kills the process: nobody is left to read it.
 */
async function streamExec(ctx: RouteContext, deps: RouteDeps, id: string): Promise<void> {
  const { req, res, signal } = ctx;
  const { cmd, env } = parseExec(await readJsonBody(req));
  const handle = await deps.controller.execContainer(id, cmd, env === undefined ? {} : { env });
  const onAbort = (): void => handle.kill('SIGTERM');
  signal.addEventListener('abort', onAbort, { once: true });
  res.writeHead(200, { 'Content-Type': 'application/vnd.docker.multiplexed-stream' });
  res.flushHeaders();
  const sources: Readable[] = [handle.stdout, handle.stderr];
  const pump = (src: Readable, stream: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      src.on('data', (chunk: Buffer | string) => {
        const payload = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        if (!res.write(encodeFrame(stream, payload))) {
          for (const s of sources) s.pause();
          res.once('drain', () => {
            for (const s of sources) s.resume();
          });
        }
      });
      src.once('end', resolve);
      src.once('close', resolve);
      src.once('error', reject);
    });
  try {
    await Promise.all([pump(handle.stdout, STREAM.stdout), pump(handle.stderr, STREAM.stderr)]);
    const code = await handle.exit;
    res.end(encodeExitFrame(code));
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Registers the `/cnm/containers` routes. */
export function registerContainerRoutes(router: Router, deps: RouteDeps): void {
  const { controller } = deps;
  const id = (ctx: RouteContext): string => ctx.params['id'] ?? '';
  router
    .add('POST', '/cnm/containers/create', async ({ req, res, query }) => {
      const spec = parseContainerCreate(await readJsonBody(req), queryString(query, 'name'));
      const view = await controller.createContainer(spec);
      sendJson(res, 201, toWireContainer(view));
    })
    .add('GET', '/cnm/containers/json', ({ res, query }) => {
      const all = queryBool(query, 'all');
      const args = parseFilters(queryString(query, 'filters'), CONTAINER_FILTER_KEYS);
      const now = deps.now();
      const list = filterContainers(controller.listContainers({ all }), args);
      sendJson(
        res,
        200,
        list.map((c) => toWireContainerSummary(c, now)),
      );
    })
    .add('GET', '/cnm/containers/{id}/json', (ctx) => {
      sendJson(ctx.res, 200, toWireContainer(controller.inspectContainer(id(ctx))));
    })
    .add('POST', '/cnm/containers/{id}/start', async (ctx) => {
      await controller.startContainer(id(ctx));
      sendEmpty(ctx.res, 204);
    })
    .add('POST', '/cnm/containers/{id}/update', async (ctx) => {
      await controller.updateContainer(id(ctx), parseContainerUpdate(await readJsonBody(ctx.req)));
      sendJson(ctx.res, 200, { Warnings: [] });
    })
    .add('POST', '/cnm/containers/{id}/stop', async (ctx) => {
      const t = queryUint(ctx.query, 't');
      await controller.stopContainer(id(ctx), t === undefined ? {} : { timeoutSec: t });
      sendEmpty(ctx.res, 204);
    })
    .add('DELETE', '/cnm/containers/{id}', async (ctx) => {
      const force = queryBool(ctx.query, 'force');
      await controller.removeContainer(id(ctx), { force });
      sendEmpty(ctx.res, 204);
    })
    .add('POST', '/cnm/containers/{id}/wait', async (ctx) => {
      const { res, signal } = ctx;
      // Resolve the name first so a missing container is a plain 404, then send the headers
      // at once: a client (`cnm run --rm`) knows the wait is registered before it starts the
      // container, as dockerd's wait does.
      const c = controller.inspectContainer(id(ctx));
      const result = controller.waitContainer(c.id, signal);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      try {
        const { exitCode } = await result;
        res.end(`${JSON.stringify({ StatusCode: exitCode })}\n`);
      } catch (err) {
        if (signal.aborted) return;
        // Too late for a status code: report in the body like dockerd's wait does.
        const message = err instanceof Error ? err.message : String(err);
        if (!(err instanceof CnmError)) ctx.log('error', `wait ${c.id}: ${message}`);
        res.end(`${JSON.stringify({ StatusCode: -1, Error: { Message: message } })}\n`);
      }
    })
    .add('GET', '/cnm/containers/{id}/logs', async (ctx) => {
      const follow = queryBool(ctx.query, 'follow');
      const c = controller.inspectContainer(id(ctx));
      if (c.logPath === '') {
        throw new InvalidError('LOGS_UNAVAILABLE', `Container "${c.name}" has no log file`);
      }
      await streamLogs(ctx, deps, c, follow);
    })
    .add('POST', '/cnm/containers/{id}/exec', (ctx) => streamExec(ctx, deps, id(ctx)));
}
