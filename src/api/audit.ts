/**
 * The API's audit log: one JSON line per state-changing request (every method but GET and
 * HEAD), written when the response is complete: when, who, what, and how it ended. Reads are
 * not logged.
 *
 * ```json
 * {"time":"2026-11-28T08:01:02.345Z","who":{"transport":"unix","uid":0,"gid":0,"pid":4242},
 *  "method":"POST","path":"/v1.47/networks/create","status":201,"result":"ok","durationMs":12}
 * ```
 *
 * `who` is what the transport proves: the peer's SO_PEERCRED on the unix socket, the client
 * certificate's subject (and issuer) over TLS, only the remote address over plain TCP.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

/** Who sent a request, as far as the transport can tell. */
export type AuditPeer =
  | { transport: 'unix'; uid: number; gid: number; pid: number }
  | { transport: 'unix'; error: string }
  | { transport: 'tls'; subject: string; issuer: string; remote: string }
  | { transport: 'tls'; subject: null; remote: string }
  | { transport: 'tcp'; remote: string };

/** One audit record. */
export interface AuditEntry {
  /** ISO 8601, when the request arrived. */
  time: string;
  who: AuditPeer;
  method: string;
  /** The request target as sent (path and query). */
  path: string;
  /** The response status; 0 when the connection closed before a response was sent. */
  status: number;
  result: 'ok' | 'error';
  /** The error message sent to the client (or why the exchange was cut). */
  error?: string;
  durationMs: number;
}

/** Whether a request with `method` may change state (and is therefore audited). */
export function isAudited(method: string | undefined): boolean {
  return method !== 'GET' && method !== 'HEAD';
}

/** An append-only JSON-lines audit file. */
export class AuditLog {
  readonly path: string;
  #out: WriteStream;
  #failed: Error | undefined;

  private constructor(path: string, out: WriteStream) {
    this.path = path;
    this.#out = out;
    out.on('error', (err) => {
      this.#failed ??= err;
    });
  }

  /**
   * Opens (creating it 0600, else appending to it) the audit file at `path`.
   * @throws Error when the file cannot be opened
   */
  static async open(path: string): Promise<AuditLog> {
    const out = createWriteStream(path, { flags: 'a', mode: 0o600 });
    await new Promise<void>((resolve, reject) => {
      out.once('open', () => resolve());
      out.once('error', (err) =>
        reject(new Error(`Cannot open audit log "${path}"`, { cause: err })),
      );
    });
    return new AuditLog(path, out);
  }

  /** The first write error, if any (the daemon logs it). */
  get failure(): Error | undefined {
    return this.#failed;
  }

  /** Appends one record (writes keep their order). */
  write(entry: AuditEntry): void {
    if (this.#out.writable) this.#out.write(`${JSON.stringify(entry)}\n`);
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    if (this.#out.closed) return;
    await new Promise<void>((resolve) => this.#out.end(() => resolve()));
  }
}
