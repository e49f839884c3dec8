import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidError } from '../errors.js';
import { IP, Prefix } from '../netaddr/index.js';
import { buildPool, isReservedAddress } from './pool.js';

function invalid(code: string, message?: string) {
  return (err: unknown): boolean =>
    err instanceof InvalidError &&
    err.code === code &&
    (message === undefined || err.message === message);
}

test('buildPool() defaults the range to the subnet and the gateway to the first address', () => {
  const pool = buildPool({ subnet: '172.18.0.0/16' });
  assert.equal(pool.family, 4);
  assert.equal(pool.subnet.toString(), '172.18.0.0/16');
  assert.ok(pool.range.equals(pool.subnet));
  assert.equal(pool.gateway?.toString(), '172.18.0.1');
  assert.equal(pool.aux.size, 0);
});

test('buildPool() takes the default gateway from the subnet even with an ip-range', () => {
  const pool = buildPool({ subnet: '10.1.0.0/16', ipRange: '10.1.5.0/24' });
  assert.equal(pool.range.toString(), '10.1.5.0/24');
  assert.equal(pool.gateway?.toString(), '10.1.0.1');
});

test('buildPool() skips aux addresses when choosing the default gateway', () => {
  const pool = buildPool({
    subnet: '10.0.0.0/24',
    auxAddresses: { a: '10.0.0.1', b: '10.0.0.2' },
  });
  assert.equal(pool.gateway?.toString(), '10.0.0.3');
  assert.equal(pool.aux.get('b')?.toString(), '10.0.0.2');
});

test('buildPool() refuses a subnet whose every address is an aux address', () => {
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/30', auxAddresses: { a: '10.0.0.1', b: '10.0.0.2' } }),
    invalid('GATEWAY_INVALID'),
  );
});

test('buildPool() with an optional gateway invents none', () => {
  const pool = buildPool({ subnet: '10.0.0.0/24' }, { gateway: 'optional' });
  assert.equal(pool.gateway, undefined);
  assert.ok(!('gateway' in pool));
});

test('buildPool() treats an empty ip-range or gateway as absent', () => {
  const pool = buildPool({ subnet: '10.0.0.0/24', ipRange: '', gateway: '' });
  assert.equal(pool.range.toString(), '10.0.0.0/24');
  assert.equal(pool.gateway?.toString(), '10.0.0.1');
});

test('buildPool() keeps an explicit gateway', () => {
  const pool = buildPool({ subnet: '10.0.0.0/24', gateway: '10.0.0.254' });
  assert.equal(pool.gateway?.toString(), '10.0.0.254');
});

test('buildPool() refuses a subnet that is not a CIDR', () => {
  for (const bad of ['10.0.0.0', '10.0.0.0/33', 'banana', '']) {
    assert.throws(
      () => buildPool({ subnet: bad }),
      invalid('SUBNET_INVALID', `Invalid subnet "${bad}": it is not a valid CIDR`),
    );
  }
});

test('buildPool() refuses a subnet with host bits set', () => {
  assert.throws(
    () => buildPool({ subnet: '10.0.0.1/24' }),
    invalid(
      'SUBNET_INVALID',
      'Invalid subnet "10.0.0.1/24": host bits are set, it should be "10.0.0.0/24"',
    ),
  );
});

test('buildPool() refuses IPv4 /31 and /32 when a gateway is required', () => {
  for (const subnet of ['10.0.0.0/31', '10.0.0.0/32']) {
    assert.throws(() => buildPool({ subnet }), invalid('SUBNET_INVALID'), subnet);
  }
  assert.throws(() => buildPool({ subnet: 'fd00::/127' }), invalid('SUBNET_INVALID'));
  assert.equal(buildPool({ subnet: '10.0.0.0/30' }).gateway?.toString(), '10.0.0.1');
});

test('buildPool() allows /31 and /32 with an optional gateway', () => {
  const p31 = buildPool({ subnet: '10.0.0.0/31' }, { gateway: 'optional' });
  assert.equal(p31.gateway, undefined);
  // RFC 3021: no network or broadcast address in a /31, so both addresses may be a gateway.
  const gw = buildPool({ subnet: '10.0.0.0/31', gateway: '10.0.0.0' }, { gateway: 'optional' });
  assert.equal(gw.gateway?.toString(), '10.0.0.0');
  assert.equal(buildPool({ subnet: '10.0.0.5/32' }, { gateway: 'optional' }).subnet.size(), 1n);
});

test('buildPool() refuses an ip-range outside the subnet', () => {
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', ipRange: '10.0.1.0/25' }),
    invalid(
      'IP_RANGE_INVALID',
      'Invalid ip-range "10.0.1.0/25": it is not within subnet "10.0.0.0/24"',
    ),
  );
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/23' }),
    invalid(
      'IP_RANGE_INVALID',
      'Invalid ip-range "10.0.0.0/23": it is not within subnet "10.0.0.0/24"',
    ),
  );
});

test('buildPool() refuses a malformed ip-range or one with host bits set', () => {
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', ipRange: '10.0.0.0' }),
    invalid('IP_RANGE_INVALID'),
  );
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', ipRange: '10.0.0.5/28' }),
    invalid(
      'IP_RANGE_INVALID',
      'Invalid ip-range "10.0.0.5/28": host bits are set, it should be "10.0.0.0/28"',
    ),
  );
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', ipRange: 'fd00::/64' }),
    invalid('IP_RANGE_INVALID'),
  );
});

test('buildPool() refuses a gateway outside the subnet', () => {
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', gateway: '10.0.1.1' }),
    invalid('GATEWAY_INVALID', 'Invalid gateway "10.0.1.1": it is not within subnet "10.0.0.0/24"'),
  );
});

test('buildPool() refuses a gateway on the network or broadcast address', () => {
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', gateway: '10.0.0.0' }),
    invalid(
      'GATEWAY_INVALID',
      'Invalid gateway "10.0.0.0": it is the network address of subnet "10.0.0.0/24"',
    ),
  );
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', gateway: '10.0.0.255' }),
    invalid(
      'GATEWAY_INVALID',
      'Invalid gateway "10.0.0.255": it is the broadcast address of subnet "10.0.0.0/24"',
    ),
  );
});

test('buildPool() refuses a malformed gateway or one of the other family', () => {
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', gateway: 'x' }),
    invalid('GATEWAY_INVALID'),
  );
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', gateway: 'fd00::1' }),
    invalid('GATEWAY_INVALID', 'Invalid gateway "fd00::1": subnet "10.0.0.0/24" is an IPv4 subnet'),
  );
});

test('buildPool() refuses aux addresses outside the subnet, duplicated or on the gateway', () => {
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', auxAddresses: { db: '10.9.0.5' } }),
    invalid(
      'AUX_ADDRESS_INVALID',
      'Invalid aux address "db" "10.9.0.5": it is not within subnet "10.0.0.0/24"',
    ),
  );
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', auxAddresses: { a: '10.0.0.5', b: '10.0.0.5' } }),
    invalid(
      'AUX_ADDRESS_INVALID',
      'Invalid aux address "b" "10.0.0.5": it is also aux address "a"',
    ),
  );
  assert.throws(
    () =>
      buildPool({ subnet: '10.0.0.0/24', gateway: '10.0.0.5', auxAddresses: { a: '10.0.0.5' } }),
    invalid('AUX_ADDRESS_INVALID', 'Invalid aux address "a" "10.0.0.5": it is the gateway'),
  );
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', auxAddresses: { a: '10.0.0.255' } }),
    invalid('AUX_ADDRESS_INVALID'),
  );
  assert.throws(
    () => buildPool({ subnet: '10.0.0.0/24', auxAddresses: { a: '::1' } }),
    invalid('AUX_ADDRESS_INVALID'),
  );
});

test('buildPool() accepts an aux address outside the ip-range', () => {
  const pool = buildPool({
    subnet: '10.0.0.0/24',
    ipRange: '10.0.0.128/25',
    auxAddresses: { a: '10.0.0.10' },
  });
  assert.equal(pool.aux.get('a')?.toString(), '10.0.0.10');
});

test('buildPool() handles IPv6 subnets', () => {
  const pool = buildPool({ subnet: 'fd00:1::/64', ipRange: 'fd00:1::/80' });
  assert.equal(pool.family, 6);
  assert.equal(pool.gateway?.toString(), 'fd00:1::1');
  assert.throws(
    () => buildPool({ subnet: 'fd00:1::/64', gateway: 'fd00:1::' }),
    invalid('GATEWAY_INVALID'),
  );
  // IPv6 has no broadcast address: the last address is usable.
  const last = buildPool({ subnet: 'fd00:1::/64', gateway: 'fd00:1::ffff:ffff:ffff:ffff' });
  assert.equal(last.gateway?.toString(), 'fd00:1::ffff:ffff:ffff:ffff');
});

test('isReservedAddress() knows network, broadcast and point-to-point prefixes', () => {
  const p24 = Prefix.parse('10.0.0.0/24');
  assert.ok(isReservedAddress(p24, IP.parse('10.0.0.0')));
  assert.ok(isReservedAddress(p24, IP.parse('10.0.0.255')));
  assert.ok(!isReservedAddress(p24, IP.parse('10.0.0.1')));
  assert.ok(!isReservedAddress(Prefix.parse('10.0.0.0/31'), IP.parse('10.0.0.0')));
  assert.ok(isReservedAddress(Prefix.parse('fd00::/64'), IP.parse('fd00::')));
  assert.ok(!isReservedAddress(Prefix.parse('fd00::/64'), IP.parse('fd00::ffff:ffff:ffff:ffff')));
});
