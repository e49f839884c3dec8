import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKernel } from '../../kernel/fake/fake-kernel.js';
import { IP, MAC, Prefix } from '../../netaddr/index.js';
import type { DriverEndpoint, DriverNetwork } from '../types.js';
import { BridgeDriver } from './bridge-driver.js';
import type { BridgeOptions } from './options.js';

test('ensureEndpoint() puts the container port in hairpin mode, also on the restore path', async () => {
  const kernel = new FakeKernel({ hostLinks: ['eth0'] });
  const d = new BridgeDriver(kernel, {
    table: 'cnm',
    bridgePrefix: 'cnmbr-',
    defaultBridgeName: 'cnm0',
    mtu: 1500,
  });
  await d.init();
  const n: DriverNetwork<BridgeOptions> = {
    id: 'ef'.repeat(32),
    name: 'n',
    internal: false,
    options: d.parseOptions({}, { name: 'n', predefined: false }),
    ipv4: { subnet: Prefix.parse('10.9.0.0/24') },
  };
  await d.ensureNetwork(n);
  await kernel.netnsAdd('/run/test/sb1');
  const ep: DriverEndpoint = {
    id: 'cd'.repeat(32),
    ns: '/run/test/sb1',
    ifName: 'eth0',
    hostIfName: 'vethcd1',
    mac: MAC.parse('02:42:0a:09:00:02'),
    ipv4: { address: IP.parse('10.9.0.2'), prefixLen: 24 },
    gatewayEndpoint: true,
  };
  await d.ensureEndpoint(n, ep);
  assert.equal((await kernel.linkGet('vethcd1'))?.hairpin, true);
  // Released from the bridge behind cnm's back: the restore path re-enslaves it, which resets
  // the port's settings, and sets hairpin again.
  await kernel.linkSet('vethcd1', { master: null });
  await d.ensureEndpoint(n, ep);
  const port = await kernel.linkGet('vethcd1');
  assert.equal(port?.master, (await kernel.linkGet(d.bridgeName(n)))?.index);
  assert.equal(port?.hairpin, true);
});
