/**
 * Service routes under `/cnm/services`: replicated containers behind one name, with a VIP
 * balanced in the kernel (`vip`) or DNS round robin (`dnsrr`). Bodies and views use Docker's
 * PascalCase field style.
 */
import type { ServiceApi, ServiceCreateRequest, ServiceView } from '../../cnm/types.js';
import { InvalidError, UnavailableError } from '../../errors.js';
import { FieldReader, readJsonBody } from '../body.js';
import { sendEmpty, sendJson } from '../respond.js';
import type { RouteContext, Router } from '../router.js';
import type { RouteDeps } from '../server.js';

/** The service manager, or 503 when the daemon runs without one. */
function servicesApi(deps: RouteDeps): ServiceApi {
  if (!deps.services)
    throw new UnavailableError('SERVICES_UNAVAILABLE', 'Services are not enabled');
  return deps.services;
}

/**
 * Turns a `POST /cnm/services/create` body into the request:
 * `{Name, Network, Replicas, EndpointMode, Cmd, Env, Labels, Aliases}`.
 * @throws InvalidError naming the first field of the wrong type
 */
export function parseServiceCreate(body: unknown): ServiceCreateRequest {
  const b = FieldReader.root(body);
  const req: ServiceCreateRequest = {
    name: b.string('Name', { required: true }) ?? '',
    network: b.string('Network', { required: true }) ?? '',
    cmd: b.stringArray('Cmd') ?? [],
  };
  const replicas = b.number('Replicas');
  if (replicas !== undefined) req.replicas = replicas;
  const mode = b.optionalString('EndpointMode');
  if (mode !== undefined) {
    if (mode !== 'vip' && mode !== 'dnsrr') {
      throw new InvalidError(
        'SERVICE_MODE_INVALID',
        `Invalid endpoint mode "${mode}": expected "vip" or "dnsrr"`,
      );
    }
    req.endpointMode = mode;
  }
  const env = b.stringArray('Env');
  if (env !== undefined) req.env = env;
  const labels = b.stringMap('Labels');
  if (labels !== undefined) req.labels = labels;
  const aliases = b.stringArray('Aliases');
  if (aliases !== undefined) req.aliases = aliases;
  return req;
}

/** A service view on the wire. */
export function toWireService(v: ServiceView): Record<string, unknown> {
  return {
    ID: v.id,
    Name: v.name,
    Created: v.created,
    NetworkID: v.networkId,
    Network: v.network,
    EndpointMode: v.endpointMode,
    VirtualIP: v.vip,
    VirtualIPv6: v.vip6,
    Replicas: v.replicas,
    Running: v.running,
    Labels: v.labels,
    Aliases: v.aliases,
    Tasks: v.tasks.map((t) => ({
      ID: t.id,
      Name: t.name,
      Status: t.status,
      IPAddress: t.ipAddress,
    })),
  };
}

/** Registers `/cnm/services`. */
export function registerServiceRoutes(router: Router, deps: RouteDeps): void {
  const id = (ctx: RouteContext): string => ctx.params['id'] ?? '';
  router
    .add('POST', '/cnm/services/create', async ({ req, res }) => {
      const view = await servicesApi(deps).createService(
        parseServiceCreate(await readJsonBody(req)),
      );
      sendJson(res, 201, toWireService(view));
    })
    .add('GET', '/cnm/services', ({ res }) => {
      sendJson(res, 200, servicesApi(deps).listServices().map(toWireService));
    })
    .add('GET', '/cnm/services/{id}', (ctx) => {
      sendJson(ctx.res, 200, toWireService(servicesApi(deps).inspectService(id(ctx))));
    })
    .add('DELETE', '/cnm/services/{id}', async (ctx) => {
      await servicesApi(deps).removeService(id(ctx));
      sendEmpty(ctx.res, 204);
    })
    .add('POST', '/cnm/services/{id}/scale', async (ctx) => {
      const b = FieldReader.root(await readJsonBody(ctx.req));
      const replicas = b.number('Replicas');
      if (replicas === undefined) {
        throw new InvalidError('SERVICE_REPLICAS_INVALID', 'Missing field "Replicas"');
      }
      const view = await servicesApi(deps).scaleService(id(ctx), replicas);
      sendJson(ctx.res, 200, toWireService(view));
    });
}
