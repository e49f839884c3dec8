/**
 * Fast reachability probing for the policy truth-table suite: a long-lived server per container
 * (TCP and UDP echo on several ports, the container's own command) and a long-lived probe agent
 * per network namespace (a Python process under `nsenter --net`, fed JSON lines on stdin) that
 * runs a whole batch of probes at once with non-blocking sockets and one short deadline.
 *
 * A TCP probe is reachable when the handshake completes; a UDP probe when the echo comes back.
 * Every probe binds its own source port from a counter that never repeats within an agent's
 * life (10000–29999, below the ephemeral range), so no probe can ride on a conntrack entry left
 * by an earlier one (which would pass the `ct state established` rule whatever the policy).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { PY } from './workload.js';

/** The container command: `python3 -c ECHO_SERVER_PY <bind> 80/tcp 81/udp …`; prints READY. */
export const ECHO_SERVER_PY = String.raw`
import selectors, socket, sys
sel = selectors.DefaultSelector()
bind = sys.argv[1]
def echo(c):
    try: d = c.recv(65536)
    except OSError: d = b""
    if not d:
        sel.unregister(c); c.close(); return
    try: c.send(d)
    except OSError: pass
def accept(s):
    try: c, _ = s.accept()
    except OSError: return
    c.setblocking(False); sel.register(c, selectors.EVENT_READ, echo)
def udp(s):
    try:
        d, p = s.recvfrom(65536); s.sendto(d, p)
    except OSError: pass
for spec in sys.argv[2:]:
    port, proto = spec.split("/")
    if proto == "tcp":
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((bind, int(port))); s.listen(1024); s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, accept)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((bind, int(port)))
        s.setblocking(False); sel.register(s, selectors.EVENT_READ, udp)
print("READY", flush=True)
while True:
    for k, _ in sel.select():
        k.data(k.fileobj)
`;

const AGENT_PY = String.raw`
import errno, json, selectors, socket, struct, sys, time
sel = selectors.DefaultSelector()
LO, HI = 10000, 30000
nxt = [LO]
held = []
def sport():
    p = nxt[0]; nxt[0] = LO + (p + 1 - LO) % (HI - LO); return p
def sock(proto):
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", sport())); return s
        except OSError:
            s.close()
    raise OSError("no free source port")
def batch(probes, t):
    res = [0] * len(probes); ela = [0.0] * len(probes); pending = {}
    t0 = time.monotonic()
    for i, (ip, port, proto) in enumerate(probes):
        s = sock(proto); s.setblocking(False)
        if proto == "tcp":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            e = s.connect_ex((ip, port))
            if e not in (0, errno.EINPROGRESS):
                s.close(); continue
            sel.register(s, selectors.EVENT_WRITE, i)
        else:
            try:
                s.connect((ip, port)); s.send(b"probe")
            except OSError:
                s.close(); continue
            sel.register(s, selectors.EVENT_READ, i)
        pending[s] = i
    end = t0 + t
    while pending:
        left = end - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(left):
            s, i = key.fileobj, key.data
            if probes[i][2] == "tcp":
                ok = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            else:
                try:
                    ok = len(s.recv(64)) > 0
                except OSError:
                    ok = False
            res[i] = 1 if ok else 0; ela[i] = (time.monotonic() - t0) * 1000
            sel.unregister(s); s.close(); del pending[s]
    for s in pending:
        sel.unregister(s); s.close()
    return {"r": res, "e": ela}
for line in sys.stdin:
    q = json.loads(line)
    if "p" in q:
        out = batch(q["p"], q["t"])
    elif "hold" in q:
        ip, port = q["hold"]
        try:
            s = socket.create_connection((ip, port), timeout=q["t"]); held.append(s)
            out = {"r": [len(held) - 1]}
        except OSError:
            out = {"r": [-1]}
    else:
        s = held[q["talk"]]; s.settimeout(q["t"])
        try:
            s.sendall(b"ping"); out = {"r": [1 if s.recv(64) == b"ping" else 0]}
        except OSError:
            out = {"r": [0]}
    out["id"] = q["id"]
    print(json.dumps(out), flush=True)
`;

/** One probe: destination address, port and protocol. */
export type Probe = readonly [ip: string, port: number, proto: 'tcp' | 'udp'];

/** Reachability of each probe of a batch, and milliseconds until each answered (0: none). */
export interface BatchResult {
  ok: boolean[];
  ms: number[];
}

/** A probe agent living in one network namespace. */
export class ProbeAgent {
  readonly ns: string;
  #child: ChildProcess;
  #buf = '';
  #next = 0;
  #waiting = new Map<number, (r: { r: number[]; e?: number[] }) => void>();
  #exited = false;

  constructor(ns: string) {
    this.ns = ns;
    this.#child = spawn('nsenter', [`--net=${ns}`, '--', PY, '-u', '-c', AGENT_PY], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.#buf += d;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        const msg = JSON.parse(line) as { id: number; r: number[]; e?: number[] };
        this.#waiting.get(msg.id)?.(msg);
        this.#waiting.delete(msg.id);
      }
    });
    this.#child.once('exit', () => {
      this.#exited = true;
      for (const w of this.#waiting.values()) w({ r: [] });
      this.#waiting.clear();
    });
    this.#child.stdin!.on('error', () => {
      // The agent died; the pending requests were answered empty by the exit handler.
    });
  }

  #ask(q: Record<string, unknown>): Promise<{ r: number[]; e?: number[] }> {
    if (this.#exited) return Promise.reject(new Error(`probe agent in ${this.ns} exited`));
    const id = ++this.#next;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#child.stdin!.write(JSON.stringify({ ...q, id }) + '\n');
    });
  }

  /** Runs every probe at once; each gets `timeoutMs` from the start of the batch. */
  async probe(probes: readonly Probe[], timeoutMs: number): Promise<BatchResult> {
    const r = await this.#ask({ p: probes, t: timeoutMs / 1000 });
    if (r.r.length !== probes.length) throw new Error(`probe agent in ${this.ns} failed`);
    return { ok: r.r.map((x) => x === 1), ms: r.e ?? [] };
  }

  /** Opens a TCP connection and keeps it; returns its handle, or -1 when it failed. */
  async hold(ip: string, port: number, timeoutMs = 3000): Promise<number> {
    return (await this.#ask({ hold: [ip, port], t: timeoutMs / 1000 })).r[0] ?? -1;
  }

  /** Sends on a held connection and waits for the echo. */
  async talk(handle: number, timeoutMs = 2000): Promise<boolean> {
    return (await this.#ask({ talk: handle, t: timeoutMs / 1000 })).r[0] === 1;
  }

  /** Kills the agent (by its PID) and waits for it to exit. */
  async close(): Promise<void> {
    if (this.#exited) return;
    const gone = new Promise<void>((r) => this.#child.once('exit', () => r()));
    this.#child.kill('SIGKILL');
    await gone;
  }
}

/** A long-lived process in a namespace (a server), killed by PID on `stop()`. */
export async function startInNs(ns: string, args: string[]): Promise<{ stop(): Promise<void> }> {
  const child = spawn('nsenter', [`--net=${ns}`, '--', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let exited = false;
  const gone = new Promise<void>((r) =>
    child.once('exit', () => {
      exited = true;
      r();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start`)), 5000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('READY')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void gone.then(() => {
      clearTimeout(timer);
      reject(new Error(`${args.slice(0, 2).join(' ')} exited`));
    });
  });
  return {
    stop: async () => {
      if (exited) return;
      child.kill('SIGKILL');
      await gone;
    },
  };
}
