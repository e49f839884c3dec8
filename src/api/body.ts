/**
 * Request bodies and query parameters: size limit, JSON parsing, and typed field readers that name
 * the offending field, so the controller never sees a value of the wrong type.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError, invalidField, invalidQuery } from './errors.js';
import { InvalidError } from '../errors.js';

/** dockerd has no fixed limit; 1 MiB is far above any real network or container request. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Reads and parses a JSON body. An empty body gives `undefined`.
 * @throws HttpError 413 beyond `limit` bytes; InvalidError on malformed JSON
 */
export async function readJsonBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) {
    req.resume(); // drain so the socket can carry the 413
    throw tooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      req.resume();
      throw tooLarge(limit);
    }
    chunks.push(buf);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new InvalidError('API_JSON_INVALID', `Invalid JSON in request body: ${detail}`, {
      cause: err,
    });
  }
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `Request body is larger than the limit of ${limit} bytes`);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/**
 * Typed access to one JSON object of a request body. Keys match case-insensitively after an exact
 * match fails, and `null` reads as absent, because Go's decoder in dockerd does both and clients
 * (dockerode, docker CLI) rely on it.
 */
export class FieldReader {
  readonly #obj: Record<string, unknown>;
  readonly #path: string;

  private constructor(obj: Record<string, unknown>, path: string) {
    this.#obj = obj;
    this.#path = path;
  }

  /**
   * Wraps a parsed body; `undefined` (empty body) reads as `{}`.
   * @throws InvalidError when the body is not a JSON object
   */
  static root(body: unknown): FieldReader {
    if (body === undefined || body === null) return new FieldReader({}, '');
    if (typeof body !== 'object' || Array.isArray(body)) {
      throw new InvalidError(
        'API_BODY_INVALID',
        `Invalid request body: expected a JSON object, got ${typeName(body)}`,
      );
    }
    return new FieldReader(body as Record<string, unknown>, '');
  }

  /** The dotted path of `key` for messages (`IPAM.Config[0].Subnet`). */
  path(key: string): string {
    return this.#path === '' ? key : `${this.#path}.${key}`;
  }

  #raw(key: string): unknown {
    let v = this.#obj[key];
    if (v === undefined) {
      const lower = key.toLowerCase();
      const found = Object.keys(this.#obj).find((k) => k.toLowerCase() === lower);
      if (found !== undefined) v = this.#obj[found];
    }
    return v === null ? undefined : v;
  }

  /** A string field; `required` also refuses the empty string. */
  string(key: string, opts: { required?: boolean } = {}): string | undefined {
    const v = this.#raw(key);
    if (v === undefined) {
      if (opts.required === true) throw invalidField(this.path(key), 'is required');
      return undefined;
    }
    if (typeof v !== 'string') {
      throw invalidField(this.path(key), `expected a string, got ${typeName(v)}`);
    }
    if (opts.required === true && v === '') throw invalidField(this.path(key), 'must not be empty');
    return v;
  }

  /** A string field where `""` means "not set", as in dockerd's Go structs. */
  optionalString(key: string): string | undefined {
    const v = this.string(key);
    return v === '' ? undefined : v;
  }

  /** A boolean field. */
  bool(key: string): boolean | undefined {
    const v = this.#raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') {
      throw invalidField(this.path(key), `expected a boolean, got ${typeName(v)}`);
    }
    return v;
  }

  /** A finite number field. */
  number(key: string): number | undefined {
    const v = this.#raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw invalidField(this.path(key), `expected a number, got ${typeName(v)}`);
    }
    return v;
  }

  /** An array of strings. */
  stringArray(key: string): string[] | undefined {
    const v = this.#raw(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) {
      throw invalidField(this.path(key), `expected an array of strings, got ${typeName(v)}`);
    }
    v.forEach((item, i) => {
      if (typeof item !== 'string') {
        throw invalidField(`${this.path(key)}[${i}]`, `expected a string, got ${typeName(item)}`);
      }
    });
    return v as string[];
  }

  /** An object whose values are all strings (labels, options, sysctls). */
  stringMap(key: string): Record<string, string> | undefined {
    const v = this.#raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) {
      throw invalidField(this.path(key), `expected an object of strings, got ${typeName(v)}`);
    }
    const out: Record<string, string> = {};
    for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
      if (typeof item !== 'string') {
        throw invalidField(`${this.path(key)}.${k}`, `expected a string, got ${typeName(item)}`);
      }
      out[k] = item;
    }
    return out;
  }

  /** A nested object. */
  object(key: string): FieldReader | undefined {
    const v = this.#raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) {
      throw invalidField(this.path(key), `expected an object, got ${typeName(v)}`);
    }
    return new FieldReader(v as Record<string, unknown>, this.path(key));
  }

  /** An array of objects. */
  objectArray(key: string): FieldReader[] | undefined {
    const v = this.#raw(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) {
      throw invalidField(this.path(key), `expected an array of objects, got ${typeName(v)}`);
    }
    return v.map((item: unknown, i) => {
      const p = `${this.path(key)}[${i}]`;
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        throw invalidField(p, `expected an object, got ${typeName(item)}`);
      }
      return new FieldReader(item as Record<string, unknown>, p);
    });
  }
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['', '0', 'false', 'no', 'off', 'none']);

/**
 * A boolean query parameter. Accepts the words dockerd's `BoolValue` treats as false plus the
 * usual true words; anything else is refused rather than silently read as true.
 */
export function queryBool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null) return false;
  const w = v.trim().toLowerCase();
  if (TRUE_WORDS.has(w)) return true;
  if (FALSE_WORDS.has(w)) return false;
  throw invalidQuery(name, `expected a boolean, got "${v}"`);
}

/** A non-negative integer query parameter, or `undefined` when absent or empty. */
export function queryUint(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d{1,9}$/.test(v)) throw invalidQuery(name, `expected a non-negative integer, got "${v}"`);
  return Number(v);
}

/** A string query parameter, or `undefined` when absent. */
export function queryString(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (v.includes('\0')) throw invalidQuery(name, 'must not contain NUL');
  return v;
}
