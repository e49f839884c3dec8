/**
 * br_netfilter per bridge: `setBridgedFiltering` switches the bridge's own nf_call_iptables, and
 * the setting outlives the bridge (re-made by drift repair) and is reset on a bridge found on
 * with nothing asking for it (a restart after the policies went away).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKernel } from '../../kernel/fake/fake-kernel.js';
import { Prefix } from '../../netaddr/index.js';
import type { DriverNetwork } from '../types.js';
import { BridgeDriver } from './bridge-driver.js';
import type { BridgeOptions } from './options.js';

function setup() {
  const kernel = new FakeKernel();
  const d = new BridgeDriver(kernel, {
    table: 'cnm',
    bridgePrefix: 'cnmbr-',
    defaultBridgeName: 'cnm0',
    mtu: 1500,
  });
  const net: DriverNetwork<BridgeOptions> = {
    id: 'cd'.repeat(32),
    name: 'n',
    internal: false,
    options: d.parseOptions({}, { name: 'n', predefined: false }),
    ipv4: { subnet: Prefix.parse('10.9.0.0/24') },
  };
  return { kernel, d, net, name: d.bridgeName(net) };
}

test('a new bridge has br_netfilter off; setBridgedFiltering switches it', async () => {
  const { kernel, d, net, name } = setup();
  await d.ensureNetwork(net);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, false);
  await d.setBridgedFiltering(net, true);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, true);
  // Re-asserted (restore, drift repair) while wanted: stays on.
  await d.ensureNetwork(net);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, true);
  await d.setBridgedFiltering(net, false);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, false);
});

test('a re-made bridge gets the switch back; one found on with nothing asking is turned off', async () => {
  const { kernel, d, net, name } = setup();
  await d.ensureNetwork(net);
  await d.setBridgedFiltering(net, true);
  await kernel.linkDel(name);
  await d.ensureNetwork(net);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, true, 're-made with it on');

  // A fresh driver (cnmd restarted) finds the bridge on, but no policy asked for it yet.
  const again = new BridgeDriver(kernel, {
    table: 'cnm',
    bridgePrefix: 'cnmbr-',
    defaultBridgeName: 'cnm0',
    mtu: 1500,
  });
  await again.ensureNetwork(net);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, false);
  // Removing the network forgets the wish.
  await d.deleteNetwork(net);
  await d.ensureNetwork(net);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, false);
});
