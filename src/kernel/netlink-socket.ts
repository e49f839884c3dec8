/**
 * Synchronous request/reply on a raw netlink fd. rtnetlink handles a request inside sendmsg(),
 * so by the time `write` returns the ACK (or the first dump part) is already queued: a blocking
 * `read` right after never waits on anything but the kernel. Meant for the kernel worker thread,
 * where blocking is fine.
 */
import fs from 'node:fs';
import {
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_MULTI,
  NLMSG_DONE,
  NLMSG_ERROR,
} from './rtnetlink/constants.js';
import { parseMessages, parseStatus, setSeq, type NlMessage } from './rtnetlink/message.js';
import { activeTrace } from './step-trace.js';

/** A failed netlink request: the errno and extended ack from NLMSG_ERROR / NLMSG_DONE. */
export class NetlinkStatusError extends Error {
  readonly errno: number;
  readonly extack: string | undefined;

  constructor(errno: number, extack?: string) {
    super(`Netlink request failed with errno ${errno}${extack ? `: ${extack}` : ''}`);
    this.name = 'NetlinkStatusError';
    this.errno = errno;
    this.extack = extack;
  }
}

/** A failed nfnetlink batch: which message (index into the batch) failed, and why. */
export class NetlinkBatchError extends NetlinkStatusError {
  readonly index: number;

  constructor(index: number, errno: number, extack?: string) {
    super(errno, extack);
    this.name = 'NetlinkBatchError';
    this.index = index;
  }
}

/** Largest datagram the kernel sends on a dump (32 KiB) with room to spare. */
const RECV_SIZE = 64 * 1024;

/**
 * One receive buffer for every socket of this thread. Reads are synchronous and one request runs
 * at a time, and replies are decoded (copied out) before the next read, exactly as when each
 * socket reused its own buffer. A buffer per socket cost 64 KiB per sandbox: 64 MB of cnmd's
 * memory at 1000 containers.
 */
const sharedRecv = Buffer.allocUnsafe(RECV_SIZE);

/**
 * One netlink socket (already opened, usually inside a netns, by the addon). Owns the fd.
 * Optionally records every datagram it reads, for codec fixtures.
 */
export class NetlinkSocket {
  readonly fd: number;
  #closeFd: (fd: number) => void;
  #seq = Math.floor(Math.random() * 0x7fffffff);
  #buf = sharedRecv;
  #closed = false;
  /** When set, every datagram read is appended here (tests capture fixtures this way). */
  recording: Uint8Array[] | undefined;

  /** @param closeFd closes the fd (the addon's close: fs.closeSync warns about foreign fds) */
  constructor(fd: number, closeFd: (fd: number) => void) {
    this.fd = fd;
    this.#closeFd = closeFd;
  }

  /**
   * Sends `message` (its seq is overwritten) and collects the replies: all parts of a dump, the
   * single reply of a GET, or nothing for an ACKed change.
   * @throws NetlinkStatusError when the kernel answers with an error
   */
  request(message: Uint8Array): NlMessage[] {
    const trace = activeTrace.current;
    if (trace === undefined) return this.#request(message);
    try {
      return this.#request(message);
    } finally {
      trace.mark(`nl ${new DataView(message.buffer, message.byteOffset).getUint16(4, true)}`);
    }
  }

  #request(message: Uint8Array): NlMessage[] {
    const seq = (this.#seq = (this.#seq + 1) & 0x7fffffff);
    setSeq(message, seq);
    const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
    const flags = view.getUint16(6, true);
    const acked = (flags & NLM_F_ACK) !== 0;
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    fs.writeSync(this.fd, message);
    const out: NlMessage[] = [];
    for (;;) {
      const n = fs.readSync(this.fd, this.#buf, 0, RECV_SIZE, null);
      // Copy: parsed messages are views and the receive buffer is reused on the next read.
      const datagram = Uint8Array.prototype.slice.call(this.#buf, 0, n);
      this.recording?.push(datagram);
      for (const msg of parseMessages(datagram)) {
        // Left-overs of an earlier request (e.g. one that threw mid-dump) are skipped.
        if (msg.seq !== seq) continue;
        if (msg.type === NLMSG_ERROR || msg.type === NLMSG_DONE) {
          const status = parseStatus(msg)!;
          // An error ends a dump as well, so nothing of this request is left to drain.
          if (status.errno !== 0) throw new NetlinkStatusError(status.errno, status.extack);
          return out;
        }
        out.push(msg);
        // A GET without ACK ends with its one (non-multipart) reply.
        if (!acked && !dump && !(msg.flags & NLM_F_MULTI)) return out;
      }
    }
  }

  /**
   * Sends `messages` as one datagram: an nfnetlink batch (begin, requests, end), which the
   * kernel applies as one transaction inside sendmsg. Sequence numbers are overwritten with
   * consecutive ones. Waits for the status of every message that asks for an ACK: nfnetlink
   * processes the whole batch and reports each message's ACK or error at the end; a failure of
   * the batch itself (commit, memory) comes as one error on the begin message instead.
   * @throws NetlinkBatchError with the first failed message's index when any part failed (the
   *   kernel then aborted the whole batch)
   */
  requestBatch(messages: readonly Uint8Array[]): void {
    const first = (this.#seq + 1) & 0x7fffffff;
    const total = messages.reduce((n, m) => n + m.length, 0);
    const datagram = new Uint8Array(total);
    const waiting = new Set<number>();
    let at = 0;
    messages.forEach((m, i) => {
      const seq = (first + i) & 0x7fffffff;
      setSeq(m, seq);
      const flags = new DataView(m.buffer, m.byteOffset, m.byteLength).getUint16(6, true);
      if (flags & NLM_F_ACK) waiting.add(seq);
      datagram.set(m, at);
      at += m.length;
    });
    this.#seq = (first + messages.length - 1) & 0x7fffffff;
    fs.writeSync(this.fd, datagram);
    let failed: NetlinkBatchError | undefined;
    while (waiting.size > 0) {
      const n = fs.readSync(this.fd, this.#buf, 0, RECV_SIZE, null);
      const reply = Uint8Array.prototype.slice.call(this.#buf, 0, n);
      this.recording?.push(reply);
      for (const msg of parseMessages(reply)) {
        const index = (msg.seq - first) & 0x7fffffff;
        if (index >= messages.length || msg.type !== NLMSG_ERROR) continue;
        const status = parseStatus(msg)!;
        if (status.errno !== 0)
          failed ??= new NetlinkBatchError(index, status.errno, status.extack);
        // The begin message answers only for the whole batch; nothing else follows it.
        if (index === 0 && failed) throw failed;
        waiting.delete(msg.seq);
      }
    }
    if (failed) throw failed;
  }

  /** Closes the fd. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeFd(this.fd);
  }
}
