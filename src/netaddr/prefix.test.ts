import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidError } from '../errors.js';
import { IP } from './ip.js';
import { Prefix } from './prefix.js';

test('Prefix.parse() clears host bits by default', () => {
  const p = Prefix.parse('10.0.0.1/24');
  assert.equal(p.toString(), '10.0.0.0/24');
  assert.equal(p.ip.toString(), '10.0.0.0');
  assert.equal(p.bits, 24);
  assert.equal(p.family, 4);
});

test('Prefix.parse() with strict refuses host bits', () => {
  assert.throws(
    () => Prefix.parse('10.0.0.1/24', { strict: true }),
    (err: unknown) =>
      err instanceof InvalidError &&
      err.code === 'PREFIX_INVALID' &&
      err.message === 'Invalid prefix "10.0.0.1/24": host bits are set',
  );
  assert.equal(Prefix.parse('10.0.0.0/24', { strict: true }).toString(), '10.0.0.0/24');
});

test('Prefix.parse() refuses bad prefixes with PREFIX_INVALID', () => {
  for (const bad of [
    '10.0.0.0',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/08',
    '10.0.0.0/',
    '10.0.0.0/8/8',
    '::/129',
    'fe80::%eth0/64',
    'x/8',
    '10.0.0.0/ 8',
  ]) {
    assert.throws(() => Prefix.parse(bad), { code: 'PREFIX_INVALID' }, bad);
    assert.equal(Prefix.tryParse(bad), undefined, bad);
  }
});

test('Prefix.parse() canonicalises IPv6', () => {
  assert.equal(Prefix.parse('2001:DB8:0:0::/32').toString(), '2001:db8::/32');
  assert.equal(Prefix.parse('::/0').toString(), '::/0');
  assert.equal(Prefix.parse('fd00::1/64').toString(), 'fd00::/64');
});

test('Prefix.contains() checks the network part and the family', () => {
  const p = Prefix.parse('192.168.16.0/20');
  assert.ok(p.contains(IP.parse('192.168.16.0')));
  assert.ok(p.contains(IP.parse('192.168.31.255')));
  assert.ok(!p.contains(IP.parse('192.168.32.0')));
  assert.ok(!p.contains(IP.parse('::ffff:192.168.16.1')));
  assert.ok(Prefix.parse('0.0.0.0/0').contains(IP.parse('1.2.3.4')));
  assert.ok(Prefix.parse('fd00::/8').contains(IP.parse('fdff::1')));
});

test('Prefix.containsPrefix() and overlaps() are containment either way', () => {
  const big = Prefix.parse('172.16.0.0/12');
  const small = Prefix.parse('172.17.0.0/16');
  assert.ok(big.containsPrefix(small));
  assert.ok(!small.containsPrefix(big));
  assert.ok(big.containsPrefix(big));
  assert.ok(big.overlaps(small) && small.overlaps(big));
  assert.ok(!small.overlaps(Prefix.parse('172.18.0.0/16')));
  assert.ok(!Prefix.parse('::/0').overlaps(Prefix.parse('0.0.0.0/0')));
});

test('Prefix.first(), last() and size() cover the whole block', () => {
  const p = Prefix.parse('10.0.0.0/24');
  assert.equal(p.first().toString(), '10.0.0.0');
  assert.equal(p.last().toString(), '10.0.0.255');
  assert.equal(p.size(), 256n);
  assert.equal(Prefix.parse('fd00::/64').size(), 1n << 64n);
  assert.equal(Prefix.parse('fd00::/64').last().toString(), 'fd00::ffff:ffff:ffff:ffff');
  assert.equal(Prefix.parse('::/0').size(), 1n << 128n);
});

test('Prefix handles /31 and /32 edge cases', () => {
  const p31 = Prefix.parse('10.0.0.1/31');
  assert.equal(p31.toString(), '10.0.0.0/31');
  assert.equal(p31.size(), 2n);
  assert.equal(p31.last().toString(), '10.0.0.1');
  const p32 = Prefix.parse('10.0.0.7/32', { strict: true });
  assert.equal(p32.size(), 1n);
  assert.ok(p32.first().equals(p32.last()));
  assert.ok(p32.contains(IP.parse('10.0.0.7')));
  assert.ok(!p32.contains(IP.parse('10.0.0.6')));
  assert.equal(
    Prefix.parse('::1/128').mask().toString(),
    'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  );
});

test('Prefix.nth() indexes from the network address and refuses out of range', () => {
  const p = Prefix.parse('10.0.0.0/30');
  assert.equal(p.nth(0n).toString(), '10.0.0.0');
  assert.equal(p.nth(3n).toString(), '10.0.0.3');
  assert.throws(() => p.nth(4n), { code: 'IP_OVERFLOW' });
  assert.throws(() => p.nth(-1n), { code: 'IP_OVERFLOW' });
  assert.equal(
    Prefix.parse('fd00::/64')
      .nth(1n << 63n)
      .toString(),
    'fd00::8000:0:0:0',
  );
});

test('Prefix.fromIP() masks the address and validates the length', () => {
  assert.equal(Prefix.fromIP(IP.parse('192.168.1.77'), 24).toString(), '192.168.1.0/24');
  assert.equal(Prefix.fromIP(IP.parse('192.168.1.77'), 0).toString(), '0.0.0.0/0');
  assert.throws(() => Prefix.fromIP(IP.parse('10.0.0.1'), 33), { code: 'PREFIX_INVALID' });
  assert.throws(() => Prefix.fromIP(IP.parse('10.0.0.1'), 1.5), { code: 'PREFIX_INVALID' });
});

test('Prefix.mask() gives the netmask', () => {
  assert.equal(Prefix.parse('10.0.0.0/20').mask().toString(), '255.255.240.0');
  assert.equal(Prefix.parse('0.0.0.0/0').mask().toString(), '0.0.0.0');
  assert.equal(Prefix.parse('fd00::/64').mask().toString(), 'ffff:ffff:ffff:ffff::');
});

test('Prefix.equals() compares network and length', () => {
  assert.ok(Prefix.parse('10.0.0.9/8').equals(Prefix.parse('10.0.0.0/8')));
  assert.ok(!Prefix.parse('10.0.0.0/8').equals(Prefix.parse('10.0.0.0/9')));
});
