/**
 * Transaction rules shared by every store: input checks, value encoding and the conflict
 * error, so that each implementation only has to look revisions up and apply writes.
 */

import { ConflictError, InvalidError } from '../errors.js';
import { checkKey } from './keys.js';
import type { Expect, TxnOp } from './types.js';
import { encodeValue } from './values.js';

/** A checked write with its value already encoded as JSON text. */
export type PlannedOp = { op: 'put'; key: string; json: string } | { op: 'delete'; key: string };

/**
 * Checks every expectation and op and encodes every value before anything is written, so that
 * bad input fails the whole transaction and never a half-applied one.
 * @throws InvalidError STORE_KEY_INVALID, STORE_VALUE_INVALID, STORE_REVISION_INVALID, STORE_OP_INVALID
 */
export function planTxn(expects: readonly Expect[], ops: readonly TxnOp[]): PlannedOp[] {
  for (const e of expects) {
    checkKey(e.key);
    checkExpectRevision(e.key, e.revision);
  }
  return ops.map((o): PlannedOp => {
    checkKey(o.key);
    switch (o.op) {
      case 'put':
        return { op: 'put', key: o.key, json: encodeValue(o.key, o.value) };
      case 'delete':
        return { op: 'delete', key: o.key };
      default:
        // Reachable from untyped callers only; the type says this cannot happen.
        throw new InvalidError(
          'STORE_OP_INVALID',
          `Cannot apply store op "${String((o as { op: unknown }).op)}" on "${(o as TxnOp).key}"`,
        );
    }
  });
}

/**
 * Turns `put`/`delete` options into the expectation list of a one-key transaction.
 * @throws InvalidError STORE_REVISION_INVALID
 */
export function expectsFor(key: string, expectRevision: number | undefined): Expect[] {
  if (expectRevision === undefined) return [];
  checkExpectRevision(key, expectRevision);
  return [{ key, revision: expectRevision }];
}

function checkExpectRevision(key: string, revision: number): void {
  if (!Number.isSafeInteger(revision) || revision < 0) {
    throw new InvalidError(
      'STORE_REVISION_INVALID',
      `Cannot check "${key}": expected revision "${String(revision)}" is not a whole number >= 0`,
    );
  }
}

/**
 * The error for a failed expectation; `actual` is 0 when the key does not exist.
 * @example throw revisionMismatch('networks/a', 0, 7)
 */
export function revisionMismatch(key: string, expected: number, actual: number): ConflictError {
  const found = actual === 0 ? 'it does not exist' : `it is at revision "${actual}"`;
  const wanted = expected === 0 ? 'expected no record' : `expected revision "${expected}"`;
  return new ConflictError('STORE_REVISION_MISMATCH', `Cannot write "${key}": ${wanted}, ${found}`);
}
