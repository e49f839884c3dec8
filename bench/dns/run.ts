/**
 * bench/dns: the embedded DNS answering a local name, against aardvark-dns (Podman's) serving
 * the same names, in the same run. Two namespaces made here (`cnmb-<pid>-s` with both servers,
 * `cnmb-<pid>-c` with the clients) joined by a veth; everything is removed afterwards, also on
 * failure. Per server and per load (1 and 100 queries in flight), repeated `--reps` times with
 * the servers alternating: dnsperf's queries/s and average latency, p50/p99 from a Node client
 * that times every query, and each server's CPU time per query (from /proc). Then the
 * rate-limited mode: dnsperf at half of cnm's peak rate (`-Q`, 100 in flight) against each
 * server, p50/p99 taken from dnsperf's own per-query latencies (`-v`). Prints ratios
 * (cnm / aardvark) and the CPU the load generator used; never an absolute gate.
 *
 * CPU placement: on a machine with at least 2 CPUs, both servers run on CPU 0 and the load
 * generators on CPU 1 (`taskset`), so the figures compare servers rather than scheduler luck;
 * `--no-pin` lets everything share every CPU. dnsperf 2.10 with 1 query in flight loses a
 * wake-up between its send and receive threads now and then and stalls for up to 100 ms; with
 * both of its threads on one CPU the hand-off is ordered and the figure is the server's.
 *
 * Needs root, dnsperf and aardvark-dns (Debian: `apt-get install dnsperf aardvark-dns`).
 * Usage: `tsx bench/dns/run.ts [--secs 5] [--reps 3] [--no-pin] [--name c25|pool] [--only cnm]
 * [--cpu-prof DIR] [--cnm-root DIR] [--dgram]`; `--dgram` serves cnm's UDP with `node:dgram` instead of
 * the addon's native listeners (the daemon's default when the addon is built).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = resolve(fileURLToPath(import.meta.url), '..');
const AARDVARK = '/usr/lib/podman/aardvark-dns';
function numArg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const SECS = numArg('--secs', 5);
const REPS = Math.max(1, numArg('--reps', 3));
const profArg = process.argv.indexOf('--cpu-prof');
/** `--cpu-prof <dir>`: cnm's server writes a V8 CPU profile there (exit on SIGTERM). */
const PROF_DIR = profArg >= 0 ? resolve(process.argv[profArg + 1] ?? '.') : undefined;
/** `--only cnm`: skip aardvark-dns (for profiling). */
const ONLY_CNM = process.argv.includes('--only') && process.argv.includes('cnm');
/** Servers on CPU 0, load generators on CPU 1 (see the header). */
const PIN = !process.argv.includes('--no-pin') && cpus().length >= 2;
const SERVER_CPU = PIN ? ['taskset', '-c', '0'] : [];
const CLIENT_CPU = PIN ? ['taskset', '-c', '1'] : [];
const NS_S = `cnmb-${process.pid}-s`;
const NS_C = `cnmb-${process.pid}-c`;
const CNM_IP = '10.99.0.1';
const AARD_IP = '10.99.0.2';
const CLIENT_IP = '10.99.0.10';
const nameArg = process.argv.indexOf('--name');
/** `--name pool`: the round-robin name (3 holders) instead of a name with one holder. */
const NAME = nameArg >= 0 ? (process.argv[nameArg + 1] ?? 'c25') : 'c25';
const rootArg = process.argv.indexOf('--cnm-root');
/** `--cnm-root DIR`: run the cnm server of another checkout (built), e.g. to measure a baseline. */
const CNM_ROOT = rootArg >= 0 ? resolve(process.argv[rootArg + 1] ?? '.') : resolve(HERE, '../..');
/** `--dgram`: cnm's UDP listeners in JS (`node:dgram`), not the addon's native fast path. */
const DGRAM = process.argv.includes('--dgram');
const CLK_TCK = 100;

function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`Command "${cmd} ${args.join(' ')}" failed: ${r.stderr}`);
  return r.stdout;
}

const started: ChildProcess[] = [];
const extraPids: number[] = [];
let dir = '';
/** Server processes whose CPU time is read from /proc, by server address. */
const serverPids = new Map<string, number[]>();

async function cleanup(): Promise<void> {
  // SIGTERM first: the cnm server exits cleanly then (and writes its CPU profile, if asked).
  for (const c of started) if (c.exitCode === null) c.kill('SIGTERM');
  for (let i = 0; i < 30 && started.some((c) => c.exitCode === null); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const c of started) if (c.exitCode === null) c.kill('SIGKILL');
  for (const pid of extraPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const ns of [NS_S, NS_C]) spawnSync('ip', ['netns', 'del', ns]);
  if (dir) rmSync(dir, { recursive: true, force: true });
}

function setup(): void {
  for (const ns of [NS_S, NS_C]) sh('ip', ['netns', 'add', ns]);
  sh('ip', ['-n', NS_S, 'link', 'add', 'b0', 'type', 'veth', 'peer', 'name', 'b1', 'netns', NS_C]);
  sh(
    'ip',
    ['-n', NS_S, '-batch', '-'],
    [
      `addr add ${CNM_IP}/24 dev b0`,
      `addr add ${AARD_IP}/24 dev b0`,
      'addr add fd99::1/64 dev b0 nodad',
      'link set b0 up',
      'link set lo up',
    ].join('\n') + '\n',
  );
  sh(
    'ip',
    ['-n', NS_C, '-batch', '-'],
    [
      `addr add ${CLIENT_IP}/24 dev b1`,
      'addr add fd99::10/64 dev b1 nodad',
      'link set b1 up',
      'link set lo up',
    ].join('\n') + '\n',
  );
}

interface Entry {
  id: string;
  ipv4: string;
  ipv6: string;
  names: string[];
}

function entries(): Entry[] {
  const out: Entry[] = [
    { id: 'f'.repeat(64), ipv4: CLIENT_IP, ipv6: 'fd99::10', names: ['client'] },
  ];
  for (let i = 0; i < 50; i++) {
    out.push({
      id: i.toString(16).padStart(2, '0').repeat(32),
      ipv4: `10.99.0.${100 + i}`,
      ipv6: `fd99::${(100 + i).toString(16)}`,
      // c0..c2 also share the alias `pool`: a round-robin name (`--name pool`).
      names: [`c${i}`, `alias${i}`, ...(i < 3 ? ['pool'] : [])],
    });
  }
  return out;
}

function waitReady(child: ChildProcess, what: string): Promise<void> {
  return new Promise((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new Error(`${what} did not start`)), 15_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('READY')) {
        clearTimeout(timer);
        res();
      }
    });
    child.once('exit', (code) => rej(new Error(`${what} exited with ${code}`)));
  });
}

async function startCnm(list: Entry[]): Promise<void> {
  const spec = { gateway: CNM_IP, subnet: '10.99.0.0/24', entries: list, dgram: DGRAM };
  // `ip netns exec` and `taskset` both exec: the child's pid is the server's.
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      NS_S,
      ...SERVER_CPU,
      process.execPath,
      ...(PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROF_DIR] : []),
      '--import',
      'tsx',
      join(CNM_ROOT, 'bench/dns/cnm-server.ts'),
      JSON.stringify(spec),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  started.push(child);
  await waitReady(child, 'cnm DNS server');
  if (child.pid !== undefined) serverPids.set(CNM_IP, [child.pid]);
}

function nsPids(ns: string): number[] {
  return sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number);
}

async function startAardvark(list: Entry[]): Promise<void> {
  const cfg = join(dir, 'aardvark');
  sh('mkdir', ['-p', cfg]);
  const lines = [
    AARD_IP,
    ...list.map((e) => `${e.id.slice(0, 64)} ${e.ipv4} ${e.ipv6} ${e.names.join(',')}`),
  ];
  writeFileSync(join(cfg, 'benchnet'), lines.join('\n') + '\n');
  const before = new Set(nsPids(NS_S));
  // `run` forks and the parent exits: the server is the child, found by PID in our netns.
  sh('ip', ['netns', 'exec', NS_S, ...SERVER_CPU, AARDVARK, '--config', cfg, '-p', '53', 'run']);
  for (let i = 0; i < 50; i++) {
    const fresh = nsPids(NS_S).filter((p) => !before.has(p));
    if (fresh.length > 0) {
      extraPids.push(...fresh);
      serverPids.set(AARD_IP, fresh);
      const probe = spawnSync(
        'ip',
        ['netns', 'exec', NS_C, 'dnsperf', '-s', AARD_IP, '-d', queryFile(), '-l', '1', '-q', '1'],
        { encoding: 'utf8' },
      );
      if (/Queries completed:\s+[1-9]/.test(probe.stdout)) return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('aardvark-dns did not start answering');
}

/** CPU time (ms) of a server's processes, all threads: user and system. */
function serverCpuMs(server: string): { user: number; sys: number } {
  let user = 0;
  let sys = 0;
  for (const pid of serverPids.get(server) ?? []) {
    try {
      // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      user += Number(f[11]);
      sys += Number(f[12]);
    } catch {
      // Gone: counts as nothing.
    }
  }
  return { user: (user * 1000) / CLK_TCK, sys: (sys * 1000) / CLK_TCK };
}

interface DnsperfRun {
  qps: number;
  avgMs: number;
  completed: number;
  lost: number;
  /** CPU (user + system) dnsperf used, in seconds, and the wall time it ran. */
  genCpuS: number;
  /** Server CPU per answered query (µs). */
  serverUsPerQuery: number;
  /** The user-space part of it (the rest is the kernel: syscalls, the UDP/IP/veth path). */
  serverUserUsPerQuery: number;
  /** Per-query latencies in µs (only with `verbose`). */
  latUs: number[];
}

/** dnsperf's input: it re-reads the file in a loop, so stdin will not do. */
function queryFile(): string {
  const file = join(dir, 'queries.txt');
  writeFileSync(file, `${NAME} A\n`);
  return file;
}

function dnsperf(
  server: string,
  inflight: number,
  opts: { rate?: number; verbose?: boolean } = {},
): DnsperfRun {
  const args = [
    'dnsperf',
    '-s',
    server,
    '-d',
    queryFile(),
    '-l',
    String(SECS),
    '-q',
    String(inflight),
    '-c',
    String(Math.min(inflight, 4)),
    ...(opts.rate !== undefined ? ['-Q', String(opts.rate)] : []),
    ...(opts.verbose ? ['-v'] : []),
  ];
  const cpu0 = serverCpuMs(server);
  // `times` prints the shell's and then its children's user and system time.
  const out = sh('ip', [
    'netns',
    'exec',
    NS_C,
    ...CLIENT_CPU,
    'sh',
    '-c',
    `${args.map((a) => `'${a}'`).join(' ')} && times`,
  ]);
  const cpu1 = serverCpuMs(server);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const completed = num(/Queries completed:\s+(\d+)/);
  const times = [...out.matchAll(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/g)].at(-1);
  const genCpuS = times
    ? Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4])
    : NaN;
  const latUs: number[] = [];
  if (opts.verbose) {
    for (const m of out.matchAll(/^> NOERROR \S+ \S+ (\d+)\.(\d{6})$/gm)) {
      latUs.push(Number(m[1]) * 1e6 + Number(m[2]));
    }
  }
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    completed,
    lost: num(/Queries lost:\s+(\d+)/),
    genCpuS,
    serverUsPerQuery:
      completed > 0 ? ((cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) * 1000) / completed : NaN,
    serverUserUsPerQuery: completed > 0 ? ((cpu1.user - cpu0.user) * 1000) / completed : NaN,
    latUs,
  };
}

function latencyClient(
  server: string,
  inflight: number,
): { qps: number; p50us: number; p99us: number } {
  return JSON.parse(
    sh('ip', [
      'netns',
      'exec',
      NS_C,
      ...CLIENT_CPU,
      process.execPath,
      '--import',
      'tsx',
      join(HERE, 'latency-client.ts'),
      server,
      NAME,
      String(inflight),
      String(Math.max(2, Math.floor(SECS / 2))),
    ]).trim(),
  ) as { qps: number; p50us: number; p99us: number };
}

interface Sample {
  dp: DnsperfRun;
  client: { qps: number; p50us: number; p99us: number };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}
/** `median [min–max]` of a figure over the repetitions. */
function spread(xs: number[], d = 0): string {
  const f = (n: number) => n.toFixed(d);
  return xs.length === 1
    ? f(xs[0]!)
    : `${f(median(xs))} [${f(Math.min(...xs))}–${f(Math.max(...xs))}]`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/dns needs root');
  for (const tool of ['/usr/bin/dnsperf', AARDVARK]) {
    if (!existsSync(tool))
      throw new Error(`Missing "${tool}": apt-get install dnsperf aardvark-dns`);
  }
  dir = mkdtempSync(join(tmpdir(), 'cnmb-dns-'));
  setup();
  const list = entries();
  await startCnm(list);
  if (!ONLY_CNM) await startAardvark(list);
  const servers: [string, string][] = ONLY_CNM
    ? [['cnm', CNM_IP]]
    : [
        ['cnm', CNM_IP],
        ['aardvark-dns', AARD_IP],
      ];
  const fmt = (n: number, d = 0) => n.toFixed(d);
  const load0 = loadavg();
  console.log(
    `bench/dns: local name "${NAME}" (${
      NAME === 'pool' ? 'round robin over 3 holders' : 'one holder'
    }; 51 containers on the network), dnsperf ${SECS} s per run, ` +
      `${REPS} repetition(s) with the servers alternating; ` +
      (PIN
        ? 'servers pinned to CPU 0, dnsperf and the timed client to CPU 1'
        : 'servers and load generators sharing every CPU') +
      `; load average at the start ${load0.map((l) => l.toFixed(2)).join(' / ')}\n`,
  );
  console.log(
    'dnsperf settings: `dnsperf -s SERVER -d FILE -l ' +
      SECS +
      ' -q Q -c min(Q,4)`, FILE holding one line `' +
      NAME +
      ' A`.\n',
  );
  console.log(
    '| in flight | server | dnsperf q/s | dnsperf avg ms | lost | server CPU µs/query | of it user µs | client q/s | client p50 µs | client p99 µs |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  const ratios: string[] = [];
  let peak = NaN;
  for (const inflight of [1, 100]) {
    const samples = new Map<string, Sample[]>(servers.map(([n]) => [n, []]));
    for (let rep = 0; rep < REPS; rep++) {
      const order = rep % 2 === 0 ? servers : [...servers].reverse();
      for (const [n, ip] of order) {
        samples.get(n)!.push({ dp: dnsperf(ip, inflight), client: latencyClient(ip, inflight) });
      }
    }
    for (const [n] of servers) {
      const s = samples.get(n)!;
      console.log(
        `| ${inflight} | ${n} | ${spread(s.map((x) => x.dp.qps))} | ${spread(
          s.map((x) => x.dp.avgMs),
          3,
        )} | ${s.reduce((a, x) => a + x.dp.lost, 0)} | ${spread(
          s.map((x) => x.dp.serverUsPerQuery),
          1,
        )} | ${spread(
          s.map((x) => x.dp.serverUserUsPerQuery),
          1,
        )} | ${spread(s.map((x) => x.client.qps))} | ${spread(s.map((x) => x.client.p50us))} | ${spread(
          s.map((x) => x.client.p99us),
        )} |`,
      );
    }
    const c = samples.get('cnm')!;
    if (inflight === 100) peak = median(c.map((x) => x.dp.qps));
    const a = samples.get('aardvark-dns');
    if (!a) continue;
    // Per repetition: each ratio compares two runs made back to back.
    const per = (f: (x: Sample) => number) => c.map((x, i) => f(x) / f(a[i]!));
    ratios.push(
      `in flight ${inflight}: q/s ×${spread(
        per((x) => x.dp.qps),
        2,
      )} (dnsperf), ×${spread(
        per((x) => x.client.qps),
        2,
      )} (client); server CPU per query ×${spread(
        per((x) => x.dp.serverUsPerQuery),
        2,
      )}; client p50 ×${spread(
        per((x) => x.client.p50us),
        2,
      )}, p99 ×${spread(
        per((x) => x.client.p99us),
        2,
      )}`,
    );
  }
  if (ratios.length > 0) {
    console.log(
      '\nRatios cnm / aardvark-dns, median [min–max] over the repetitions ' +
        '(q/s: higher is better; CPU and latency: lower is better):',
    );
    for (const r of ratios) console.log(`  ${r}`);
  }

  // Rate-limited: half of cnm's peak, the same rate for both servers.
  const rate = Math.round(peak / 2);
  console.log(
    `\nAt half of cnm's peak: \`dnsperf -Q ${rate} -q 100 -c 4 -l ${SECS} -v\` ` +
      `(peak: median dnsperf q/s of cnm at 100 in flight above); p50/p99 from dnsperf's ` +
      'per-query latencies.\n',
  );
  console.log(
    '| server | achieved q/s | lost | p50 µs | p99 µs | p99.9 µs | max µs | server CPU µs/query | dnsperf CPU (cores) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const [n, ip] of servers) {
    const r = dnsperf(ip, 100, { rate, verbose: true });
    const lat = r.latUs.sort((x, y) => x - y);
    console.log(
      `| ${n} | ${fmt(r.qps)} | ${r.lost} | ${fmt(pct(lat, 0.5))} | ${fmt(pct(lat, 0.99))} | ${fmt(
        pct(lat, 0.999),
      )} | ${fmt(lat.at(-1) ?? NaN)} | ${fmt(r.serverUsPerQuery, 1)} | ${fmt(r.genCpuS / SECS, 2)} |`,
    );
  }
  const load1 = loadavg();
  console.log(
    `\nLoad average at the end ${load1.map((l) => l.toFixed(2)).join(' / ')}. ` +
      (PIN
        ? 'The load generator had CPU 1 to itself only as far as other work on the machine allowed.'
        : 'The load generator shared both CPUs with the servers.'),
  );
}

process.on('SIGINT', () => {
  void cleanup().then(() => process.exit(130));
});
main()
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
