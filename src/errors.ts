/**
 * Errors with a stable code and a kind. Only `api/` maps kinds to HTTP status codes.
 *
 * Messages are capitalised, have no final period, quote values, and name the failed action:
 * `Cannot create network "web": subnet "10.0.0.0/33" is not a valid CIDR`.
 */

/** What went wrong, from the caller's point of view. */
export type ErrorKind =
  | 'invalid' // bad input: 400
  | 'forbidden' // valid input that the operation refuses: 403
  | 'not-found' // 404
  | 'conflict' // the state forbids it (name taken, address in use, network in use): 409
  | 'unavailable' // a dependency (kernel feature, store) is not there now: 503
  | 'internal'; // anything else: 500

/** Base class for every expected failure cnm reports to a user. */
export class CnmError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CnmError';
    this.kind = kind;
    this.code = code;
  }
}

/** Bad input: `new InvalidError('SUBNET_INVALID', 'Invalid subnet "x"')`. */
export class InvalidError extends CnmError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('invalid', code, message, options);
    this.name = 'InvalidError';
  }
}

/** The thing named does not exist. */
export class NotFoundError extends CnmError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('not-found', code, message, options);
    this.name = 'NotFoundError';
  }
}

/** The current state forbids the change (duplicate name, address or port in use, in use). */
export class ConflictError extends CnmError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('conflict', code, message, options);
    this.name = 'ConflictError';
  }
}

/** A valid request that cnm refuses by policy (for example removing a predefined network). */
export class ForbiddenError extends CnmError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('forbidden', code, message, options);
    this.name = 'ForbiddenError';
  }
}

/** A dependency is missing or down (kernel feature, store). */
export class UnavailableError extends CnmError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('unavailable', code, message, options);
    this.name = 'UnavailableError';
  }
}

/**
 * A bug in cnm: an invariant broke. Never used for bad input.
 * @example throw new BugError('endpoint without network')
 */
export class BugError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BugError';
  }
}

/** True when `err` is a CnmError of the given kind. */
export function isKind(err: unknown, kind: ErrorKind): err is CnmError {
  return err instanceof CnmError && err.kind === kind;
}

/** A short text for logs: the message plus the chain of causes. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
    if (cur instanceof AggregateError) {
      parts.push(`${cur.message} [${cur.errors.map((e) => describeError(e)).join('; ')}]`);
      break;
    }
    parts.push(cur instanceof Error ? cur.message : String(cur));
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(': ');
}
