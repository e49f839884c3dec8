/**
 * Renders a {@link BenchReport}: the terminal table (metric × mode, the shape of the seed's
 * tables), a Markdown report and one SVG bar chart per metric with min–max whiskers, written by
 * hand (no charting dependency). Pure: no I/O.
 */
import {
  METRICS,
  type BenchReport,
  type Figure,
  type MetricDef,
  type MetricKey,
  type ModeResult,
} from './model.js';
import { medianCoverage } from './stats.js';

/** The cnm / ceiling target. */
export const CEILING_TARGET = 0.95;

/**
 * A figure's value for a table: 3 significant digits, thousands as `k`.
 *
 * @example formatValue(12420) === '12.4k'; formatValue(9.654) === '9.65'
 */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 100_000) return `${(v / 1000).toFixed(0)}k`;
  if (a >= 10_000) return `${(v / 1000).toFixed(1)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** `median [min–max]`, or just the median for a single repetition. */
export function formatFigure(f: Figure | undefined): string {
  if (f === undefined) return '-';
  if (f.samples.length <= 1) return formatValue(f.median);
  return `${formatValue(f.median)} [${formatValue(f.min)}–${formatValue(f.max)}]`;
}

/** A ratio with two decimals, `-` when missing. */
export function formatRatio(r: number | undefined): string {
  return r === undefined || !Number.isFinite(r) ? '-' : r.toFixed(2);
}

/** cnm / ceiling with the per-repetition range when there is one: `0.97 [0.91–1.04]`. */
function formatVsCeiling(m: ModeResult, key: MetricKey): string {
  const r = m.vsCeiling?.[key];
  const range = m.vsCeilingRange?.[key];
  if (range === undefined || r === undefined) return formatRatio(r);
  return `${formatRatio(r)} [${formatRatio(range.min)}–${formatRatio(range.max)}]`;
}

/**
 * How the measured figures stand against the cnm / ceiling target: how many meet it, and for
 * each one below, whether its per-repetition range still reaches the target (this run cannot
 * tell it from the ceiling) or lies wholly under it (below beyond the run's spread); with one
 * repetition there is no range to tell.
 */
export function targetSummary(report: BenchReport): string[] {
  let total = 0;
  const within: string[] = [];
  const beyond: string[] = [];
  const single: string[] = [];
  let n = 0;
  for (const m of report.modes) {
    for (const def of METRICS) {
      const r = m.vsCeiling?.[def.key];
      if (r === undefined || !Number.isFinite(r)) continue;
      total += 1;
      if (r >= CEILING_TARGET) continue;
      const range = m.vsCeilingRange?.[def.key];
      const what = `${m.mode} ${def.label} ${formatVsCeiling(m, def.key)}`;
      if (range === undefined) single.push(what);
      else if (range.max >= CEILING_TARGET) {
        within.push(what);
        n = Math.max(n, range.n);
      } else beyond.push(what);
    }
  }
  if (total === 0) return [];
  const met = total - within.length - beyond.length - single.length;
  const out = [`cnm / ceiling ≥ ${CEILING_TARGET} in ${met} of ${total} figures.`];
  if (within.length > 0) {
    out.push(
      `Below, but the per-repetition range reaches ${CEILING_TARGET} (this run cannot tell these ` +
        `from the ceiling; with ${n} repetitions the range holds the true median ratio with ` +
        `${Math.round(medianCoverage(n) * 100)}% confidence): ${within.join('; ')}.`,
    );
  }
  if (beyond.length > 0) {
    out.push(`Below ${CEILING_TARGET} beyond the run's spread: ${beyond.join('; ')}.`);
  }
  if (single.length > 0) {
    out.push(
      `Below ${CEILING_TARGET} in one repetition (no spread to judge them by): ` +
        `${single.join('; ')}.`,
    );
  }
  return out;
}

interface Row {
  cells: string[];
  /** A rule under the row. */
  rule?: boolean;
}

/** The metric × mode grid shared by the terminal and Markdown renderings. */
function grid(report: BenchReport): { header: string[]; rows: Row[] } {
  const header = ['metric', ...report.modes.map((m) => m.mode)];
  const rows: Row[] = [];
  const cell = (m: ModeResult, f: (m: ModeResult) => string): string =>
    m.status === 'skipped' ? 'skipped' : f(m);
  for (const def of METRICS) {
    const better = def.higherIsBetter ? 'higher is better' : 'lower is better';
    rows.push({
      cells: [
        `${def.label} (${def.unit}, ${better})`,
        ...report.modes.map((m) => cell(m, (x) => formatFigure(x.cnm?.[def.key]))),
      ],
    });
    rows.push({
      cells: [
        '  × host',
        ...report.modes.map((m) => cell(m, (x) => formatRatio(x.vsHost?.[def.key]))),
      ],
    });
    rows.push({
      cells: [
        '  kernel ceiling',
        ...report.modes.map((m) => cell(m, (x) => formatFigure(x.ceiling?.[def.key]))),
      ],
    });
    rows.push({
      cells: [
        '  cnm / ceiling',
        ...report.modes.map((m) => cell(m, (x) => formatVsCeiling(x, def.key))),
      ],
      rule: true,
    });
  }
  return { header, rows };
}

function notes(report: BenchReport): string[] {
  const out: string[] = [];
  for (const m of report.modes) {
    if (m.status === 'skipped') out.push(`${m.mode}: skipped, ${m.reason ?? 'no reason given'}`);
    for (const e of m.errors ?? []) out.push(`failed sample: ${e}`);
  }
  return out;
}

const RATIO_NOTE =
  'Ratios are oriented so that 1.00 is equal and below 1 is worse (latency: reference / cnm). ' +
  '"× host": against cnm\'s host mode in the same run; "cnm / ceiling": against the same path ' +
  'built by hand with ip/nft in the same run, the median of the per-repetition ratios (both ' +
  'measured back to back in each repetition, alternating which goes first) with the lowest and ' +
  `highest of those per-repetition ratios (target ≥ ${CEILING_TARGET}).`;

/**
 * The terminal table: one column per mode; per metric cnm's median [min–max], the ratio to
 * host, the kernel ceiling and cnm / ceiling.
 */
export function renderTable(report: BenchReport): string {
  const { header, rows } = grid(report);
  const widths = header.map((h, i) =>
    Math.max([...h].length, ...rows.map((r) => [...(r.cells[i] ?? '')].length)),
  );
  const pad = (s: string, w: number, right: boolean): string => {
    const n = w - [...s].length;
    return right ? ' '.repeat(Math.max(0, n)) + s : s + ' '.repeat(Math.max(0, n));
  };
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => pad(c, widths[i] ?? 0, i > 0))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [line(header), rule];
  for (const r of rows) {
    out.push(line(r.cells));
    if (r.rule) out.push(rule);
  }
  const s = report.settings;
  out.push(
    `${s.repeat} repetition(s) of ${s.durationSec} s per figure: median [min–max]. ${RATIO_NOTE}`,
    ...targetSummary(report),
  );
  for (const n of notes(report)) out.push(n);
  return `${out.join('\n')}\n`;
}

function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** File name of a metric's chart in `--out DIR`. */
export function chartFile(def: MetricDef): string {
  return `${def.key}.svg`;
}

/**
 * The Markdown report: settings, machine, the table, how each path is built, skipped modes,
 * failed samples, and the charts (`chartFile` names, relative to the report).
 *
 * @param opts.charts link the SVG charts (they sit beside the report)
 */
export function renderMarkdown(report: BenchReport, opts: { charts: boolean }): string {
  const m = report.machine;
  const s = report.settings;
  const { header, rows } = grid(report);
  const measured = report.modes.filter((x) => x.status === 'measured');
  const lines = [
    '# cnm bench: data-plane performance',
    '',
    `Measured ${report.startedAt} – ${report.finishedAt} with \`${report.command}\`.`,
    '',
    `Machine: ${m.hostname}, ${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB, Linux ${m.kernel}, ` +
      `Node ${m.node}, load average at the end ${m.loadAvg.join(' / ')}. Tools: ` +
      Object.entries(m.tools)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') +
      '.',
    '',
    `Each figure is the median of ${s.repeat} repetition(s) of ${s.durationSec} s, with [min–max]. ` +
      RATIO_NOTE,
    '',
    `| ${header.map(mdEscape).join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.cells.map((c) => mdEscape(c.trim())).join(' | ')} |`),
  ];
  const summary = targetSummary(report);
  if (summary.length > 0) {
    lines.push('', '## Against the target');
    for (const l of summary) lines.push('', l);
  }
  lines.push(
    '',
    '## Paths',
    '',
    '| mode | cnm | kernel ceiling |',
    '|---|---|---|',
    ...measured.map((x) => `| ${x.mode} | ${x.cnmPath ?? ''} | ${x.ceilingPath ?? ''} |`),
    '',
    '## Tools',
    '',
    ...METRICS.map((d) => `- ${d.label}: ${d.tool.replace('RATE', s.udpRate)}`),
  );
  const n = notes(report);
  if (n.length > 0) lines.push('', '## Skipped and failed', '', ...n.map((x) => `- ${x}`));
  if (opts.charts && measured.length > 0) {
    lines.push('', '## Charts', '');
    for (const d of METRICS) lines.push(`![${d.label}](${chartFile(d)})`, '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

function xml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/**
 * A "nice" axis step (1, 2 or 5 × 10^k) giving about `ticks` intervals up to `max`.
 *
 * @example niceStep(9.7, 5) === 2
 */
export function niceStep(max: number, ticks: number): number {
  if (!(max > 0)) return 1;
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

const COLORS = { cnm: '#2f6db5', ceiling: '#a7b1bd' } as const;

/**
 * One metric's bar chart: per measured mode a cnm bar and a kernel-ceiling bar at the median,
 * with a whisker from min to max and the median written above.
 */
export function renderSvg(report: BenchReport, def: MetricDef): string {
  const modes = report.modes.filter((m) => m.status === 'measured');
  const W = 680;
  const H = 340;
  const left = 64;
  const right = 16;
  const top = 48;
  const bottom = 56;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const series = [
    ['cnm', (m: ModeResult) => m.cnm?.[def.key]],
    ['ceiling', (m: ModeResult) => m.ceiling?.[def.key]],
  ] as const;
  let max = 0;
  for (const m of modes) for (const [, get] of series) max = Math.max(max, get(m)?.max ?? 0);
  const step = niceStep(max * 1.1, 5);
  const top_ = Math.max(step, Math.ceil((max * 1.1) / step) * step);
  const y = (v: number): number => top + plotH - (v / top_) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${xml(def.label)} (${xml(def.unit)})</text>`,
    `<text x="${W / 2}" y="37" text-anchor="middle" fill="#555">${def.higherIsBetter ? 'higher is better' : 'lower is better'}; bars: median, whiskers: min–max of ${report.settings.repeat} run(s)</text>`,
  ];
  for (let v = 0; v <= top_ + step / 2; v += step) {
    const yy = y(v).toFixed(1);
    out.push(
      `<line x1="${left}" y1="${yy}" x2="${W - right}" y2="${yy}" stroke="#e3e3e3"/>`,
      `<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#333">${xml(formatValue(v))}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" y1="${top + plotH}" x2="${W - right}" y2="${top + plotH}" stroke="#333"/>`,
  );
  const groupW = modes.length > 0 ? plotW / modes.length : plotW;
  const barW = Math.min(56, groupW / 3);
  modes.forEach((m, gi) => {
    const cx = left + groupW * gi + groupW / 2;
    series.forEach(([name, get], si) => {
      const f = get(m);
      const x = cx - barW + si * barW;
      if (f === undefined) return;
      const yb = y(f.median);
      out.push(
        `<rect x="${(x + 2).toFixed(1)}" y="${yb.toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${(top + plotH - yb).toFixed(1)}" fill="${COLORS[name]}"><title>${xml(`${m.mode} ${name}: ${formatFigure(f)} ${def.unit}`)}</title></rect>`,
      );
      const wx = (x + barW / 2).toFixed(1);
      const y1 = y(f.min).toFixed(1);
      const y2 = y(f.max).toFixed(1);
      out.push(
        `<line x1="${wx}" y1="${y1}" x2="${wx}" y2="${y2}" stroke="#111"/>`,
        `<line x1="${(x + barW / 2 - 5).toFixed(1)}" y1="${y1}" x2="${(x + barW / 2 + 5).toFixed(1)}" y2="${y1}" stroke="#111"/>`,
        `<line x1="${(x + barW / 2 - 5).toFixed(1)}" y1="${y2}" x2="${(x + barW / 2 + 5).toFixed(1)}" y2="${y2}" stroke="#111"/>`,
        `<text x="${wx}" y="${(Math.min(yb, y(f.max)) - 4).toFixed(1)}" text-anchor="middle" font-size="10">${xml(formatValue(f.median))}</text>`,
      );
    });
    const r = m.vsCeiling?.[def.key];
    out.push(
      `<text x="${cx.toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle">${xml(m.mode)}</text>`,
      `<text x="${cx.toFixed(1)}" y="${top + plotH + 33}" text-anchor="middle" fill="#555" font-size="10">cnm/ceiling ${xml(formatRatio(r))}</text>`,
    );
  });
  out.push(
    `<rect x="${W - right - 150}" y="${H - 16}" width="10" height="10" fill="${COLORS.cnm}"/>`,
    `<text x="${W - right - 136}" y="${H - 7}">cnm</text>`,
    `<rect x="${W - right - 96}" y="${H - 16}" width="10" height="10" fill="${COLORS.ceiling}"/>`,
    `<text x="${W - right - 82}" y="${H - 7}">kernel ceiling</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
