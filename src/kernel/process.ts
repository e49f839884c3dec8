/**
 * Container processes: started inside a sandbox's network namespace plus their own mount and
 * UTS namespaces, on the host's filesystem, with `/etc/resolv.conf`, `/etc/hosts` and
 * `/etc/hostname` bind-mounted from the container's own files.
 *
 * A tiny Perl shim (perl-base is Essential on Debian, so always present) is the process's
 * parent: it runs in its own session, survives a restart or SIGKILL of cnmd, reaps the process
 * and writes its exit status to a file, so cnmd learns exit codes even for processes it did
 * not see die. The chain is shim → fork → exec nsenter(net) → exec unshare(mount, uts) →
 * exec sh (binds, hostname) → exec the command: every step execs, so the PID cnmd reports is
 * the command's own (`nsenter -t PID -n` works).
 *
 * Starting a container necessarily spawns a process; this is the only spawn in cnmd and it is
 * not on the endpoint path.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';

/** What to start. */
export interface ContainerProcessSpec {
  /** Environment marker values: cnm's tests find stray container processes by them. */
  containerId: string;
  execRoot: string;
  cmd: string[];
  env: string[];
  cwd?: string;
  /** Sandbox netns file; absent for `--network host` (the daemon's namespace). */
  netns?: string;
  /** Own UTS namespace with this hostname; absent to share the daemon's. */
  hostname?: string;
  /** Files bind-mounted over targets inside the container's mount namespace. */
  binds: { source: string; target: string }[];
  logPath: string;
  exitPath: string;
}

/** A started process. */
export interface StartedProcess {
  pid: number;
  /** `/proc/PID/stat` start time (clock ticks since boot): tells a PID's reuse apart. */
  startTime: string;
  /** Resolves with the exit code when the shim ends while this cnmd is running. */
  exited: Promise<number | null>;
}

const SHIM = `
use strict;
use POSIX ();
open(my $report, '>&=', 3) or die "cnm shim: no report fd: $!\\n";
my $exitf = shift @ARGV;
my $waitready = shift @ARGV;
pipe(my $rd, my $wr) or die "cnm shim: pipe: $!\\n";
my $pid = fork();
die "cnm shim: fork: $!\\n" unless defined $pid;
if ($pid == 0) {
  close($report);
  close($rd);
  # fd 9 (no close-on-exec) is the ready pipe INNER writes to once the namespaces are final.
  if ($waitready) { POSIX::dup2(fileno($wr), 9) or POSIX::_exit(127); }
  close($wr);
  exec { $ARGV[0] } @ARGV;
  print STDERR "cnm: cannot run \\"$ARGV[0]\\": $!\\n";
  POSIX::_exit(127);
}
close($wr);
# A byte: the process is in its own namespaces; EOF: it died on the way. Either way, report.
my $ready;
sysread($rd, $ready, 1) if $waitready;
close($rd);
print $report "$pid\\n";
close($report);
$SIG{TERM} = 'IGNORE';
waitpid($pid, 0);
my $st = $?;
my $code = ($st & 127) ? 128 + ($st & 127) : ($st >> 8);
open(my $f, '>', "$exitf.tmp") or exit 1;
print $f "$code\\n";
close($f);
rename("$exitf.tmp", $exitf);
exit 0;
`;

// Runs inside the new mount and UTS namespaces: private view of /sys for this netns, the
// container's own files over /etc's, then the hostname, then the command. Just before the
// command it tells the shim (fd 9) that the namespaces are final: the PID is reported only then,
// so a caller that enters `nsenter -t PID` right after start never lands in the daemon's
// namespaces (the shim forks before nsenter/unshare have run).
const INNER = `
set -e
if [ "$CNM_REMOUNT_SYS" = 1 ]; then mount -t sysfs -o ro,nosuid,nodev,noexec cnm-sysfs /sys 2>/dev/null || true; fi
while [ "$1" != "--" ]; do mount --bind "$1" "$2"; shift 2; done
shift
if [ -n "$CNM_HOSTNAME" ]; then hostname "$CNM_HOSTNAME"; fi
unset CNM_REMOUNT_SYS CNM_HOSTNAME
printf 1 >&9
exec 9>&-
exec "$@"
`;

/** Reads the start time of a PID from /proc; undefined when the process is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces and parentheses: count fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

/** True when `pid` is alive and still the process that started at `startTime`. */
export function processAlive(pid: number, startTime: string): boolean {
  if (pid <= 0) return false;
  const st = processStartTime(pid);
  if (st === undefined || st !== startTime) return false;
  try {
    // A zombie still has /proc/PID: treat it as dead.
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

/**
 * Finds the processes cnm started for containers of the daemon with exec root `execRoot`, by
 * the environment markers every shim and container process carries: container id → PIDs.
 * A process whose environment cannot be read (gone, or a kernel thread) is skipped.
 */
export function listContainerProcesses(execRoot: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  const rootMark = `CNM_EXEC_ROOT=${execRoot}`;
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let env: string;
    try {
      env = readFileSync(`/proc/${e}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (!env.includes('CNM_CONTAINER_ID=')) continue;
    const vars = env.split('\0');
    if (!vars.includes(rootMark)) continue;
    const id = vars.find((v) => v.startsWith('CNM_CONTAINER_ID='))?.slice(17);
    if (!id) continue;
    const list = out.get(id) ?? [];
    list.push(Number(e));
    out.set(id, list);
  }
  return out;
}

/** Reads a shim exit file: the exit code, or undefined when it is not (yet) written. */
export function readExitFile(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts a container process and waits until its PID is known.
 * @throws Error when the shim cannot start or reports no PID
 */
export async function startContainerProcess(spec: ContainerProcessSpec): Promise<StartedProcess> {
  const argv: string[] = [];
  if (spec.netns !== undefined) argv.push('nsenter', `--net=${spec.netns}`, '--');
  const ownMounts =
    spec.netns !== undefined || spec.binds.length > 0 || spec.hostname !== undefined;
  if (ownMounts) {
    argv.push('unshare', '--mount', '--propagation', 'slave');
    if (spec.hostname !== undefined) argv.push('--uts');
    argv.push('--', '/bin/sh', '-c', INNER, 'cnm-init');
    for (const b of spec.binds) argv.push(b.source, b.target);
    argv.push('--');
  }
  argv.push(...spec.cmd);

  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    CNM_CONTAINER_ID: spec.containerId,
    CNM_EXEC_ROOT: spec.execRoot,
    CNM_REMOUNT_SYS: spec.netns !== undefined ? '1' : '0',
    CNM_HOSTNAME: spec.hostname ?? '',
  };
  if (spec.hostname) env.HOSTNAME = spec.hostname;
  for (const kv of spec.env) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }

  const logFd = openSync(spec.logPath, 'a');
  let child;
  try {
    child = spawn('perl', ['-e', SHIM, spec.exitPath, ownMounts ? '1' : '0', ...argv], {
      detached: true,
      stdio: ['ignore', logFd, logFd, 'pipe'],
      env,
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
    });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', () => resolve(readExitFile(spec.exitPath) ?? null));
    child.once('error', () => resolve(null));
  });
  const report = child.stdio[3] as NodeJS.ReadableStream;
  const pid = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () =>
        reject(new Error('Cannot start container process: the shim reported no PID within 10 s')),
      10_000,
    );
    report.setEncoding('utf8');
    report.on('data', (chunk: string) => {
      buf += chunk;
    });
    report.once('end', () => {
      clearTimeout(timer);
      const n = Number(buf.trim());
      if (Number.isInteger(n) && n > 0) resolve(n);
      else
        reject(
          new Error('Cannot start container process: the shim failed (see the container log)'),
        );
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error('Cannot start container process', { cause: err }));
    });
  });
  child.unref();
  const startTime = processStartTime(pid) ?? '';
  return { pid, startTime, exited };
}

/** Options for `execInContainer`. */
export interface ExecSpec {
  /** Target PID: its net, mount and UTS namespaces are entered. Absent: run in the daemon's. */
  pid?: number;
  cmd: string[];
  env: string[];
}

/** Runs a command inside a running container's namespaces, with piped output. */
export function execInContainer(spec: ExecSpec) {
  const argv =
    spec.pid !== undefined
      ? ['nsenter', '-t', String(spec.pid), '-n', '-m', '-u', '--', ...spec.cmd]
      : [...spec.cmd];
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  };
  for (const kv of spec.env) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
}
