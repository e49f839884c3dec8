import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SampleSet, median, ratio, ratios, toFigure } from './stats.js';

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
