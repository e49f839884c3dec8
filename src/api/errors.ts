/**
 * The one place that turns errors into HTTP statuses. The controller speaks in error kinds; the
 * API answers with dockerd's status codes and its `{"message": "..."}` body.
 */
import { CnmError, InvalidError, describeError, type ErrorKind } from '../errors.js';

/** An HTTP-level failure that has no controller kind (oversized body, unknown route). */
export class HttpError extends Error {
  readonly status: number;

  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HttpError';
    this.status = status;
  }
}

const STATUS_BY_KIND: Record<ErrorKind, number> = {
  invalid: 400,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

/** The HTTP status for an error thrown by a handler or the controller. */
export function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof CnmError) return STATUS_BY_KIND[err.kind];
  return 500;
}

/** A log sink: the daemon passes its logger, tests pass nothing or a recorder. */
export type ApiLog = (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;

/**
 * The status and dockerd-style body for `err`. Unexpected errors (500) are logged with their
 * cause chain and stack because the client only sees the top message; 503s as warnings.
 */
export function errorResponse(
  err: unknown,
  log: ApiLog,
  where: string,
): { status: number; body: { message: string } } {
  const status = statusOf(err);
  const message = err instanceof Error ? err.message : String(err);
  if (status === 503) log('warn', `${where}: ${describeError(err)}`);
  if (status === 500) {
    const stack = err instanceof Error && err.stack !== undefined ? `\n${err.stack}` : '';
    log('error', `${where}: ${describeError(err)}${stack}`);
  }
  return { status, body: { message } };
}

/** A 400 for a request field or query parameter of the wrong type or value. */
export function invalidField(field: string, problem: string): InvalidError {
  return new InvalidError('API_FIELD_INVALID', `Invalid field "${field}": ${problem}`);
}

/** A 400 for a query parameter of the wrong type or value. */
export function invalidQuery(name: string, problem: string): InvalidError {
  return new InvalidError('API_QUERY_INVALID', `Invalid query parameter "${name}": ${problem}`);
}
