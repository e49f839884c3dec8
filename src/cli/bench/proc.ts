/**
 * Host processes of `cnm bench`, client-side: `ip`/`nft` for the kernel ceiling's namespaces,
 * the ceiling's load generators under `nsenter --net`, and `apt-get` for missing tools. Every
 * process is tracked by PID and killed by PID, never by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/** A finished command. */
export interface ProcResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link runProc}. */
export interface RunOptions {
  input?: string;
  /** Kill (SIGKILL) after this long. Default 30 s. */
  timeoutMs?: number;
  /** Kill (SIGKILL) when aborted. */
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a command to completion and collects its output; rejects only when it cannot start or
 * was aborted. A timeout kills it and resolves with code null.
 *
 * @throws the signal's reason when `signal` aborts
 */
export async function runProc(argv: string[], opts: RunOptions = {}): Promise<ProcResult> {
  opts.signal?.throwIfAborted();
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('Cannot run an empty command');
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.on('error', () => {
    // EPIPE when the command exits without reading its input; its exit code tells the story.
  });
  child.stdin.end(opts.input ?? '');
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill('SIGKILL');
    }
  };
  const timer = setTimeout(kill, opts.timeoutMs ?? 30_000);
  opts.signal?.addEventListener('abort', kill, { once: true });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c) => resolve(c));
    });
    opts.signal?.throwIfAborted();
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', kill);
  }
}

/**
 * Runs a command and returns its stdout.
 * @throws Error with the command and its stderr when it exits non-zero or times out
 */
export async function mustRun(argv: string[], opts: RunOptions = {}): Promise<string> {
  const r = await runProc(argv, opts);
  if (r.code !== 0) {
    throw new Error(
      `Failed to run "${argv.join(' ')}" (${r.code === null ? 'timed out' : `exit ${r.code}`}): ${r.stderr.trim()}`,
    );
  }
  return r.stdout;
}

/** A long-running process started by {@link startDaemonProc}. */
export interface BackgroundProc {
  readonly pid: number;
  readonly argv: readonly string[];
  /** Its stderr so far (for diagnostics), at most 4 KiB. */
  stderr(): string;
  /** True once it has exited. */
  exited(): boolean;
  /** SIGKILL by PID and wait for the exit (at most 5 s). */
  kill(): Promise<void>;
}

/** Starts a long-running process (a server); stdout is discarded, stderr kept for diagnostics. */
export function startBackground(argv: string[]): BackgroundProc {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('Cannot run an empty command');
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid === undefined) throw new Error(`Failed to start "${argv.join(' ')}"`);
  const pid = child.pid;
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-4096);
  });
  let done = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      done = true;
      resolve();
    });
    child.once('error', () => {
      done = true;
      resolve();
    });
  });
  return {
    pid,
    argv,
    stderr: () => err,
    exited: () => done,
    kill: async () => {
      if (done) return;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Exited between the check and the kill.
      }
      await Promise.race([exit, new Promise((r) => setTimeout(r, 5000))]);
    },
  };
}

/** Debian packages of the load generators, by the binary they provide. */
const PACKAGES: Record<string, string> = {
  '/usr/bin/iperf3': 'iperf3',
  '/usr/bin/sockperf': 'sockperf',
  '/usr/bin/python3': 'python3',
};

/**
 * Installs the load generators from Debian when missing (`apt-get install`), saying so on
 * `log`; returns the versions found.
 *
 * @throws Error when apt-get fails (not Debian, not root, no mirror)
 */
export async function ensureTools(log: (line: string) => void): Promise<Record<string, string>> {
  const missing = Object.entries(PACKAGES)
    .filter(([bin]) => !existsSync(bin))
    .map(([, pkg]) => pkg);
  if (missing.length > 0) {
    log(`cnm bench: installing ${missing.join(' ')} from Debian (apt-get install)`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = await runProc(['apt-get', 'install', '-y', '-qq', ...missing], {
      env,
      timeoutMs: 300_000,
    });
    if (r.code !== 0) {
      await runProc(['apt-get', 'update', '-qq'], { env, timeoutMs: 300_000 });
      r = await runProc(['apt-get', 'install', '-y', '-qq', ...missing], {
        env,
        timeoutMs: 300_000,
      });
    }
    if (r.code !== 0) {
      throw new Error(`Failed to install ${missing.join(' ')} with apt-get: ${r.stderr.trim()}`);
    }
  }
  const versions: Record<string, string> = {};
  const iperf = await runProc(['iperf3', '--version']);
  versions['iperf3'] = /iperf (\S+)/.exec(iperf.stdout)?.[1] ?? 'unknown';
  const sp = await runProc(['sockperf', '--version']);
  versions['sockperf'] = /version (\S+)/.exec(sp.stdout + sp.stderr)?.[1] ?? 'unknown';
  const py = await runProc(['python3', '--version']);
  versions['python3'] = /Python (\S+)/.exec(py.stdout + py.stderr)?.[1] ?? 'unknown';
  return versions;
}
