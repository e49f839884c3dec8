import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ForbiddenError, InvalidError } from '../../errors.js';
import { FakeKernel } from '../../kernel/fake/fake-kernel.js';
import { IP, Prefix } from '../../netaddr/index.js';
import { BridgeDriver } from '../bridge/bridge-driver.js';
import type { DriverNetwork } from '../types.js';
import { parseOverlayOptions, type OverlayOptions } from './options.js';
import { OverlayDriver } from './overlay-driver.js';

describe('overlay options', () => {
  test("parseOverlayOptions() reads the VNI and the MTU, ignores other drivers' options", () => {
    assert.deepEqual(
      parseOverlayOptions({
        'com.docker.network.driver.overlay.vxlanid_list': '4242',
        'com.docker.network.driver.mtu': '1400',
        'com.docker.network.bridge.name': 'x',
      }),
      { vni: 4242, mtu: 1400 },
    );
    assert.deepEqual(parseOverlayOptions({}), { vni: 0, mtu: 0 });
  });

  test('parseOverlayOptions() refuses bad VNIs, multicast mode and encryption', () => {
    for (const v of ['0', '16777216', 'x', '1,2']) {
      assert.throws(
        () => parseOverlayOptions({ 'com.docker.network.driver.overlay.vxlanid_list': v }),
        InvalidError,
      );
    }
    assert.throws(() => parseOverlayOptions({ 'io.cnm.overlay.mode': 'multicast' }), InvalidError);
    assert.throws(
      () => parseOverlayOptions({ encrypted: '' }),
      (err) => err instanceof ForbiddenError && /IPsec ESP/.test(err.message),
    );
    assert.deepEqual(parseOverlayOptions({ encrypted: 'false' }), { vni: 0, mtu: 0 });
  });
});

const ID = 'ab'.repeat(32);

function overlayNet(options: OverlayOptions): DriverNetwork<OverlayOptions> {
  return {
    id: ID,
    name: 'ov',
    options,
    internal: false,
    ipv4: { subnet: Prefix.parse('10.0.9.0/24'), gateway: IP.parse('10.0.9.1') },
  };
}

async function setup(advertiseAddr?: string) {
  const k = new FakeKernel({ hostLinks: ['ul0'] });
  if (advertiseAddr) await k.addrAdd('ul0', `${advertiseAddr}/24`);
  const bridge = new BridgeDriver(k, {
    table: 'cnm',
    bridgePrefix: 'cnmbr-',
    defaultBridgeName: 'cnm0',
    mtu: 1500,
  });
  const d = new OverlayDriver(k, bridge, {
    table: 'cnm',
    ...(advertiseAddr ? { advertiseAddr } : {}),
  });
  await bridge.init();
  await d.init();
  return { k, d };
}

describe('overlay driver', () => {
  test('ensureNetwork() makes a bridge and a VXLAN device on it, MTU underlay - 50', async () => {
    const { k, d } = await setup('198.51.100.11');
    const n = overlayNet({ vni: 4097, mtu: 0 });
    await d.ensureNetwork(n);
    const [br, vx] = d.ownedLinks(n) as [string, string];
    const bridge = await k.linkGet(br);
    const vxlan = await k.linkGet(vx);
    assert.equal(bridge?.kind, 'bridge');
    assert.equal(bridge?.mtu, 1450);
    assert.equal(vxlan?.kind, 'vxlan');
    assert.equal(vxlan?.master, bridge?.index);
    assert.equal(vxlan?.up, true);
    assert.ok(k.nftScripts.some((s) => s.includes('maxseg size set rt mtu')));
    // Idempotent (restart path).
    await d.ensureNetwork(n);
    await d.deleteNetwork(n);
    assert.equal(await k.linkGet(vx), undefined);
    assert.equal(await k.linkGet(br), undefined);
  });

  test('remote endpoints become FDB and neighbour entries, also when the network comes later', async () => {
    const { k, d } = await setup('198.51.100.11');
    const n = overlayNet({ vni: 4097, mtu: 0 });
    const remote = {
      id: 'r1',
      mac: '02:42:0a:00:09:05',
      ipv4: '10.0.9.5',
      ipv6: 'fd00:9::5',
      vtep: '198.51.100.12',
    };
    await d.setRemote(ID, remote);
    await d.ensureNetwork(n);
    const vx = d.ownedLinks(n)[1]!;
    const fdb = (await k.neighList(undefined, 'bridge')).filter((e) => e.dev === vx);
    assert.deepEqual(
      fdb.map((e) => [e.mac, e.dst]),
      [['02:42:0a:00:09:05', '198.51.100.12']],
    );
    const arp = (await k.neighList(undefined, 4)).filter((e) => e.dev === vx);
    assert.deepEqual(
      arp.map((e) => [e.dst, e.mac]),
      [['10.0.9.5', '02:42:0a:00:09:05']],
    );
    const ndp = (await k.neighList(undefined, 6)).filter((e) => e.dev === vx);
    assert.deepEqual(
      ndp.map((e) => [e.dst, e.mac, e.permanent]),
      [['fd00:9::5', '02:42:0a:00:09:05', true]],
    );
    // A new IPv6 address replaces the old entry.
    await d.setRemote(ID, { ...remote, ipv6: 'fd00:9::6' });
    const ndp2 = (await k.neighList(undefined, 6)).filter((e) => e.dev === vx);
    assert.deepEqual(
      ndp2.map((e) => e.dst),
      ['fd00:9::6'],
    );
    await d.deleteRemote(ID, 'r1');
    assert.equal((await k.neighList(undefined, 'bridge')).filter((e) => e.dev === vx).length, 0);
    assert.equal((await k.neighList(undefined, 4)).filter((e) => e.dev === vx).length, 0);
    assert.equal((await k.neighList(undefined, 6)).filter((e) => e.dev === vx).length, 0);
    await d.deleteRemote(ID, 'unknown'); // ignored
  });

  test("without a cluster, or with an MTU above the underlay's, networks are refused", async () => {
    const { d } = await setup();
    await assert.rejects(
      d.ensureNetwork(overlayNet({ vni: 4097, mtu: 0 })),
      (err) => err instanceof ForbiddenError && err.code === 'CLUSTER_REQUIRED',
    );
    const { d: d2 } = await setup('198.51.100.11');
    await assert.rejects(
      d2.ensureNetwork(overlayNet({ vni: 4097, mtu: 1480 })),
      (err) => err instanceof ForbiddenError && err.code === 'OVERLAY_MTU_TOO_LARGE',
    );
  });
});
