/**
 * The CLI's only way to the daemon: HTTP over the unix socket, like the docker CLI's client.
 * Errors come back as `CliError`s carrying the text to print and the exit code.
 */
import http, { type IncomingMessage } from 'node:http';

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

/** `-H` beats `CNM_HOST` beats the default, as `-H` beats `DOCKER_HOST`. */
export function resolveHost(flag: string | undefined, env: string | undefined): string {
  if (flag !== undefined && flag !== '') return flag;
  if (env !== undefined && env !== '') return env;
  return DEFAULT_HOST;
}

/**
 * The socket path of a `unix://` host.
 * @throws CliError for any other scheme
 */
export function socketPathOf(host: string): string {
  if (!host.startsWith('unix://') || host.length === 'unix://'.length) {
    throw new CliError(`Invalid host "${host}": only unix:///path/to/socket is supported`);
  }
  return host.slice('unix://'.length);
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

/** HTTP client for the cnm API on a unix socket. */
export class ApiClient {
  readonly host: string;
  readonly #socketPath: string;

  /** @throws CliError when `host` is not a `unix://` address */
  constructor(host: string) {
    this.host = host;
    this.#socketPath = socketPathOf(host);
  }

  /**
   * Sends `req` and resolves with the response once its headers arrive; error statuses are
   * turned into `DaemonError` with the daemon's message.
   * @throws CliError when the daemon cannot be reached
   */
  async open(req: ApiRequest, signal?: AbortSignal): Promise<IncomingMessage> {
    const body = req.body === undefined ? undefined : JSON.stringify(req.body);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const r = http.request(
        {
          socketPath: this.#socketPath,
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
        if (['ECONNREFUSED', 'ENOENT', 'EACCES', 'ENOTSOCK'].includes(err.code ?? '')) {
          const why = err.code === 'EACCES' ? ' (permission denied)' : '';
          reject(
            new CliError(
              `Cannot connect to the cnm daemon at ${this.host}. Is cnmd running?${why}`,
            ),
          );
        } else reject(err);
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
