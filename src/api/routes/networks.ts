/** Docker's `/networks` routes: list, inspect, create, remove, connect, disconnect, prune. */
import type { EndpointRequest, IpamPoolView, NetworkCreateRequest } from '../../cnm/types.js';
import { NotFoundError } from '../../errors.js';
import { FieldReader, queryBool, queryString, readJsonBody } from '../body.js';
import { invalidField, invalidQuery } from '../errors.js';
import {
  NETWORK_FILTER_KEYS,
  filterNetworks,
  parseFilters,
  parsePruneFilters,
} from '../filters.js';
import { sendEmpty, sendJson } from '../respond.js';
import type { Router } from '../router.js';
import type { RouteDeps } from '../server.js';
import { toWireNetwork } from '../wire.js';

const SCOPES = ['local', 'global', 'swarm'];

/**
 * Turns a `POST /networks/create` body into the controller's request. Empty strings mean "not
 * set" as in dockerd's Go structs; unknown fields are ignored as dockerd does (`CheckDuplicate`).
 * @throws InvalidError naming the first field of the wrong type
 */
export function parseNetworkCreate(body: unknown): NetworkCreateRequest {
  const b = FieldReader.root(body);
  const req: NetworkCreateRequest = { name: b.string('Name', { required: true }) ?? '' };
  const driver = b.optionalString('Driver');
  if (driver !== undefined) req.driver = driver;
  const scope = b.optionalString('Scope');
  if (scope !== undefined) req.scope = scope;
  for (const [field, key] of [
    ['Internal', 'internal'],
    ['Attachable', 'attachable'],
    ['Ingress', 'ingress'],
    ['ConfigOnly', 'configOnly'],
    ['EnableIPv4', 'enableIPv4'],
    ['EnableIPv6', 'enableIPv6'],
  ] as const) {
    const v = b.bool(field);
    if (v !== undefined) req[key] = v;
  }
  b.bool('CheckDuplicate'); // ignored since API 1.44, but a wrong type is still a client bug
  const configFrom = b.object('ConfigFrom')?.optionalString('Network');
  if (configFrom !== undefined) req.configFrom = configFrom;
  const options = b.stringMap('Options');
  if (options !== undefined) req.options = options;
  const labels = b.stringMap('Labels');
  if (labels !== undefined) req.labels = labels;
  const ipam = b.object('IPAM');
  if (ipam !== undefined) {
    const out: NonNullable<NetworkCreateRequest['ipam']> = {};
    const ipamDriver = ipam.optionalString('Driver');
    if (ipamDriver !== undefined) out.driver = ipamDriver;
    const ipamOptions = ipam.stringMap('Options');
    if (ipamOptions !== undefined) out.options = ipamOptions;
    const config = ipam.objectArray('Config');
    if (config !== undefined) {
      out.config = config.map((c) => {
        const pool: IpamPoolView = { subnet: c.string('Subnet', { required: true }) ?? '' };
        const ipRange = c.optionalString('IPRange');
        if (ipRange !== undefined) pool.ipRange = ipRange;
        const gateway = c.optionalString('Gateway');
        if (gateway !== undefined) pool.gateway = gateway;
        const aux = c.stringMap('AuxiliaryAddresses');
        if (aux !== undefined && Object.keys(aux).length > 0) pool.auxAddresses = aux;
        return pool;
      });
    }
    req.ipam = out;
  }
  return req;
}

/**
 * Turns a `POST /networks/{id}/connect` body into container + endpoint request. The docker CLI
 * sends the whole `EndpointSettings` with zero values (`""`, `null`), read here as unset.
 */
export function parseConnect(body: unknown): { container: string; endpoint: EndpointRequest } {
  const b = FieldReader.root(body);
  const container = b.string('Container', { required: true }) ?? '';
  const endpoint: EndpointRequest = {};
  const cfg = b.object('EndpointConfig');
  if (cfg !== undefined) {
    const ipamCfg = cfg.object('IPAMConfig');
    const ipv4 = ipamCfg?.optionalString('IPv4Address');
    if (ipv4 !== undefined) endpoint.ipv4 = ipv4;
    const ipv6 = ipamCfg?.optionalString('IPv6Address');
    if (ipv6 !== undefined) endpoint.ipv6 = ipv6;
    // Refused rather than ignored: the caller would otherwise believe they took effect.
    if ((ipamCfg?.stringArray('LinkLocalIPs') ?? []).length > 0) {
      throw invalidField(
        'EndpointConfig.IPAMConfig.LinkLocalIPs',
        'link-local addresses are not supported by cnm',
      );
    }
    if ((cfg.number('GwPriority') ?? 0) !== 0) {
      throw invalidField(
        'EndpointConfig.GwPriority',
        'gateway priorities are not supported by cnm: the first network joined holds the default route',
      );
    }
    if ((cfg.stringArray('Links') ?? []).length > 0) {
      throw invalidField(
        'EndpointConfig.Links',
        'legacy links are not supported by cnm; use --alias on a user-defined network',
      );
    }
    const aliases = cfg.stringArray('Aliases');
    if (aliases !== undefined && aliases.length > 0) endpoint.aliases = aliases;
    const mac = cfg.optionalString('MacAddress');
    if (mac !== undefined) endpoint.mac = mac;
    const driverOpts = cfg.stringMap('DriverOpts');
    if (driverOpts !== undefined && Object.keys(driverOpts).length > 0) {
      endpoint.driverOpts = driverOpts;
    }
  }
  return { container, endpoint };
}

/** Turns a `POST /networks/{id}/disconnect` body into container + force. */
export function parseDisconnect(body: unknown): { container: string; force: boolean } {
  const b = FieldReader.root(body);
  return {
    container: b.string('Container', { required: true }) ?? '',
    force: b.bool('Force') ?? false,
  };
}

/** Registers the `/networks` routes. */
export function registerNetworkRoutes(router: Router, deps: RouteDeps): void {
  const { controller } = deps;
  router
    .add('GET', '/networks', ({ res, query }) => {
      const args = parseFilters(queryString(query, 'filters'), NETWORK_FILTER_KEYS);
      const list = filterNetworks(controller.listNetworks(), args);
      sendJson(
        res,
        200,
        list.map((n) => toWireNetwork(n, { withContainers: false })),
      );
    })
    .add('GET', '/networks/{id}', ({ res, query, params }) => {
      const id = params['id'] ?? '';
      queryBool(query, 'verbose'); // swarm-only detail: validated, nothing more to show
      const scope = queryString(query, 'scope');
      if (scope !== undefined && scope !== '' && !SCOPES.includes(scope)) {
        throw invalidQuery('scope', `must be one of ${SCOPES.map((s) => `"${s}"`).join(', ')}`);
      }
      const n = controller.inspectNetwork(id);
      if (scope !== undefined && scope !== '' && n.scope !== scope) {
        throw new NotFoundError('NET_NOT_FOUND', `network ${id} not found`);
      }
      sendJson(res, 200, toWireNetwork(n, { withContainers: true }));
    })
    .add('POST', '/networks/create', async ({ req, res }) => {
      const request = parseNetworkCreate(await readJsonBody(req));
      const { id, warning } = await controller.createNetwork(request);
      sendJson(res, 201, { Id: id, Warning: warning });
    })
    .add('DELETE', '/networks/{id}', async ({ res, params }) => {
      await controller.removeNetwork(params['id'] ?? '');
      sendEmpty(res, 204);
    })
    .add('POST', '/networks/{id}/connect', async ({ req, res, params }) => {
      const { container, endpoint } = parseConnect(await readJsonBody(req));
      await controller.connect(params['id'] ?? '', container, endpoint);
      sendEmpty(res, 200);
    })
    .add('POST', '/networks/{id}/disconnect', async ({ req, res, params }) => {
      const { container, force } = parseDisconnect(await readJsonBody(req));
      await controller.disconnect(params['id'] ?? '', container, { force });
      sendEmpty(res, 200);
    })
    .add('POST', '/networks/prune', async ({ res, query }) => {
      const filters = parsePruneFilters(queryString(query, 'filters'), deps.now());
      const deleted = await controller.pruneNetworks(filters);
      sendJson(res, 200, { NetworksDeleted: deleted });
    });
}
