/**
 * Statistics of `cnm bench`: median of repetitions with min and max, and ratios oriented so
 * that 1 means "as fast as the reference". Pure: no I/O.
 */
import {
  METRICS,
  type Figure,
  type Figures,
  type MetricDef,
  type MetricKey,
  type RatioRange,
  type Ratios,
} from './model.js';

/**
 * The median of `samples` (mean of the middle two for an even count).
 *
 * @example median([3, 1, 2]) === 2
 * @throws RangeError when `samples` is empty
 */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError('Cannot take the median of no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * Summarises repetitions as a {@link Figure}; undefined when there are none (every
 * repetition failed).
 */
export function toFigure(samples: readonly number[]): Figure | undefined {
  const ok = samples.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return undefined;
  return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok), samples: [...ok] };
}

/**
 * How `value` compares with `reference`, oriented so that 1 is equal and below 1 is worse:
 * value / reference when higher is better (throughput), reference / value when lower is better
 * (latency). NaN when either is missing or not positive.
 *
 * @example ratio(9, 10, true) === 0.9; ratio(20, 10, false) === 0.5
 */
export function ratio(
  value: number | undefined,
  reference: number | undefined,
  higherIsBetter: boolean,
): number {
  if (value === undefined || reference === undefined || !(value > 0) || !(reference > 0)) {
    return NaN;
  }
  return higherIsBetter ? value / reference : reference / value;
}

/** {@link ratio} of every metric's median in `a` against `b`; metrics missing on a side are left out. */
export function ratios(a: Figures, b: Figures): Ratios {
  const out: Ratios = {};
  for (const m of METRICS) {
    const r = ratio(a[m.key]?.median, b[m.key]?.median, m.higherIsBetter);
    if (Number.isFinite(r)) out[m.key] = r;
  }
  return out;
}

/** Collects samples per metric across repetitions. */
export class SampleSet {
  readonly #samples = new Map<MetricKey, number[]>();
  /** The repetition each sample was taken in, parallel to `#samples`. */
  readonly #reps = new Map<MetricKey, number[]>();
  /** The repetition samples added from now on belong to. */
  rep = 0;

  /** Adds one repetition's value of `key` (taken in repetition {@link rep}). */
  add(key: MetricKey, value: number): void {
    const list = this.#samples.get(key) ?? [];
    list.push(value);
    this.#samples.set(key, list);
    const reps = this.#reps.get(key) ?? [];
    reps.push(this.rep);
    this.#reps.set(key, reps);
  }

  /** Repetition → finite value of `key`. */
  byRep(key: MetricKey): Map<number, number> {
    const out = new Map<number, number>();
    const values = this.#samples.get(key) ?? [];
    const reps = this.#reps.get(key) ?? [];
    values.forEach((v, i) => {
      if (Number.isFinite(v)) out.set(reps[i] as number, v);
    });
    return out;
  }

  /** The figures of every metric that has at least one sample. */
  figures(): Figures {
    const out: Figures = {};
    for (const m of METRICS) {
      const f = toFigure(this.#samples.get(m.key) ?? []);
      if (f !== undefined) out[m.key] = f;
    }
    return out;
  }
}

/** The {@link ratio}s of `a` to `b` in every repetition measured on both sides. */
function perRepRatios(a: SampleSet, b: SampleSet, m: MetricDef): number[] {
  const pb = b.byRep(m.key);
  const per: number[] = [];
  for (const [rep, v] of a.byRep(m.key)) {
    const r = ratio(v, pb.get(rep), m.higherIsBetter);
    if (Number.isFinite(r)) per.push(r);
  }
  return per;
}

/**
 * `a` against `b` as the median of per-repetition {@link ratio}s: in each repetition both sides
 * ran back to back, so a change of the machine's load between repetitions (other work on a
 * shared host) hits both and cancels, where a ratio of medians would mix samples from different
 * moments. A metric without a repetition measured on both sides falls back to the ratio of
 * medians; one missing on either side is left out.
 *
 * @example two repetitions 9/10 and 18/20 give 0.9 even though the load halved the second
 */
export function pairedRatios(a: SampleSet, b: SampleSet): Ratios {
  const out: Ratios = {};
  const fa = a.figures();
  const fb = b.figures();
  for (const m of METRICS) {
    const per = perRepRatios(a, b, m);
    const r =
      per.length > 0 ? median(per) : ratio(fa[m.key]?.median, fb[m.key]?.median, m.higherIsBetter);
    if (Number.isFinite(r)) out[m.key] = r;
  }
  return out;
}

/**
 * The lowest and highest per-repetition ratio of `a` to `b` per metric, for metrics with at
 * least two repetitions measured on both sides: with n such repetitions, [min, max] holds the
 * true median ratio with probability {@link medianCoverage}(n), whatever the noise's shape.
 */
export function pairedRatioRanges(
  a: SampleSet,
  b: SampleSet,
): Partial<Record<MetricKey, RatioRange>> {
  const out: Partial<Record<MetricKey, RatioRange>> = {};
  for (const m of METRICS) {
    const per = perRepRatios(a, b, m);
    if (per.length >= 2)
      out[m.key] = { min: Math.min(...per), max: Math.max(...per), n: per.length };
  }
  return out;
}

/**
 * The confidence that the lowest and highest of n independent samples enclose the median of
 * the distribution they come from: 1 − 2 · 0.5ⁿ (the chance that not all n fall on one side).
 *
 * @example medianCoverage(5) === 0.9375
 */
export function medianCoverage(n: number): number {
  return n < 2 ? 0 : 1 - 2 * 0.5 ** n;
}
