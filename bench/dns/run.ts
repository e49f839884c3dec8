/**
 * bench/dns: the embedded DNS answering a local name, against aardvark-dns (Podman's) serving
 * the same names, in the same run. Two namespaces made here (`cnmb-<pid>-s` with both servers,
 * `cnmb-<pid>-c` with the clients) joined by a veth; everything is removed afterwards, also on
 * failure. Per server and per load (1 and 100 queries in flight): dnsperf's queries/s and
 * average latency, and p50/p99 from a Node client that times every query. Prints ratios
 * (cnm / aardvark); never an absolute gate.
 *
 * Needs root, dnsperf and aardvark-dns (Debian: `apt-get install dnsperf aardvark-dns`).
 * Usage: `tsx bench/dns/run.ts [--secs 5] [--only cnm] [--cpu-prof DIR]`
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = resolve(fileURLToPath(import.meta.url), '..');
const AARDVARK = '/usr/lib/podman/aardvark-dns';
const secsArg = process.argv.indexOf('--secs');
const SECS = secsArg >= 0 ? Number(process.argv[secsArg + 1]) : 5;
const profArg = process.argv.indexOf('--cpu-prof');
/** `--cpu-prof <dir>`: cnm's server writes a V8 CPU profile there (exit on SIGTERM). */
const PROF_DIR = profArg >= 0 ? resolve(process.argv[profArg + 1] ?? '.') : undefined;
/** `--only cnm`: skip aardvark-dns (for profiling). */
const ONLY_CNM = process.argv.includes('--only') && process.argv.includes('cnm');
const NS_S = `cnmb-${process.pid}-s`;
const NS_C = `cnmb-${process.pid}-c`;
const CNM_IP = '10.99.0.1';
const AARD_IP = '10.99.0.2';
const CLIENT_IP = '10.99.0.10';
const NAME = 'c25';

function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`Command "${cmd} ${args.join(' ')}" failed: ${r.stderr}`);
  return r.stdout;
}

const started: ChildProcess[] = [];
const extraPids: number[] = [];
let dir = '';

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
      names: [`c${i}`, `alias${i}`],
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
  const spec = { gateway: CNM_IP, subnet: '10.99.0.0/24', entries: list };
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      NS_S,
      process.execPath,
      ...(PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROF_DIR] : []),
      '--import',
      'tsx',
      join(HERE, 'cnm-server.ts'),
      JSON.stringify(spec),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  started.push(child);
  await waitReady(child, 'cnm DNS server');
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
  sh('ip', ['netns', 'exec', NS_S, AARDVARK, '--config', cfg, '-p', '53', 'run']);
  for (let i = 0; i < 50; i++) {
    const fresh = nsPids(NS_S).filter((p) => !before.has(p));
    if (fresh.length > 0) {
      extraPids.push(...fresh);
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

interface Result {
  dnsperfQps: number;
  dnsperfAvgMs: number;
  lost: number;
  qps: number;
  p50us: number;
  p99us: number;
}

/** dnsperf's input: it re-reads the file in a loop, so stdin will not do. */
function queryFile(): string {
  const file = join(dir, 'queries.txt');
  writeFileSync(file, `${NAME} A\n`);
  return file;
}

function measure(server: string, inflight: number): Result {
  const file = queryFile();
  const dp = sh('ip', [
    'netns',
    'exec',
    NS_C,
    'dnsperf',
    '-s',
    server,
    '-d',
    file,
    '-l',
    String(SECS),
    '-q',
    String(inflight),
    '-c',
    String(Math.min(inflight, 4)),
  ]);
  const num = (re: RegExp) => Number(re.exec(dp)?.[1] ?? NaN);
  const lat = JSON.parse(
    sh('ip', [
      'netns',
      'exec',
      NS_C,
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
  return {
    dnsperfQps: num(/Queries per second:\s+([\d.]+)/),
    dnsperfAvgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    lost: num(/Queries lost:\s+(\d+)/),
    ...lat,
  };
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
  const rows: string[] = [];
  const fmt = (n: number, d = 0) => n.toFixed(d);
  console.log(`bench/dns: local name "${NAME}" (51 names on the network), ${SECS} s per run\n`);
  console.log(
    '| in flight | server | dnsperf q/s | dnsperf avg ms | lost | client q/s | p50 µs | p99 µs |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const inflight of [1, 100]) {
    const cnm = measure(CNM_IP, inflight);
    if (ONLY_CNM) {
      console.log(JSON.stringify({ inflight, cnm }));
      continue;
    }
    const aard = measure(AARD_IP, inflight);
    for (const [n, r] of [
      ['cnm', cnm],
      ['aardvark-dns', aard],
    ] as const) {
      console.log(
        `| ${inflight} | ${n} | ${fmt(r.dnsperfQps)} | ${fmt(r.dnsperfAvgMs, 3)} | ${r.lost} | ${fmt(r.qps)} | ${fmt(r.p50us)} | ${fmt(r.p99us)} |`,
      );
    }
    rows.push(
      `in flight ${inflight}: q/s ×${fmt(cnm.dnsperfQps / aard.dnsperfQps, 2)} (dnsperf), ×${fmt(cnm.qps / aard.qps, 2)} (client); p50 ×${fmt(cnm.p50us / aard.p50us, 2)}, p99 ×${fmt(cnm.p99us / aard.p99us, 2)} (cnm / aardvark, latency: lower is better)`,
    );
  }
  console.log('\nRatios:');
  for (const r of rows) console.log(`  ${r}`);
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
