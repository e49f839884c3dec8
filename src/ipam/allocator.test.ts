import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError, InvalidError } from '../errors.js';
import { IP } from '../netaddr/index.js';
import { AddressAllocator } from './allocator.js';
import { buildPool } from './pool.js';

const ip = (s: string): IP => IP.parse(s);

function fails(kind: typeof InvalidError | typeof ConflictError, code: string, message?: string) {
  return (err: unknown): boolean =>
    err instanceof kind && err.code === code && (message === undefined || err.message === message);
}

test('allocate() skips the network address and the gateway', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/24' }));
  assert.equal(alloc.allocate().toString(), '10.0.0.2');
  assert.equal(alloc.allocate().toString(), '10.0.0.3');
  assert.equal(alloc.usedCount, 2);
  assert.equal(alloc.cursor?.toString(), '10.0.0.3');
});

test('allocate() skips aux addresses', () => {
  const pool = buildPool({ subnet: '10.0.0.0/24', auxAddresses: { a: '10.0.0.2', b: '10.0.0.3' } });
  const alloc = new AddressAllocator(pool);
  assert.equal(alloc.allocate().toString(), '10.0.0.4');
});

test('allocate() stays inside the ip-range', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/16', ipRange: '10.0.5.0/30' }));
  // The range's first address is not the subnet's network address, so it is usable.
  const got = [alloc.allocate(), alloc.allocate(), alloc.allocate(), alloc.allocate()].map(String);
  assert.deepEqual(got, ['10.0.5.0', '10.0.5.1', '10.0.5.2', '10.0.5.3']);
  assert.throws(() => alloc.allocate(), fails(ConflictError, 'POOL_EXHAUSTED'));
});

test('allocate() exhausts a /29 after five addresses', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/29' }));
  const got = Array.from({ length: 5 }, () => alloc.allocate().toString());
  assert.deepEqual(got, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  assert.throws(
    () => alloc.allocate(),
    fails(ConflictError, 'POOL_EXHAUSTED', 'No available addresses in subnet "10.0.0.0/29"'),
  );
});

test('allocate() reuses a released address last', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/29' }));
  const a = alloc.allocate(); // .2
  alloc.allocate(); // .3
  assert.ok(alloc.release(a));
  assert.equal(alloc.allocate().toString(), '10.0.0.4');
  assert.equal(alloc.allocate().toString(), '10.0.0.5');
  assert.equal(alloc.allocate().toString(), '10.0.0.6');
  assert.equal(alloc.allocate().toString(), '10.0.0.2');
  assert.throws(() => alloc.allocate(), fails(ConflictError, 'POOL_EXHAUSTED'));
});

test('allocate() wraps around to free addresses before the cursor', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/24' }), {
    cursor: ip('10.0.0.254'),
  });
  assert.equal(alloc.allocate().toString(), '10.0.0.2');
  const full = new AddressAllocator(buildPool({ subnet: '10.0.0.0/29' }));
  for (let i = 0; i < 5; i++) full.allocate();
  full.release(ip('10.0.0.4'));
  assert.equal(full.allocate().toString(), '10.0.0.4');
  assert.equal(full.cursor?.toString(), '10.0.0.4');
});

test('allocate() with an address takes it without moving the cursor', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/24' }));
  assert.equal(alloc.allocate(ip('10.0.0.3')).toString(), '10.0.0.3');
  assert.equal(alloc.cursor, undefined);
  assert.equal(alloc.allocate().toString(), '10.0.0.2');
  assert.equal(alloc.allocate().toString(), '10.0.0.4');
});

test('allocate() with an address outside the ip-range but in the subnet succeeds', () => {
  const alloc = new AddressAllocator(
    buildPool({ subnet: '10.0.0.0/24', ipRange: '10.0.0.128/25' }),
  );
  assert.equal(alloc.allocate(ip('10.0.0.9')).toString(), '10.0.0.9');
  assert.equal(alloc.allocate().toString(), '10.0.0.128');
});

test('allocate() refuses an address outside the subnet', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/24' }));
  assert.throws(
    () => alloc.allocate(ip('10.0.1.5')),
    fails(
      InvalidError,
      'ADDRESS_OUT_OF_RANGE',
      'Cannot allocate address "10.0.1.5": it is not in subnet "10.0.0.0/24"',
    ),
  );
  assert.throws(() => alloc.allocate(ip('::1')), fails(InvalidError, 'ADDRESS_OUT_OF_RANGE'));
});

test('allocate() refuses the network and broadcast addresses', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/24' }));
  assert.throws(() => alloc.allocate(ip('10.0.0.0')), fails(InvalidError, 'ADDRESS_RESERVED'));
  assert.throws(
    () => alloc.allocate(ip('10.0.0.255')),
    fails(
      InvalidError,
      'ADDRESS_RESERVED',
      'Cannot allocate address "10.0.0.255": it is the broadcast address of subnet "10.0.0.0/24"',
    ),
  );
});

test('allocate() refuses the gateway, aux and used addresses as in use', () => {
  const pool = buildPool({ subnet: '10.0.0.0/24', auxAddresses: { db: '10.0.0.9' } });
  const alloc = new AddressAllocator(pool);
  assert.throws(
    () => alloc.allocate(ip('10.0.0.1')),
    fails(ConflictError, 'ADDRESS_IN_USE', 'Address "10.0.0.1" is already in use by the gateway'),
  );
  assert.throws(
    () => alloc.allocate(ip('10.0.0.9')),
    fails(
      ConflictError,
      'ADDRESS_IN_USE',
      'Address "10.0.0.9" is already in use by aux address "db"',
    ),
  );
  alloc.allocate(ip('10.0.0.20'));
  assert.throws(
    () => alloc.allocate(ip('10.0.0.20')),
    fails(ConflictError, 'ADDRESS_IN_USE', 'Address "10.0.0.20" is already in use'),
  );
});

test('release() of a free address is a no-op returning false', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/24' }));
  assert.equal(alloc.release(ip('10.0.0.7')), false);
  assert.equal(alloc.release(ip('10.0.0.1')), false); // the gateway is reserved, not used
  assert.equal(alloc.release(ip('192.168.0.1')), false);
  const a = alloc.allocate();
  assert.ok(alloc.isUsed(a));
  assert.equal(alloc.release(a), true);
  assert.equal(alloc.release(a), false);
  assert.ok(!alloc.isUsed(a));
  assert.equal(alloc.usedCount, 0);
});

test('release() of a static address frees it without counting against the range', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/29', ipRange: '10.0.0.4/30' }));
  alloc.allocate(ip('10.0.0.2'));
  const got = Array.from({ length: 3 }, () => alloc.allocate().toString());
  assert.deepEqual(got, ['10.0.0.4', '10.0.0.5', '10.0.0.6']); // .7 is the broadcast address
  assert.throws(() => alloc.allocate(), fails(ConflictError, 'POOL_EXHAUSTED'));
  assert.ok(alloc.release(ip('10.0.0.2')));
  assert.throws(() => alloc.allocate(), fails(ConflictError, 'POOL_EXHAUSTED'));
  assert.ok(alloc.release(ip('10.0.0.5')));
  assert.equal(alloc.allocate().toString(), '10.0.0.5');
});

test('AddressAllocator restores used addresses and the cursor', () => {
  const pool = buildPool({ subnet: '10.0.0.0/24' });
  const first = new AddressAllocator(pool);
  for (let i = 0; i < 4; i++) first.allocate();
  first.release(ip('10.0.0.3'));
  const second = new AddressAllocator(pool, {
    used: first.usedAddresses(),
    ...(first.cursor === undefined ? {} : { cursor: first.cursor }),
  });
  assert.deepEqual(second.usedAddresses().map(String), ['10.0.0.2', '10.0.0.4', '10.0.0.5']);
  assert.equal(second.allocate().toString(), '10.0.0.6');
});

test('AddressAllocator ignores a restored gateway and refuses restored addresses outside the subnet', () => {
  const pool = buildPool({ subnet: '10.0.0.0/24' });
  const alloc = new AddressAllocator(pool, {
    used: [ip('10.0.0.1'), ip('10.0.0.2'), ip('10.0.0.2')],
  });
  assert.equal(alloc.usedCount, 1);
  assert.throws(
    () => new AddressAllocator(pool, { used: [ip('10.0.9.1')] }),
    fails(InvalidError, 'ADDRESS_OUT_OF_RANGE'),
  );
});

test('allocate() hands out 10k addresses in a /16 without repeats', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.10.0.0/16' }));
  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) seen.add(alloc.allocate().toString());
  assert.equal(seen.size, 10_000);
  assert.equal(alloc.usedCount, 10_000);
  assert.ok(!seen.has('10.10.0.1'));
  assert.equal(alloc.cursor?.toString(), '10.10.39.17'); // offset 10_001 = 0x2711
});

test('allocate() fills a /16 exactly, then refuses', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.10.0.0/16' }));
  for (let i = 0; i < 65_533; i++) alloc.allocate();
  assert.throws(() => alloc.allocate(), fails(ConflictError, 'POOL_EXHAUSTED'));
  alloc.release(ip('10.10.128.0'));
  assert.equal(alloc.allocate().toString(), '10.10.128.0');
});

test('allocate() works in an IPv6 /64 without enumerating it', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: 'fd00:1::/64' }), {
    cursor: ip('fd00:1::ffff:ffff:ffff:fffe'),
  });
  // The last address is usable in IPv6 (no broadcast); then the search wraps.
  assert.equal(alloc.allocate().toString(), 'fd00:1::ffff:ffff:ffff:ffff');
  assert.equal(alloc.allocate().toString(), 'fd00:1::2');
  for (let i = 0; i < 1000; i++) alloc.allocate();
  assert.equal(alloc.cursor?.toString(), 'fd00:1::3ea');
  assert.equal(alloc.allocate(ip('fd00:1::dead:beef')).toString(), 'fd00:1::dead:beef');
  assert.throws(() => alloc.allocate(ip('fd00:1::')), fails(InvalidError, 'ADDRESS_RESERVED'));
});

test('allocate() uses every address of a /31 and /32 pool without a gateway', () => {
  const p31 = new AddressAllocator(buildPool({ subnet: '10.0.0.0/31' }, { gateway: 'optional' }));
  assert.deepEqual([p31.allocate(), p31.allocate()].map(String), ['10.0.0.0', '10.0.0.1']);
  assert.throws(() => p31.allocate(), fails(ConflictError, 'POOL_EXHAUSTED'));
  const p32 = new AddressAllocator(buildPool({ subnet: '10.0.0.7/32' }, { gateway: 'optional' }));
  assert.equal(p32.allocate().toString(), '10.0.0.7');
  assert.throws(() => p32.allocate(), fails(ConflictError, 'POOL_EXHAUSTED'));
});

test('allocate() without a gateway may hand out the first usable address', () => {
  const alloc = new AddressAllocator(buildPool({ subnet: '10.0.0.0/30' }, { gateway: 'optional' }));
  assert.deepEqual([alloc.allocate(), alloc.allocate()].map(String), ['10.0.0.1', '10.0.0.2']);
  assert.throws(() => alloc.allocate(), fails(ConflictError, 'POOL_EXHAUSTED'));
});
