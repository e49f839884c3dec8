/**
 * Small statistics and table helpers shared by the benchmarks. Pure: no I/O.
 */

/**
 * The p-th percentile (0–100) of `samples` by linear interpolation between closest ranks (the
 * method of numpy's default), so p50 of an even-sized sample is the mean of the middle two.
 *
 * @example percentile([1, 2, 3, 4], 50) === 2.5
 * @throws RangeError when `samples` is empty or `p` is outside 0–100
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('Cannot take a percentile of no samples');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`Percentile '${p}' is outside 0–100`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}

/** The median (p50) of `samples`. @throws RangeError when empty */
export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** Summary of one series of timings. */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

/** Summarises `samples`. @throws RangeError when empty */
export function summarize(samples: readonly number[]): Summary {
  return {
    n: samples.length,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    min: Math.min(...samples),
    max: Math.max(...samples),
    mean: samples.reduce((s, x) => s + x, 0) / samples.length,
  };
}

/**
 * Formats a number of milliseconds for a table: 3 significant digits, at most 2 decimals.
 *
 * @example formatMs(0.04567) === '0.05'; formatMs(123.4) === '123'
 */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

/**
 * Lays out rows as a plain-text table with a header rule; numeric-looking cells are right-aligned
 * so columns of timings line up.
 *
 * @example formatTable(['tool', 'p50'], [['cni', '77.8']])
 */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = /^[-+]?[\d.]+[a-z%×x]*$/i;
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => {
        const w = widths[i] ?? 0;
        return numeric.test(c) ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
