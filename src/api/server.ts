/**
 * The API's composition root: builds the router from the route files and turns each request
 * into a handler call, mapping thrown errors to dockerd's status codes and bodies.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { PolicyApi } from '../cnm/policy-engine.js';
import type { ControllerApi, ServiceApi } from '../cnm/types.js';
import { errorResponse, type ApiLog } from './errors.js';
import { sendJson } from './respond.js';
import { Router } from './router.js';
import { registerContainerRoutes } from './routes/containers.js';
import { registerDnsRoutes, type DnsMetricsView } from './routes/dns.js';
import { registerDoctorRoutes, type DoctorView } from './routes/doctor.js';
import { registerNamespaceRoutes } from './routes/namespaces.js';
import { registerNetworkRoutes } from './routes/networks.js';
import { registerPolicyRoutes } from './routes/policies.js';
import { registerServiceRoutes } from './routes/services.js';
import { registerSystemRoutes } from './routes/system.js';
import { API_VERSION, splitVersion } from './version.js';

/** Options for the API handler and server. */
export interface ApiOptions {
  log?: ApiLog;
  /** Clock for `until` filters and human-readable ages; tests pin it. */
  now?: () => Date;
  /** Poll interval of `logs?follow=1`, in milliseconds (default 100). */
  logPollMs?: number;
  /** The host report of `GET /cnm/doctor` (the daemon builds it; absent in API tests). */
  doctor?: () => Promise<DoctorView>;
  /** Network policy and namespaces (`/cnm/policies`, `/cnm/namespaces`); 503 when absent. */
  policy?: PolicyApi;
  /** Services (`/cnm/services`); 503 when absent. */
  services?: ServiceApi;
  /** The embedded DNS's counters (`GET /cnm/dns/metrics`); 503 when absent. */
  dnsMetrics?: () => DnsMetricsView;
}

/** What every route file receives. */
export interface RouteDeps {
  controller: ControllerApi;
  now: () => Date;
  logPollMs: number;
  doctor?: () => Promise<DoctorView>;
  policy?: PolicyApi;
  services?: ServiceApi;
  dnsMetrics?: () => DnsMetricsView;
}

const noLog: ApiLog = () => {};

/** The error message each failed response carried (read by the audit log). */
const failures = new WeakMap<ServerResponse, string>();

/** The `message` of the error response `res` carried, or undefined when it succeeded. */
export function responseFailure(res: ServerResponse): string | undefined {
  return failures.get(res);
}

/**
 * A request listener serving the Docker Engine API subset and `/cnm/*`. Tests call it
 * in-process; `createApiServer` puts it on a socket.
 */
export function createApiHandler(
  controller: ControllerApi,
  opts: ApiOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const log = opts.log ?? noLog;
  const deps: RouteDeps = {
    controller,
    now: opts.now ?? (() => new Date()),
    logPollMs: opts.logPollMs ?? 100,
    ...(opts.doctor ? { doctor: opts.doctor } : {}),
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.services ? { services: opts.services } : {}),
    ...(opts.dnsMetrics ? { dnsMetrics: opts.dnsMetrics } : {}),
  };
  const router = new Router();
  registerSystemRoutes(router, deps);
  registerNetworkRoutes(router, deps);
  registerContainerRoutes(router, deps);
  registerDoctorRoutes(router, deps);
  registerPolicyRoutes(router, deps);
  registerNamespaceRoutes(router, deps);
  registerServiceRoutes(router, deps);
  registerDnsRoutes(router, deps);
  return (req, res) => {
    void handle(router, log, req, res);
  };
}

async function handle(
  router: Router,
  log: ApiLog,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const method = req.method ?? 'GET';
  const where = `${method} ${req.url ?? ''}`;
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  // Headers dockerd sets on every response; clients read API-Version from any of them.
  res.setHeader('Api-Version', API_VERSION);
  res.setHeader('Ostype', 'linux');
  res.setHeader('Docker-Experimental', 'false');
  res.setHeader('Server', 'cnm (linux)');
  try {
    const url = new URL(req.url ?? '/', 'http://cnm');
    const { version, path } = splitVersion(url.pathname);
    const match = router.match(method, path);
    if (match.kind === 'not-found') {
      failures.set(res, 'page not found');
      sendJson(res, 404, { message: 'page not found' });
      return;
    }
    if (match.kind === 'method-not-allowed') {
      res.setHeader('Allow', match.allowed.join(', '));
      failures.set(res, 'method not allowed');
      sendJson(res, 405, { message: 'method not allowed' });
      return;
    }
    log('debug', where);
    await match.handler({
      req,
      res,
      params: match.params,
      query: url.searchParams,
      apiVersion: version,
      log,
      signal: abort.signal,
    });
  } catch (err) {
    const { status, body } = errorResponse(err, log, where);
    failures.set(res, body.message);
    if (res.headersSent) {
      // A streaming response already started: the only signal left is a cut connection.
      if (status >= 500 || !res.writableEnded) res.destroy();
      return;
    }
    sendJson(res, status, body);
  }
}

/**
 * An `http.Server` serving the API; the caller listens on the unix socket.
 * @example createApiServer(controller, { log }).listen('/run/cnm/cnm.sock')
 */
export function createApiServer(controller: ControllerApi, opts: ApiOptions = {}): http.Server {
  const server = http.createServer(createApiHandler(controller, opts));
  // Log follows and waits are long-lived: no request timeout on a local socket.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  return server;
}
