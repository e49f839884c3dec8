/**
 * Attach baselines: how long the CNI reference bridge plugin and netavark take to give one
 * container one endpoint on a bridge, measured on this machine in the same run as cnm.
 *
 * Method (matches shared/notes/anchors.md sections 2 and 3, so the figures are comparable):
 * - Each tool gets its own host netns `cnmb-<pid>-<tool>-host` and n container netns; nothing is
 *   done in the root netns. The temp dir `/tmp/cnmb-<pid>-<tool>-XXXXXX` holds the IPAM data and
 *   netavark's config dir; `scripts/sweep.ts` removes all of it if a run crashes.
 * - Plugins are exec'ed by a small Python timer (subprocess + perf_counter) that runs inside the
 *   host netns via `ip netns exec`, as in the anchors. Timing from Node would add its own spawn
 *   cost (several ms), and `ip netns exec` also gives the plugins a /sys of the host netns,
 *   which `nsenter --net` would not.
 * - One sample = one plugin exec for one container: bridge+host-local ADD (isGateway, ipMasq,
 *   hairpinMode; iptables) or `netavark setup` (bridge driver, static IP picked by this script,
 *   iptables firewall driver: 1.4.0 has no nftables driver). The first sample includes creating
 *   the bridge and firewall chains, as a first container on a network does.
 * - Reported separately: `ip netns add` per container netns (a runtime's cost too, not the
 *   plugin's), the DEL/teardown per container, and the timer's bare exec cost (`/bin/true`),
 *   the floor any exec-based plugin pays and cnm, a daemon, does not.
 * - After the ADDs, the first and last containers must reach their gateway (a TCP connect that
 *   gets a refusal proves the address and route are usable); otherwise the run fails.
 *
 * Usage: `tsx bench/attach/baselines.ts [--sizes 1,100,1000] [--tools cni,netavark]`
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { formatMs, formatTable, summarize } from '../stats.js';

/** Where Debian's containernetworking-plugins puts the plugins. */
export const CNI_PATH = '/usr/lib/cni';
/** Where Debian's netavark package puts the binary. */
export const NETAVARK = '/usr/lib/podman/netavark';

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Extra series a run records besides the ADD timings it returns. */
export interface AttachExtras {
  /** ms per `ip netns add` of a container netns. */
  netnsMs: number[];
  /** ms per DEL / teardown exec. */
  delMs: number[];
  /** ms per bare `/bin/true` exec through the same timer: the exec floor. */
  execFloorMs: number[];
}

/** Options of {@link runCniBridge} and {@link runNetavark}. */
export interface BaselineOptions {
  /** Filled with the other series of the run when given. */
  extras?: AttachExtras;
  /** Progress lines; default stderr. */
  log?: (line: string) => void;
}

/** Creates an empty {@link AttachExtras} to pass in {@link BaselineOptions}. */
export function newExtras(): AttachExtras {
  return { netnsMs: [], delMs: [], execFloorMs: [] };
}

// ---------------------------------------------------------------------------------------------
// Plumbing

interface Done {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCmd(cmd: string, args: string[], input?: string): Promise<Done> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => {
      // EPIPE when the command does not read its input; its exit code says what happened.
    });
    child.stdin.end(input ?? '');
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function mustRun(cmd: string, args: string[], input?: string): Promise<Done> {
  const r = await runCmd(cmd, args, input);
  if (r.code !== 0) {
    throw new Error(
      `Command '${cmd} ${args.join(' ')}' failed (code ${r.code}): ${r.stderr.trim()}`,
    );
  }
  return r;
}

/**
 * Installs the baseline tools with apt-get when missing (the bench needs them, CI machines are
 * fresh). Says so on stderr.
 *
 * @throws when apt-get fails
 */
export async function ensureBaselineTools(): Promise<void> {
  const missing: string[] = [];
  if (!existsSync(path.join(CNI_PATH, 'bridge'))) missing.push('containernetworking-plugins');
  if (!existsSync(NETAVARK)) missing.push('netavark');
  // Both drive iptables (the bridge plugin for ipMasq, netavark as its firewall driver).
  if (!existsSync('/usr/sbin/iptables')) missing.push('iptables');
  if (missing.length === 0) return;
  process.stderr.write(`bench: installing ${missing.join(' ')} with apt-get\n`);
  const r = await runCmd('apt-get', ['install', '-y', '--no-install-recommends', ...missing]);
  if (r.code !== 0) {
    process.stderr.write('bench: apt-get install failed, running apt-get update first\n');
    await mustRun('apt-get', ['update']);
    await mustRun('apt-get', ['install', '-y', '--no-install-recommends', ...missing]);
  }
}

// The timer inside the host netns: one JSON request per line ({argv, env, input}), one JSON reply
// per line ({ms, code, stdout, stderr}). perf_counter around subprocess.run, as in the anchors.
const TIMER_PY = String.raw`
import json, os, subprocess, sys, time
for line in sys.stdin:
    req = json.loads(line)
    env = dict(os.environ); env.update(req.get("env") or {})
    t0 = time.perf_counter()
    p = subprocess.run(req["argv"], input=(req.get("input") or "").encode(), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ms = (time.perf_counter() - t0) * 1000
    sys.stdout.write(json.dumps({"ms": ms, "code": p.returncode,
        "stdout": p.stdout.decode(errors="replace"), "stderr": p.stderr.decode(errors="replace")}) + "\n")
    sys.stdout.flush()
`;

interface Timed extends Done {
  ms: number;
}

/** A timer process inside a netns; requests are answered in order. */
class NsTimer {
  #child: ChildProcess;
  #lines: Interface;
  #waiting: ((line: string) => void)[] = [];
  #exited: Promise<void>;

  constructor(nsName: string, marker: string) {
    // The marker (the run's temp dir) lets the sweeper find this process if the bench dies.
    this.#child = spawn('ip', ['netns', 'exec', nsName, PYTHON, '-u', '-c', TIMER_PY, marker], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#exited = new Promise((r) => this.#child.once('exit', () => r()));
    this.#lines = createInterface({ input: this.#child.stdout! });
    this.#lines.on('line', (line) => this.#waiting.shift()?.(line));
    this.#child.once('exit', () => {
      for (const w of this.#waiting.splice(0))
        w('{"ms":0,"code":-1,"stdout":"","stderr":"timer died"}');
    });
  }

  run(argv: string[], env: Record<string, string> = {}, input = ''): Promise<Timed> {
    return new Promise((resolve) => {
      this.#waiting.push((line) => resolve(JSON.parse(line) as Timed));
      this.#child.stdin!.write(`${JSON.stringify({ argv, env, input })}\n`);
    });
  }

  async close(): Promise<void> {
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}

/**
 * One tool's playground: temp dir, host netns, container netns. Owns their removal.
 */
class Playground {
  readonly hostNs: string;
  readonly containers: string[] = [];
  readonly dir: string;
  timer: NsTimer | undefined;

  private constructor(
    readonly prefix: string,
    dir: string,
  ) {
    this.dir = dir;
    this.hostNs = `${prefix}-host`;
  }

  static async create(tool: string): Promise<Playground> {
    const prefix = `cnmb-${process.pid}-${tool}`;
    const dir = await mkdtemp(path.join('/tmp', `${prefix}-`));
    return new Playground(prefix, dir);
  }

  async setUp(n: number, extras: AttachExtras): Promise<void> {
    await mustRun('ip', ['netns', 'add', this.hostNs]);
    await mustRun('ip', ['-n', this.hostNs, 'link', 'set', 'lo', 'up']);
    for (let i = 0; i < n; i++) {
      const name = `${this.prefix}-c${i}`;
      const t0 = performance.now();
      await mustRun('ip', ['netns', 'add', name]);
      extras.netnsMs.push(performance.now() - t0);
      this.containers.push(name);
    }
    // Started after the container netns exist: its private mount namespace (from ip netns exec)
    // is a copy taken now, so it sees their bind mounts without relying on propagation.
    this.timer = new NsTimer(this.hostNs, this.dir);
    for (let i = 0; i < Math.min(n, 20); i++) {
      extras.execFloorMs.push((await this.timer.run(['/bin/true'])).ms);
    }
  }

  /** Proves a container's address is usable: a TCP connect to the gateway is refused, not lost. */
  async assertReaches(container: string, gateway: string): Promise<void> {
    const code = `
import socket
try:
    socket.create_connection(("${gateway}", 9), timeout=2); print("open")
except ConnectionRefusedError:
    print("refused")
except Exception as e:
    print("fail " + type(e).__name__)
`;
    const r = await runCmd('nsenter', [`--net=/run/netns/${container}`, '--', PYTHON, '-c', code]);
    if (!/^(refused|open)/.test(r.stdout)) {
      throw new Error(
        `Container '${container}' cannot reach gateway ${gateway}: ${r.stdout}${r.stderr}`,
      );
    }
  }

  /** Removes everything; keeps going past failures. */
  async tearDown(): Promise<void> {
    const errors: unknown[] = [];
    await this.timer?.close().catch((e: unknown) => errors.push(e));
    // One ip process for all container netns: 1000 separate execs would take seconds.
    const batch = [...this.containers, this.hostNs].map((n) => `netns del ${n}`).join('\n');
    const r = await runCmd('ip', ['-force', '-batch', '-'], `${batch}\n`);
    if (r.code !== 0) errors.push(new Error(`Failed to delete netns: ${r.stderr.trim()}`));
    await rm(this.dir, { recursive: true, force: true }).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, `Failed to tear down '${this.prefix}'`);
  }
}

function containerIp(subnetPrefix: string, i: number): string {
  const k = i + 2; // .0 is the network, .1 the gateway
  return `${subnetPrefix}.${(k >> 8) & 255}.${k & 255}`;
}

async function withPlayground(
  tool: string,
  n: number,
  opts: BaselineOptions,
  body: (pg: Playground, extras: AttachExtras) => Promise<number[]>,
): Promise<number[]> {
  if (n < 1 || n > 60_000) throw new RangeError(`Container count '${n}' is outside 1–60000`);
  const extras = opts.extras ?? newExtras();
  const pg = await Playground.create(tool);
  let result: number[] | undefined;
  let failure: { err: unknown } | undefined;
  try {
    await pg.setUp(n, extras);
    result = await body(pg, extras);
  } catch (err) {
    failure = { err };
  }
  try {
    await pg.tearDown();
  } catch (err) {
    if (failure === undefined) throw err;
    throw new AggregateError([failure.err, err], `Baseline '${tool}' and its teardown failed`);
  }
  if (failure !== undefined) throw failure.err;
  return result ?? [];
}

// ---------------------------------------------------------------------------------------------
// CNI bridge

/**
 * Times n ADDs of the CNI reference `bridge` plugin with `host-local` IPAM (10.220.0.0/16,
 * isGateway, ipMasq, hairpinMode), one container netns each, then DELs them all and removes
 * every namespace and file it made.
 *
 * @returns ms per ADD, in container order
 * @throws when a plugin exec fails or a container cannot reach its gateway
 */
export async function runCniBridge(n: number, opts: BaselineOptions = {}): Promise<number[]> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  return withPlayground('cni', n, opts, async (pg, extras) => {
    const ipamDir = path.join(pg.dir, 'ipam');
    await mkdir(ipamDir);
    const config = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'cnmbench',
      type: 'bridge',
      bridge: 'cnmbbr0',
      isGateway: true,
      ipMasq: true,
      hairpinMode: true,
      // dataDir keeps host-local's leases in our temp dir instead of /var/lib/cni.
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.220.0.0/16' }]], dataDir: ipamDir },
    });
    const timer = pg.timer!;
    const env = (cmd: string, i: number): Record<string, string> => ({
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: `cnmb${i}`,
      CNI_NETNS: `/run/netns/${pg.containers[i]}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH,
    });
    const addMs: number[] = [];
    const added: number[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const r = await timer.run([path.join(CNI_PATH, 'bridge')], env('ADD', i), config);
        if (r.code !== 0) throw new Error(`CNI ADD ${i} failed: ${r.stdout}${r.stderr}`);
        added.push(i);
        addMs.push(r.ms);
      }
      await pg.assertReaches(pg.containers[0]!, '10.220.0.1');
      await pg.assertReaches(pg.containers[n - 1]!, '10.220.0.1');
      log(`cni: ${n} ADDs done`);
    } finally {
      // DEL what was added, also after a failure, so the plugin's own state is exercised; the
      // netns deletion would remove the kernel side anyway.
      for (const i of added) {
        const r = await timer.run([path.join(CNI_PATH, 'bridge')], env('DEL', i), config);
        if (r.code === 0) extras.delMs.push(r.ms);
        else log(`cni: DEL ${i} failed: ${r.stdout}${r.stderr}`);
      }
    }
    return addMs;
  });
}

// ---------------------------------------------------------------------------------------------
// netavark

/**
 * Times n `netavark setup` execs (bridge driver, 10.230.0.0/16, static IPs assigned here because
 * netavark does no IPAM, no DNS, iptables firewall driver), one container netns each, then tears
 * them all down and removes every namespace and file it made.
 *
 * @returns ms per setup, in container order
 * @throws when an exec fails or a container cannot reach its gateway
 */
export async function runNetavark(n: number, opts: BaselineOptions = {}): Promise<number[]> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  return withPlayground('nv', n, opts, async (pg, extras) => {
    const configDir = path.join(pg.dir, 'netavark');
    await mkdir(configDir);
    const networkId = randomBytes(32).toString('hex');
    const input = (i: number): string =>
      JSON.stringify({
        container_id: `${i.toString(16).padStart(8, '0')}${networkId.slice(8)}`,
        container_name: `cnmbc${i}`,
        networks: {
          cnmbench: { static_ips: [containerIp('10.230', i)], interface_name: 'eth0' },
        },
        network_info: {
          cnmbench: {
            dns_enabled: false,
            driver: 'bridge',
            id: networkId,
            internal: false,
            ipv6_enabled: false,
            name: 'cnmbench',
            network_interface: 'cnmbnv0',
            subnets: [{ subnet: '10.230.0.0/16', gateway: '10.230.0.1' }],
          },
        },
        port_mappings: [],
      });
    const argv = (cmd: string, i: number): string[] => [
      NETAVARK,
      '--config',
      configDir,
      cmd,
      `/run/netns/${pg.containers[i]}`,
    ];
    // 1.4.0 would pick firewalld if it ran; pin the driver so the figure is always iptables.
    const env = { NETAVARK_FW: 'iptables' };
    const setupMs: number[] = [];
    const added: number[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const r = await pg.timer!.run(argv('setup', i), env, input(i));
        if (r.code !== 0) throw new Error(`netavark setup ${i} failed: ${r.stdout}${r.stderr}`);
        added.push(i);
        setupMs.push(r.ms);
      }
      await pg.assertReaches(pg.containers[0]!, '10.230.0.1');
      await pg.assertReaches(pg.containers[n - 1]!, '10.230.0.1');
      log(`netavark: ${n} setups done`);
    } finally {
      for (const i of added) {
        const r = await pg.timer!.run(argv('teardown', i), env, input(i));
        if (r.code === 0) extras.delMs.push(r.ms);
        else log(`netavark: teardown ${i} failed: ${r.stdout}${r.stderr}`);
      }
    }
    return setupMs;
  });
}

// ---------------------------------------------------------------------------------------------
// Report

/** One measured series set: a tool at one size. */
export interface BaselineResult {
  tool: 'cni-bridge' | 'netavark';
  n: number;
  addMs: number[];
  extras: AttachExtras;
}

/** Runs the chosen baselines at each size, one after the other (never in parallel: 2 cores). */
export async function runBaselines(
  sizes: readonly number[],
  tools: readonly BaselineResult['tool'][] = ['cni-bridge', 'netavark'],
): Promise<BaselineResult[]> {
  await ensureBaselineTools();
  const results: BaselineResult[] = [];
  for (const n of sizes) {
    for (const tool of tools) {
      const extras = newExtras();
      const addMs =
        tool === 'cni-bridge'
          ? await runCniBridge(n, { extras })
          : await runNetavark(n, { extras });
      results.push({ tool, n, addMs, extras });
    }
  }
  return results;
}

/**
 * Formats results as a table of p50/p99 per series (ms). `ratioTo` names a tool whose ADD p50
 * at the same n is the denominator of the last column.
 */
export function formatBaselines(results: readonly BaselineResult[], ratioTo?: string): string {
  const p = (xs: number[]): [string, string] => {
    if (xs.length === 0) return ['-', '-'];
    const s = summarize(xs);
    return [formatMs(s.p50), formatMs(s.p99)];
  };
  const rows = results.map((r) => {
    const ref = results.find((x) => x.tool === ratioTo && x.n === r.n);
    const ratio =
      ref !== undefined
        ? `${(summarize(r.addMs).p50 / summarize(ref.addMs).p50).toFixed(2)}x`
        : '-';
    return [
      r.tool,
      String(r.n),
      ...p(r.addMs),
      ...p(r.extras.delMs),
      ...p(r.extras.netnsMs),
      p(r.extras.execFloorMs)[0],
      ratio,
    ];
  });
  return formatTable(
    [
      'tool',
      'n',
      'add p50',
      'add p99',
      'del p50',
      'del p99',
      'netns p50',
      'netns p99',
      'exec floor',
      'add/ref',
    ],
    rows,
  );
}

function parseArgs(argv: string[]): { sizes: number[]; tools: BaselineResult['tool'][] } {
  let sizes = [1, 100, 1000];
  let tools: BaselineResult['tool'][] = ['cni-bridge', 'netavark'];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1] ?? '';
    if (a === '--sizes') {
      sizes = v.split(',').map(Number);
      if (sizes.some((s) => !Number.isInteger(s) || s < 1)) throw new Error(`Bad --sizes '${v}'`);
      i++;
    } else if (a === '--tools') {
      tools = v.split(',').map((t) => (t === 'cni' ? 'cni-bridge' : t)) as BaselineResult['tool'][];
      if (tools.some((t) => t !== 'cni-bridge' && t !== 'netavark'))
        throw new Error(`Bad --tools '${v}'`);
      i++;
    } else {
      throw new Error(`Unknown argument '${a}'`);
    }
  }
  return { sizes, tools };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: needs root (creates network namespaces)\n');
    process.exit(2);
  }
  const { sizes, tools } = parseArgs(process.argv.slice(2));
  const results = await runBaselines(sizes, tools);
  process.stdout.write(
    `attach baselines (ms; add = one plugin exec per container, first includes bridge setup)\n`,
  );
  process.stdout.write(`${formatBaselines(results, 'cni-bridge')}\n`);
}
