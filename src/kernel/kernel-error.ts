/**
 * The one error class of the kernel layer: an errno from the kernel (or the addon), with the
 * kernel's extended-ack text when it gave one, and the action that failed.
 */
import { getSystemErrorMap } from 'node:util';
import { CnmError } from '../errors.js';
import type { KernelErrorInfo } from './types.js';

let errnoTable: Map<number, [string, string]> | undefined;

/**
 * glibc's strerror() texts for the errnos network code meets, so messages read like `ip`'s
 * ("File exists"); libuv's own texts ("file already exists") are the fallback.
 */
const STRERROR: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EINVAL: 'Invalid argument',
  ENOSPC: 'No space left on device',
  ERANGE: 'Numerical result out of range',
  ENOSYS: 'Function not implemented',
  ENOTEMPTY: 'Directory not empty',
  EMSGSIZE: 'Message too long',
  ENOPROTOOPT: 'Protocol not available',
  EPROTONOSUPPORT: 'Protocol not supported',
  EOPNOTSUPP: 'Operation not supported',
  ENOTSUP: 'Operation not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ENETDOWN: 'Network is down',
  ENETUNREACH: 'Network is unreachable',
  ENOBUFS: 'No buffer space available',
  ENOTCONN: 'Transport endpoint is not connected',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
};

/** Symbolic name and text of an errno (e.g. 17 → EEXIST, "File exists"). */
function describeErrno(errno: number): { code: string; text: string } {
  errnoTable ??= getSystemErrorMap();
  // Linux has one errno (95) for both names; the kernel and iproute2 call it EOPNOTSUPP.
  if (errno === 95) return { code: 'EOPNOTSUPP', text: 'Operation not supported' };
  const entry = errnoTable.get(-errno);
  if (!entry) return { code: `E${errno}`, text: `Error ${errno}` };
  const text = STRERROR[entry[0]] ?? entry[1].charAt(0).toUpperCase() + entry[1].slice(1);
  return { code: entry[0], text };
}

/**
 * Maps an errno name to its number (`EEXIST` → 17), or 0 when unknown.
 * Used by the fake kernel, which speaks in names.
 */
export function errnoFromCode(code: string): number {
  errnoTable ??= getSystemErrorMap();
  for (const [negErrno, [name]] of errnoTable) if (name === code) return -negErrno;
  return 0;
}

/**
 * A kernel request failed. `code` is `KERNEL_<ERRNO>` (e.g. `KERNEL_EEXIST`), kind `internal`;
 * callers that expect a given errno check `errnoCode` and rethrow as a domain error.
 *
 * @example
 * try { await kernel.linkAdd(spec); }
 * catch (err) { if (err instanceof KernelError && err.errnoCode === 'EEXIST') ... }
 */
export class KernelError extends CnmError {
  /** Positive errno. */
  readonly errno: number;
  /** Symbolic errno, e.g. `EEXIST`. */
  readonly errnoCode: string;
  /** The kernel's extended-ack text, if any. */
  readonly extack: string | undefined;
  /** The failed action, e.g. `Cannot add link "cnmv1234"`. */
  readonly action: string;

  /**
   * @param action what failed, capitalised, values quoted: `Cannot add link "x"`
   * @param info errno (code is derived when empty) and extack
   */
  constructor(action: string, info: KernelErrorInfo, options?: { cause?: unknown }) {
    const known = describeErrno(info.errno);
    const errnoCode = info.code || known.code;
    const extack = info.extack ? `: ${info.extack}` : '';
    super(
      'internal',
      `KERNEL_${errnoCode}`,
      `${action}: ${known.text} (${errnoCode})${extack}`,
      options,
    );
    this.name = 'KernelError';
    this.errno = info.errno;
    this.errnoCode = errnoCode;
    this.extack = info.extack;
    this.action = action;
  }

  /** The plain data of this error, for crossing a thread boundary. */
  toInfo(): KernelErrorInfo {
    const info: KernelErrorInfo = { errno: this.errno, code: this.errnoCode };
    if (this.extack !== undefined) info.extack = this.extack;
    return info;
  }
}

/** The action of every failed `nftRun` (also as a batch step): how a caller tells it apart. */
export const NFT_RUN_ACTION = 'Cannot run nftables script';

/**
 * The action of a failed `nftElements` on table `family table`, naming the change whose message
 * failed when known.
 */
export function nftElementsAction(
  family: string,
  table: string,
  change?: { op: 'add' | 'delete'; set: string },
): string {
  return change
    ? `Cannot ${change.op} elements ${change.op === 'add' ? 'to' : 'from'} set "${change.set}" of table ${family} ${table}`
    : `Cannot change elements of table ${family} ${table}`;
}

/**
 * True when `err` is a failed `nftElements` on table `family table` (also as a batch step):
 * the batch is one transaction, so none of its changes was applied.
 */
export function isNftElementsError(err: unknown, family: string, table: string): boolean {
  return (
    err instanceof KernelError &&
    err.action.startsWith('Cannot ') &&
    err.action.endsWith(` of table ${family} ${table}`)
  );
}

/**
 * Rethrows `err` unless it is a `KernelError` with one of `codes` (an errno that means "already
 * so", e.g. `EEXIST` on an add that must be idempotent).
 * @throws err when it is anything else
 */

export function ignoreErrno(err: unknown, ...codes: string[]): void {
  if (err instanceof KernelError && codes.includes(err.errnoCode)) return;
  throw err;
}
