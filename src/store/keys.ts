/**
 * Key rules shared by every store: validation, ordering and prefix ranges.
 *
 * Ordering is by Unicode code point, which is also the byte order of UTF-8 and so the order
 * SQLite's BINARY collation gives. JavaScript's `<` compares UTF-16 code units instead, which
 * puts U+10000 and above before U+E000–U+FFFF; using it would make the stores disagree.
 */

import { InvalidError } from '../errors.js';

// A lone surrogate cannot be encoded as UTF-8, so SQLite would store U+FFFD instead and the
// key would no longer round-trip.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Checks that `key` is a usable record key: non-empty, no NUL, well-formed UTF-16.
 * @throws InvalidError STORE_KEY_INVALID
 */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidError('STORE_KEY_INVALID', 'Cannot use store key "": it is empty');
  }
  checkText('key', key);
}

/**
 * Checks that `prefix` is a usable key prefix; unlike a key it may be empty (all records).
 * @throws InvalidError STORE_KEY_INVALID
 */
export function checkPrefix(prefix: string): void {
  if (typeof prefix !== 'string') {
    throw new InvalidError('STORE_KEY_INVALID', `Cannot use store prefix "${String(prefix)}"`);
  }
  checkText('prefix', prefix);
}

function checkText(what: string, text: string): void {
  if (text.includes('\0')) {
    throw new InvalidError(
      'STORE_KEY_INVALID',
      `Cannot use store ${what} ${JSON.stringify(text)}: it contains NUL`,
    );
  }
  if (LONE_SURROGATE.test(text)) {
    throw new InvalidError(
      'STORE_KEY_INVALID',
      `Cannot use store ${what} ${JSON.stringify(text)}: it contains a lone surrogate`,
    );
  }
}

/**
 * Compares two keys by code point (UTF-8 byte order), for `Array.prototype.sort`.
 * @example ['b', 'a/b', 'a'].sort(compareKeys) // ['a', 'a/b', 'b']
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

// Moves surrogates (the halves of U+10000..U+10FFFF) above U+E000..U+FFFF, so that comparing
// the first differing code unit gives code point order for well-formed strings.
function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/**
 * The smallest string greater than every string that starts with `prefix`, in code point
 * order; `undefined` when there is none (empty prefix, or only U+10FFFF). Gives an indexed
 * range query `key >= prefix AND key < end` without LIKE and its `%`/`_` wildcards.
 * @example prefixEnd('net/') // 'net0'
 */
export function prefixEnd(prefix: string): string | undefined {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = points.pop() as string;
    let next = (last.codePointAt(0) as number) + 1;
    if (next === 0xd800) next = 0xe000; // surrogates are not code points of their own
    if (next <= 0x10ffff) return points.join('') + String.fromCodePoint(next);
  }
  return undefined;
}
