/**
 * Who is on the other end of a unix socket: the kernel's SO_PEERCRED (uid, gid and pid of the
 * process that connected), read through the addon because Node's `net.Socket` has no way to.
 *
 * This runs on the calling (main) thread, not on the kernel worker: it is one non-blocking
 * getsockopt(2) on a socket this process already holds, it changes no namespace, and it must
 * happen while the connection is open (a round trip to the worker could see the fd closed and
 * its number reused).
 */
import { loadAddon, type NativeAddon } from './native-addon.js';

/** A unix socket peer's credentials. */
export interface PeerCredentials {
  uid: number;
  gid: number;
  pid: number;
}

let addon: NativeAddon | undefined;

/**
 * Reads SO_PEERCRED of the connected unix socket `fd`.
 * @throws Error with `code` (`EBADF`, `ENOTSOCK`, …) when `fd` is not a connected unix socket
 * @example peerCredentials(socket._handle.fd) // { uid: 0, gid: 0, pid: 1234 }
 */
export function peerCredentials(fd: number): PeerCredentials {
  addon ??= loadAddon();
  return addon.peerCred(fd);
}
