/**
 * Where the API listens, and who may talk to it: dockerd's `-H` addresses (`unix://PATH`,
 * `tcp://ADDR:PORT`, several at once), the unix socket's owner and mode (root:GROUP 0660), TLS
 * and mutual TLS on TCP, the audit log of every state-changing request, and a graceful
 * shutdown that stops accepting and lets in-flight requests finish.
 *
 * TCP without TLS is refused unless explicitly allowed: whoever reaches the port controls the
 * host's networking as root (dockerd 28 refuses it too, unless told `--tls=false`).
 */
import { chmodSync, chownSync, mkdirSync, rmSync } from 'node:fs';
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { dirname } from 'node:path';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { AuditLog, isAudited, type AuditPeer } from './audit.js';
import type { ApiLog } from './errors.js';
import { responseFailure } from './server.js';

/** One parsed `-H` address. */
export type ApiAddress =
  { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** dockerd's default ports: 2376 with TLS, 2375 without. */
const TLS_PORT = 2376;
const PLAIN_PORT = 2375;

/**
 * Parses a `-H` value as dockerd does: `unix:///path` (`unix://` alone: `defaultSocket`),
 * `tcp://ADDR:PORT`, `tcp://ADDR` (port 2376 with TLS, else 2375), `tcp://:PORT` (127.0.0.1).
 * @throws Error naming the value when it is none of these
 * @example parseApiHost('tcp://127.0.0.1:2376', { tls: true, defaultSocket: '/run/cnm/cnm.sock' })
 */
export function parseApiHost(
  spec: string,
  opts: { tls: boolean; defaultSocket: string },
): ApiAddress {
  const bad = (why: string): Error => new Error(`Invalid host "${spec}": ${why}`);
  if (spec.startsWith('unix://')) {
    const path = spec.slice('unix://'.length) || opts.defaultSocket;
    if (!path.startsWith('/')) throw bad('the socket path must be absolute (unix:///path)');
    return { kind: 'unix', path };
  }
  if (spec.startsWith('tcp://')) {
    // Not `new URL`: it refuses an empty host (`tcp://:2376`), which dockerd takes.
    const m = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]@]*)(?::(\d{1,5}))?\/?$/.exec(spec);
    if (!m) throw bad('expected tcp://ADDR:PORT');
    const host = m[1]!.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
    const port = m[2] === undefined ? (opts.tls ? TLS_PORT : PLAIN_PORT) : Number(m[2]);
    if (port < 1 || port > 65535) throw bad(`port ${port} is out of range`);
    return { kind: 'tcp', host, port };
  }
  throw bad('cnmd listens on unix://PATH or tcp://ADDR:PORT');
}

/** The text form of an address, for logs and errors. */
export function formatApiAddress(a: ApiAddress): string {
  if (a.kind === 'unix') return `unix://${a.path}`;
  return `tcp://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** TLS settings for the TCP listeners (dockerd's `--tls`/`--tlsverify` and files). */
export interface ApiTls {
  cert: Buffer;
  key: Buffer;
  /** CA bundle that client certificates must chain to (needed with `verify`). */
  ca?: Buffer;
  /** Require and verify a client certificate (`--tlsverify`): mutual TLS. */
  verify: boolean;
}

/**
 * Refuses TCP addresses without TLS unless `insecureTcp` is set.
 * @throws Error with the flags that would make it safe
 */
export function checkApiAccess(
  addresses: readonly ApiAddress[],
  opts: { tls: boolean; insecureTcp: boolean },
): void {
  if (opts.tls || opts.insecureTcp) return;
  const tcp = addresses.find((a) => a.kind === 'tcp');
  if (!tcp) return;
  throw new Error(
    `Refusing to listen on "${formatApiAddress(tcp)}" without TLS: anyone who can reach it controls this host's networking as root. ` +
      'Use --tlsverify --tlscacert CA --tlscert CERT --tlskey KEY (mutual TLS), or pass --insecure-tcp to accept the risk',
  );
}

/** Options of {@link listenApi}. */
export interface ListenOptions {
  addresses: readonly ApiAddress[];
  tls?: ApiTls;
  /** Allow TCP without TLS. */
  insecureTcp: boolean;
  /** Group owning the unix sockets (mode 0660, owner root); undefined leaves the group as is. */
  socketGid?: number;
  audit?: AuditLog;
  /** SO_PEERCRED of a unix socket fd (the daemon passes the kernel layer's reader). */
  unixPeer?: (fd: number) => { uid: number; gid: number; pid: number };
  log: ApiLog;
}

type Transport = 'unix' | 'tls' | 'tcp';

/** What {@link ApiListeners.shutdown} saw. */
export interface ShutdownReport {
  /** Requests still running when the listeners closed (long-lived streams not counted). */
  inFlight: number;
  /** Streams cut at once (`logs -f`, `wait`, `exec`): they have no end to wait for. */
  streamsCut: number;
  /** Requests cut because they did not finish within the grace period. */
  cut: number;
}

/** Formats a certificate subject or issuer as `CN=x,O=y`. */
function distinguishedName(dn: PeerCertificate['subject'] | undefined): string {
  if (!dn) return '';
  return Object.entries(dn)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(',');
}

function remoteOf(socket: Socket): string {
  // Undefined once the socket is gone (a client that hung up mid-handshake).
  const a = socket.remoteAddress ?? 'unknown';
  return `${a.includes(':') ? `[${a}]` : a}:${socket.remotePort ?? 0}`;
}

/** The listening API: every `-H` address, one request handler, one set of in-flight requests. */
export class ApiListeners {
  readonly addresses: readonly ApiAddress[];
  #servers: { server: http.Server; address: ApiAddress }[] = [];
  #active = new Set<ServerResponse>();
  #peers = new WeakMap<Socket, AuditPeer>();
  #draining = false;
  #onIdle: (() => void) | undefined;
  #opts: ListenOptions;

  private constructor(opts: ListenOptions) {
    this.#opts = opts;
    this.addresses = opts.addresses;
  }

  /**
   * Listens on every address (closing those already open when one fails).
   * @throws Error when an address is refused ({@link checkApiAccess}) or cannot be bound
   */
  static async listen(handler: RequestListener, opts: ListenOptions): Promise<ApiListeners> {
    checkApiAccess(opts.addresses, { tls: opts.tls !== undefined, insecureTcp: opts.insecureTcp });
    const l = new ApiListeners(opts);
    try {
      for (const a of opts.addresses) await l.#listenOne(handler, a);
    } catch (err) {
      for (const { server } of l.#servers) server.close();
      throw err;
    }
    return l;
  }

  async #listenOne(handler: RequestListener, address: ApiAddress): Promise<void> {
    const { tls, log } = this.#opts;
    const transport: Transport = address.kind === 'unix' ? 'unix' : tls ? 'tls' : 'tcp';
    const listener = this.#wrap(handler, transport);
    const server =
      transport === 'tls'
        ? https.createServer(
            {
              cert: tls!.cert,
              key: tls!.key,
              ...(tls!.ca ? { ca: tls!.ca } : {}),
              // dockerd's --tlsverify: tls.RequireAndVerifyClientCert.
              requestCert: tls!.verify,
              rejectUnauthorized: tls!.verify,
              minVersion: 'TLSv1.2',
            },
            listener,
          )
        : http.createServer(listener);
    // Log follows and waits are long-lived: no request timeout.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    server.on('tlsClientError', (err: Error & { reason?: string }, socket: TLSSocket) => {
      // OpenSSL's message carries its source file and line; `reason` is the readable part.
      log('warn', `TLS handshake from ${remoteOf(socket)} refused: ${err.reason ?? err.message}`);
    });
    if (address.kind === 'unix') {
      mkdirSync(dirname(address.path), { recursive: true });
      rmSync(address.path, { force: true });
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if (address.kind === 'unix') server.listen(address.path, done);
      else server.listen(address.port, address.host, done);
    });
    this.#servers.push({ server, address });
    if (address.kind === 'unix') {
      // root:GROUP 0660, as dockerd's socket: members of the group may use the API.
      if (this.#opts.socketGid !== undefined) chownSync(address.path, 0, this.#opts.socketGid);
      chmodSync(address.path, 0o660);
    }
  }

  #wrap(handler: RequestListener, transport: Transport): RequestListener {
    return (req, res) => {
      this.#active.add(res);
      res.once('close', () => {
        this.#active.delete(res);
        if (this.#active.size === 0) this.#onIdle?.();
      });
      // Like Go's http.Server.Shutdown: a kept-alive connection closes after this response.
      if (this.#draining) res.setHeader('Connection', 'close');
      const audit = this.#opts.audit;
      if (audit && isAudited(req.method)) this.#audit(audit, req, res, transport);
      handler(req, res);
    };
  }

  #audit(audit: AuditLog, req: IncomingMessage, res: ServerResponse, transport: Transport): void {
    const who = this.#peer(req.socket, transport);
    const started = Date.now();
    const time = new Date(started).toISOString();
    res.once('close', () => {
      const complete = res.writableFinished;
      const status = res.headersSent ? res.statusCode : 0;
      const failure =
        responseFailure(res) ??
        (!complete
          ? 'connection closed before the response was complete'
          : status >= 400
            ? `HTTP ${status}`
            : undefined);
      audit.write({
        time,
        who,
        method: req.method ?? '',
        path: req.url ?? '',
        status,
        result: failure === undefined ? 'ok' : 'error',
        ...(failure !== undefined ? { error: failure } : {}),
        durationMs: Date.now() - started,
      });
    });
  }

  /** Who is on `socket`, once per connection (the peer cannot change on an open socket). */
  #peer(socket: Socket, transport: Transport): AuditPeer {
    const known = this.#peers.get(socket);
    if (known) return known;
    let who: AuditPeer;
    if (transport === 'unix') {
      // Node exposes the descriptor of a pipe handle; SO_PEERCRED needs it.
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      try {
        if (typeof fd !== 'number' || fd < 0 || !this.#opts.unixPeer) {
          throw new Error('no descriptor to read SO_PEERCRED from');
        }
        who = { transport, ...this.#opts.unixPeer(fd) };
      } catch (err) {
        who = { transport, error: err instanceof Error ? err.message : String(err) };
      }
    } else if (transport === 'tls') {
      const cert = (socket as TLSSocket).getPeerCertificate();
      who =
        cert && cert.subject
          ? {
              transport,
              subject: distinguishedName(cert.subject),
              issuer: distinguishedName(cert.issuer),
              remote: remoteOf(socket),
            }
          : { transport, subject: null, remote: remoteOf(socket) };
    } else {
      who = { transport, remote: remoteOf(socket) };
    }
    this.#peers.set(socket, who);
    return who;
  }

  /**
   * Stops accepting connections on every address, cuts long-lived streams (their clients see
   * the connection end, as with dockerd), waits up to `graceMs` for the other requests in
   * flight to send their complete responses, then closes every connection left and removes the
   * unix socket files.
   */
  async shutdown(graceMs: number): Promise<ShutdownReport> {
    this.#draining = true;
    // close() stops listening and (Node ≥ 19) closes idle kept-alive connections.
    for (const { server } of this.#servers) server.close();
    let streamsCut = 0;
    for (const res of [...this.#active]) {
      if (res.headersSent && !res.writableEnded) {
        streamsCut++;
        res.destroy();
      }
    }
    // The cut streams leave the set when their 'close' event comes (on a later tick).
    const inFlight = this.#active.size - streamsCut;
    if (this.#active.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.#onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const cut = this.#active.size;
    for (const res of [...this.#active]) res.destroy();
    for (const { server, address } of this.#servers) {
      server.closeAllConnections();
      if (address.kind === 'unix') rmSync(address.path, { force: true });
    }
    return { inFlight, streamsCut, cut };
  }
}
