import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidError } from '../errors.js';
import { splitSysctlProfile, sysctlsForEndpoint } from './sysctl-profile.js';

test('splitSysctlProfile() takes io.cnm.sysctl.* out of the driver options', () => {
  assert.deepEqual(
    splitSysctlProfile({ parent: 'eth0', 'io.cnm.sysctl.net.ipv4.ip_default_ttl': '33' }),
    { driverOptions: { parent: 'eth0' }, sysctls: { 'net.ipv4.ip_default_ttl': '33' } },
  );
});

test('splitSysctlProfile() refuses keys outside net.*', () => {
  for (const k of ['kernel.pid_max', 'net..x', 'net.', 'net/ipv4/x', 'vm.swappiness']) {
    assert.throws(
      () => splitSysctlProfile({ [`io.cnm.sysctl.${k}`]: '1' }),
      (err: unknown) => err instanceof InvalidError && err.code === 'SYSCTL_INVALID',
      k,
    );
  }
});

test('sysctlsForEndpoint() puts the interface name in for IFNAME', () => {
  assert.deepEqual(sysctlsForEndpoint({ 'net.ipv4.conf.IFNAME.arp_announce': '2' }, 'eth1'), [
    ['net.ipv4.conf.eth1.arp_announce', '2'],
  ]);
});
