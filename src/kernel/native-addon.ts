/**
 * Loads the N-API addon built from native/cnm_native.c. The relative path resolves from both
 * src/kernel (tests via tsx) and dist/kernel (tsc output): both sit two levels below the root.
 */
import { createRequire } from 'node:module';

/** The addon's exports. Every function is synchronous and throws an Error with `code`/`errno`. */
export interface NativeAddon {
  /** A netlink socket bound inside `nsPath` (null: the caller's netns); returns the fd. */
  openNetlink(protocol: number, nsPath: string | null): number;
  /** Creates `path` (EEXIST if present) and binds a new network namespace onto it. */
  /** With a netlink protocol, also returns a socket opened inside the new namespace. */
  netnsCreate(path: string, protocol?: number): number | undefined;
  /** Unmounts (detached) and unlinks a netns file; false when nothing was there. */
  netnsDelete(path: string): boolean;
  /** mkdir -p, bind onto itself if not a mount point, then make it MS_SHARED|MS_REC. */
  makeSharedDir(dir: string): void;
  /** Opens `filePath` from a thread inside `nsPath` (null: the caller's netns); returns the fd. */
  openInNetns(nsPath: string | null, filePath: string, flags: number): number;
  /** close(2); Node's fs.closeSync warns in a worker about fds it did not open itself. */
  closeFd(fd: number): void;
  /**
   * Runs an nftables script through libnftables in the calling thread's netns. `terse`: no set
   * elements in listings (nor fetched for them).
   */
  nftRun(script: string, json: boolean, terse?: boolean): { output: string };
  /** SO_PEERCRED of a connected unix socket: the peer's credentials at connect(2). */
  peerCred(fd: number): { uid: number; gid: number; pid: number };
  /** Binds a UDP socket in the caller's netns and starts its DNS fast-path thread. */
  udpFastOpen(
    address: string,
    port: number,
    onMessage: (msg: Buffer, address: string, port: number) => void,
  ): NativeUdpHandle;
  /** sendto(2) without blocking; false when refused at once. */
  udpFastSend(h: NativeUdpHandle, msg: Buffer, address: string, port: number): boolean;
  /** Stores answers under (source, query bytes after the id); false when over the limits. */
  udpFastRemember(
    h: NativeUdpHandle,
    source: string,
    key: Buffer,
    answers: readonly Buffer[],
    start: number,
  ): boolean;
  /** Drops every remembered answer. */
  udpFastClear(h: NativeUdpHandle): void;
  /** Counters since open. */
  udpFastStats(h: NativeUdpHandle): { received: number; hits: number; dropped: number };
  /** Stops and joins the thread, closes the socket; idempotent. */
  udpFastClose(h: NativeUdpHandle): void;
}

/** An opaque native UDP socket (a napi external). */
export type NativeUdpHandle = { readonly __nativeUdp: unique symbol };

/** The addon's file, relative to this module. */
export const ADDON_PATH = '../../build/Release/cnm_native.node';

/**
 * Loads the addon (once per thread: Node caches it per environment).
 * @throws Error when the addon was not built (`npm run install`)
 */
export function loadAddon(path: string = ADDON_PATH): NativeAddon {
  const require = createRequire(import.meta.url);
  return require(path) as NativeAddon;
}
