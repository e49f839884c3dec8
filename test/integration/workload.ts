/**
 * Workloads for cnm's integration tests: networks and containers made through cnmd's API, a
 * server that runs as a container's own command, exec with Docker's multiplexed framing, and
 * snapshot normalisation. Builds on `harness.ts`; every call goes through the world's socket.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import {
  diffSnapshots,
  exec,
  tcpConnect,
  type ApiClient,
  type HostSnapshot,
  type World,
} from './harness.js';

/** Debian's interpreter (the container PATH has /usr/bin first anyway). */
export const PY = '/usr/bin/python3';

/**
 * A container command: HTTP on TCP `port` answering JSON `{client, port, hostname}`, and a UDP
 * echo on the same port number replying `<peer-ip>:<peer-port> <payload>`.
 */
export const SERVE_PY = String.raw`
import json, socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port = int(sys.argv[1]) if len(sys.argv) > 1 else 80
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        d, p = s.recvfrom(65536)
        s.sendto(("%s:%d " % p[:2]).encode() + d, p)
threading.Thread(target=udp, daemon=True).start()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"client": self.client_address[0], "port": self.client_address[1],
                           "hostname": socket.gethostname()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer.allow_reuse_address = True
srv = ThreadingHTTPServer(("0.0.0.0", port), H)
print("READY", flush=True)
srv.serve_forever()
`;

/** The container command running {@link SERVE_PY} on `port`. */
export function serveCmd(port = 80): string[] {
  return [PY, '-c', SERVE_PY, String(port)];
}

/** Creates a network, asserting 201; returns its id. */
export async function createNetwork(a: ApiClient, body: Record<string, unknown>): Promise<string> {
  const r = await a.post('/networks/create', body);
  assert.equal(r.status, 201, `create network ${JSON.stringify(body)}: ${r.text}`);
  return r.body.Id as string;
}

/** Docker container-inspect JSON (loosely typed: tests index into it). */
export type Inspect = any;

/** Creates a container (201 asserted) and returns its inspect JSON; does not start it. */
export async function createContainer(
  a: ApiClient,
  spec: Record<string, unknown>,
): Promise<Inspect> {
  const r = await a.post('/cnm/containers/create', spec);
  assert.equal(r.status, 201, `create container ${JSON.stringify(spec).slice(0, 300)}: ${r.text}`);
  return r.body;
}

/** GET /cnm/containers/{id}/json, asserting 200. */
export async function inspect(a: ApiClient, id: string): Promise<Inspect> {
  const r = await a.get(`/cnm/containers/${id}/json`);
  assert.equal(r.status, 200, `inspect ${id}: ${r.text}`);
  return r.body;
}

/** Creates and starts a container; returns its inspect JSON after the start. */
export async function runContainer(a: ApiClient, spec: Record<string, unknown>): Promise<Inspect> {
  const c = await createContainer(a, spec);
  const r = await a.post(`/cnm/containers/${c.Id}/start`);
  assert.equal(r.status, 204, `start ${String(spec['Name'])}: ${r.text}`);
  return inspect(a, c.Id as string);
}

/** A running container serving {@link SERVE_PY}, with what tests need to reach it. */
export interface Served {
  id: string;
  name: string;
  ns: string;
  pid: number;
  /** Network name → IPv4 address. */
  ip: Record<string, string>;
  /** Network name → gateway. */
  gw: Record<string, string>;
}

/** Summarises an inspect JSON as a {@link Served}. */
export function served(c: Inspect): Served {
  const ip: Record<string, string> = {};
  const gw: Record<string, string> = {};
  for (const [name, ep] of Object.entries<any>(c.NetworkSettings.Networks ?? {})) {
    ip[name] = ep.IPAddress;
    gw[name] = ep.Gateway;
  }
  return {
    id: c.Id,
    name: String(c.Name).replace(/^\//, ''),
    ns: c.NetworkSettings.SandboxKey,
    pid: c.State.Pid,
    ip,
    gw,
  };
}

/** Polls until `fn` returns true; fails with `what` after `timeoutMs`. */
export async function until(
  what: string,
  fn: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) assert.fail(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs a {@link SERVE_PY} container on `networks` and waits until it listens. */
export async function runServer(
  a: ApiClient,
  name: string,
  networks: (string | Record<string, unknown>)[],
  extra: Record<string, unknown> = {},
): Promise<Served> {
  const c = served(
    await runContainer(a, {
      Name: name,
      Cmd: serveCmd(80),
      Networks: networks.map((n) => (typeof n === 'string' ? { Name: n } : n)),
      ...extra,
    }),
  );
  await until(`${name} to listen`, () => tcpConnect(c.ns, '127.0.0.1', 80, 1000));
  return c;
}

/** Result of {@link execIn}. */
export interface ExecOutput {
  stdout: string;
  stderr: string;
  code: number | undefined;
}

/** Runs a command in a running container through `POST /cnm/containers/{id}/exec`. */
export async function execIn(w: World, id: string, cmd: string[]): Promise<ExecOutput> {
  // Raw bytes: frame headers carry binary lengths that a UTF-8 decode would mangle.
  const payload = JSON.stringify({ Cmd: cmd });
  const { status, body } = await new Promise<{ status: number; body: Buffer }>(
    (resolve, reject) => {
      const req = http.request(
        {
          socketPath: w.socketPath,
          method: 'POST',
          path: `/cnm/containers/${id}/exec`,
          headers: {
            Host: 'cnm',
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(payload),
          },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('error', reject);
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error(`exec ${cmd.join(' ')} timed out`)));
      req.on('error', reject);
      req.end(payload);
    },
  );
  assert.equal(status, 200, `exec ${cmd.join(' ')}: ${body.toString()}`);
  return demux(body);
}

function demux(buf: Buffer): ExecOutput {
  const out: ExecOutput = { stdout: '', stderr: '', code: undefined };
  let off = 0;
  while (off + 8 <= buf.length) {
    const stream = buf.readUInt8(off);
    const len = buf.readUInt32BE(off + 4);
    const payload = buf.subarray(off + 8, off + 8 + len);
    if (stream === 1) out.stdout += payload.toString('utf8');
    else if (stream === 2) out.stderr += payload.toString('utf8');
    else if (stream === 3) out.code = payload.readInt32BE(0);
    off += 8 + len;
  }
  return out;
}

/**
 * Waits until no IPv6 address in the world's host netns is still tentative: a link brought up
 * gets its link-local address (and the matching `local` route) only once DAD ends, about a
 * second later, and a snapshot taken before that would see the route appear afterwards.
 */
export async function waitHostSettled(w: World): Promise<void> {
  await until('IPv6 DAD to finish in the host netns', async () => {
    const r = await exec(w.hostNs, ['ip', '-6', '-o', 'addr', 'show', 'tentative'], {
      check: true,
    });
    return r.stdout.trim() === '';
  });
}

/** Parent PID of `pid` (the container shim's PID for a container's command). */
export function parentPid(pid: number): number {
  const m = /^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

/** True when `pid` exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** A snapshot without the given PIDs (cnmd's own, which changes on every restart). */
export function withoutPids(s: HostSnapshot, drop: readonly number[]): HostSnapshot {
  return { ...s, pids: s.pids.filter((p) => !drop.includes(p)) };
}

/**
 * Sorts the `elem` list of every nftables set and map in a snapshot: elements are unordered, and
 * `nft` lists those of a concatenated interval set in insertion order, which a restart (networks
 * restored in store order, not creation order) legitimately changes.
 */
export function sortNftElements(s: HostSnapshot): HostSnapshot {
  const nft = s.nft.map((line) => {
    const o = JSON.parse(line) as Record<string, { elem?: unknown[] }>;
    for (const v of Object.values(o)) {
      if (Array.isArray(v.elem)) {
        v.elem = v.elem
          .map((e) => JSON.stringify(e))
          .sort()
          .map((e) => JSON.parse(e) as unknown);
      }
    }
    return JSON.stringify(o);
  });
  return { ...s, nft: nft.sort() };
}

/** Asserts two snapshots equal (nftables elements compared as sets), printing the difference. */
export function assertSameHost(before: HostSnapshot, after: HostSnapshot, what: string): void {
  const diff = diffSnapshots(sortNftElements(before), sortNftElements(after));
  assert.deepEqual(diff, [], `${what}: host state changed:\n${diff.join('\n')}`);
}

/** Formats rows as a fixed-width text table. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}
