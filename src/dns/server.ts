/**
 * The listeners: UDP and TCP on port 53 of each served network's gateway addresses, inside the
 * daemon's namespace (the bridge holds those addresses, so even `--internal` containers reach
 * them). A query is answered from the name table synchronously, in the same turn of the event
 * loop it arrived in; only names the table does not hold go to the forwarder, asynchronously,
 * so upstream work never delays a local answer.
 *
 * With a {@link UdpOpener} (the daemon injects the addon's, `src/kernel/dns-udp.ts`), UDP
 * listeners are native sockets served by a thread that answers repeated queries itself from
 * answers this server remembers into it (see docs/dns.md, "Native fast path"); only what it does
 * not know reaches {@link DnsServer.#handle}. Without one, `node:dgram` sockets do the same work
 * in JS.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { IP, Prefix } from '../netaddr/index.js';
import type { Forwarder } from './forwarder.js';
import { countAnswer, type DnsMetrics } from './metrics.js';
import { NameTable, type Rotor } from './names.js';
import {
  QTYPE,
  RCODE,
  QUERY_MAX,
  buildAnswer,
  buildEmpty,
  buildError,
  isQuery,
  parseQuery,
  type Query,
  reverseNameToAddress,
  sizeLimit,
} from './wire.js';

/** TTL of local answers (seconds), as Docker's embedded DNS gives. */
export const LOCAL_TTL = 600;
/** A TCP client idle this long is disconnected (ms). */
const TCP_IDLE_MS = 10_000;
/** TCP clients per listener; more are refused by the kernel backlog, not by crashing. */
const TCP_MAX_CONNECTIONS = 256;

/** Where one network's listeners bind and which sources they answer. */
export interface ListenSpec {
  networkId: string;
  /** Gateway addresses of the network. */
  addresses: readonly string[];
  /** The network's subnets: queries from other sources are dropped (no open resolver). */
  subnets: readonly string[];
}

/** Counters of a native UDP listener since it opened. */
export interface NativeUdpStats {
  /** Datagrams received, answered natively or not. */
  received: number;
  /** Answered from remembered answers without reaching JS. */
  hits: number;
  /** Lost: oversized datagrams, a full queue to JS, or a failed send of a native answer. */
  dropped: number;
}

/**
 * A UDP listener whose repeated queries are answered outside JS. `onMessage` gets every
 * datagram it could not answer itself.
 */
export interface NativeUdpSocket {
  /** Sends one datagram; false when the kernel refused it at once. Never blocks. */
  send(msg: Buffer, port: number, address: string): boolean;
  /**
   * Remembers the answer(s) to `query` (whole message; its id is ignored) from `source`: one,
   * or one per rotation of a round-robin name, sent in turn from `start`. False when the entry
   * exceeds the socket's limits and was not stored.
   */
  remember(source: string, query: Buffer, answers: readonly Buffer[], start: number): boolean;
  /** Forgets every remembered answer before returning. */
  clear(): void;
  stats(): NativeUdpStats;
  /** Stops serving and closes; idempotent. */
  close(): void;
}

/**
 * Opens a native UDP listener on `address`:`port`.
 * @throws Error with `code` (`EADDRINUSE`, `EADDRNOTAVAIL`, ...) when it cannot bind
 */
export type UdpOpener = (
  address: string,
  port: number,
  onMessage: (msg: Buffer, address: string, port: number) => void,
) => NativeUdpSocket;

/** Server dependencies. */
export interface ServerDeps {
  table: NameTable;
  forwarder: Forwarder;
  metrics: DnsMetrics;
  /** The daemon's upstreams (its `--dns`, else its resolv.conf), asked per forwarded query. */
  defaultUpstreams: () => readonly string[];
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
  /** Port to listen on; 53 except in tests. */
  port?: number;
  /** Native UDP listeners; without it, `node:dgram`. */
  udp?: UdpOpener;
}

/** A native listener and its counters as last folded into the metrics. */
interface NativeListener {
  sock: NativeUdpSocket;
  seen: NativeUdpStats;
  closed: boolean;
}

interface Listener {
  udp: dgram.Socket[];
  native: NativeListener[];
  tcp: net.Server[];
  subnets: Prefix[];
  conns: Set<net.Socket>;
  /** Remembered UDP answers by source address; see {@link DnsServer.#fastAnswer}. */
  fast: Map<string, FastAsker>;
}

/** The answers one source got, valid while the name table's version is `version`. */
interface FastAsker {
  version: number;
  /** Query bytes after the id (flags, counts, question, OPT) → the encoded answers. */
  answers: Map<string, FastAnswer>;
}

/**
 * A remembered answer: one encoded message for a name with one holder; for a round-robin name,
 * one per starting point of its rotation, picked by the name's shared {@link Rotor}.
 */
interface FastAnswer {
  answers: Buffer[];
  rotor?: Rotor;
}

/** A round-robin name's answer encoded once per starting point of its rotation. */
function everyRotation(msg: Buffer, q: Query, rotor: Rotor, limit: number): Buffer[] {
  const answers: Buffer[] = [];
  for (let k = 0; k < rotor.size; k++) {
    const records = rotor.records(k);
    answers.push(buildAnswer(msg, q, { rcode: RCODE.NOERROR, records, ttl: LOCAL_TTL, limit }));
  }
  return answers;
}

/** Sources remembered per listener, and answers per source; past that the map starts over. */
const FAST_SOURCES = 4096;
const FAST_ANSWERS = 64;
/** Round-robin names with more holders than this are answered by the full path each time. */
const FAST_ROTATIONS = 32;

// Answers go back to the query's source, always an address literal: these skip dns.lookup(),
// which parses the address and defers through process.nextTick on every send.
function literal4(address: string, _f: unknown, cb: (e: null, a: string, f: number) => void): void {
  cb(null, address, 4);
}
function literal6(address: string, _f: unknown, cb: (e: null, a: string, f: number) => void): void {
  cb(null, address, 6);
}

/** The DNS server: listeners per network, one shared handler. */
export class DnsServer {
  #deps: ServerDeps;
  #port: number;
  #listeners = new Map<string, Listener>();

  constructor(deps: ServerDeps) {
    this.#deps = deps;
    this.#port = deps.port ?? 53;
    // Names appear and disappear at once: native memories go in the same call as the change.
    deps.table.onChange(() => {
      for (const l of this.#listeners.values()) for (const n of l.native) n.sock.clear();
    });
  }

  /**
   * Adds the native listeners' counters since the last call to the metrics (queries, local
   * answers, NOERROR answers, drops). Call before reading the metrics.
   */
  syncMetrics(): void {
    for (const l of this.#listeners.values()) for (const n of l.native) this.#fold(n);
  }

  #fold(n: NativeListener): void {
    const now = n.sock.stats();
    const m = this.#deps.metrics;
    const hits = now.hits - n.seen.hits;
    m.queries.udp += now.received - n.seen.received;
    m.local += hits;
    if (hits > 0) m.answers['NOERROR'] = (m.answers['NOERROR'] ?? 0) + hits;
    m.dropped += now.dropped - n.seen.dropped;
    n.seen = now;
  }

  /**
   * Starts listening on a network's gateway addresses (replacing earlier listeners of that
   * network). An address that cannot be bound is logged and skipped: the network still works,
   * its containers just get no answers there.
   */
  async listen(spec: ListenSpec): Promise<void> {
    await this.unlisten(spec.networkId);
    const l: Listener = {
      udp: [],
      native: [],
      tcp: [],
      subnets: spec.subnets.map((s) => Prefix.parse(s)),
      conns: new Set(),
      fast: new Map(),
    };
    this.#listeners.set(spec.networkId, l);
    for (const addr of spec.addresses) {
      try {
        if (this.#deps.udp)
          l.native.push(this.#openNative(this.#deps.udp, spec.networkId, l, addr));
        else l.udp.push(await this.#bindUdp(spec.networkId, l, addr));
        l.tcp.push(await this.#bindTcp(spec.networkId, l, addr));
      } catch (err) {
        this.#deps.log(
          'error',
          `Cannot serve DNS on "${addr}" port ${this.#port}: ${(err as Error).message}`,
        );
      }
    }
  }

  /** Stops a network's listeners and drops its TCP clients. */
  async unlisten(networkId: string): Promise<void> {
    const l = this.#listeners.get(networkId);
    if (!l) return;
    this.#listeners.delete(networkId);
    for (const c of l.conns) c.destroy();
    for (const s of l.udp) s.close();
    for (const n of l.native) {
      this.#fold(n);
      n.closed = true;
      n.sock.close();
    }
    await Promise.all(l.tcp.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  /** Stops every listener. */
  async close(): Promise<void> {
    await Promise.all([...this.#listeners.keys()].map((id) => this.unlisten(id)));
  }

  #bindUdp(networkId: string, l: Listener, addr: string): Promise<dgram.Socket> {
    const v6 = net.isIPv6(addr);
    const sock = dgram.createSocket({
      type: v6 ? 'udp6' : 'udp4',
      lookup: (v6 ? literal6 : literal4) as unknown as dgram.SocketOptions['lookup'],
    });
    sock.on('message', (msg, rinfo) => {
      this.#deps.metrics.queries.udp++;
      const fast = this.#fastAnswer(msg, rinfo.address, l);
      if (fast !== undefined) {
        // No callback: node then adds no process.nextTick per send, and a send error (client
        // gone, buffer full) is dropped silently; it loses one answer and the client retries.
        sock.send(fast, rinfo.port, rinfo.address);
        return;
      }
      this.#handle(msg, rinfo.address, networkId, l, 'udp', (answer) => {
        sock.send(answer, rinfo.port, rinfo.address);
      });
    });
    return new Promise((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(this.#port, addr, () => {
        sock.off('error', reject);
        sock.on('error', (err) =>
          this.#deps.log('warn', `DNS socket on "${addr}": ${err.message}`),
        );
        resolve(sock);
      });
    });
  }

  #openNative(open: UdpOpener, networkId: string, l: Listener, addr: string): NativeListener {
    const n: NativeListener = {
      sock: undefined as unknown as NativeUdpSocket,
      seen: { received: 0, hits: 0, dropped: 0 },
      closed: false,
    };
    // Queries are counted natively (received), so this path does not count them again.
    n.sock = open(addr, this.#port, (msg, src, port) => {
      if (n.closed) return;
      this.#handle(
        msg,
        src,
        networkId,
        l,
        'udp',
        // A forwarded answer can arrive after the listener closed: it is then dropped.
        (answer) => {
          if (!n.closed) n.sock.send(answer, port, src);
        },
        (answers, start) => {
          if (!n.closed) n.sock.remember(src, msg, answers, start);
        },
      );
    });
    return n;
  }

  #bindTcp(networkId: string, l: Listener, addr: string): Promise<net.Server> {
    const server = net.createServer((conn) => this.#serveTcp(conn, networkId, l));
    server.maxConnections = TCP_MAX_CONNECTIONS;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: this.#port, host: addr }, () => {
        server.off('error', reject);
        resolve(server);
      });
    });
  }

  #serveTcp(conn: net.Socket, networkId: string, l: Listener): void {
    l.conns.add(conn);
    conn.setTimeout(TCP_IDLE_MS, () => conn.destroy());
    conn.on('close', () => l.conns.delete(conn));
    conn.on('error', () => conn.destroy());
    const src = conn.remoteAddress ?? '';
    let buf: Buffer = Buffer.alloc(0);
    conn.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const n = buf.readUInt16BE(0);
        // A length no query can have: the stream cannot be trusted to be in sync any more.
        if (n < 12 || n > QUERY_MAX) {
          this.#deps.metrics.malformed++;
          conn.destroy();
          return;
        }
        if (buf.length < 2 + n) return;
        const msg = Buffer.from(buf.subarray(2, 2 + n));
        buf = buf.subarray(2 + n);
        this.#deps.metrics.queries.tcp++;
        this.#handle(msg, src, networkId, l, 'tcp', (answer) => {
          if (conn.destroyed) return;
          const len = Buffer.allocUnsafe(2);
          len.writeUInt16BE(answer.length);
          conn.write(Buffer.concat([len, answer]));
        });
      }
    });
  }

  /**
   * The common case without parsing: a source asking again exactly what it asked before (same
   * flags, question and EDNS record) while the name table has not changed gets a copy of the
   * answer it got then, with its new id. Local answers are remembered ({@link #remember}); for a
   * round-robin name every rotation is encoded once, and the name's rotor picks the next, so the
   * order still changes on every query. Everything else takes the full path.
   */
  #fastAnswer(msg: Buffer, src: string, l: Listener): Buffer | undefined {
    const f = l.fast.get(src);
    if (f === undefined || msg.length < 12 || msg.length > QUERY_MAX) return undefined;
    if (f.version !== this.#deps.table.version) {
      l.fast.delete(src);
      return undefined;
    }
    const e = f.answers.get(msg.toString('latin1', 2));
    if (e === undefined) return undefined;
    const t = e.rotor === undefined ? e.answers[0]! : e.answers[e.rotor.next()]!;
    const out = Buffer.allocUnsafe(t.length);
    t.copy(out, 0);
    out[0] = msg[0]!;
    out[1] = msg[1]!;
    const m = this.#deps.metrics;
    m.local++;
    countAnswer(m, out);
    return out;
  }

  #remember(l: Listener, src: string, query: Buffer, answer: FastAnswer): void {
    const version = this.#deps.table.version;
    let f = l.fast.get(src);
    if (f === undefined || f.version !== version) {
      if (l.fast.size >= FAST_SOURCES) l.fast.clear();
      f = { version, answers: new Map() };
      l.fast.set(src, f);
    }
    if (f.answers.size >= FAST_ANSWERS) f.answers.clear();
    f.answers.set(query.toString('latin1', 2), answer);
  }

  #allowed(l: Listener, src: string): boolean {
    const ip = IP.tryParse(src);
    return ip !== undefined && l.subnets.some((p) => p.family === ip.family && p.contains(ip));
  }

  #handle(
    msg: Buffer,
    src: string,
    networkId: string,
    l: Listener,
    transport: 'udp' | 'tcp',
    reply: (answer: Buffer) => void,
    remember?: (answers: Buffer[], start: number) => void,
  ): void {
    const m = this.#deps.metrics;
    const send = (answer: Buffer) => {
      countAnswer(m, answer);
      reply(answer);
    };
    const asker = this.#deps.table.asker(networkId, src);
    if (!asker || (!asker.known && !this.#allowed(l, src))) {
      m.dropped++;
      return;
    }
    const q = parseQuery(msg);
    if (!isQuery(q)) {
      if (q.drop) m.dropped++;
      else {
        m.malformed++;
        send(buildError(q.id, q.rd, q.rcode));
      }
      return;
    }
    const limit = sizeLimit(q, transport);
    if (q.cls === 1) {
      if (q.type === QTYPE.PTR) {
        const addr = reverseNameToAddress(q.name);
        const target = addr === undefined ? undefined : this.#deps.table.reverse(asker, addr);
        if (target !== undefined) {
          m.local++;
          const records = [NameTable.ptrRecord(target)];
          send(buildAnswer(msg, q, { rcode: RCODE.NOERROR, records, ttl: LOCAL_TTL, limit }));
          return;
        }
      } else {
        const r = this.#deps.table.lookup(asker, q.name, q.type);
        if (r.found) {
          m.local++;
          const answer = buildAnswer(msg, q, {
            rcode: RCODE.NOERROR,
            records: r.records,
            ttl: LOCAL_TTL,
            limit,
          });
          // Truncated answers stay on this path: the native one counts its answers as NOERROR.
          if (remember !== undefined && (answer[2]! & 0x02) === 0) {
            if (r.rotor === undefined) remember([answer], 0);
            else if (r.rotor.size <= FAST_ROTATIONS) {
              const rotor = r.rotor;
              remember(everyRotation(msg, q, rotor, limit), rotor.next());
            }
          } else if (transport === 'udp') {
            if (r.rotor === undefined) {
              this.#remember(l, src, msg, { answers: [Buffer.from(answer)] });
            } else if (r.rotor.size <= FAST_ROTATIONS) {
              const rotor = r.rotor;
              const answers = everyRotation(msg, q, rotor, limit);
              this.#remember(l, src, msg, { answers, rotor });
            }
          }
          send(answer);
          return;
        }
      }
    }
    if (asker.internalOnly) {
      // Docker does not forward for containers that are only on internal networks.
      send(buildEmpty(msg, q, RCODE.REFUSED));
      return;
    }
    const servers = asker.dns.length > 0 ? asker.dns : this.#deps.defaultUpstreams();
    if (servers.length === 0) {
      send(buildEmpty(msg, q, RCODE.SERVFAIL));
      return;
    }
    void this.#deps.forwarder.forward(msg, q, servers).then((answer) => {
      send(answer.length > limit ? buildEmpty(msg, q, answer[3]! & 0x0f, true) : answer);
    });
  }
}
