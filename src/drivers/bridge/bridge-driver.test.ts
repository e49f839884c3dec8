import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKernel } from '../../kernel/fake/fake-kernel.js';
import { IP, MAC, Prefix } from '../../netaddr/index.js';
import type { DriverEndpoint, DriverNetwork } from '../types.js';
import { BridgeDriver } from './bridge-driver.js';
import type { BridgeOptions } from './options.js';

function setup() {
  const kernel = new FakeKernel({ hostLinks: ['eth0', 'up0'] });
  const d = new BridgeDriver(kernel, {
    table: 'cnm',
    bridgePrefix: 'cnmbr-',
    defaultBridgeName: 'cnm0',
    mtu: 1500,
  });
  const net = (bridgeName: string): DriverNetwork<BridgeOptions> => ({
    id: 'ab'.repeat(32),
    name: 'n',
    internal: false,
    options: d.parseOptions(bridgeName ? { 'com.docker.network.bridge.name': bridgeName } : {}, {
      name: 'n',
      predefined: false,
    }),
    ipv4: { subnet: Prefix.parse('10.9.0.0/24') },
  });
  return { kernel, d, net };
}

test('ensureNetwork() refuses a host interface name and deleteNetwork() leaves it alone', async () => {
  const { kernel, d, net } = setup();
  for (const name of ['eth0', 'up0', 'lo']) {
    await assert.rejects(d.ensureNetwork(net(name)), /Cannot create bridge/);
    // The controller's rollback calls deleteNetwork: the host's interface must survive it.
    await d.deleteNetwork(net(name));
    assert.ok(await kernel.linkGet(name), `${name} still exists`);
  }
  assert.deepEqual(
    (await kernel.linkList()).map((l) => l.name).sort(),
    ['eth0', 'lo', 'up0'],
    'no half-made bridge left',
  );
});

test('ensureNetwork() adopts its own unmarked bridge (crash between create and mark)', async () => {
  const { kernel, d, net } = setup();
  const n = net('');
  await kernel.linkAdd({ kind: 'bridge', name: d.bridgeName(n) });
  await d.ensureNetwork(n);
  assert.equal((await kernel.linkGet(d.bridgeName(n)))?.alias, `cnm:net:${n.id.slice(0, 12)}`);
});

test('ensureNetwork() makes a named bridge under its derived name, then renames it', async () => {
  const { kernel, d, net } = setup();
  const n = net('mybr0');
  await d.ensureNetwork(n);
  const l = await kernel.linkGet('mybr0');
  assert.equal(l?.alias, `cnm:net:${n.id.slice(0, 12)}`);
  assert.equal(await kernel.linkGet(`cnmbr-${n.id}`.slice(0, 15)), undefined);
  // A re-made bridge keeps its MAC (containers' ARP caches name it).
  await kernel.linkDel('mybr0');
  await d.ensureNetwork(n);
  assert.equal((await kernel.linkGet('mybr0'))?.mac, l?.mac);
});

test('repairFirewall() re-loads the ruleset only when cnm tables are missing', async () => {
  const { kernel, d } = setup();
  await d.init();
  kernel.nftOutput = (s) =>
    s.includes('inet') ? 'iifname . oifname vmap @intra' : 'iifname @icc_off drop';
  assert.equal(await d.repairFirewall(), false);
  kernel.nftOutput = () => '';
  assert.equal(await d.repairFirewall(), true);
  assert.ok(kernel.nftScripts.at(-1)?.includes('table inet cnm {'));
});

test('ensureEndpoint() pins the port to its MAC and address; deleteEndpoint() unpins it', async () => {
  const { kernel, d, net } = setup();
  await d.init();
  const n = net('');
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
  const pin = [
    'add element bridge cnm ep_ports { "vethcd1" }',
    'add element bridge cnm ep_mac { "vethcd1" . 02:42:0a:09:00:02 }',
    'add element bridge cnm ep_ip4 { "vethcd1" . 10.9.0.2 }',
  ].join('\n');
  // A failed script leaves no element in the mirror (a later reload would not claim it).
  kernel.failNext('nftRun', 'EINVAL');
  await assert.rejects(d.ensureEndpoint(n, ep));
  await d.reloadFirewall();
  assert.ok(!kernel.nftScripts.at(-1)!.includes('vethcd1'));
  await d.ensureEndpoint(n, ep);
  assert.ok(kernel.nftScripts.includes(pin));
  await d.ensureEndpoint(n, ep); // restore path: nothing to add again
  assert.equal(kernel.nftScripts.filter((s) => s === pin).length, 1);
  await d.reloadFirewall();
  assert.ok(kernel.nftScripts.at(-1)!.includes(pin), 'a reload restores the elements');
  await d.deleteEndpoint(n, ep);
  assert.equal(await kernel.linkGet('vethcd1'), undefined);
  assert.equal(kernel.nftScripts.at(-1), pin.replaceAll('add element', 'delete element'));
  // The pin is the batch's first step: when a later step fails the elements are in place, the
  // mirror keeps them, and deleteEndpoint (the caller's undo) removes them.
  const scripts = kernel.nftScripts.length;
  kernel.failNext('linkAdd', 'EPERM');
  await assert.rejects(d.ensureEndpoint(n, ep), /EPERM/);
  assert.deepEqual(kernel.nftScripts.slice(scripts), [pin]);
  await d.deleteEndpoint(n, ep);
  assert.equal(kernel.nftScripts.at(-1), pin.replaceAll('add element', 'delete element'));
});
