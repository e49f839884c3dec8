/**
 * The benchmark suite: runs every part that exists and composes docs/benchmarks.md from their
 * sections, with the machine and the exact commands.
 *
 * Parts, each also runnable alone:
 * - `bench/attach/run.ts`: container attach time against the CNI bridge plugin and netavark;
 * - `bench/dns/run.ts`: the embedded DNS against aardvark-dns;
 * - `bench/policy/run.ts`: policy enforcement at 0 / 1,000 / 10,000 policies;
 * - `bench/overlay/run.ts`: the multi-host overlay on simulated hosts with a real etcd (data
 *   plane against hand-built VXLAN, time until reachable across hosts, 10 hosts' RSS and etcd
 *   write rate);
 * - data plane: `cnm bench` (every mode against its kernel ceiling) against a cnmd started in
 *   a test world (its own namespaces, removed afterwards); its JSON, Markdown and SVG charts go
 *   to docs/benchmarks/dataplane/.
 *
 * A part gets `--section FILE` and may write its Markdown section there; otherwise its stdout
 * is the section. A part that is missing is left out; one that fails gets a section saying so,
 * and the suite exits 1 after writing the rest.
 *
 * Usage: `npm run bench` or `tsx bench/run.ts [--only attach,dns,policy,overlay,dataplane]
 * [--duration S] [--repeat N] [--no-write]` (root; `npm run build` first, as `npm run bench` does)
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWorld, destroyWorld, startDaemon } from '../test/integration/harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOC = path.join(ROOT, 'docs/benchmarks.md');
const DATAPLANE_DIR = path.join(ROOT, 'docs/benchmarks/dataplane');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const ONLY = (arg('--only') ?? 'attach,dns,policy,overlay,dataplane').split(',');
const DURATION = arg('--duration') ?? '3';
const REPEAT = arg('--repeat') ?? '3';
const MODES = 'host,bridge,bridge-published,macvlan,overlay';

interface Part {
  name: string;
  command: string;
  section: string;
  ok: boolean;
}

/** Runs a command with inherited stderr; resolves with its stdout and exit code. */
function runPart(argv: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd ?? '', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      process.stdout.write(d);
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout }));
  });
}

async function scriptPart(name: string, title: string, tmp: string): Promise<Part | undefined> {
  const entry = `bench/${name}/run.ts`;
  if (!existsSync(path.join(ROOT, entry))) {
    process.stderr.write(`bench: ${entry} does not exist, skipped\n`);
    return undefined;
  }
  const sectionFile = path.join(tmp, `${name}.md`);
  const command = `npx tsx ${entry}`;
  process.stderr.write(`bench: ${command}\n`);
  const r = await runPart([process.execPath, '--import', 'tsx', entry, '--section', sectionFile]);
  if (r.code !== 0) {
    return { name, command, ok: false, section: `## ${title}\n\nFailed (exit ${r.code}).\n` };
  }
  const written = await readFile(sectionFile, 'utf8').catch(() => undefined);
  const section =
    written ?? `## ${title}\n\n${r.stdout.trim()}\n\nReproduce: \`${command}\` (as root).\n`;
  return { name, command, ok: true, section };
}

/** Demotes Markdown headings one level and points the charts at their folder. */
function embedReport(md: string, relDir: string): string {
  return md
    .replace(/^(#+) /gm, '#$1 ')
    .replace(/\]\(([A-Za-z0-9]+\.svg)\)/g, (_, f: string) => `](${relDir}/${f})`);
}

async function dataplanePart(): Promise<Part> {
  const args = ['--modes', MODES, '--duration', DURATION, '--repeat', REPEAT];
  const command = `cnm bench ${args.join(' ')} --out docs/benchmarks/dataplane`;
  process.stderr.write(`bench: ${command} (against a cnmd in a test world)\n`);
  const w = await createWorld({ name: 'bench-dataplane', noServers: true });
  try {
    await startDaemon(w, ['--log-level', 'warn']);
    await mkdir(DATAPLANE_DIR, { recursive: true });
    const r = await runPart([
      process.execPath,
      path.join(ROOT, 'dist/main/cli.js'),
      '-H',
      `unix://${w.socketPath}`,
      'bench',
      ...args,
      '--out',
      DATAPLANE_DIR,
    ]);
    if (r.code !== 0) {
      return {
        name: 'dataplane',
        command,
        ok: false,
        section: `## Data plane (cnm bench)\n\nFailed (exit ${r.code}).\n`,
      };
    }
    const md = await readFile(path.join(DATAPLANE_DIR, 'report.md'), 'utf8');
    return {
      name: 'dataplane',
      command,
      ok: true,
      section: `${embedReport(md, 'benchmarks/dataplane')}\nReproduce: \`sudo ${command}\` against a running cnmd, or \`npm run bench -- --only dataplane\`. Raw figures: [report.json](benchmarks/dataplane/report.json).\n`,
    };
  } finally {
    await destroyWorld(w);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('npm run bench needs root (namespaces, nftables)');
  const tmp = await mkdtemp(path.join(tmpdir(), 'cnmb-suite-'));
  const parts: Part[] = [];
  try {
    const scripts: [string, string][] = [
      ['attach', 'bench/attach'],
      ['dns', 'bench/dns — embedded DNS against aardvark-dns'],
      ['policy', 'bench/policy — enforcement cost at 0 / 1,000 / 10,000 policies'],
      ['overlay', 'bench/overlay — multi-host overlay (simulated hosts, real etcd)'],
    ];
    for (const [name, title] of scripts) {
      if (!ONLY.includes(name)) continue;
      try {
        const p = await scriptPart(name, title, tmp);
        if (p !== undefined) parts.push(p);
      } catch (err) {
        parts.push({
          name,
          command: `npx tsx bench/${name}/run.ts`,
          ok: false,
          section: `## ${title}\n\nFailed: ${(err as Error).message}\n`,
        });
      }
    }
    if (ONLY.includes('dataplane')) {
      try {
        parts.push(await dataplanePart());
      } catch (err) {
        parts.push({
          name: 'dataplane',
          command: 'cnm bench',
          ok: false,
          section: `## Data plane (cnm bench)\n\nFailed: ${(err as Error).message}\n`,
        });
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const c = cpus();
  const doc = [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` (\`bench/run.ts\`) on ${new Date().toISOString()}.`,
    '',
    `Machine: ${c.length} × ${c[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
      `Linux ${release()}, Node ${process.version}, load average at the end ` +
      `${loadavg()
        .map((x) => x.toFixed(2))
        .join(' / ')}.`,
    'Figures drift by up to 1.5× between runs on shared machines: compare the ratios, which are',
    'taken within one run.',
    '',
    'Commands (as root, after `npm run build`):',
    '',
    ...parts.map((p) => `- ${p.name}: \`${p.command}\``),
    '',
    ...parts.map((p) => p.section.trimEnd() + '\n'),
  ].join('\n');
  if (!process.argv.includes('--no-write')) {
    await writeFile(DOC, doc);
    process.stderr.write(`bench: wrote ${path.relative(ROOT, DOC)}\n`);
  }
  if (parts.some((p) => !p.ok)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
