/**
 * The embedded DNS resolver's native UDP listeners (the addon's `udpFast*`): a socket bound in
 * the daemon's namespace and served by its own native thread, which receives in batches
 * (recvmmsg), answers queries it holds a remembered answer for (sendmmsg) and hands the rest to
 * the JS thread. Memories are keyed by source address and the query after its id; JS fills them
 * and clears them on every name-table change (see docs/dns.md, "Native fast path").
 *
 * This runs on the main thread, not on the kernel worker: the callback must reach the DNS
 * server's handler, and nothing here changes namespace (socket() and bind() in the caller's).
 */
import { loadAddon, type NativeAddon } from './native-addon.js';

/** Counters of one native listener since it opened. */
export interface DnsUdpStats {
  received: number;
  hits: number;
  dropped: number;
}

/** One native listener. Methods throw `EBADF` after {@link DnsUdpSocket.close}, except close. */
export interface DnsUdpSocket {
  /** Sends one datagram without blocking; false when the kernel refused it at once. */
  send(msg: Buffer, port: number, address: string): boolean;
  /**
   * Remembers the answers to `query` (a whole message; bytes after its 2-byte id are the key)
   * asked from `source`; with several, sends them in turn from index `start`. False when the
   * entry exceeds the limits (more than 32 answers, a query or answer above 4096 bytes).
   */
  remember(source: string, query: Buffer, answers: readonly Buffer[], start: number): boolean;
  /** Forgets every remembered answer before returning. */
  clear(): void;
  stats(): DnsUdpStats;
  /** Stops and joins the thread, closes the socket; idempotent. */
  close(): void;
}

let addon: NativeAddon | undefined;

/**
 * Binds a native DNS listener on `address`:`port` (an IP literal) and starts its thread.
 * `onMessage` runs on the JS thread for every datagram the thread did not answer.
 * @throws Error with `code` (`EADDRINUSE`, `EADDRNOTAVAIL`, ...) when the socket cannot be bound
 * @example const s = openDnsUdp('10.1.0.1', 53, (msg, src, port) => s.send(reply(msg), port, src));
 */
export function openDnsUdp(
  address: string,
  port: number,
  onMessage: (msg: Buffer, address: string, port: number) => void,
): DnsUdpSocket {
  addon ??= loadAddon();
  const a = addon;
  const h = a.udpFastOpen(address, port, onMessage);
  return {
    send: (msg, p, addr) => a.udpFastSend(h, msg, addr, p),
    remember: (source, query, answers, start) =>
      query.length >= 12 && a.udpFastRemember(h, source, query.subarray(2), answers, start),
    clear: () => a.udpFastClear(h),
    stats: () => a.udpFastStats(h),
    close: () => a.udpFastClose(h),
  };
}

/** Whether the addon loads (it was built with `npm run install`). */
export function dnsUdpAvailable(): boolean {
  try {
    addon ??= loadAddon();
    return typeof addon.udpFastOpen === 'function';
  } catch {
    return false;
  }
}
