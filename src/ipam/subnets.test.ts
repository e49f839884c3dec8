import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, ConflictError, describeError } from '../errors.js';
import { Prefix } from '../netaddr/index.js';
import {
  DEFAULT_POOLS,
  candidateSubnets,
  chooseSubnet,
  findOverlap,
  overlapError,
  ulaSubnet,
} from './subnets.js';

const p = (s: string): Prefix => Prefix.parse(s);

test('DEFAULT_POOLS matches dockerd: 172.17-31 as /16s, then 192.168.0.0/16 as /20s', () => {
  assert.equal(DEFAULT_POOLS.length, 16);
  assert.deepEqual(DEFAULT_POOLS[0], { base: '172.17.0.0/16', size: 16 });
  assert.deepEqual(DEFAULT_POOLS[14], { base: '172.31.0.0/16', size: 16 });
  assert.deepEqual(DEFAULT_POOLS[15], { base: '192.168.0.0/16', size: 20 });
  assert.ok(Object.isFrozen(DEFAULT_POOLS));
});

test('candidateSubnets() yields the default pools in order', () => {
  const all = [...candidateSubnets()].map(String);
  assert.equal(all.length, 31);
  assert.deepEqual(all.slice(0, 3), ['172.17.0.0/16', '172.18.0.0/16', '172.19.0.0/16']);
  assert.equal(all[14], '172.31.0.0/16');
  assert.deepEqual(all.slice(15, 18), ['192.168.0.0/20', '192.168.16.0/20', '192.168.32.0/20']);
  assert.equal(all[30], '192.168.240.0/20');
});

test('candidateSubnets() is lazy for huge IPv6 pools', () => {
  const gen = candidateSubnets([{ base: 'fd00::/8', size: 64 }]);
  assert.equal(gen.next().value?.toString(), 'fd00::/64');
  assert.equal(gen.next().value?.toString(), 'fd00:0:0:1::/64');
});

test('candidateSubnets() refuses a size shorter than the base', () => {
  assert.throws(() => [...candidateSubnets([{ base: '10.0.0.0/8', size: 4 }])], {
    code: 'POOL_INVALID',
  });
  assert.throws(() => [...candidateSubnets([{ base: '10.0.0.1/8', size: 16 }])], {
    code: 'POOL_INVALID',
  });
});

test('chooseSubnet() gives the default bridge 172.17.0.0/16', () => {
  assert.equal(chooseSubnet([])?.toString(), '172.17.0.0/16');
});

test('chooseSubnet() with skipFirst starts user networks at 172.18.0.0/16', () => {
  assert.equal(chooseSubnet([], { skipFirst: true })?.toString(), '172.18.0.0/16');
  assert.equal(
    chooseSubnet([p('172.17.0.0/16')], { skipFirst: true })?.toString(),
    '172.18.0.0/16',
  );
});

test('chooseSubnet() skips candidates overlapping routes like 172.17.0.0/16', () => {
  const inUse = [p('172.17.0.0/16'), p('172.18.5.0/24'), p('172.19.0.1/32')];
  assert.equal(chooseSubnet(inUse)?.toString(), '172.20.0.0/16');
});

test('chooseSubnet() skips a wide route covering many candidates', () => {
  assert.equal(chooseSubnet([p('172.16.0.0/12')])?.toString(), '192.168.0.0/20');
  assert.equal(
    chooseSubnet([p('172.16.0.0/12'), p('192.168.0.0/20')])?.toString(),
    '192.168.16.0/20',
  );
  assert.equal(
    chooseSubnet([p('172.16.0.0/12'), p('192.168.0.0/19')])?.toString(),
    '192.168.32.0/20',
  );
});

test('chooseSubnet() returns undefined when every candidate overlaps', () => {
  assert.equal(chooseSubnet([p('172.16.0.0/12'), p('192.168.0.0/16')]), undefined);
  assert.equal(chooseSubnet([p('0.0.0.0/0')]), undefined);
});

test('chooseSubnet() ignores prefixes of the other family', () => {
  assert.equal(chooseSubnet([p('::/0')])?.toString(), '172.17.0.0/16');
});

test('chooseSubnet() jumps over huge overlaps in IPv6 pools', () => {
  const pools = [{ base: 'fd00::/8', size: 64 }];
  assert.equal(chooseSubnet([p('fd00::/9')], { pools })?.toString(), 'fd80::/64');
  assert.equal(chooseSubnet([p('fd00::/8')], { pools }), undefined);
  assert.equal(chooseSubnet([], { pools, skipFirst: true })?.toString(), 'fd00:0:0:1::/64');
});

test('chooseSubnet() with skipFirst skips only the first candidate of all pools', () => {
  const pools = [
    { base: '10.0.0.0/24', size: 24 },
    { base: '10.1.0.0/24', size: 25 },
  ];
  assert.equal(chooseSubnet([], { pools, skipFirst: true })?.toString(), '10.1.0.0/25');
  assert.equal(chooseSubnet([], { pools })?.toString(), '10.0.0.0/24');
});

test('ulaSubnet() builds an RFC 4193 /64 from five random bytes', () => {
  const ula = ulaSubnet(new Uint8Array([0x12, 0x34, 0x56, 0x78, 0x9a]));
  assert.equal(ula.toString(), 'fd12:3456:789a::/64');
  assert.ok(p('fc00::/7').containsPrefix(ula));
  assert.throws(() => ulaSubnet(new Uint8Array(6)), BugError);
});

test('findOverlap() returns the first overlapping owner', () => {
  const others = [
    { prefix: p('10.1.0.0/16'), owner: 'a' },
    { prefix: p('10.0.0.0/8'), owner: 'b' },
    { prefix: p('10.2.0.0/24'), owner: 'c' },
  ];
  assert.equal(findOverlap(p('10.2.0.0/16'), others)?.owner, 'b');
  assert.equal(findOverlap(p('10.1.2.0/24'), others)?.owner, 'a');
  assert.equal(findOverlap(p('192.168.0.0/24'), others), undefined);
});

test('overlapError() uses dockerd message and keeps the detail in the cause', () => {
  const err = overlapError(p('10.1.0.0/24'), { prefix: p('10.1.0.0/16'), owner: 'web' });
  assert.ok(err instanceof ConflictError);
  assert.equal(err.code, 'SUBNET_OVERLAP');
  assert.equal(err.message, 'Pool overlaps with other one on this address space');
  assert.equal(
    describeError(err),
    'Pool overlaps with other one on this address space: Subnet "10.1.0.0/24" overlaps subnet "10.1.0.0/16" of "web"',
  );
});
