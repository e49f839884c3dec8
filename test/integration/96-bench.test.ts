/**
 * `cnm bench` against a cnmd in a world: a short run (1 s, 1 repetition) of host, bridge and
 * bridge-published prints a complete JSON report with positive figures and leaves nothing
 * behind; SIGINT in the middle of a run removes every bench object and exits 130. The overlay
 * mode, which builds its own two-host cluster (two netns, etcd, two cnmd from dist/), gets the
 * same checks in a run of its own (it needs etcd: skipped without it). Never asserts a speed.
 * Needs root, iperf3 and sockperf (scripts/setup.sh installs them, and etcd-server).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
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

/** Processes whose command line names the bench's own cluster (`cnmb-<pid>-`): etcd, cnmd. */
async function benchProcs(pid: number): Promise<string[]> {
  const out: string[] = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(`cnmb-${pid}-`)) out.push(`${p}: ${cmd.replace(/\0/g, ' ').trim()}`);
  }
  return out;
}

test(
  'cnm bench --modes overlay: its own two-host cluster, a complete report, nothing left behind',
  {
    skip:
      skipUnlessRoot() ||
      (existsSync('/usr/bin/etcd') ? false : 'needs /usr/bin/etcd (etcd-server)'),
    timeout: 180_000,
  },
  (t) =>
    withWorld(t, async (w) => {
      await startDaemon(w, ['--log-level', 'warn']);
      await waitHostSettled(w);
      const before = await snapshotHost(w);
      const r = await bench(w, [
        '--modes',
        'overlay',
        '--duration',
        '1',
        '--repeat',
        '1',
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as {
        modes: {
          mode: string;
          status: string;
          reason?: string;
          cnmPath: string;
          ceilingPath: string;
          cnm: Record<string, { median: number }>;
          ceiling: Record<string, { median: number }>;
          vsCeiling: Record<string, number>;
          errors?: string[];
        }[];
      };
      const m = report.modes[0]!;
      assert.equal(m.status, 'measured', m.reason);
      assert.equal(m.errors, undefined, m.errors?.join('; '));
      assert.match(m.cnmPath, /two cnmd "hosts"/);
      assert.match(m.ceilingPath, /VXLAN/);
      for (const k of ['rrP50Us', 'rrP99Us', 'tcpGbps', 'tcp4Gbps', 'crrPerSec', 'udpPps']) {
        for (const side of ['cnm', 'ceiling'] as const) {
          const v = m[side][k]?.median;
          assert.ok(v !== undefined && Number.isFinite(v) && v > 0, `overlay ${side} ${k} = ${v}`);
        }
        assert.ok(m.vsCeiling[k]! > 0, `overlay cnm/ceiling ${k}`);
      }
      // Nothing of the bench's cluster is left: namespaces, temp dir, etcd and cnmd processes;
      // and the user's daemon was not used for this mode.
      assert.deepEqual(await leftovers(w, r.pid), []);
      const dirs = (await readdir('/tmp')).filter((d) => d.startsWith(`cnmb-${r.pid}-`));
      assert.deepEqual(dirs, []);
      assert.deepEqual(await benchProcs(r.pid), []);
      assertSameHost(before, await snapshotHost(w), 'after cnm bench --modes overlay');

      // Ctrl-C while measuring through the cluster: all of it goes, cnmd and etcd included.
      const i = await bench(
        w,
        ['--modes', 'overlay', '--duration', '1', '--repeat', '1'],
        /\] rep 1\/1 overlay (cnm|ceiling) crr/,
      );
      assert.equal(i.code, 130, i.stderr);
      assert.deepEqual(await leftovers(w, i.pid), []);
      assert.deepEqual(
        (await readdir('/tmp')).filter((d) => d.startsWith(`cnmb-${i.pid}-`)),
        [],
      );
      assert.deepEqual(await benchProcs(i.pid), []);
    }),
);
