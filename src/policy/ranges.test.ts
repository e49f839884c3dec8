import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IP } from '../netaddr/index.js';
import { blockRanges, disjointRects, formatAddrRange, mergeRanges } from './ranges.js';

const v = (s: string) => IP.parse(s).value;

test('blockRanges() cuts the except holes out of the CIDR', () => {
  const r = blockRanges('10.0.0.0/24', ['10.0.0.0/30', '10.0.0.128/25'], 4);
  assert.deepEqual(
    r.map((x) => formatAddrRange(4, x)),
    ['10.0.0.4-10.0.0.127'],
  );
  assert.deepEqual(blockRanges('10.0.0.0/24', [], 6), []);
  assert.deepEqual(
    blockRanges('172.17.0.0/16', ['172.17.1.0/24'], 4).map((x) => formatAddrRange(4, x)),
    ['172.17.0.0/24', '172.17.2.0-172.17.255.255'],
  );
});

test('mergeRanges() joins overlapping and adjacent ranges', () => {
  assert.deepEqual(
    mergeRanges([
      [5n, 9n],
      [1n, 4n],
      [20n, 30n],
      [25n, 26n],
    ]),
    [
      [1n, 9n],
      [20n, 30n],
    ],
  );
});

test('disjointRects() makes overlapping rectangles disjoint without losing coverage', () => {
  const out = disjointRects([
    { peer: [v('10.0.0.0'), v('10.0.0.255')], ports: [80n, 80n] },
    { peer: [v('10.0.0.128'), v('10.0.1.255')], ports: [80n, 90n] },
    { peer: [v('10.0.0.0'), v('10.0.0.255')], ports: [80n, 80n] },
  ]);
  const text = out.map((r) => `${formatAddrRange(4, r.peer)} ${r.ports[0]}-${r.ports[1]}`);
  assert.deepEqual(text, ['10.0.0.0/25 80-80', '10.0.0.128-10.0.1.255 80-90']);
});
