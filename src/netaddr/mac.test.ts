import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, InvalidError } from '../errors.js';
import { IP } from './ip.js';
import { MAC } from './mac.js';

test('MAC.parse() accepts colons or dashes in any case', () => {
  assert.equal(MAC.parse('02:42:AC:11:00:02').toString(), '02:42:ac:11:00:02');
  assert.equal(MAC.parse('02-42-ac-11-00-02').toString(), '02:42:ac:11:00:02');
  assert.ok(MAC.parse('AA-BB-CC-DD-EE-FF').equals(MAC.parse('aa:bb:cc:dd:ee:ff')));
});

test('MAC.parse() refuses bad text with MAC_INVALID', () => {
  for (const bad of [
    '02:42:ac:11:00',
    '02:42:ac:11:00:02:03',
    '02:42-ac:11:00:02',
    '2:42:ac:11:0:2',
    '02:42:ac:11:00:zz',
    '0242.ac11.0002',
    '',
  ]) {
    assert.throws(
      () => MAC.parse(bad),
      (err: unknown) =>
        err instanceof InvalidError &&
        err.code === 'MAC_INVALID' &&
        err.message === `Invalid MAC address "${bad}"`,
      bad,
    );
    assert.equal(MAC.tryParse(bad), undefined);
  }
});

test('MAC.fromIPv4() uses the 02:42 prefix and the address bytes', () => {
  const mac = MAC.fromIPv4(IP.parse('172.17.0.2'));
  assert.equal(mac.toString(), '02:42:ac:11:00:02');
  assert.ok(mac.isUnicast && mac.isLocallyAdministered);
  assert.throws(() => MAC.fromIPv4(IP.parse('::1')), { code: 'MAC_INVALID' });
});

test('MAC.random() sets the local bit and clears the group bit', () => {
  const mac = MAC.random(new Uint8Array([0xff, 1, 2, 3, 4, 5]));
  assert.equal(mac.toString(), 'fe:01:02:03:04:05');
  assert.ok(mac.isUnicast && mac.isLocallyAdministered);
  const zero = MAC.random(new Uint8Array(6));
  assert.equal(zero.toString(), '02:00:00:00:00:00');
  assert.throws(() => MAC.random(new Uint8Array(5)), BugError);
});

test('MAC.random() does not keep a reference to the caller bytes', () => {
  const bytes = new Uint8Array([0, 1, 2, 3, 4, 5]);
  const mac = MAC.random(bytes);
  bytes[5] = 9;
  assert.equal(mac.toString(), '02:01:02:03:04:05');
});

test('MAC predicates read the group and local bits', () => {
  assert.ok(!MAC.parse('01:00:5e:00:00:01').isUnicast);
  assert.ok(!MAC.parse('00:1b:21:00:00:01').isLocallyAdministered);
});

test('MAC.bytes() and fromBytes() round-trip', () => {
  const mac = MAC.parse('de:ad:be:ef:00:01');
  assert.ok(MAC.fromBytes(mac.bytes()).equals(mac));
  assert.throws(() => MAC.fromBytes(new Uint8Array(8)), { code: 'MAC_INVALID' });
});
