/**
 * Integration-test harness: a disposable "world" per test.
 *
 * A world is two network namespaces joined by a veth pair:
 *
 * ```
 *   host ns  (cnmt-<pid>-<n>-host)          outside ns (cnmt-<pid>-<n>-out)
 *   lo, up0 203.0.113.2/24  <--veth-->  out0 203.0.113.1/24
 *   default via 203.0.113.1                  http :80, tcp/udp echo :7, dns :53
 *   cnmd runs here (nsenter --net)           plays the internet; no route back to containers
 * ```
 *
 * plus a temp dir `/tmp/cnmt-<pid>-<n>-XXXXXX` holding cnmd's data root, exec root, socket, pid
 * file and log. The outside namespace has no route to any container subnet and no default route,
 * so replies only come back through cnmd's NAT, and nothing a test sends can leave the machine.
 *
 * Nothing here touches the root network namespace: links are created from inside the host ns
 * (`ip -n`), every process runs under `nsenter --net`, and teardown deletes only what it created.
 * Every process the harness starts is tracked by PID, killed at world teardown, and also killed
 * when the test process exits, so an aborted test leaves no server running. `scripts/sweep.ts`
 * removes anything a crashed process still left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  NETNS_RUN_DIR,
  SCRATCH_ROOT,
  isAlive,
  listMounts,
  mountsUnder,
  pidsInNetns,
  unmountUnder,
} from '../../scripts/sweep.js';

/** Repository root, found from this file so tests can run from any cwd. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The host namespace's uplink address (what the outside world sees after masquerade). */
export const HOST_UPLINK_IP = '203.0.113.2';
/** The outside namespace's address: web, echo and DNS servers listen here. */
export const OUTSIDE_IP = '203.0.113.1';
/** Ports of the servers every world starts in the outside namespace. */
export const OUTSIDE_PORTS = { http: 80, echo: 7, dns: 53 } as const;

// Debian's interpreter, not a pyenv shim: the shim re-reads the environment on every start,
// which costs time in probes and can pick another interpreter than the one CI has.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** A disposable test world; see the module comment for its shape. */
export interface World {
  /** Prefix of every name this world owns: `cnmt-<pid>-<n>`. */
  readonly name: string;
  /** Human label (the test's name), for logs. */
  readonly label: string;
  /** Netns name of the host (`<name>-host`), for `ip -n`. */
  readonly hostNsName: string;
  /** Netns name of the outside (`<name>-out`). */
  readonly outsideNsName: string;
  /** Path of the host netns (`/run/netns/<name>-host`), for `nsenter --net=`. */
  readonly hostNs: string;
  /** Path of the outside netns. */
  readonly outsideNs: string;
  readonly hostUplinkIp: typeof HOST_UPLINK_IP;
  readonly outsideIp: typeof OUTSIDE_IP;
  /** Name of the host's uplink interface (in the host ns). */
  readonly uplinkIf: 'up0';
  /** Temp dir holding everything below. */
  readonly dir: string;
  /** cnmd's API socket. */
  readonly socketPath: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly pidFile: string;
  /** cnmd's stdout and stderr (appended across restarts). */
  readonly logFile: string;
  /** A resolv.conf naming only the outside DNS server, for cnmd's upstream (never a real resolver). */
  readonly resolvConf: string;
  /** The outside HTTP server's URL. */
  readonly outsideUrl: string;
}

interface Tracked {
  readonly pid: number;
  readonly what: string;
  readonly child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

interface WorldState {
  readonly procs: Set<Tracked>;
  readonly daemons: Set<Daemon>;
  destroyed: boolean;
}

const states = new WeakMap<World, WorldState>();
const liveWorlds = new Set<World>();
/** Every process started by this module and not yet exited: the safety net of {@link killAllSync}. */
const liveProcs = new Set<Tracked>();
let worldCounter = 0;

function killAllSync(): void {
  for (const p of liveProcs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
// An aborted test file must not leave servers or cnmd behind. Signal handlers re-raise after
// cleanup, so the default exit behaviour (and exit status) is kept.
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAllSync();
    process.kill(process.pid, sig);
  });
}

function track(child: ChildProcess, what: string, owner?: WorldState): Tracked {
  if (child.pid === undefined) throw new Error(`Failed to start ${what}`);
  const t: Tracked = {
    pid: child.pid,
    what,
    child,
    exitInfo: undefined,
    exited: new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        t.exitInfo = { code, signal };
        liveProcs.delete(t);
        owner?.procs.delete(t);
        resolve(t.exitInfo);
      });
    }),
  };
  liveProcs.add(t);
  owner?.procs.add(t);
  return t;
}

async function waitExit(t: Tracked, timeoutMs: number): Promise<boolean> {
  if (t.exitInfo !== undefined) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
  const done = await Promise.race([t.exited.then(() => true as const), timeout]);
  clearTimeout(timer);
  return done;
}

async function killAndWait(t: Tracked): Promise<void> {
  if (t.exitInfo !== undefined) return;
  try {
    process.kill(t.pid, 'SIGKILL');
  } catch {
    // Exited between the check and the kill.
  }
  if (!(await waitExit(t, 5000))) throw new Error(`Process ${t.pid} (${t.what}) survived SIGKILL`);
}

/** Result of a finished command. `code` is null when it was killed (see `signal`, `timedOut`). */
export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Options for {@link exec} and {@link run}. */
export interface ExecOptions {
  /** Kill the command (SIGKILL, by PID) after this long. Default 10 s. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  /** Throw unless the command exits 0. */
  check?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a command in the current (root) network namespace and collects its output.
 * Only for commands that do not change that namespace (`ip netns add/del`, `umount`, `nsenter`).
 *
 * @throws when `check` is set and the command fails or times out
 */
export async function run(
  cmd: string,
  args: string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
  const t = track(child, `${cmd} ${args.join(' ')}`);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin?.on('error', () => {
    // EPIPE when the command exits without reading its input; the exit code tells the story.
  });
  child.stdin?.end(opts.input ?? '');
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 10_000);
  const { code, signal } = await new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>((resolve, reject) => {
    child.once('error', reject);
    // 'close' (not 'exit'): all output has been read by then.
    child.once('close', (c, s) => resolve({ code: c, signal: s }));
  }).finally(() => clearTimeout(timer));
  await t.exited;
  const result = { code, signal, stdout, stderr, timedOut };
  if (opts.check && code !== 0) {
    throw new Error(
      `Command '${cmd} ${args.join(' ')}' failed (${timedOut ? 'timed out' : `code ${code}, signal ${signal}`}): ${stderr.trim()}`,
    );
  }
  return result;
}

/**
 * Runs `cmd` inside the network namespace at `ns` (a netns path) through `nsenter --net`, which
 * switches only the network namespace: mounts, /sys and PID view stay the test's.
 *
 * @example await exec(w.hostNs, ['ip', '-j', 'addr'], { check: true })
 * @throws when `check` is set and the command fails or times out
 */
export async function exec(ns: string, cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run('nsenter', [`--net=${ns}`, '--', ...cmd], opts);
}

/**
 * Why root integration tests cannot run here, or `false` when they can. Pass it as the `skip`
 * option of `describe`/`test` so the report says why.
 */
export function skipUnlessRoot(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (creates network namespaces)';
  for (const tool of ['/usr/sbin/ip', '/usr/bin/nsenter']) {
    if (!existsSync(tool) && !existsSync(tool.replace('/usr', ''))) return `needs ${tool}`;
  }
  return false;
}

/** Options for {@link createWorld}. */
export interface WorldOptions {
  /** Label for logs and the temp dir's `label` file; the netns names never depend on it. */
  name?: string;
  /** Do not start the outside servers (tests of the harness itself, or that start their own). */
  noServers?: boolean;
}

/**
 * Builds a world: temp dir, host and outside netns, the veth uplink, and the outside servers
 * (HTTP on :80, TCP and UDP echo on :7, DNS on :53, all on 203.0.113.1). On failure, whatever
 * was built is destroyed before the error is thrown.
 *
 * @throws when any step fails (an AggregateError if the cleanup failed too)
 */
export async function createWorld(opts: WorldOptions = {}): Promise<World> {
  worldCounter += 1;
  const name = `cnmt-${process.pid}-${worldCounter}`;
  const dir = await mkdtemp(path.join(SCRATCH_ROOT, `${name}-`));
  const w: World = {
    name,
    label: opts.name ?? name,
    hostNsName: `${name}-host`,
    outsideNsName: `${name}-out`,
    hostNs: path.join(NETNS_RUN_DIR, `${name}-host`),
    outsideNs: path.join(NETNS_RUN_DIR, `${name}-out`),
    hostUplinkIp: HOST_UPLINK_IP,
    outsideIp: OUTSIDE_IP,
    uplinkIf: 'up0',
    dir,
    socketPath: path.join(dir, 'cnm.sock'),
    dataRoot: path.join(dir, 'lib'),
    execRoot: path.join(dir, 'run'),
    pidFile: path.join(dir, 'cnmd.pid'),
    logFile: path.join(dir, 'cnmd.log'),
    resolvConf: path.join(dir, 'resolv.conf'),
    outsideUrl: `http://${OUTSIDE_IP}:${OUTSIDE_PORTS.http}/`,
  };
  states.set(w, { procs: new Set(), daemons: new Set(), destroyed: false });
  liveWorlds.add(w);
  try {
    await writeFile(path.join(dir, 'label'), `${w.label}\n`);
    await writeFile(w.resolvConf, `nameserver ${OUTSIDE_IP}\n`);
    await run('ip', ['netns', 'add', w.hostNsName], { check: true });
    await run('ip', ['netns', 'add', w.outsideNsName], { check: true });
    const h = ['-n', w.hostNsName];
    const o = ['-n', w.outsideNsName];
    // Created from inside the host ns with the peer sent straight to the outside ns, so no
    // interface ever exists in the root namespace, not even for an instant.
    const steps: string[][] = [
      [...h, 'link', 'set', 'lo', 'up'],
      [...o, 'link', 'set', 'lo', 'up'],
      [
        ...h,
        'link',
        'add',
        'up0',
        'type',
        'veth',
        'peer',
        'name',
        'out0',
        'netns',
        w.outsideNsName,
      ],
      [...h, 'addr', 'add', `${HOST_UPLINK_IP}/24`, 'dev', 'up0'],
      [...o, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'out0'],
      [...h, 'link', 'set', 'up0', 'up'],
      [...o, 'link', 'set', 'out0', 'up'],
      [...h, 'route', 'add', 'default', 'via', OUTSIDE_IP],
    ];
    for (const args of steps) await run('ip', args, { check: true });
    if (!opts.noServers) {
      await Promise.all([
        startServer(w.outsideNs, 'http', OUTSIDE_PORTS.http, OUTSIDE_IP),
        startServer(w.outsideNs, 'tcp-echo', OUTSIDE_PORTS.echo, OUTSIDE_IP),
        startServer(w.outsideNs, 'udp-echo', OUTSIDE_PORTS.echo, OUTSIDE_IP),
        startServer(w.outsideNs, 'dns', OUTSIDE_PORTS.dns, OUTSIDE_IP),
      ]);
    }
  } catch (err) {
    try {
      await destroyWorld(w);
    } catch (cleanupErr) {
      throw new AggregateError([err, cleanupErr], `Failed to create world '${name}'`);
    }
    throw new Error(`Failed to create world '${name}'`, { cause: err });
  }
  return w;
}

/** Network namespaces (names in /run/netns) owned by the world: host, outside, any `<name>-*`. */
async function ownedNetns(w: World): Promise<string[]> {
  const names = await readdir(NETNS_RUN_DIR).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(`${w.name}-`));
}

/**
 * Destroys a world: stops its daemons (SIGTERM, then SIGKILL after 10 s), kills every process
 * it started and any other process still inside its namespaces (by PID), unmounts everything
 * under its dir (deepest first, lazily), deletes its netns and removes the dir. Keeps going past
 * failures. Calling it twice is harmless.
 *
 * @throws AggregateError listing every step that failed
 */
export async function destroyWorld(w: World): Promise<void> {
  const state = states.get(w);
  if (state === undefined || state.destroyed) return;
  state.destroyed = true;
  const errors: unknown[] = [];
  const attempt = async (fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
  };

  for (const d of state.daemons) await attempt(() => d.stop());
  for (const p of [...state.procs]) await attempt(() => killAndWait(p));

  // Processes we did not start ourselves (cnmd's helpers, a test's own nsenter children) that
  // still sit in one of the world's namespaces: they are the world's, so they go too.
  const nsPaths = (await ownedNetns(w)).map((n) => path.join(NETNS_RUN_DIR, n));
  for (const m of await listMounts().catch(() => [])) {
    if (m.fsType === 'nsfs' && m.mountPoint.startsWith(`${w.dir}/`)) nsPaths.push(m.mountPoint);
  }
  const strays = new Set<number>();
  for (const ns of nsPaths) for (const pid of await pidsInNetns(ns)) strays.add(pid);
  for (const pid of strays) {
    await attempt(async () => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    });
  }
  const deadline = Date.now() + 5000;
  while ([...strays].some(isAlive) && Date.now() < deadline) await sleep(20);

  await attempt(async () => {
    const failures = await unmountUnder(w.dir);
    if (failures.length > 0) throw new AggregateError(failures, 'Failed to unmount');
  });
  for (const ns of await ownedNetns(w)) {
    await attempt(() => run('ip', ['netns', 'del', ns], { check: true }));
  }
  await attempt(() => rm(w.dir, { recursive: true, force: true }));
  liveWorlds.delete(w);
  if (errors.length > 0) throw new AggregateError(errors, `Failed to destroy world '${w.name}'`);
}

/**
 * Runs `fn` in a fresh world and always destroys it. When `fn` fails, the daemon log tail is
 * attached to the test as a diagnostic; when both `fn` and the teardown fail, both errors are
 * thrown together.
 *
 * @example test('x', (t) => withWorld(t, async (w) => { ... }))
 */
export async function withWorld(
  t: TestContext | string,
  fn: (w: World) => Promise<void>,
): Promise<void> {
  const label = typeof t === 'string' ? t : t.name;
  const w = await createWorld({ name: label });
  let failure: { err: unknown } | undefined;
  try {
    await fn(w);
  } catch (err) {
    failure = { err };
    if (typeof t !== 'string') {
      for (const d of states.get(w)?.daemons ?? []) {
        t.diagnostic(`cnmd log tail (${w.logFile}):\n${await d.logTail(60)}`);
      }
    }
  }
  try {
    await destroyWorld(w);
  } catch (cleanupErr) {
    if (failure !== undefined) {
      throw new AggregateError([failure.err, cleanupErr], `Test and teardown of '${label}' failed`);
    }
    throw cleanupErr;
  }
  if (failure !== undefined) throw failure.err;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// Daemon

/** How a daemon process ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A cnmd started by {@link startDaemon}. */
export interface Daemon {
  /** PID of the current cnmd process (changes on restart). */
  readonly pid: number;
  /** The full argument list after `node`. */
  readonly args: readonly string[];
  /** Exit status of the current process, or undefined while it runs. */
  readonly exitInfo: ExitInfo | undefined;
  /** SIGTERM, wait up to 10 s, then SIGKILL. Resolves with how it ended. */
  stop(): Promise<ExitInfo>;
  /** SIGKILL (a crash: cnmd gets no chance to clean up) and wait for the exit. */
  kill9(): Promise<ExitInfo>;
  /** Stop (gracefully) if running, then start again with the same arguments and wait for /_ping. */
  restart(): Promise<void>;
  /** The last `lines` lines of the daemon's log. */
  logTail(lines?: number): Promise<string>;
}

class DaemonProcess implements Daemon {
  readonly args: readonly string[];
  #w: World;
  #state: WorldState;
  #proc: Tracked | undefined;

  constructor(w: World, state: WorldState, args: string[]) {
    this.#w = w;
    this.#state = state;
    this.args = args;
  }

  get pid(): number {
    if (this.#proc === undefined) throw new Error('Daemon was never started');
    return this.#proc.pid;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#proc?.exitInfo;
  }

  async start(): Promise<void> {
    const log = openSync(this.#w.logFile, 'a');
    try {
      const child = spawn(
        'nsenter',
        [`--net=${this.#w.hostNs}`, '--', process.execPath, ...this.args],
        {
          stdio: ['ignore', log, log],
          cwd: this.#w.dir,
        },
      );
      this.#proc = track(child, 'cnmd', this.#state);
    } finally {
      // The child holds its own copy of the descriptor.
      closeSync(log);
    }
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (this.#proc.exitInfo !== undefined) {
        const { code, signal } = this.#proc.exitInfo;
        throw new Error(
          `cnmd exited during startup (code ${code}, signal ${signal}):\n${await this.logTail()}`,
        );
      }
      try {
        const res = await api(this.#w).request('GET', '/_ping', undefined, { timeoutMs: 1000 });
        if (res.status === 200) return;
      } catch {
        // Socket not there yet.
      }
      if (Date.now() > deadline) {
        await this.kill9();
        throw new Error(`cnmd did not answer GET /_ping within 15 s:\n${await this.logTail()}`);
      }
      await sleep(50);
    }
  }

  async stop(): Promise<ExitInfo> {
    const p = this.#proc;
    if (p === undefined) return { code: null, signal: null };
    if (p.exitInfo !== undefined) return p.exitInfo;
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      // Exited between the check and the signal; the wait below returns at once.
    }
    if (!(await waitExit(p, 10_000))) await killAndWait(p);
    return p.exitInfo ?? { code: null, signal: null };
  }

  async kill9(): Promise<ExitInfo> {
    const p = this.#proc;
    if (p === undefined) return { code: null, signal: null };
    await killAndWait(p);
    return p.exitInfo ?? { code: null, signal: null };
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async logTail(lines = 40): Promise<string> {
    const text = await readFile(this.#w.logFile, 'utf8').catch(() => '(no log)');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  }
}

/**
 * Starts cnmd inside the world's host netns and waits until `GET /_ping` answers 200.
 *
 * Uses `nsenter --net`, not `ip netns exec`: the latter makes a private mount namespace (to
 * remount /sys), so cnmd's netns bind mounts would vanish with the process and a restarted cnmd
 * could not find them.
 *
 * @param extraArgs appended after the standard flags (socket, data root, exec root, pid file,
 *   debug log level)
 * @throws when dist/main/daemon.js is missing (run `npm run build`), or cnmd exits or does not
 *   answer within 15 s (the message carries the log tail)
 */
export async function startDaemon(w: World, extraArgs: string[] = []): Promise<Daemon> {
  const state = states.get(w);
  if (state === undefined || state.destroyed) throw new Error(`World '${w.name}' is not live`);
  const entry = path.join(REPO_ROOT, 'dist/main/daemon.js');
  if (!existsSync(entry)) throw new Error(`Missing '${entry}': run 'npm run build' first`);
  const args = [
    entry,
    '-H',
    `unix://${w.socketPath}`,
    '--data-root',
    w.dataRoot,
    '--exec-root',
    w.execRoot,
    '--pidfile',
    w.pidFile,
    '--log-level',
    'debug',
    ...extraArgs,
  ];
  const d = new DaemonProcess(w, state, args);
  state.daemons.add(d);
  await d.start();
  return d;
}

// ---------------------------------------------------------------------------------------------
// API and CLI

/** An HTTP response from cnmd. `body` is the parsed JSON, or undefined when it is not JSON. */
export interface ApiResponse {
  status: number;
  // `any`: tests index freely into Docker-shaped JSON; a schema per assertion would add nothing.
  body: any;
  text: string;
  headers: http.IncomingHttpHeaders;
}

/** Per-request options of {@link ApiClient}. */
export interface RequestOptions {
  /** Abort after this long. Default 30 s. */
  timeoutMs?: number;
}

/** A client for cnmd's Docker-shaped API over the world's unix socket. */
export interface ApiClient {
  /** Sends one request; `body` is JSON-encoded. Resolves for every HTTP status. */
  request(
    method: string,
    urlPath: string,
    body?: unknown,
    opts?: RequestOptions,
  ): Promise<ApiResponse>;
  get(urlPath: string): Promise<ApiResponse>;
  post(urlPath: string, body?: unknown): Promise<ApiResponse>;
  delete(urlPath: string): Promise<ApiResponse>;
}

/**
 * Returns an API client for the world's socket.
 *
 * @example const res = await api(w).post('/networks/create', { Name: 'n1', Driver: 'bridge' })
 */
export function api(w: World): ApiClient {
  const request = (
    method: string,
    urlPath: string,
    body?: unknown,
    opts: RequestOptions = {},
  ): Promise<ApiResponse> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        {
          socketPath: w.socketPath,
          method,
          path: urlPath,
          headers: {
            Host: 'cnm',
            ...(payload === undefined
              ? {}
              : {
                  'Content-Type': 'application/json',
                  'Content-Length': Buffer.byteLength(payload),
                }),
          },
          timeout: opts.timeoutMs ?? 30_000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('error', reject);
          res.on('end', () => {
            let parsed: unknown;
            try {
              parsed = text === '' ? undefined : JSON.parse(text);
            } catch {
              parsed = undefined;
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, text, headers: res.headers });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`Request '${method} ${urlPath}' timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  return {
    request,
    get: (p) => request('GET', p),
    post: (p, b) => request('POST', p, b),
    delete: (p) => request('DELETE', p),
  };
}

/**
 * Runs the cnm CLI against the world's daemon. Needs no netns: the socket is a file.
 *
 * @example const { code, stdout } = await cnm(w, ['network', 'ls'])
 */
export async function cnm(
  w: World,
  args: string[],
  opts: ExecOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const entry = path.join(REPO_ROOT, 'dist/main/cli.js');
  const r = await run(process.execPath, [entry, '-H', `unix://${w.socketPath}`, ...args], {
    timeoutMs: 60_000,
    ...opts,
  });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

// ---------------------------------------------------------------------------------------------
// Probes and servers

async function probe(
  fromNs: string,
  kind: string,
  args: Record<string, unknown>,
  timeoutMs: number,
): Promise<{ ok: boolean; out: Record<string, unknown> }> {
  // The process deadline leaves room for interpreter start-up beyond the socket timeout.
  const r = await exec(
    fromNs,
    [PYTHON, '-c', PROBE_PY, kind, JSON.stringify({ ...args, timeout: timeoutMs / 1000 })],
    { timeoutMs: timeoutMs + 5000 },
  );
  let out: Record<string, unknown> = {};
  try {
    out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
  } catch {
    out = { error: `probe printed no JSON: ${r.stdout}${r.stderr}` };
  }
  return { ok: r.code === 0, out };
}

/** A completed HTTP exchange. `json` is the parsed body when it is JSON. */
export interface HttpResult {
  status: number;
  body: string;
  // `any`: tests index freely into bodies, as with ApiResponse.
  json: any;
}

/**
 * GETs `url` from inside netns `fromNs` (no proxy).
 *
 * @example (await httpGet(w.hostNs, w.outsideUrl)).json.client === '203.0.113.2'
 * @throws when no HTTP response arrives within `timeoutMs` (connection refused, no route, ...)
 */
export async function httpGet(fromNs: string, url: string, timeoutMs = 5000): Promise<HttpResult> {
  const { ok, out } = await probe(fromNs, 'http', { url }, timeoutMs);
  if (!ok) throw new Error(`GET '${url}' from '${fromNs}' failed: ${String(out['error'])}`);
  const body = String(out['body']);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { status: Number(out['status']), body, json };
}

/** Tells whether a TCP connection from netns `fromNs` to `ip:port` succeeds within the timeout. */
export async function tcpConnect(
  fromNs: string,
  ip: string,
  port: number,
  timeoutMs = 3000,
): Promise<boolean> {
  return (await probe(fromNs, 'tcp', { ip, port }, timeoutMs)).ok;
}

/**
 * Connects over TCP, sends `payload`, returns the first reply, or null on any failure. Against
 * the harness's echo server the reply is `<peer-ip>:<peer-port> <payload>`.
 */
export async function tcpEcho(
  fromNs: string,
  target: { ip: string; port: number },
  payload: string,
  timeoutMs = 3000,
): Promise<string | null> {
  const { ok, out } = await probe(fromNs, 'tcp', { ...target, payload }, timeoutMs);
  return ok ? String(out['reply']) : null;
}

/**
 * Sends one UDP datagram and returns the reply, or null when none comes within the timeout.
 * Against the harness's echo server the reply is `<peer-ip>:<peer-port> <payload>`.
 */
export async function udpEcho(
  fromNs: string,
  target: { ip: string; port: number },
  payload: string,
  timeoutMs = 2000,
): Promise<string | null> {
  const { ok, out } = await probe(fromNs, 'udp', { ...target, payload }, timeoutMs);
  return ok ? String(out['reply']) : null;
}

/**
 * One ICMP echo from netns `fromNs`. Prefer {@link tcpConnect}: ping needs iputils-ping, which a
 * fresh machine may lack.
 *
 * @throws when `ping` is not installed
 */
export async function ping(fromNs: string, ip: string, timeoutMs = 2000): Promise<boolean> {
  if (!existsSync('/usr/bin/ping') && !existsSync('/bin/ping')) {
    throw new Error("ping is not installed: 'apt-get install iputils-ping' or use tcpConnect");
  }
  const secs = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
  const r = await exec(fromNs, ['ping', '-n', '-q', '-c', '1', '-W', secs, ip], {
    timeoutMs: timeoutMs + 2000,
  });
  return r.code === 0;
}

/** Kinds of server {@link startServer} runs. */
export type ServerKind = 'http' | 'tcp-echo' | 'udp-echo' | 'dns';

/** A running server started by {@link startServer}. */
export interface ServerHandle {
  readonly pid: number;
  readonly kind: ServerKind;
  readonly ns: string;
  readonly bind: string;
  readonly port: number;
  /** Kills it (SIGKILL by PID) and waits for the exit. */
  stop(): Promise<void>;
}

function worldOwning(ns: string): World | undefined {
  const base = path.basename(ns);
  for (const w of liveWorlds) {
    if (ns.startsWith(`${w.dir}/`) || base.startsWith(`${w.name}-`)) return w;
  }
  return undefined;
}

/**
 * Starts a server in netns `ns` and waits until it listens. Replies name the peer address:
 * `http` answers every GET with JSON `{client, port, path}`; `tcp-echo` and `udp-echo` reply
 * `<peer-ip>:<peer-port> <data>`; `dns` answers A queries under `outside.test.` with its own
 * address. The server is killed when the world owning `ns` (by name or by a path under its dir)
 * is destroyed, and in any case when the test process exits.
 *
 * @throws when the server exits or does not listen within 5 s (e.g. address in use)
 */
export async function startServer(
  ns: string,
  kind: ServerKind,
  port: number,
  bind = '0.0.0.0',
): Promise<ServerHandle> {
  const owner = worldOwning(ns);
  const marker = owner?.dir ?? SCRATCH_ROOT;
  const child = spawn(
    'nsenter',
    [`--net=${ns}`, '--', PYTHON, '-u', '-c', SERVER_PY, kind, bind, String(port), marker],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const t = track(child, `${kind} server on ${bind}:${port}`, owner && states.get(owner));
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const ready = await new Promise<boolean>((resolve) => {
    let out = '';
    const timer = setTimeout(() => resolve(false), 5000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('READY\n')) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    void t.exited.then(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!ready) {
    await killAndWait(t);
    throw new Error(
      `Failed to start ${kind} server on ${bind}:${port} in '${ns}': ${stderr.trim()}`,
    );
  }
  return { pid: t.pid, kind, ns, bind, port, stop: () => killAndWait(t) };
}

// ---------------------------------------------------------------------------------------------
// Leak checks

/**
 * What the host netns holds, normalised for comparison: sorted strings, nftables objects
 * without handles (handles change on every reload).
 */
export interface HostSnapshot {
  /** `name kind` per link, e.g. `up0 veth`, `lo device`. */
  links: string[];
  /** `dev family address/prefix` per address. */
  addresses: string[];
  /** `table dst dev via` per route, IPv4 and IPv6, all tables. */
  routes: string[];
  /** One JSON string per nftables object (table, chain, rule, set, map, element), no handles. */
  nft: string[];
  /** Mount points under the world's dir. */
  mounts: string[];
  /** Netns names owned by the world, besides its host and outside ones. */
  netns: string[];
  /** PIDs living in the host netns. */
  pids: number[];
}

function stripHandles(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripHandles);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== 'handle') out[k] = stripHandles(x);
    return out;
  }
  return v;
}

async function ipJson(ns: string, args: string[]): Promise<Record<string, unknown>[]> {
  const r = await exec(ns, ['ip', '-j', ...args], { check: true });
  return r.stdout.trim() === '' ? [] : (JSON.parse(r.stdout) as Record<string, unknown>[]);
}

/**
 * Takes a {@link HostSnapshot} of the world's host netns, so a test can assert that nothing
 * leaked after cnmd stopped or was killed.
 *
 * @example assert.deepEqual(diffSnapshots(before, await snapshotHost(w)), [])
 */
export async function snapshotHost(w: World): Promise<HostSnapshot> {
  const links = (await ipJson(w.hostNs, ['-d', 'link', 'show'])).map((l) => {
    const info = l['linkinfo'] as { info_kind?: string } | undefined;
    return `${String(l['ifname'])} ${info?.info_kind ?? 'device'}`;
  });
  const addresses: string[] = [];
  for (const l of await ipJson(w.hostNs, ['addr', 'show'])) {
    for (const a of (l['addr_info'] as Record<string, unknown>[] | undefined) ?? []) {
      addresses.push(
        `${String(l['ifname'])} ${String(a['family'])} ${String(a['local'])}/${String(a['prefixlen'])}`,
      );
    }
  }
  const routes: string[] = [];
  for (const fam of ['-4', '-6']) {
    for (const r of await ipJson(w.hostNs, [fam, 'route', 'show', 'table', 'all'])) {
      routes.push(
        [r['table'] ?? 'main', r['type'] ?? 'unicast', r['dst'], r['dev'], r['gateway'] ?? '']
          .map(String)
          .join(' ')
          .trim(),
      );
    }
  }
  const nftOut = await exec(w.hostNs, ['nft', '-j', 'list', 'ruleset'], { check: true });
  const nftItems =
    (JSON.parse(nftOut.stdout || '{"nftables":[]}') as { nftables: Record<string, unknown>[] })
      .nftables ?? [];
  const nft = nftItems
    .filter((o) => !('metainfo' in o))
    .map((o) => JSON.stringify(stripHandles(o)));
  const netns = (await ownedNetns(w)).filter((n) => n !== w.hostNsName && n !== w.outsideNsName);
  return {
    links: links.sort(),
    addresses: addresses.sort(),
    routes: routes.sort(),
    nft: nft.sort(),
    mounts: (await mountsUnder(w.dir)).sort(),
    netns: netns.sort(),
    pids: (await pidsInNetns(w.hostNs)).sort((a, b) => a - b),
  };
}

/**
 * Lists differences between two snapshots as `+ kind: item` (appeared) and `- kind: item`
 * (vanished) lines; empty when equal.
 */
export function diffSnapshots(before: HostSnapshot, after: HostSnapshot): string[] {
  const out: string[] = [];
  for (const key of Object.keys(before) as (keyof HostSnapshot)[]) {
    const a = new Set<string>(before[key].map(String));
    const b = new Set<string>(after[key].map(String));
    for (const x of b) if (!a.has(x)) out.push(`+ ${key}: ${x}`);
    for (const x of a) if (!b.has(x)) out.push(`- ${key}: ${x}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Python sources. Python rather than Node: it starts in ~30 ms (a tsx child takes ~10x that) and
// Debian always has it. Passed with -c, so nothing has to exist inside the namespace. Servers
// print READY once bound so callers never race them.

const SERVER_PY = String.raw`
import json, socket, socketserver, struct, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

kind, bind, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

def ready():
    sys.stdout.write("READY\n"); sys.stdout.flush()

if kind == "http":
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"client": self.client_address[0], "port": self.client_address[1],
                               "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer((bind, port), H)
    ready(); srv.serve_forever()
elif kind == "tcp-echo":
    class T(socketserver.BaseRequestHandler):
        def handle(self):
            peer = "%s:%d " % self.client_address[:2]
            while True:
                data = self.request.recv(65536)
                if not data:
                    return
                self.request.sendall(peer.encode() + data)
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    srv = socketserver.ThreadingTCPServer((bind, port), T)
    ready(); srv.serve_forever()
elif kind == "udp-echo":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind, port)); ready()
    while True:
        data, peer = s.recvfrom(65536)
        s.sendto(("%s:%d " % peer[:2]).encode() + data, peer)
elif kind == "dns":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind, port)); ready()
    me = socket.inet_aton(bind if bind != "0.0.0.0" else "203.0.113.1")
    while True:
        q, peer = s.recvfrom(4096)
        if len(q) < 12:
            continue
        i, labels = 12, []
        while i < len(q) and q[i] != 0:
            labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace")); i += 1 + q[i]
        i += 1
        if i + 4 > len(q):
            continue
        qtype = struct.unpack("!H", q[i:i + 2])[0]
        question = q[12:i + 4]
        name = ".".join(labels).lower() + "."
        known = name.endswith("outside.test.")
        flags = 0x8180 if known else 0x8183
        answers = b""
        if known and qtype == 1:
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + me
        hdr = q[:2] + struct.pack("!HHHHH", flags, 1, 1 if answers else 0, 0, 0)
        s.sendto(hdr + question + answers, peer)
else:
    sys.exit("unknown server kind " + kind)
`;

/**
 * A probe: `python3 -c PROBE_PY <kind> <json-args>`; prints one JSON line and exits 0, or prints
 * `{"error": ...}` and exits 1. Every socket operation carries the caller's timeout, so a probe
 * never hangs on a black-holed address.
 */
const PROBE_PY = String.raw`
import json, socket, sys, urllib.request
kind, a = sys.argv[1], json.loads(sys.argv[2])
t = a["timeout"]
try:
    if kind == "http":
        # No proxy: a proxy variable inherited from the environment must not reroute the probe.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            r = opener.open(a["url"], timeout=t)
            out = {"status": r.status, "body": r.read().decode(errors="replace")}
        except urllib.error.HTTPError as e:
            out = {"status": e.code, "body": e.read().decode(errors="replace")}
    elif kind == "tcp":
        c = socket.create_connection((a["ip"], a["port"]), timeout=t)
        out = {"local": "%s:%d" % c.getsockname()[:2]}
        if a.get("payload") is not None:
            c.sendall(a["payload"].encode())
            out["reply"] = c.recv(65536).decode(errors="replace")
        c.close()
    elif kind == "udp":
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(t)
        c.sendto(a["payload"].encode(), (a["ip"], a["port"]))
        out = {"reply": c.recvfrom(65536)[0].decode(errors="replace")}
    else:
        raise ValueError("unknown probe " + kind)
except Exception as e:
    print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)})); sys.exit(1)
print(json.dumps(out))
`;
