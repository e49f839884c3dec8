import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  SampleSet,
  median,
  medianCoverage,
  pairedRatioRanges,
  pairedRatios,
  ratio,
  ratios,
  toFigure,
} from './stats.js';

test('median() takes the middle value, or the mean of the middle two', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]), RangeError);
});

test('toFigure() keeps median, min, max and the finite samples', () => {
  assert.deepEqual(toFigure([5, NaN, 1, 3]), { median: 3, min: 1, max: 5, samples: [5, 1, 3] });
  assert.equal(toFigure([NaN]), undefined);
  assert.equal(toFigure([]), undefined);
});

test('ratio() is value/reference for throughput and reference/value for latency', () => {
  assert.equal(ratio(9, 10, true), 0.9);
  assert.equal(ratio(20, 10, false), 0.5);
  assert.ok(Number.isNaN(ratio(undefined, 10, true)));
  assert.ok(Number.isNaN(ratio(5, 0, true)));
});

test('ratios() compares medians metric by metric and leaves out missing ones', () => {
  const a = new SampleSet();
  const b = new SampleSet();
  a.add('tcpGbps', 9);
  a.add('rrP50Us', 20);
  b.add('tcpGbps', 10);
  b.add('rrP50Us', 10);
  b.add('udpPps', 1000);
  assert.deepEqual(ratios(a.figures(), b.figures()), { rrP50Us: 0.5, tcpGbps: 0.9 });
});

test('SampleSet.figures() summarises every metric that has samples', () => {
  const s = new SampleSet();
  for (const v of [3, 1, 2]) s.add('crrPerSec', v);
  assert.deepEqual(s.figures(), { crrPerSec: { median: 2, min: 1, max: 3, samples: [3, 1, 2] } });
});

test('pairedRatios() takes the median of per-repetition ratios, so load drift cancels', () => {
  const cnm = new SampleSet();
  const ceiling = new SampleSet();
  // The machine got twice as slow in repetition 1 and three times in 2: each pair still says 0.9.
  for (const [rep, load] of [
    [0, 1],
    [1, 2],
    [2, 3],
  ] as const) {
    cnm.rep = rep;
    ceiling.rep = rep;
    cnm.add('tcpGbps', 9 / load);
    ceiling.add('tcpGbps', 10 / load);
    cnm.add('rrP50Us', 22 * load);
    ceiling.add('rrP50Us', 20 * load);
  }
  const r = pairedRatios(cnm, ceiling);
  assert.ok(Math.abs((r.tcpGbps ?? 0) - 0.9) < 1e-9, String(r.tcpGbps));
  assert.ok(Math.abs((r.rrP50Us ?? 0) - 20 / 22) < 1e-9, String(r.rrP50Us));
  // A repetition measured on one side only (the other failed) pairs with nothing.
  ceiling.rep = 3;
  ceiling.add('tcpGbps', 1);
  assert.ok(Math.abs((pairedRatios(cnm, ceiling).tcpGbps ?? 0) - 0.9) < 1e-9);
  // No common repetition: the ratio of medians; a metric on one side only: left out.
  const x = new SampleSet();
  const y = new SampleSet();
  x.add('udpPps', 90);
  y.rep = 1;
  y.add('udpPps', 100);
  y.add('crrPerSec', 5);
  assert.deepEqual(pairedRatios(x, y), { udpPps: 0.9 });
});

test('pairedRatioRanges() gives the lowest and highest per-repetition ratio', () => {
  const cnm = new SampleSet();
  const ceiling = new SampleSet();
  for (const [rep, c, k] of [
    [0, 9, 10],
    [1, 8, 10],
    [2, 11, 10],
  ] as const) {
    cnm.rep = rep;
    ceiling.rep = rep;
    cnm.add('udpPps', c);
    ceiling.add('udpPps', k);
    cnm.add('rrP99Us', 20);
    ceiling.add('rrP99Us', 10 * (rep + 1));
  }
  // One repetition of a metric on both sides is no range.
  cnm.add('crrPerSec', 1);
  ceiling.add('crrPerSec', 1);
  const r = pairedRatioRanges(cnm, ceiling);
  assert.deepEqual(Object.keys(r).sort(), ['rrP99Us', 'udpPps']);
  assert.ok(
    Math.abs((r.udpPps?.min ?? 0) - 0.8) < 1e-9 && Math.abs((r.udpPps?.max ?? 0) - 1.1) < 1e-9,
  );
  assert.equal(r.udpPps?.n, 3);
  // Latency is oriented like the ratio: reference / cnm.
  assert.ok(
    Math.abs((r.rrP99Us?.min ?? 0) - 0.5) < 1e-9 && Math.abs((r.rrP99Us?.max ?? 0) - 1.5) < 1e-9,
  );
});

test('medianCoverage() is 1 - 2 * 0.5^n', () => {
  assert.equal(medianCoverage(5), 0.9375);
  assert.equal(medianCoverage(7), 1 - 2 / 128);
  assert.equal(medianCoverage(1), 0);
});
