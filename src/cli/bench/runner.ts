/**
 * Runs `cnm bench`: builds cnm's path and the kernel ceiling for each mode, runs every client
 * test against both (alternating which goes first, repetition by repetition, so drift on a
 * shared machine hits both alike), and tears everything down, also when interrupted.
 */
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import type { ApiClient } from '../client.js';
import { CliError } from '../client.js';
import { Ceiling } from './ceiling.js';
import { CnmPaths, ModeSkipped } from './cnm-paths.js';
import { OverlayHosts } from './overlay-hosts.js';
import {
  METRICS,
  type BenchReport,
  type BenchSettings,
  type MachineInfo,
  type Mode,
  type ModeResult,
} from './model.js';
import { parseCrr, parseIperf3Tcp, parseIperf3Udp, parseSockperf } from './parse.js';
import { pause, type ClientRun, type MeasuredPath } from './path.js';
import { ensureTools } from './proc.js';
import { SampleSet, pairedRatioRanges, pairedRatios, ratios } from './stats.js';
import { CLIENT_TESTS, clientArgv, type ClientTest } from './tools.js';

/** What the runner reports while it works. */
export interface Progress {
  /** A step started: `done` of `total` measurements finished so far. */
  step(done: number, total: number, what: string): void;
  /** A one-off message (tool installation, a skipped mode, a failed sample). */
  note(line: string): void;
}

/** Options of {@link runBench}. */
export interface RunBenchOptions {
  client: ApiClient;
  settings: BenchSettings;
  /** Aborting it (Ctrl-C) stops the measurements; cleanup still runs. */
  signal: AbortSignal;
  progress: Progress;
  /** The command line, for the report. */
  command: string;
}

/** The result plus whatever the cleanup could not remove. */
export interface RunBenchResult {
  report: BenchReport | undefined;
  cleanupErrors: string[];
}

interface Built {
  mode: Mode;
  cnm: MeasuredPath;
  ceiling: MeasuredPath;
  cnmSamples: SampleSet;
  ceilingSamples: SampleSet;
  errors: string[];
}

/**
 * Records one client run's figures in `samples`.
 * @throws ToolOutputError when the output holds no figure
 */
export function recordSample(test: ClientTest, out: ClientRun, samples: SampleSet): void {
  const text = out.stdout;
  switch (test) {
    case 'rr': {
      const l = parseSockperf(out.stdout + out.stderr);
      samples.add('rrP50Us', l.p50Us);
      samples.add('rrP99Us', l.p99Us);
      return;
    }
    case 'crr':
      samples.add('crrPerSec', parseCrr(text).perSec);
      return;
    case 'tcp':
      samples.add('tcpGbps', parseIperf3Tcp(text));
      return;
    case 'tcp4':
      samples.add('tcp4Gbps', parseIperf3Tcp(text));
      return;
    case 'udp':
      samples.add('udpPps', parseIperf3Udp(text));
      return;
  }
}

async function measure(
  path: MeasuredPath,
  test: ClientTest,
  settings: BenchSettings,
  samples: SampleSet,
  signal: AbortSignal,
): Promise<void> {
  const argv = clientArgv(test, path.target, {
    secs: settings.durationSec,
    udpRate: settings.udpRate,
  });
  const timeoutMs = settings.durationSec * 1000 + 20_000;
  let out = await path.runClient(argv, signal, timeoutMs);
  // iperf3's server takes a moment to be ready for the next test after one ends.
  for (let i = 0; i < 3 && /server is busy|unable to connect/.test(out.stdout); i++) {
    await pause(500, signal);
    out = await path.runClient(argv, signal, timeoutMs);
  }
  if (out.code === null) throw new Error(`${argv[0]} did not finish within ${timeoutMs} ms`);
  recordSample(test, out, samples);
}

function machineInfo(tools: Record<string, string>): MachineInfo {
  const c = cpus();
  return {
    hostname: hostname(),
    kernel: release(),
    cpus: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
    tools,
  };
}

/**
 * Runs the benchmark. The report is undefined when the run was interrupted.
 *
 * @throws CliError when not root or the tools cannot be installed; the signal's reason when
 *   aborted before anything was built
 */
export async function runBench(opts: RunBenchOptions): Promise<RunBenchResult> {
  const { client, settings, signal, progress } = opts;
  if (process.getuid?.() !== 0) {
    throw new CliError(
      "cnm bench must run as root on the daemon's host: it builds the kernel-ceiling namespaces with ip and nft",
    );
  }
  const startedAt = new Date().toISOString();
  let tools: Record<string, string>;
  try {
    tools = await ensureTools((l) => progress.note(l));
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  // Fails early, with the CLI's usual message, when the daemon is not there.
  (await client.open({ method: 'GET', path: '/_ping' })).resume();

  const cnm = new CnmPaths(client, `cnmbench-${process.pid}`, {
    published: settings.modes.includes('bridge-published'),
  });
  const ceiling = new Ceiling(`cnmb-${process.pid}`);
  // Overlay runs on the bench's own two-host cluster, not on the user's daemon.
  const overlay = new OverlayHosts(`cnmb-${process.pid}`, `cnmbench-${process.pid}`);
  const results: ModeResult[] = [];
  const built: Built[] = [];
  let report: BenchReport | undefined;
  let failure: { err: unknown } | undefined;
  try {
    for (const mode of settings.modes) {
      signal.throwIfAborted();
      progress.note(`building ${mode}: cnm and kernel ceiling`);
      try {
        const cnmPath =
          mode === 'overlay' ? await overlay.build(signal) : await cnm.build(mode, signal);
        const ceilingPath = await ceiling.build(mode, signal);
        built.push({
          mode,
          cnm: cnmPath,
          ceiling: ceilingPath,
          cnmSamples: new SampleSet(),
          ceilingSamples: new SampleSet(),
          errors: [],
        });
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const reason =
          err instanceof ModeSkipped ? err.message : `failed to build: ${(err as Error).message}`;
        progress.note(`skipping ${mode}: ${reason}`);
        results.push({ mode, status: 'skipped', reason });
      }
    }

    const total = settings.repeat * built.length * CLIENT_TESTS.length * 2;
    let done = 0;
    for (let rep = 0; rep < settings.repeat; rep++) {
      for (const b of built) {
        for (const test of CLIENT_TESTS) {
          const order =
            rep % 2 === 0
              ? ([
                  ['cnm', b.cnm, b.cnmSamples],
                  ['ceiling', b.ceiling, b.ceilingSamples],
                ] as const)
              : ([
                  ['ceiling', b.ceiling, b.ceilingSamples],
                  ['cnm', b.cnm, b.cnmSamples],
                ] as const);
          for (const [side, path, samples] of order) {
            progress.step(
              done,
              total,
              `rep ${rep + 1}/${settings.repeat} ${b.mode} ${side} ${test}`,
            );
            samples.rep = rep;
            try {
              await measure(path, test, settings, samples, signal);
            } catch (err) {
              if (signal.aborted) throw signal.reason;
              const line = `${b.mode} ${side} ${test} (rep ${rep + 1}): ${(err as Error).message}`;
              b.errors.push(line);
              progress.note(line);
            }
            done += 1;
          }
        }
      }
    }
    progress.step(total, total, 'done');

    for (const b of built) {
      const r: ModeResult = {
        mode: b.mode,
        status: 'measured',
        cnmPath: b.cnm.description,
        ceilingPath: b.ceiling.description,
        cnm: b.cnmSamples.figures(),
        ceiling: b.ceilingSamples.figures(),
      };
      r.vsCeiling = pairedRatios(b.cnmSamples, b.ceilingSamples);
      const ranges = pairedRatioRanges(b.cnmSamples, b.ceilingSamples);
      if (Object.keys(ranges).length > 0) r.vsCeilingRange = ranges;
      if (b.errors.length > 0) r.errors = b.errors;
      results.push(r);
    }
    const host = results.find((r) => r.mode === 'host' && r.status === 'measured');
    for (const r of results) {
      if (host?.cnm !== undefined && r.cnm !== undefined) r.vsHost = ratios(r.cnm, host.cnm);
    }
    results.sort((a, b) => settings.modes.indexOf(a.mode) - settings.modes.indexOf(b.mode));
    report = {
      schema: 'cnm-bench/1',
      startedAt,
      finishedAt: new Date().toISOString(),
      command: opts.command,
      settings,
      machine: machineInfo(tools),
      metrics: [...METRICS],
      modes: results,
    };
  } catch (err) {
    // An interruption ends with a cleanup and no report; anything else is rethrown after it.
    if (!signal.aborted) failure = { err };
  }
  progress.note('removing bench containers, networks and namespaces');
  const cleanupErrors = await cleanup(cnm, ceiling, overlay);
  if (failure !== undefined) {
    for (const e of cleanupErrors) progress.note(e);
    throw failure.err;
  }
  return { report, cleanupErrors };
}

async function cleanup(cnm: CnmPaths, ceiling: Ceiling, overlay: OverlayHosts): Promise<string[]> {
  const errors: string[] = [];
  try {
    errors.push(...(await overlay.destroy()));
  } catch (err) {
    errors.push(`Failed to remove the overlay mode's cluster: ${(err as Error).message}`);
  }
  try {
    errors.push(...(await cnm.destroy()));
  } catch (err) {
    errors.push(`Failed to remove the cnm bench objects: ${(err as Error).message}`);
  }
  try {
    errors.push(...(await ceiling.destroy()));
  } catch (err) {
    errors.push(`Failed to remove the ceiling namespaces: ${(err as Error).message}`);
  }
  return errors;
}
