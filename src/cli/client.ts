/**
 * The CLI's only way to the daemon: HTTP over the unix socket, or over TCP with TLS (mutual TLS
 * with `--tlsverify`), like the docker CLI's client. Errors come back as `CliError`s carrying
 * the text to print and the exit code; a failed connection or handshake is one of them too.
 */
import { readFileSync } from 'node:fs';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

/** The CLI's own version. */
export const CLIENT_VERSION = '0.1.0';
/** The API version the CLI speaks (the daemon's). */
export const CLIENT_API_VERSION = '1.47';
/** Where cnmd listens unless `-H` or `CNM_HOST` say otherwise. */
export const DEFAULT_HOST = 'unix:///run/cnm/cnm.sock';

/** One API call, as the per-command request builders produce it. */
export interface ApiRequest {
  method: 'GET' | 'POST' | 'DELETE' | 'HEAD';
  path: string;
  /** Entries whose value is `undefined` are left out. */
  query?: Record<string, string | undefined>;
  body?: unknown;
}

/** An error the CLI prints as is, then exits with `exitCode`. */
export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** The daemon answered with an error status; printed as dockerd's CLI does. */
export class DaemonError extends CliError {
  readonly status: number;

  constructor(status: number, message: string) {
    super(`Error response from daemon: ${message}`);
    this.name = 'DaemonError';
    this.status = status;
  }
}

/**
 * `-H` beats `CNM_HOST` beats the default, as `-H` beats `DOCKER_HOST`. `DOCKER_HOST` is never
 * read: it usually names dockerd, which would take cnm's network commands for its own networks.
 */
export function resolveHost(flag: string | undefined, env: string | undefined): string {
  if (flag !== undefined && flag !== '') return flag;
  if (env !== undefined && env !== '') return env;
  return DEFAULT_HOST;
}

/** Where a host address points. */
export type Endpoint =
  { kind: 'unix'; socketPath: string } | { kind: 'tcp'; host: string; port: number | undefined };

/**
 * Parses `unix:///path` or `tcp://ADDR[:PORT]` (IPv6 in brackets).
 * @throws CliError for anything else
 */
export function parseHost(host: string): Endpoint {
  if (host.startsWith('unix://') && host.length > 'unix://'.length) {
    return { kind: 'unix', socketPath: host.slice('unix://'.length) };
  }
  const m = /^tcp:\/\/(\[[0-9A-Fa-f:.]+\]|[^:/[\]]+)(?::(\d{1,5}))?\/?$/.exec(host);
  const port = m?.[2] === undefined ? undefined : Number(m[2]);
  if (!m || (port !== undefined && (port < 1 || port > 65535))) {
    throw new CliError(
      `Invalid host "${host}": expected unix:///path/to/socket or tcp://ADDR:PORT`,
    );
  }
  return { kind: 'tcp', host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * The socket path of a `unix://` host.
 * @throws CliError for any other address
 */
export function socketPathOf(host: string): string {
  const e = parseHost(host);
  if (e.kind !== 'unix') throw new CliError(`Invalid host "${host}": not a unix:// address`);
  return e.socketPath;
}

/** The global TLS flags, as docker's: `--tls`, `--tlsverify`, `--tlscacert/--tlscert/--tlskey`. */
export interface TlsFlags {
  tls?: boolean;
  tlsverify?: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
}

/** TLS settings for a `tcp://` host, files already read. */
export interface ClientTls {
  /** Check the daemon's certificate against `ca` and the host address (`--tlsverify`). */
  verify: boolean;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/**
 * Docker's rules, with `CNM_` variables: `--tlsverify` (or `CNM_TLS_VERIFY` non-empty) implies
 * `--tls`; files default to `ca.pem`, `cert.pem`, `key.pem` in `CNM_CERT_PATH` (else `~/.cnm`).
 * A file named by a flag must exist; a default one is used when it exists (the CA is required
 * to verify). Returns `undefined` when TLS is off.
 * @throws CliError naming the file that cannot be read
 */
export function resolveTls(
  flags: TlsFlags,
  env: Record<string, string | undefined>,
  read: (file: string) => Buffer = readFileSync,
): ClientTls | undefined {
  const verify = flags.tlsverify === true || (env['CNM_TLS_VERIFY'] ?? '') !== '';
  if (!verify && flags.tls !== true) return undefined;
  const dir = env['CNM_CERT_PATH'] || path.join(env['HOME'] || os.homedir(), '.cnm');
  const load = (
    what: string,
    flag: string | undefined,
    file: string,
    required: boolean,
  ): Buffer | undefined => {
    const f = flag ?? path.join(dir, file);
    try {
      return read(f);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (flag === undefined && !required && code === 'ENOENT') return undefined;
      throw new CliError(`Cannot read the ${what} "${f}": ${code ?? String(err)}`);
    }
  };
  const ca = load('CA certificate', flags.tlscacert, 'ca.pem', verify);
  const cert = load('client certificate', flags.tlscert, 'cert.pem', false);
  const key = load('client key', flags.tlskey, 'key.pem', cert !== undefined);
  if ((cert === undefined) !== (key === undefined)) {
    throw new CliError('A client certificate needs its key: give both --tlscert and --tlskey');
  }
  return {
    verify,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
  };
}

/** Why a connection failed, in words a user can act on. */
function connectError(
  host: string,
  tls: ClientTls | undefined,
  err: NodeJS.ErrnoException,
): string {
  const code = err.code ?? '';
  const at = `Cannot connect to the cnm daemon at ${host}`;
  // OpenSSL's messages carry their source location; keep the reason ("tlsv13 alert ...").
  const why =
    /:([^:]*(?:alert|certificate|handshake)[^:]*):/i.exec(err.message)?.[1] ?? err.message;
  if (['ECONNREFUSED', 'ENOENT', 'ENOTSOCK'].includes(code)) return `${at}. Is cnmd running?`;
  if (code === 'EACCES') return `${at}. Is cnmd running? (permission denied)`;
  if (/CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|BAD_CERTIFICATE|UNKNOWN_CA/.test(code)) {
    return `${at}: the daemon requires a client certificate signed by its CA (${why.trim()}); give one with --tlscert CERT --tlskey KEY`;
  }
  if (/CERT|SELF_SIGNED|ERR_TLS_/.test(code)) {
    return `${at}: the daemon's TLS certificate is not trusted (${why.trim()}); check --tlscacert`;
  }
  if (code.startsWith('ERR_SSL_')) return `${at}: TLS handshake failed (${why.trim()})`;
  if (code === 'ECONNRESET' || code === 'EPIPE' || err.message === 'socket hang up') {
    return tls
      ? `${at}: the daemon closed the connection during the TLS handshake (does it require a client certificate signed by its CA? --tlscert/--tlskey)`
      : `${at}: the daemon closed the connection (does it require TLS? --tls or --tlsverify)`;
  }
  return `${at}: ${err.message}`;
}

/** The request path with version prefix and query string. */
export function requestPath(req: ApiRequest): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) q.set(k, v);
  const qs = q.toString();
  return `/v${CLIENT_API_VERSION}${req.path}${qs === '' ? '' : `?${qs}`}`;
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** HTTP client for the cnm API on a unix socket or a TCP (TLS) address. */
export class ApiClient {
  readonly host: string;
  readonly #endpoint: Endpoint;
  readonly #tls: ClientTls | undefined;

  /**
   * `tls` applies to `tcp://` hosts only (as docker ignores its TLS flags for a socket).
   * @throws CliError when `host` is not a `unix://` or `tcp://` address
   */
  constructor(host: string, tls?: ClientTls) {
    this.host = host;
    this.#endpoint = parseHost(host);
    this.#tls = this.#endpoint.kind === 'tcp' ? tls : undefined;
  }

  #request(options: http.RequestOptions, done: (res: IncomingMessage) => void): ClientRequest {
    const e = this.#endpoint;
    if (e.kind === 'unix') return http.request({ ...options, socketPath: e.socketPath }, done);
    const tls = this.#tls;
    // No keep-alive pool: one command, a few requests, and nothing left to hold the process.
    const port = e.port ?? (tls ? 2376 : 2375);
    // The Host header is also what Node checks the certificate against: the real address.
    const hostHeader = `${e.host.includes(':') ? `[${e.host}]` : e.host}:${port}`;
    const headers = { ...options.headers, Host: hostHeader };
    const base = { ...options, headers, host: e.host, port, agent: false };
    if (!tls) return http.request(base, done);
    return https.request(
      {
        ...base,
        rejectUnauthorized: tls.verify,
        minVersion: 'TLSv1.2',
        ...(tls.ca ? { ca: tls.ca } : {}),
        ...(tls.cert ? { cert: tls.cert } : {}),
        ...(tls.key ? { key: tls.key } : {}),
      },
      done,
    );
  }

  /**
   * Sends `req` and resolves with the response once its headers arrive; error statuses are
   * turned into `DaemonError` with the daemon's message.
   * @throws CliError when the daemon cannot be reached
   */
  async open(req: ApiRequest, signal?: AbortSignal): Promise<IncomingMessage> {
    const body = req.body === undefined ? undefined : JSON.stringify(req.body);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const r = this.#request(
        {
          method: req.method,
          path: requestPath(req),
          headers: {
            Host: 'cnm',
            'User-Agent': `cnm-cli/${CLIENT_VERSION}`,
            ...(body === undefined
              ? {}
              : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }),
          },
          ...(signal === undefined ? {} : { signal }),
        },
        resolve,
      );
      r.on('error', (err: NodeJS.ErrnoException) => {
        // An abort is the caller's own doing: hand it back as it is.
        if (err.name === 'AbortError') reject(err);
        else reject(new CliError(connectError(this.host, this.#tls, err)));
      });
      r.end(body);
    });
    const status = res.statusCode ?? 0;
    if (status >= 400) {
      const text = await readAll(res);
      let message = text.trim();
      try {
        const parsed = JSON.parse(text) as { message?: unknown };
        if (typeof parsed.message === 'string') message = parsed.message;
      } catch {
        // not JSON (a proxy or a crash page): show the raw text
      }
      throw new DaemonError(status, message === '' ? `HTTP ${status}` : message);
    }
    return res;
  }

  /** Sends `req` and parses the JSON answer (`undefined` for an empty body). */
  async json<T>(req: ApiRequest): Promise<T> {
    const res = await this.open(req);
    const text = await readAll(res);
    return (text.trim() === '' ? undefined : JSON.parse(text)) as T;
  }
}
