import assert from 'node:assert/strict';
import { test } from 'node:test';
import { METRICS, type BenchReport, type Figure } from './model.js';
import {
  chartFile,
  formatFigure,
  formatValue,
  niceStep,
  renderMarkdown,
  renderSvg,
  renderTable,
  targetSummary,
} from './render.js';

function fig(...samples: number[]): Figure {
  const s = [...samples].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)] ?? 0, min: s[0] ?? 0, max: s.at(-1) ?? 0, samples };
}

const REPORT: BenchReport = {
  schema: 'cnm-bench/1',
  startedAt: '2026-11-28T03:00:00.000Z',
  finishedAt: '2026-11-28T03:05:00.000Z',
  command: 'cnm bench --modes host,bridge,overlay --duration 1 --repeat 3',
  settings: { modes: ['host', 'bridge', 'overlay'], durationSec: 1, repeat: 3, udpRate: '1G' },
  machine: {
    hostname: 'vm',
    kernel: '6.18.44',
    cpus: 2,
    cpuModel: 'cpu',
    memGiB: 24,
    node: 'v20.19.0',
    loadAvg: [1, 1, 1],
    tools: { iperf3: '3.12', sockperf: '3.7' },
  },
  metrics: [...METRICS],
  modes: [
    {
      mode: 'host',
      status: 'measured',
      cnmPath: 'host network',
      ceilingPath: 'loopback',
      cnm: { tcpGbps: fig(12, 13, 14), rrP50Us: fig(20, 21, 22) },
      ceiling: { tcpGbps: fig(13, 13.5, 14), rrP50Us: fig(19, 20, 21) },
      vsHost: { tcpGbps: 1, rrP50Us: 1 },
      vsCeiling: { tcpGbps: 13 / 13.5, rrP50Us: 20 / 21 },
      vsCeilingRange: { tcpGbps: { min: 0.9, max: 1.02, n: 3 } },
    },
    {
      mode: 'bridge',
      status: 'measured',
      cnmPath: 'bridge <net>',
      ceilingPath: 'veth + bridge',
      cnm: { tcpGbps: fig(9, 10, 11) },
      ceiling: { tcpGbps: fig(10, 10, 10) },
      vsHost: { tcpGbps: 10 / 13 },
      vsCeiling: { tcpGbps: 1 },
      errors: ['bridge cnm udp (rep 1): iperf3 failed: boom'],
    },
    { mode: 'overlay', status: 'skipped', reason: 'the daemon has no overlay driver' },
  ],
};

test('formatValue() keeps 3 significant digits and writes thousands as k', () => {
  assert.equal(formatValue(12420), '12.4k');
  assert.equal(formatValue(104_700), '105k');
  assert.equal(formatValue(9.654), '9.65');
  assert.equal(formatValue(123.4), '123');
  assert.equal(formatValue(NaN), '-');
});

test('formatFigure() shows [min–max] only with more than one repetition', () => {
  assert.equal(formatFigure(fig(1, 2, 3)), '2.00 [1.00–3.00]');
  assert.equal(formatFigure(fig(5)), '5.00');
  assert.equal(formatFigure(undefined), '-');
});

test('renderTable() lays out metric × mode with ratio and ceiling rows and notes', () => {
  const t = renderTable(REPORT);
  const lines = t.split('\n');
  assert.match(lines[0] ?? '', /^metric\s+host\s+bridge\s+overlay$/);
  const tput = lines.findIndex((l) => l.startsWith('TCP throughput, 1 stream'));
  assert.match(lines[tput] ?? '', /13\.0 \[12\.0–14\.0\]\s+10\.0 \[9\.00–11\.0\]\s+skipped$/);
  assert.match(lines[tput + 1] ?? '', /× host\s+1\.00\s+0\.77\s+skipped$/);
  assert.match(lines[tput + 2] ?? '', /kernel ceiling\s+13\.5/);
  assert.match(lines[tput + 3] ?? '', /cnm \/ ceiling\s+0\.96 \[0\.90–1\.02\]\s+1\.00\s+skipped$/);
  assert.match(t, /^cnm \/ ceiling ≥ 0\.95 in 3 of 3 figures\.$/m);
  assert.match(t, /overlay: skipped, the daemon has no overlay driver/);
  assert.match(t, /failed sample: bridge cnm udp \(rep 1\): iperf3 failed: boom/);
});

test('renderMarkdown() writes the machine, the command, the table and the chart links', () => {
  const md = renderMarkdown(REPORT, { charts: true });
  assert.match(md, /`cnm bench --modes host,bridge,overlay --duration 1 --repeat 3`/);
  assert.match(md, /2 × cpu, 24 GiB, Linux 6\.18\.44/);
  assert.match(md, /^\| metric \| host \| bridge \| overlay \|$/m);
  assert.match(md, /^\|---\|---:\|---:\|---:\|$/m);
  assert.match(md, /^\| bridge \| bridge <net> \| veth \+ bridge \|$/m);
  assert.match(md, /!\[TCP throughput, 1 stream\]\(tcpGbps\.svg\)/);
  assert.doesNotMatch(renderMarkdown(REPORT, { charts: false }), /\.svg/);
});

test('targetSummary() tells figures below the target within the spread from those beyond it', () => {
  const host = REPORT.modes[0]!;
  const bridge = REPORT.modes[1]!;
  const report: BenchReport = {
    ...REPORT,
    modes: [
      {
        ...host,
        vsCeiling: { ...host.vsCeiling, udpPps: 0.85 },
        vsCeilingRange: { udpPps: { min: 0.74, max: 1.02, n: 5 } },
      },
      {
        ...bridge,
        vsCeiling: { tcpGbps: 1, crrPerSec: 0.8, tcp4Gbps: 0.9 },
        vsCeilingRange: { crrPerSec: { min: 0.7, max: 0.94, n: 5 } },
      },
      REPORT.modes[2]!,
    ],
  };
  const lines = targetSummary(report);
  assert.equal(lines[0], 'cnm / ceiling ≥ 0.95 in 3 of 6 figures.');
  assert.match(
    lines[1] ?? '',
    /reaches 0\.95 .*94% confidence\): host UDP 64 B packets 0\.85 \[0\.74–1\.02\]\.$/,
  );
  // A range wholly under the target is "beyond"; a figure without a range (one repetition)
  // cannot be judged.
  assert.equal(
    lines[2],
    "Below 0.95 beyond the run's spread: bridge New TCP connections 0.80 [0.70–0.94].",
  );
  assert.equal(
    lines[3],
    'Below 0.95 in one repetition (no spread to judge them by): bridge TCP throughput, 4 streams 0.90.',
  );
  assert.match(
    renderMarkdown(report, { charts: false }),
    /## Against the target\n\ncnm \/ ceiling ≥ 0\.95 in 3 of 6 figures\.\n\nBelow, but/,
  );
  assert.deepEqual(targetSummary({ ...REPORT, modes: [REPORT.modes[2]!] }), []);
});

test('renderSvg() draws two bars with whiskers per measured mode and escapes text', () => {
  const def = METRICS.find((m) => m.key === 'tcpGbps');
  assert.ok(def);
  assert.equal(chartFile(def), 'tcpGbps.svg');
  const svg = renderSvg(REPORT, def);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  // 2 modes measured (overlay skipped) × 2 series, plus background and 2 legend swatches.
  assert.equal((svg.match(/<rect /g) ?? []).length, 4 + 3);
  assert.match(svg, /<title>bridge cnm: 10\.0 \[9\.00–11\.0\] Gbit\/s<\/title>/);
  assert.match(svg, /cnm\/ceiling 0\.96/);
  assert.doesNotMatch(svg, />overlay</);
  const latency = renderSvg(REPORT, METRICS[0]!);
  assert.match(latency, /lower is better/);
});

test('niceStep() picks 1, 2 or 5 times a power of ten', () => {
  assert.equal(niceStep(9.7, 5), 2);
  assert.equal(niceStep(104_000, 5), 50_000);
  assert.equal(niceStep(0, 5), 1);
});
