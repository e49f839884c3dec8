/**
 * Upstream exchanges over the network: one UDP exchange on its own connected socket (a fresh
 * random source port per query, and ICMP "port unreachable" surfaces as an error at once), and
 * one TCP exchange with 2-byte length framing for answers that did not fit in UDP.
 */
import dgram from 'node:dgram';
import net from 'node:net';

/** How the forwarder talks to an upstream; the real one is {@link netTransport}. */
export interface UpstreamTransport {
  /**
   * Sends `msg` to `server` and resolves with the first reply whose id and question match.
   * @throws on timeout or a socket error
   */
  exchange(server: string, msg: Buffer, opts: { tcp: boolean; timeoutMs: number }): Promise<Buffer>;
}

/** Whether `reply` answers `msg`: same id, same question bytes (names compared case-blind). */
export function answers(msg: Buffer, reply: Buffer): boolean {
  if (reply.length < 12 || reply[0] !== msg[0] || reply[1] !== msg[1]) return false;
  if ((reply[2]! & 0x80) === 0) return false;
  // The question runs from 12 to the end of the name plus 4; compare that span.
  let off = 12;
  while (off < msg.length && msg[off] !== 0) off += 1 + msg[off]!;
  const end = off + 5;
  if (end > msg.length || end > reply.length) return false;
  return (
    msg.subarray(12, end).toString('latin1').toLowerCase() ===
    reply.subarray(12, end).toString('latin1').toLowerCase()
  );
}

function timeoutError(server: string, ms: number): Error {
  return new Error(`Upstream "${server}" did not answer within ${ms} ms`);
}

function udpExchange(server: string, msg: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(server) ? 'udp6' : 'udp4');
    let done = false;
    const finish = (err: Error | undefined, reply?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(() => finish(timeoutError(server, timeoutMs)), timeoutMs);
    sock.on('error', (err) =>
      finish(new Error(`Cannot exchange with upstream "${server}"`, { cause: err })),
    );
    sock.on('message', (reply) => {
      if (answers(msg, reply)) finish(undefined, reply);
    });
    sock.connect(53, server, () => {
      sock.send(msg, (err) => {
        if (err) finish(new Error(`Cannot send to upstream "${server}"`, { cause: err }));
      });
    });
  });
}

function tcpExchange(server: string, msg: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: server, port: 53 });
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (err: Error | undefined, reply?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(() => finish(timeoutError(server, timeoutMs)), timeoutMs);
    sock.on('error', (err) =>
      finish(new Error(`Cannot exchange with upstream "${server}" over TCP`, { cause: err })),
    );
    sock.on('close', () => finish(new Error(`Upstream "${server}" closed the TCP connection`)));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      sock.write(Buffer.concat([len, msg]));
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const n = buf.readUInt16BE(0);
        if (buf.length < 2 + n) return;
        const reply = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        if (answers(msg, reply)) return finish(undefined, Buffer.from(reply));
      }
    });
  });
}

/** The real transport: UDP and TCP to port 53 of the upstream, from the daemon's namespace. */
export const netTransport: UpstreamTransport = {
  exchange: (server, msg, opts) =>
    opts.tcp ? tcpExchange(server, msg, opts.timeoutMs) : udpExchange(server, msg, opts.timeoutMs),
};
