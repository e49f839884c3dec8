/**
 * Removes what crashed integration tests and benchmarks left behind.
 *
 * Every world the test harness builds is named `cnmt-<pid>-<n>` (netns `cnmt-<pid>-<n>-host`,
 * `-out`, temp dir `/tmp/cnmt-<pid>-<n>-XXXXXX`); benchmarks use `cnmb-<pid>-...` the same way.
 * The creator's PID in the name is what makes sweeping safe while other test processes run: by
 * default only leftovers of processes that no longer exist are removed. `--all` removes every
 * leftover (CI runs it before and after the suite, when nothing else can be running).
 *
 * Nothing outside those names is touched: processes are killed by PID, and only when they sit in
 * one of our network namespaces or name one of our directories on their command line.
 *
 * Usage: `tsx scripts/sweep.ts [--all] [--dry-run]`
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Directory holding the temp dirs of worlds and benchmarks. Fixed, so the sweeper can find them. */
export const SCRATCH_ROOT = '/tmp';

/** Where `ip netns add` puts its bind-mounted namespace files. */
export const NETNS_RUN_DIR = '/run/netns';

/** Name prefixes this project uses for netns and temp dirs: tests (`cnmt-`) and benchmarks (`cnmb-`). */
export const PREFIXES = ['cnmt-', 'cnmb-'] as const;

const OWNED_NAME = /^(cnm[tb])-(\d+)-/;

/** One line of /proc/self/mountinfo, reduced to what the cleanup needs. */
export interface MountEntry {
  /** Mount point, with the kernel's octal escapes (`\040` for a space) decoded. */
  mountPoint: string;
  /** Filesystem type, e.g. `nsfs` for a bind-mounted network namespace. */
  fsType: string;
}

/**
 * Lists the mounts of this process's mount namespace.
 *
 * Tests and cnmd share the root mount namespace (cnmd is started with `nsenter --net`, which
 * leaves mounts alone), so this view includes cnmd's netns bind mounts.
 */
export async function listMounts(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [left, right] = line.split(' - ');
    const fields = left?.split(' ') ?? [];
    const mountPoint = fields[4];
    if (mountPoint === undefined) continue;
    entries.push({ mountPoint: decodeMountPath(mountPoint), fsType: right?.split(' ')[0] ?? '' });
  }
  return entries;
}

function decodeMountPath(raw: string): string {
  return raw.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Lists mount points at or below `dir`, deepest first (the order they must be unmounted in).
 */
export async function mountsUnder(dir: string): Promise<string[]> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = (await listMounts())
    .map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(prefix));
  // A path may be mounted several times (stacked); unmount each layer once.
  return points.sort((a, b) => b.split('/').length - a.split('/').length || b.localeCompare(a));
}

/**
 * Lazily unmounts everything at or below `dir`, deepest first.
 *
 * `umount -l` because a namespace file may still be held open by a dying process; the lazy
 * detach is enough for `rm -rf` to succeed.
 *
 * @returns one error per mount point that could not be unmounted
 */
export async function unmountUnder(dir: string): Promise<Error[]> {
  const errors: Error[] = [];
  for (const point of await mountsUnder(dir)) {
    try {
      await execFileAsync('umount', ['-l', point]);
    } catch (err) {
      // EINVAL: already gone because a parent's lazy unmount took it along.
      if (!(await mountsUnder(point)).includes(point)) continue;
      errors.push(new Error(`Failed to unmount '${point}'`, { cause: err }));
    }
  }
  return errors;
}

/** Tells whether a process with this PID exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM means it exists but is not ours to signal; as root that does not happen.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Finds processes living in the network namespace bound at `nsPath`, by comparing the nsfs inode.
 */
export async function pidsInNetns(nsPath: string): Promise<number[]> {
  let ino: number;
  try {
    ino = (await stat(nsPath)).ino;
  } catch {
    return [];
  }
  const want = `net:[${ino}]`;
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      if ((await readlink(`/proc/${entry}/ns/net`)) === want) pids.push(pid);
    } catch {
      // The process exited while we looked, or is a kernel thread without a readable link.
    }
  }
  return pids;
}

/** Finds processes whose command line mentions `needle` (one of our temp dirs). */
export async function pidsMentioning(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) pids.push(pid);
    } catch {
      // Exited while we looked.
    }
  }
  return pids;
}

/** Options for {@link sweep}. */
export interface SweepOptions {
  /** Remove leftovers of live creators too. Only safe when no test or bench is running. */
  all?: boolean;
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
  /** Where progress lines go; defaults to stderr. */
  log?: (line: string) => void;
}

/** What {@link sweep} removed (or would remove, in a dry run). */
export interface SweepReport {
  netns: string[];
  dirs: string[];
  killed: number[];
  errors: Error[];
}

function isStale(name: string, all: boolean): boolean {
  const m = OWNED_NAME.exec(name);
  if (m === null) return false;
  return all || !isAlive(Number(m[2]));
}

/**
 * Removes leftover test and benchmark worlds: kills their processes, unmounts, deletes netns and
 * temp dirs. Keeps going past failures and reports them all.
 */
export async function sweep(opts: SweepOptions = {}): Promise<SweepReport> {
  const all = opts.all ?? false;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const report: SweepReport = { netns: [], dirs: [], killed: [], errors: [] };

  const netnsNames = (await readdir(NETNS_RUN_DIR).catch(() => [] as string[])).filter((n) =>
    isStale(n, all),
  );
  const dirs = (await readdir(SCRATCH_ROOT))
    .filter((n) => isStale(n, all))
    .map((n) => path.join(SCRATCH_ROOT, n));

  // Processes first: a live cnmd would recreate what we delete, and a server pins its netns.
  const victims = new Set<number>();
  for (const name of netnsNames) {
    for (const pid of await pidsInNetns(path.join(NETNS_RUN_DIR, name))) victims.add(pid);
  }
  for (const dir of dirs) {
    for (const pid of await pidsMentioning(dir)) victims.add(pid);
  }
  for (const pid of victims) {
    log(`sweep: kill ${pid}`);
    report.killed.push(pid);
    if (opts.dryRun) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') {
        report.errors.push(new Error(`Failed to kill process ${pid}`, { cause: err }));
      }
    }
  }
  if (!opts.dryRun && victims.size > 0) await waitGone([...victims], 5000);

  for (const dir of dirs) {
    log(`sweep: unmount under ${dir}`);
    if (!opts.dryRun) report.errors.push(...(await unmountUnder(dir)));
  }
  for (const name of netnsNames) {
    log(`sweep: ip netns del ${name}`);
    report.netns.push(name);
    if (opts.dryRun) continue;
    try {
      await execFileAsync('ip', ['netns', 'del', name]);
    } catch (err) {
      report.errors.push(new Error(`Failed to delete netns '${name}'`, { cause: err }));
    }
  }
  for (const dir of dirs) {
    log(`sweep: rm -rf ${dir}`);
    report.dirs.push(dir);
    if (opts.dryRun) continue;
    try {
      await rm(dir, { recursive: true, force: true });
    } catch (err) {
      report.errors.push(new Error(`Failed to remove '${dir}'`, { cause: err }));
    }
  }
  return report;
}

async function waitGone(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const report = await sweep({ all: args.includes('--all'), dryRun: args.includes('--dry-run') });
  process.stderr.write(
    `sweep: ${report.netns.length} netns, ${report.dirs.length} dirs, ` +
      `${report.killed.length} processes, ${report.errors.length} errors\n`,
  );
  for (const err of report.errors) {
    process.stderr.write(`sweep: ${err.message}: ${String((err.cause as Error)?.message)}\n`);
  }
  process.exitCode = report.errors.length > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
