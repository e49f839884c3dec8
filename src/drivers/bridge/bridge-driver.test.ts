import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKernel } from '../../kernel/fake/fake-kernel.js';
import { IP, MAC, Prefix } from '../../netaddr/index.js';
import type { DriverEndpoint, DriverNetwork } from '../types.js';
import { BridgeDriver, type BridgeDriverConfig } from './bridge-driver.js';
import { shapeJson } from './nft-json.test-helper.js';
import {
  FirewallState,
  formatElementChanges,
  parseFirewallShape,
  structureOnly,
  type FirewallShape,
} from './firewall.js';
import type { BridgeOptions } from './options.js';

function setup(extra: Partial<BridgeDriverConfig> = {}) {
  const kernel = new FakeKernel({ hostLinks: ['eth0', 'up0'] });
  const cfg: BridgeDriverConfig = {
    table: 'cnm',
    bridgePrefix: 'cnmbr-',
    defaultBridgeName: 'cnm0',
    mtu: 1500,
    // Every drift pass lists the elements: these tests call repairFirewall() back to back.
    elementCheckShare: Number.POSITIVE_INFINITY,
    ...extra,
  };
  const d = new BridgeDriver(kernel, cfg);
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
  /** An endpoint in sandbox /run/test/sb1: host end `veth<xx>1`, address 10.9.0.<host>. */
  const endpoint = (xx: string, host: number): DriverEndpoint => ({
    id: xx.repeat(32),
    ns: '/run/test/sb1',
    ifName: 'eth0',
    hostIfName: `veth${xx}1`,
    mac: MAC.parse(`02:42:0a:09:00:${host.toString(16).padStart(2, '0')}`),
    ipv4: { address: IP.parse(`10.9.0.${host}`), prefixLen: 24 },
    gatewayEndpoint: true,
  });
  return { kernel, d, net, cfg, endpoint };
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

test('repairFirewall() lists elements only within its time share, the structure every pass', async () => {
  // A share so small that any listing's cost puts the next element listing 10 s away.
  const { kernel, d, net } = setup({ elementCheckShare: 1e-12 });
  await d.init();
  await d.ensureNetwork(net(''));
  const terse: boolean[] = [];
  const mirror = new FirewallState('cnm');
  mirror.addNetwork({
    bridge: d.bridgeName(net('')),
    subnet4: '10.9.0.0/24',
    internal: false,
    icc: true,
    masquerade: true,
  });
  const shape = mirror.expectedShape();
  kernel.nftOutput = (script, _json, t) => {
    if (script.startsWith('list table')) terse.push(t);
    const fam = script.startsWith('list table inet') ? 'inet' : 'bridge';
    return shapeJson(t ? structureOnly(shape) : shape, fam);
  };
  assert.deepEqual(await d.repairFirewall(), []);
  assert.deepEqual(await d.repairFirewall(), []);
  assert.deepEqual(terse, [false, false, true, true], 'a full listing, then terse ones');
  // A chain gone is seen by a terse pass; the re-load makes the next pass a full one again.
  const broken = structureOnly(shape);
  broken.chains.delete('inet forward');
  kernel.nftOutput = (script, _json, t) => {
    if (script.startsWith('list table')) terse.push(t);
    return shapeJson(broken, script.startsWith('list table inet') ? 'inet' : 'bridge');
  };
  assert.deepEqual(await d.repairFirewall(), ['ruleset re-loaded: chain inet forward is missing']);
  terse.length = 0;
  await d.repairFirewall();
  assert.deepEqual(terse.slice(0, 2), [false, false]);
});

test('repairFirewall() adds back missing elements, and re-loads only when more is wrong', async () => {
  const { kernel, d, net } = setup();
  await d.init();
  const n = net('');
  await d.ensureNetwork(n);
  // The kernel as intended: the shape the driver's mirror holds.
  const mirror = new FirewallState('cnm');
  mirror.addNetwork({
    bridge: d.bridgeName(n),
    subnet4: '10.9.0.0/24',
    internal: false,
    icc: true,
    masquerade: true,
  });
  const intact = mirror.expectedShape();
  const listing = (shape: FirewallShape) => (script: string) =>
    script.startsWith('list table inet') ? shapeJson(shape, 'inet') : shapeJson(shape, 'bridge');
  kernel.nftOutput = listing(intact);
  const before = kernel.nftScripts.length;
  assert.deepEqual(await d.repairFirewall(), []);
  assert.equal(kernel.nftScripts.length, before + 2, 'only the two listings');

  // One element deleted: only that set's elements are added again.
  const short = parseFirewallShape([shapeJson(intact, 'inet'), shapeJson(intact, 'bridge')]);
  short.sets.set('inet hairpin4', 0);
  kernel.nftOutput = listing(short);
  assert.deepEqual(await d.repairFirewall(), ['inet hairpin4: 1 element(s) restored']);
  assert.equal(
    kernel.nftScripts.at(-1),
    `add element inet cnm hairpin4 { "${d.bridgeName(n)}" . 10.9.0.0/24 }`,
  );

  // A table gone (the listing fails): the whole ruleset, with every element.
  kernel.failNext('nftRun', 'ENOENT');
  assert.deepEqual(await d.repairFirewall(), ['ruleset re-loaded: a table is missing']);
  assert.ok(kernel.nftScripts.at(-1)?.includes('table inet cnm {'));
  assert.ok(kernel.nftScripts.at(-1)?.includes('add element inet cnm hairpin4'));

  // An element changed in place (same count): a re-load; if the kernel still lists it so after
  // the re-load, that is reported once and not re-loaded every pass.
  const changed = parseFirewallShape([shapeJson(intact, 'inet'), shapeJson(intact, 'bridge')]);
  changed.elements!.set('inet hairpin4', [`${d.bridgeName(n)} . 10.9.9.0/24`]);
  kernel.nftOutput = listing(changed);
  const why = `set inet hairpin4 holds "${d.bridgeName(n)} . 10.9.9.0/24", which cnm did not put there`;
  assert.deepEqual(await d.repairFirewall(), [`ruleset re-loaded: ${why}`]);
  const afterReload = kernel.nftScripts.length;
  assert.deepEqual(await d.repairFirewall(), [
    `not re-loading again: ${why} (still so after a re-load)`,
  ]);
  assert.deepEqual(await d.repairFirewall(), []);
  assert.equal(kernel.nftScripts.length, afterReload + 4, 'only listings, no more re-loads');

  // Listings identical to ones that compared equal count as equal only while the mirror is
  // unchanged: after the network is gone, the same listings hold elements cnm no longer wants.
  kernel.nftOutput = listing(intact);
  assert.deepEqual(await d.repairFirewall(), []);
  assert.deepEqual(await d.repairFirewall(), []);
  await d.deleteNetwork(n);
  assert.match(
    (await d.repairFirewall())[0] ?? '',
    /^ruleset re-loaded: set \S+ \S+ has 1 elements, not 0$/,
  );
});

test('ensureEndpoint() pins the port to its MAC and address; deleteEndpoint() unpins it', async () => {
  const { kernel, d, net, endpoint } = setup();
  await d.init();
  const n = net('');
  await d.ensureNetwork(n);
  await kernel.netnsAdd('/run/test/sb1');
  const ep = endpoint('cd', 2);
  const pin = [
    'add element bridge cnm ep_ports { "vethcd1" }',
    'add element bridge cnm ep_mac { "vethcd1" . 02:42:0a:09:00:02 }',
    'add element bridge cnm ep_ip4 { "vethcd1" . 10.9.0.2 }',
    'add element bridge cnm ep_src4 { "vethcd1" . 02:42:0a:09:00:02 . 10.9.0.2 }',
  ];
  const unpin = pin.map((l) => l.replace('add element', 'delete element'));
  /** The element batches of table bridge cnm since `from`, as nft statements. */
  const batches = (from = 0): string[][] =>
    kernel.nftElementBatches
      .slice(from)
      .map((b) => formatElementChanges(b.family, b.table, b.changes));
  // A failed element batch leaves no element in the mirror (a later reload would not claim it),
  // and nothing after it in the batch ran.
  kernel.failNext('nftElements', 'EINVAL');
  await assert.rejects(d.ensureEndpoint(n, ep), /EINVAL/);
  assert.equal(await kernel.linkGet('vethcd1'), undefined);
  await d.reloadFirewall();
  assert.ok(!kernel.nftScripts.at(-1)!.includes('vethcd1'));
  const scripts = kernel.nftScripts.length;
  await d.ensureEndpoint(n, ep);
  assert.deepEqual(batches(), [pin], 'one element batch, no libnftables script');
  assert.equal(kernel.nftScripts.length, scripts);
  await d.ensureEndpoint(n, ep); // restore path: nothing to add again
  assert.equal(batches().length, 1);
  await d.reloadFirewall();
  assert.ok(kernel.nftScripts.at(-1)!.includes(pin.join('\n')), 'a reload restores the elements');
  // A port that cannot be deleted stays pinned.
  kernel.failNext('linkDel', 'EBUSY');
  await assert.rejects(d.deleteEndpoint(n, ep), /EBUSY/);
  assert.ok(await kernel.linkGet('vethcd1'));
  await d.reloadFirewall();
  assert.ok(kernel.nftScripts.at(-1)!.includes(pin.join('\n')), 'still pinned');
  await d.deleteEndpoint(n, ep);
  assert.equal(await kernel.linkGet('vethcd1'), undefined);
  assert.deepEqual(batches().at(-1), unpin);
  // The pin is the batch's first step: when a later step fails the elements are in place, the
  // mirror keeps them, and deleteEndpoint (the caller's undo) removes them.
  const before = kernel.nftElementBatches.length;
  kernel.failNext('linkAdd', 'EPERM');
  await assert.rejects(d.ensureEndpoint(n, ep), /EPERM/);
  assert.deepEqual(batches(before), [pin]);
  await d.deleteEndpoint(n, ep);
  assert.deepEqual(batches().at(-1), unpin);
});

test('ensureEndpoint() on an ICC-off network adds the port to icc_off in the same batch', async () => {
  const { kernel, d, net, endpoint } = setup();
  await d.init();
  const n = net('');
  n.options.icc = false;
  await d.ensureNetwork(n);
  await kernel.netnsAdd('/run/test/sb1');
  const ep = endpoint('ef', 3);
  const from = kernel.nftElementBatches.length;
  await d.ensureEndpoint(n, ep);
  const added = kernel.nftElementBatches.slice(from);
  assert.equal(added.length, 1);
  assert.deepEqual(
    formatElementChanges('bridge', 'cnm', added[0]!.changes).at(-1),
    'add element bridge cnm icc_off { "vethef1" }',
  );
  await d.deleteEndpoint(n, ep);
  assert.deepEqual(
    formatElementChanges('bridge', 'cnm', kernel.nftElementBatches.at(-1)!.changes)[0],
    'delete element bridge cnm icc_off { "vethef1" }',
  );
  // A failed element batch leaves the port out of the mirror's icc_off as well.
  kernel.failNext('nftElements', 'EINVAL');
  await assert.rejects(d.ensureEndpoint(n, ep), /EINVAL/);
  await d.reloadFirewall();
  assert.ok(!kernel.nftScripts.at(-1)!.includes('vethef1'));
});

test('setVip() rolls a new VIP back when its address cannot be added, then works again', async () => {
  const { kernel, d, net } = setup();
  await d.init();
  const n = net('');
  await d.ensureNetwork(n);
  const vip = { serviceId: 'cd'.repeat(32), vip: '10.9.0.200', backends: ['10.9.0.2'] };
  const hasAddr = async () =>
    (await kernel.addrList()).some((a) => a.address === '10.9.0.200' && a.prefixLen === 32);
  kernel.failNext('addrAdd', 'EPERM');
  await assert.rejects(d.setVip(n, vip), /EPERM/);
  assert.match(kernel.nftScripts.at(-1) ?? '', /delete chain inet cnm svc_cdcdcdcdcdcd/);
  assert.equal(await hasAddr(), false);
  // Nothing remembered: the next call is a fresh VIP again, address and chain.
  await d.setVip(n, vip);
  assert.equal(await hasAddr(), true);
  assert.match(kernel.nftScripts.at(-1) ?? '', /add chain inet cnm svc_cdcdcdcdcdcd/);
});

test('setVip() takes the new address away again when the nft batch fails', async () => {
  const { kernel, d, net } = setup();
  await d.init();
  const n = net('');
  await d.ensureNetwork(n);
  const vip = { serviceId: 'ef'.repeat(32), vip: '10.9.0.201', backends: [] };
  kernel.failNext('nftRun', 'EINVAL');
  await assert.rejects(d.setVip(n, vip), /EINVAL/);
  assert.equal(
    (await kernel.addrList()).some((a) => a.address === '10.9.0.201'),
    false,
    'address rolled back',
  );
  await d.setVip(n, vip);
  assert.ok((await kernel.addrList()).some((a) => a.address === '10.9.0.201'));
});

// ---- br_netfilter per bridge (`setBridgedFiltering`): the bridge's own nf_call_iptables; the
// setting outlives a bridge re-made by drift repair and is reset on one found on at restart.

test('a new bridge has br_netfilter off; setBridgedFiltering switches it', async () => {
  const { kernel, d, net } = setup();
  const n = net('');
  const name = d.bridgeName(n);
  await d.ensureNetwork(n);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, false);
  await d.setBridgedFiltering(n, true);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, true);
  // Re-asserted (restore, drift repair) while wanted: stays on.
  await d.ensureNetwork(n);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, true);
  await d.setBridgedFiltering(n, false);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, false);
});

test('a re-made bridge gets the switch back; one found on with nothing asking is turned off', async () => {
  const { kernel, d, net, cfg } = setup();
  const n = net('');
  const name = d.bridgeName(n);
  await d.ensureNetwork(n);
  await d.setBridgedFiltering(n, true);
  await kernel.linkDel(name);
  await d.ensureNetwork(n);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, true, 're-made with it on');

  // A fresh driver (cnmd restarted) finds the bridge on, but no policy asked for it yet.
  const again = new BridgeDriver(kernel, cfg);
  await again.ensureNetwork(n);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, false);
  // Removing the network forgets the wish.
  await d.deleteNetwork(n);
  await d.ensureNetwork(n);
  assert.equal((await kernel.linkGet(name))?.bridgeNfCall, false);
});
