/**
 * Network policy routes under `/cnm/policies` (NetworkPolicy documents, YAML or JSON, exactly
 * as `kubectl apply -f` takes them) and container relabelling under `/cnm/containers/{id}/labels`.
 */
import type { IncomingMessage } from 'node:http';
import type { PolicyApi, PolicyView } from '../../cnm/policy-engine.js';
import { UnavailableError } from '../../errors.js';
import { FieldReader, queryString, readJsonBody } from '../body.js';
import { HttpError } from '../errors.js';
import { sendEmpty, sendJson } from '../respond.js';
import type { RouteContext, Router } from '../router.js';
import type { RouteDeps } from '../server.js';

/** Policy documents can be many (`kind: List`): a larger limit than other requests. */
export const MAX_POLICY_BYTES = 64 * 1024 * 1024;

/** Reads a request body as text. @throws HttpError 413 beyond `limit` */
export async function readText(req: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.resume();
      throw new HttpError(413, `Request body is larger than the limit of ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The policy engine, or 503 when the daemon runs without one. */
export function policyApi(deps: RouteDeps): PolicyApi {
  if (!deps.policy)
    throw new UnavailableError('POLICY_UNAVAILABLE', 'Network policy is not enabled');
  return deps.policy;
}

/** A policy view on the wire. */
export function toWirePolicy(v: PolicyView): Record<string, unknown> {
  return {
    Namespace: v.namespace,
    Name: v.name,
    Created: v.created,
    Updated: v.updated,
    Selected: v.selected,
    Policy: v.policy,
  };
}

/** `{"Set": {k: v}, "Remove": [k]}` bodies of the label routes. */
export function parseLabelChange(body: unknown): { set: Record<string, string>; remove: string[] } {
  const b = FieldReader.root(body ?? {});
  return { set: b.stringMap('Set') ?? {}, remove: b.stringArray('Remove') ?? [] };
}

/** Registers `/cnm/policies` and `/cnm/containers/{id}/labels`. */
export function registerPolicyRoutes(router: Router, deps: RouteDeps): void {
  const p = (ctx: RouteContext, k: string): string => ctx.params[k] ?? '';
  router
    .add('POST', '/cnm/policies', async ({ req, res, query }) => {
      const text = await readText(req, MAX_POLICY_BYTES);
      const ns = queryString(query, 'namespace');
      const results = await policyApi(deps).applyPolicies(text, ns ? { namespace: ns } : {});
      sendJson(
        res,
        200,
        results.map((r) => ({ Namespace: r.namespace, Name: r.name, Result: r.result })),
      );
    })
    .add('GET', '/cnm/policies', ({ res, query }) => {
      sendJson(
        res,
        200,
        policyApi(deps).listPolicies(queryString(query, 'namespace')).map(toWirePolicy),
      );
    })
    .add('GET', '/cnm/policies/{ns}/{name}', (ctx) => {
      sendJson(
        ctx.res,
        200,
        toWirePolicy(policyApi(deps).inspectPolicy(p(ctx, 'ns'), p(ctx, 'name'))),
      );
    })
    .add('DELETE', '/cnm/policies/{ns}/{name}', async (ctx) => {
      await policyApi(deps).removePolicy(p(ctx, 'ns'), p(ctx, 'name'));
      sendEmpty(ctx.res, 204);
    })
    .add('POST', '/cnm/containers/{id}/labels', async (ctx) => {
      const { set, remove } = parseLabelChange(await readJsonBody(ctx.req));
      await policyApi(deps).labelContainer(p(ctx, 'id'), set, remove);
      sendEmpty(ctx.res, 204);
    });
}
