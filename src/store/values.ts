/**
 * Record values are kept as JSON text. Storing text rather than objects is what makes every
 * read return a fresh copy and keeps the memory store honest about what SQLite can hold.
 */

import { InvalidError } from '../errors.js';

/**
 * Serialises a record value. What `JSON.stringify` drops or changes (`undefined` members,
 * functions, `NaN`) is dropped or changed in the store too.
 * @throws InvalidError STORE_VALUE_INVALID when `value` has no JSON form (undefined, a
 * function, a BigInt, a cycle)
 */
export function encodeValue(key: string, value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new InvalidError('STORE_VALUE_INVALID', `Cannot store "${key}": value is not JSON`, {
      cause: err,
    });
  }
  // JSON.stringify returns undefined (not a string) for undefined, functions and symbols.
  if (typeof json !== 'string') {
    throw new InvalidError(
      'STORE_VALUE_INVALID',
      `Cannot store "${key}": value of type "${typeof value}" is not JSON`,
    );
  }
  return json;
}

/** Parses a stored value into a new object that the caller owns. */
export function decodeValue<T>(json: string): T {
  return JSON.parse(json) as T;
}
