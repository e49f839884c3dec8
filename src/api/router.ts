/**
 * A small router: method plus a path pattern whose `{name}` segments become decoded params.
 * Linear matching is enough for two dozen routes and keeps the order of registration visible.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidError } from '../errors.js';
import type { ApiLog } from './errors.js';

/** What a route handler gets for one request. */
export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** Decoded `{name}` path segments. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The client's API version (from the `/vX.Y` prefix, else the server's). */
  apiVersion: string;
  log: ApiLog;
  /** Aborted when the client goes away before the response is finished. */
  signal: AbortSignal;
}

/** A route handler; it writes the response itself or throws for the error mapper. */
export type RouteHandler = (ctx: RouteContext) => Promise<void> | void;

interface Route {
  method: string;
  segments: string[];
  handler: RouteHandler;
}

/** The outcome of matching a request. */
export type RouteMatch =
  | { kind: 'found'; handler: RouteHandler; params: Record<string, string> }
  | { kind: 'method-not-allowed'; allowed: string[] }
  | { kind: 'not-found' };

/**
 * Decodes one path segment as a parameter value.
 * @throws InvalidError on bad percent-encoding, `/` or NUL, since ids and names never hold them
 */
export function decodeParam(name: string, raw: string): string {
  let v: string;
  try {
    v = decodeURIComponent(raw);
  } catch (err) {
    throw new InvalidError('API_PATH_INVALID', `Invalid path parameter "${name}": bad encoding`, {
      cause: err,
    });
  }
  if (v.includes('/') || v.includes('\0')) {
    throw new InvalidError(
      'API_PATH_INVALID',
      `Invalid path parameter "${name}": must not contain "/" or NUL`,
    );
  }
  return v;
}

/** Method + pattern routing table. */
export class Router {
  readonly #routes: Route[] = [];

  /** Registers `handler` for `method` on `pattern` (`/networks/{id}/connect`). */
  add(method: string, pattern: string, handler: RouteHandler): this {
    this.#routes.push({ method, segments: pattern.split('/').slice(1), handler });
    return this;
  }

  /**
   * Finds the route for `path` (already stripped of its version prefix and query).
   * @throws InvalidError when a matched parameter is malformed
   */
  match(method: string, path: string): RouteMatch {
    const parts = path.split('/').slice(1);
    const allowed: string[] = [];
    for (const route of this.#routes) {
      const raw = matchSegments(route.segments, parts);
      if (raw === undefined) continue;
      if (route.method !== method) {
        allowed.push(route.method);
        continue;
      }
      const params: Record<string, string> = {};
      for (const [name, value] of Object.entries(raw)) params[name] = decodeParam(name, value);
      return { kind: 'found', handler: route.handler, params };
    }
    return allowed.length > 0 ? { kind: 'method-not-allowed', allowed } : { kind: 'not-found' };
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] ?? '';
    const v = parts[i] ?? '';
    if (p.startsWith('{') && p.endsWith('}')) {
      if (v === '') return undefined;
      params[p.slice(1, -1)] = v;
    } else if (p !== v) {
      return undefined;
    }
  }
  return params;
}
