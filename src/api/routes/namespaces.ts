/** Namespace routes under `/cnm/namespaces`: namespaces and their labels, for network policy. */
import type { NamespaceView } from '../../cnm/policy-engine.js';
import { FieldReader, readJsonBody } from '../body.js';
import { invalidField } from '../errors.js';
import { sendEmpty, sendJson } from '../respond.js';
import type { Router } from '../router.js';
import type { RouteDeps } from '../server.js';
import { parseLabelChange, policyApi } from './policies.js';

/** A namespace view on the wire. */
export function toWireNamespace(v: NamespaceView): Record<string, unknown> {
  return {
    Name: v.name,
    Labels: v.labels,
    Created: v.created,
    Stored: v.stored,
    Containers: v.containers,
    Policies: v.policies,
  };
}

/** Registers the `/cnm/namespaces` routes. */
export function registerNamespaceRoutes(router: Router, deps: RouteDeps): void {
  router
    .add('GET', '/cnm/namespaces', ({ res }) => {
      sendJson(res, 200, policyApi(deps).listNamespaces().map(toWireNamespace));
    })
    .add('POST', '/cnm/namespaces', async ({ req, res }) => {
      const b = FieldReader.root((await readJsonBody(req)) ?? {});
      const name = b.string('Name');
      if (!name) throw invalidField('Name', 'is required');
      const view = await policyApi(deps).createNamespace(name, b.stringMap('Labels') ?? {});
      sendJson(res, 201, toWireNamespace(view));
    })
    .add('POST', '/cnm/namespaces/{name}/labels', async ({ req, res, params }) => {
      const { set, remove } = parseLabelChange(await readJsonBody(req));
      const view = await policyApi(deps).labelNamespace(params['name'] ?? '', set, remove);
      sendJson(res, 200, toWireNamespace(view));
    })
    .add('DELETE', '/cnm/namespaces/{name}', async ({ res, params }) => {
      await policyApi(deps).removeNamespace(params['name'] ?? '');
      sendEmpty(res, 204);
    });
}
