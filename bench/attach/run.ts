/**
 * bench/attach: time from "create a container with one endpoint on a bridge network" to
 * "address usable", for cnm and, in the same run, for the CNI reference bridge plugin
 * (+host-local) and netavark invoked directly. Prints ratios, cnmd's RSS at the largest size,
 * and writes docs/benchmarks.md.
 *
 * cnm sample: one `POST /cnm/containers/create` over the unix socket (sandbox netns, address,
 * veth, routes, record in SQLite) — the call returns when the address is usable. That includes
 * creating the netns, which the baselines report separately (`netns` column), so the headline
 * ratio against the plugins' ADD alone favours them.
 *
 * Sizes are interleaved: cnm at n, then the baselines at n, then the next size, so that a
 * ratio compares figures taken minutes apart at most (this machine's load drifts). Each size's
 * row gives the 1-minute load average before cnm and after the baselines.
 *
 * Usage: `npm run bench` or `tsx bench/attach/run.ts [--sizes 1,100,1000] [--no-baselines]
 * [--no-write | --section FILE]` (`--section`: write only this part's section, for bench/run.ts)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  api,
  createWorld,
  destroyWorld,
  startDaemon,
  tcpConnect,
} from '../../test/integration/harness.js';
import { formatMs, formatTable, summarize } from '../stats.js';
import { formatBaselines, runBaselines, type BaselineResult } from './baselines.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const sizes = (arg('--sizes') ?? '1,100,1000').split(',').map(Number);
const withBaselines = !process.argv.includes('--no-baselines');

interface CnmResult {
  n: number;
  ms: number[];
  rssMb: number;
}

async function runCnm(n: number): Promise<CnmResult> {
  const w = await createWorld({ name: `bench-attach-${n}`, noServers: true });
  try {
    const d = await startDaemon(w, ['--log-level', 'warn']);
    const c = api(w);
    const net = await c.post('/networks/create', {
      Name: 'bench',
      IPAM: { Config: [{ Subnet: '10.44.0.0/16' }] },
    });
    if (net.status !== 201) throw new Error(`network create: ${net.text}`);
    const ms: number[] = [];
    let first = '';
    let last = '';
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await c.post('/cnm/containers/create', {
        Name: `b${i}`,
        Cmd: ['true'],
        Networks: [{ Name: 'bench' }],
      });
      ms.push(performance.now() - t0);
      if (r.status !== 201) throw new Error(`container create ${i}: ${r.text}`);
      const key = r.body.NetworkSettings.SandboxKey as string;
      if (i === 0) first = key;
      last = key;
    }
    // Prove the addresses are usable: the first and last sandboxes open a TCP connection to the
    // network's gateway, where cnmd's embedded DNS listens on port 53.
    for (const ns of [first, last]) {
      if (!(await tcpConnect(ns, '10.44.0.1', 53, 2000))) {
        throw new Error(`Container in ${ns} cannot reach its gateway: its address is not usable`);
      }
    }
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${d.pid}/status`, 'utf8'));
    const rssMb = rss ? Number(rss[1]) / 1024 : NaN;
    await d.stop();
    return { n, ms, rssMb };
  } finally {
    await destroyWorld(w);
  }
}

/** One size's figures: cnm, then the baselines right after it. */
interface SizeRun {
  cnm: CnmResult;
  base: BaselineResult[];
  /** 1-minute load average before cnm and after the baselines. */
  load: [number, number];
}

async function main(): Promise<void> {
  const runs: SizeRun[] = [];
  for (const n of sizes) {
    const before = loadavg()[0]!;
    process.stderr.write(`cnm: ${n} containers (load ${before.toFixed(1)})...\n`);
    const cnm = await runCnm(n);
    const base = withBaselines ? await runBaselines([n]) : [];
    runs.push({ cnm, base, load: [before, loadavg()[0]!] });
  }
  const base = runs.flatMap((r) => r.base);

  const rows = runs.map(({ cnm: r, base: b, load }) => {
    const s = summarize(r.ms);
    const cni = b.find((x) => x.tool === 'cni-bridge');
    const nv = b.find((x) => x.tool === 'netavark');
    const fastest = Math.min(
      cni ? summarize(cni.addMs).p50 : Infinity,
      nv ? summarize(nv.addMs).p50 : Infinity,
    );
    const tail = r.n >= 100 ? summarize(r.ms.slice(-100)).p50 : NaN;
    const head = r.n >= 100 ? summarize(r.ms.slice(0, 100)).p50 : NaN;
    return [
      String(r.n),
      formatMs(s.p50),
      formatMs(s.p99),
      r.n >= 100 ? `${(tail / head).toFixed(2)}x` : '-',
      Number.isFinite(fastest) ? `${(s.p50 / fastest).toFixed(3)}x` : '-',
      Number.isFinite(r.rssMb) ? r.rssMb.toFixed(0) : '-',
      `${load[0].toFixed(1)} → ${load[1].toFixed(1)}`,
    ];
  });
  const cnmTable = formatTable(
    [
      'n',
      'cnm p50 ms',
      'cnm p99 ms',
      'last100/first100 p50',
      'cnm p50 / fastest baseline ADD p50',
      'cnmd RSS MB',
      'load 1m',
    ],
    rows,
  );
  const baseTable = base.length > 0 ? formatBaselines(base) : '(baselines skipped)';
  const section = `## bench/attach — one container, one bridge endpoint, until the address is usable

cnm: \`POST /cnm/containers/create\` over the unix socket (includes creating the sandbox netns).
Baselines: one plugin exec (CNI bridge + host-local ADD, \`netavark setup\`), not including the
netns creation (its own column). Each size: cnm, then the baselines right after it; the ratio is
cnm p50 / fastest baseline ADD p50 of that size; load 1m: load average before cnm → after the
baselines.

\`\`\`
${cnmTable}
\`\`\`

\`\`\`
${baseTable}
\`\`\`

Reproduce: \`npm run bench\` (or \`npx tsx bench/attach/run.ts --sizes 1,100,1000\`).
`;
  const report = `# Benchmarks

Generated by \`bench/attach/run.ts\` on ${new Date().toISOString()}.
Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Linux ${release()}, Node ${process.version}.
Figures drift by up to 1.5× between runs on shared machines: compare the ratios, which are
taken within one run.

${section}`;
  process.stdout.write(report);
  // The suite (bench/run.ts) composes docs/benchmarks.md from each part's section.
  const sectionOut = arg('--section');
  if (sectionOut !== undefined) writeFileSync(sectionOut, section);
  else if (!process.argv.includes('--no-write'))
    writeFileSync(new URL('../../docs/benchmarks.md', import.meta.url), report);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
