import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidError } from '../errors.js';
import { IP } from './ip.js';

test('IP.parse() reads dotted-quad IPv4', () => {
  const ip = IP.parse('192.168.1.10');
  assert.equal(ip.family, 4);
  assert.equal(ip.value, 0xc0a8010an);
  assert.equal(ip.toString(), '192.168.1.10');
});

test('IP.parse() refuses bad IPv4 with IP_INVALID', () => {
  for (const bad of [
    '300.1.1.1',
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4',
    '1.2.3.04',
    '1.2.3.-1',
    '',
    ' 1.2.3.4',
    '1..2.3',
    'a.b.c.d',
    '1.2.3.4/24',
  ]) {
    assert.throws(
      () => IP.parse(bad),
      (err: unknown) =>
        err instanceof InvalidError &&
        err.code === 'IP_INVALID' &&
        err.message === `Invalid IP address "${bad}"`,
      bad,
    );
  }
});

test('IP.parse() reads IPv6 forms with "::" and embedded IPv4', () => {
  const cases: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4'],
    ['::FFFF:10.0.0.1', '::ffff:10.0.0.1'],
    ['0:0:0:0:0:ffff:102:304', '::ffff:1.2.3.4'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['FE80::A', 'fe80::a'],
  ];
  for (const [input, want] of cases) {
    const ip = IP.parse(input);
    assert.equal(ip.family, 6, input);
    assert.equal(ip.toString(), want, input);
  }
});

test('IP.parse() refuses bad IPv6, zones included', () => {
  const bad = [
    'fe80::1%eth0',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8::',
    '::1:2:3:4:5:6:7:8',
    '1::2::3',
    ':::',
    ':1::',
    '1::2:',
    '12345::',
    'g::',
    '::1.2.3.04',
    '::1.2.3.4:5',
    '1.2.3.4::',
    '1:2:3:4:5:6:7:1.2.3.4',
    '[::1]',
  ];
  for (const s of bad) assert.equal(IP.tryParse(s), undefined, s);
});

test('IP.toString() gives RFC 5952 canonical text', () => {
  // Examples from RFC 5952 sections 4 and 5.
  const cases: [string, string][] = [
    ['2001:0db8::0001', '2001:db8::1'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['2001:db8::0:1', '2001:db8::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:DB8:AAAA:BBBB:CCCC:DDDD:EEEE:AAAA', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa'],
    ['2001:db8::1:0:0:0:1', '2001:db8:0:1::1'],
    ['0:0:0:0:0:ffff:c000:280', '::ffff:192.0.2.128'],
  ];
  for (const [input, want] of cases) assert.equal(IP.parse(input).toString(), want, input);
});

test('IP.tryParse() returns undefined instead of throwing', () => {
  assert.equal(IP.tryParse('nope'), undefined);
  assert.equal(IP.tryParse('10.0.0.1')?.toString(), '10.0.0.1');
});

test('IP.equals() and compare() order IPv4 before IPv6, then by value', () => {
  assert.ok(IP.parse('::1').equals(IP.parse('0::0:1')));
  assert.ok(!IP.parse('1.2.3.4').equals(IP.parse('::ffff:1.2.3.4')));
  const sorted = ['::1', '10.0.0.2', '10.0.0.1', '::']
    .map((s) => IP.parse(s))
    .sort((a, b) => a.compare(b))
    .map(String);
  assert.deepEqual(sorted, ['10.0.0.1', '10.0.0.2', '::', '::1']);
  assert.equal(IP.parse('10.0.0.1').compare(IP.parse('10.0.0.1')), 0);
});

test('IP.add() carries across octets and accepts negative steps', () => {
  assert.equal(IP.parse('10.0.0.255').add(1).toString(), '10.0.1.0');
  assert.equal(IP.parse('10.0.1.0').add(-1n).toString(), '10.0.0.255');
  assert.equal(IP.parse('::ffff').add(1).toString(), '::1:0');
});

test('IP.add() throws IP_OVERFLOW past the end of the family', () => {
  const overflow = (err: unknown): boolean =>
    err instanceof InvalidError && err.code === 'IP_OVERFLOW';
  assert.throws(() => IP.parse('255.255.255.255').add(1), overflow);
  assert.throws(() => IP.parse('0.0.0.0').add(-1), overflow);
  assert.throws(() => IP.parse('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff').add(1n), overflow);
});

test('IP predicates classify loopback, unspecified, link-local and multicast', () => {
  assert.ok(IP.parse('127.0.0.1').isLoopback);
  assert.ok(IP.parse('127.255.0.9').isLoopback);
  assert.ok(IP.parse('::1').isLoopback);
  assert.ok(IP.parse('::ffff:127.0.0.1').isLoopback);
  assert.ok(!IP.parse('128.0.0.1').isLoopback);
  assert.ok(IP.parse('0.0.0.0').isUnspecified);
  assert.ok(IP.parse('::').isUnspecified);
  assert.ok(!IP.parse('::1').isUnspecified);
  assert.ok(IP.parse('169.254.3.4').isLinkLocal);
  assert.ok(IP.parse('fe80::1').isLinkLocal);
  assert.ok(IP.parse('febf::1').isLinkLocal);
  assert.ok(!IP.parse('fec0::1').isLinkLocal);
  assert.ok(IP.parse('224.0.0.1').isMulticast);
  assert.ok(IP.parse('239.255.255.255').isMulticast);
  assert.ok(!IP.parse('240.0.0.1').isMulticast);
  assert.ok(IP.parse('ff02::1').isMulticast);
});

test('IP.bytes() and IP.fromBytes() round-trip in network byte order', () => {
  assert.deepEqual([...IP.parse('10.1.2.3').bytes()], [10, 1, 2, 3]);
  const v6 = IP.parse('2001:db8::1');
  const bytes = v6.bytes();
  assert.equal(bytes.length, 16);
  assert.equal(bytes[0], 0x20);
  assert.equal(bytes[15], 1);
  assert.ok(IP.fromBytes(bytes).equals(v6));
  assert.throws(() => IP.fromBytes(new Uint8Array(5)), { code: 'IP_INVALID' });
});

test('IP.fromValue() refuses values outside the family', () => {
  assert.equal(IP.fromValue(4, 1n).toString(), '0.0.0.1');
  assert.throws(() => IP.fromValue(4, 1n << 32n), { code: 'IP_INVALID' });
  assert.throws(() => IP.fromValue(6, -1n), { code: 'IP_INVALID' });
});

test('IP.unmap() turns an IPv4-mapped address into IPv4', () => {
  assert.equal(IP.parse('::ffff:10.0.0.1').unmap().family, 4);
  assert.equal(IP.parse('::1').unmap().family, 6);
});

test('IP.toJSON() writes the text form', () => {
  assert.equal(JSON.stringify({ ip: IP.parse('2001:DB8::1') }), '{"ip":"2001:db8::1"}');
});
