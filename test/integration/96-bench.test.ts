/**
 * `cnm bench` against a cnmd in a world: a short run (1 s, 1 repetition) of host, bridge and
 * bridge-published prints a complete JSON report with positive figures and leaves nothing
 * behind; SIGINT in the middle of a run removes every bench object and exits 130. Never
 * asserts a speed. Needs root, iperf3 and sockperf (scripts/setup.sh installs them).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import {
  REPO_ROOT,
  api,
  skipUnlessRoot,
  snapshotHost,
  startDaemon,
  withWorld,
  type World,
} from './harness.js';
import { assertSameHost, waitHostSettled } from './workload.js';

const CLI = path.join(REPO_ROOT, 'dist/main/cli.js');

interface BenchRun {
  pid: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cnm bench ARGS`; `interruptWhen` sends SIGINT once stderr matches it. */
function bench(w: World, args: string[], interruptWhen?: RegExp): Promise<BenchRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '-H', `unix://${w.socketPath}`, 'bench', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = child.pid;
    if (pid === undefined) {
      reject(new Error('Failed to start cnm bench'));
      return;
    }
    let stdout = '';
    let stderr = '';
    let sent = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (interruptWhen !== undefined && !sent && interruptWhen.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ pid, code, stdout, stderr });
    });
  });
}

/** What a bench run may leave: netns `cnmb-<pid>-*`, containers and networks `cnmbench-<pid>-*`. */
async function leftovers(w: World, pid: number): Promise<string[]> {
  const out = (await readdir('/run/netns')).filter((n) => n.startsWith(`cnmb-${pid}-`));
  const a = api(w);
  const ctrs = await a.get('/cnm/containers/json?all=1');
  for (const c of ctrs.body as { Names: string[] }[]) {
    if (c.Names.some((n) => n.includes(`cnmbench-${pid}`))) out.push(`container ${c.Names[0]}`);
  }
  const nets = await a.get('/networks');
  for (const n of nets.body as { Name: string }[]) {
    if (n.Name.startsWith(`cnmbench-${pid}`)) out.push(`network ${n.Name}`);
  }
  return out;
}

test(
  'cnm bench: a short run reports every figure and leaves nothing behind',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  (t) =>
    withWorld(t, async (w) => {
      await startDaemon(w, ['--log-level', 'warn']);
      await waitHostSettled(w);
      const before = await snapshotHost(w);

      const modes = ['host', 'bridge', 'bridge-published'];
      const r = await bench(w, [
        '--modes',
        modes.join(','),
        '--duration',
        '1',
        '--repeat',
        '1',
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /\[\s*\d+\/30\] rep 1\/1 host cnm rr/, 'progress on stderr');
      const report = JSON.parse(r.stdout) as {
        schema: string;
        settings: { modes: string[]; durationSec: number; repeat: number };
        machine: { cpus: number; kernel: string; tools: Record<string, string> };
        metrics: { key: string }[];
        modes: {
          mode: string;
          status: string;
          cnm: Record<string, { median: number; min: number; max: number; samples: number[] }>;
          ceiling: Record<string, { median: number; min: number; max: number }>;
          vsHost: Record<string, number>;
          vsCeiling: Record<string, number>;
          errors?: string[];
        }[];
      };
      assert.equal(report.schema, 'cnm-bench/1');
      assert.deepEqual(report.settings.modes, modes);
      assert.equal(report.settings.durationSec, 1);
      assert.ok(report.machine.cpus > 0 && report.machine.kernel !== '');
      assert.ok(report.machine.tools['iperf3'] && report.machine.tools['sockperf']);
      const keys = report.metrics.map((m) => m.key);
      assert.deepEqual(keys, ['rrP50Us', 'rrP99Us', 'tcpGbps', 'tcp4Gbps', 'crrPerSec', 'udpPps']);
      assert.deepEqual(
        report.modes.map((m) => [m.mode, m.status]),
        modes.map((m) => [m, 'measured']),
      );
      for (const m of report.modes) {
        assert.equal(m.errors, undefined, `${m.mode}: ${m.errors?.join('; ')}`);
        for (const k of keys) {
          for (const side of ['cnm', 'ceiling'] as const) {
            const f = m[side][k];
            assert.ok(f !== undefined, `${m.mode} ${side} ${k} missing`);
            for (const v of [f.median, f.min, f.max]) {
              assert.ok(Number.isFinite(v) && v > 0, `${m.mode} ${side} ${k} = ${v}`);
            }
          }
          assert.ok(m.vsHost[k]! > 0, `${m.mode} × host ${k}`);
          assert.ok(m.vsCeiling[k]! > 0, `${m.mode} cnm/ceiling ${k}`);
        }
      }
      assert.deepEqual(await leftovers(w, r.pid), []);
      assertSameHost(before, await snapshotHost(w), 'after cnm bench');

      // Ctrl-C once the measurements have started: everything built so far goes.
      const i = await bench(
        w,
        ['--modes', 'host,bridge', '--duration', '1', '--repeat', '1'],
        /\] rep 1\/1 host ceiling crr/,
      );
      assert.equal(i.code, 130, i.stderr);
      assert.match(
        i.stderr,
        /Interrupted: every bench container, network and namespace was removed/,
      );
      assert.equal(i.stdout, '');
      assert.deepEqual(await leftovers(w, i.pid), []);
      assertSameHost(before, await snapshotHost(w), 'after an interrupted cnm bench');
    }),
);
