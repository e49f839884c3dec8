import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ForbiddenError, InvalidError } from '../../errors.js';
import { FakeKernel } from '../../kernel/fake/fake-kernel.js';
import type { LinkAdd, VxlanAdd } from '../../kernel/types.js';
import { IP, Prefix } from '../../netaddr/index.js';
import { BridgeDriver } from '../bridge/bridge-driver.js';
import type { DriverNetwork } from '../types.js';
import { parseOverlayOptions, type OverlayOptions } from './options.js';
import { OverlayDriver, overlayTableScript } from './overlay-driver.js';

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
    assert.throws(() => parseOverlayOptions({ 'io.cnm.overlay.mode': 'broadcast' }), InvalidError);
    assert.throws(
      () => parseOverlayOptions({ encrypted: '' }),
      (err) => err instanceof ForbiddenError && /IPsec ESP/.test(err.message),
    );
    assert.deepEqual(parseOverlayOptions({ encrypted: 'false' }), { vni: 0, mtu: 0 });
  });
});

describe('overlay multicast options', () => {
  const MODE = 'io.cnm.overlay.mode';
  const GROUP = 'io.cnm.overlay.group';

  test('parseOverlayOptions() takes multicast mode with an IPv4 or IPv6 group', () => {
    assert.deepEqual(parseOverlayOptions({ [MODE]: 'multicast', [GROUP]: '239.1.2.3' }), {
      vni: 0,
      mtu: 0,
      mode: 'multicast',
      group: '239.1.2.3',
    });
    assert.equal(
      parseOverlayOptions({ [MODE]: 'multicast', [GROUP]: 'FF05::1:3' }).group,
      'ff05::1:3',
    );
    assert.deepEqual(parseOverlayOptions({ [MODE]: 'unicast' }), { vni: 0, mtu: 0 });
  });

  test('parseOverlayOptions() names what is wrong with a group', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ [MODE]: 'multicast' }, /needs a multicast group/],
      [{ [MODE]: 'multicast', [GROUP]: '10.0.0.1' }, /"10\.0\.0\.1".*not a multicast address/],
      [{ [MODE]: 'multicast', [GROUP]: '240.0.0.1' }, /not a multicast address/],
      [{ [MODE]: 'multicast', [GROUP]: 'fd00::1' }, /not a multicast address/],
      [{ [MODE]: 'multicast', [GROUP]: 'x' }, /"x".*not an IPv4 or IPv6 address/],
      [{ [MODE]: 'multicast', [GROUP]: '::ffff:239.1.2.3' }, /not an IPv4 or IPv6 address/],
      [{ [GROUP]: '239.1.2.3' }, /multicast mode only/],
      [{ [MODE]: 'unicast', [GROUP]: '239.1.2.3' }, /multicast mode only/],
    ];
    for (const [raw, re] of cases) {
      assert.throws(
        () => parseOverlayOptions(raw),
        (err) =>
          err instanceof InvalidError && err.code === 'OPTION_INVALID' && re.test(err.message),
        JSON.stringify(raw),
      );
    }
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
  test('the table keeps this host’s VXLAN packets out of conntrack, both ways, when clustered', () => {
    const v4 = overlayTableScript('cnm_ovl', '198.51.100.11');
    assert.match(
      v4,
      /hook prerouting priority raw;[^}]*ip daddr 198\.51\.100\.11 udp dport 4789 notrack/,
    );
    assert.match(
      v4,
      /hook output priority raw;[^}]*ip saddr 198\.51\.100\.11 udp dport 4789 notrack/,
    );
    assert.match(
      overlayTableScript('cnm_ovl', 'fd00::1'),
      /ip6 daddr fd00::1 udp dport 4789 notrack/,
    );
    const alone = overlayTableScript('cnm_ovl');
    assert.doesNotMatch(alone, /notrack/, 'no underlay address: nothing to exempt');
    assert.match(alone, /maxseg size set rt mtu/);
  });

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

  test('multicast mode: a group on the VXLAN device, learning on, no static FDB entries', async () => {
    const { k, d } = await setup('198.51.100.11');
    assert.throws(
      () =>
        d.parseOptions({ 'io.cnm.overlay.mode': 'multicast', 'io.cnm.overlay.group': 'ff05::7' }),
      (err) => err instanceof InvalidError && /underlay is IPv4/.test(err.message),
    );
    const opts = d.parseOptions({
      'io.cnm.overlay.mode': 'multicast',
      'io.cnm.overlay.group': '239.1.2.3',
    });
    const n = overlayNet({ ...opts, vni: 4098 });
    const adds: LinkAdd[] = [];
    const linkAdd = k.linkAdd.bind(k);
    k.linkAdd = (link, ...rest) => {
      adds.push(link);
      return linkAdd(link, ...rest);
    };
    await d.setRemote(ID, {
      id: 'r1',
      mac: '02:42:0a:00:09:05',
      ipv4: '10.0.9.5',
      vtep: '198.51.100.12',
    });
    await d.ensureNetwork(n);
    const vx = d.ownedLinks(n)[1]!;
    const req = adds.find((l): l is VxlanAdd => l.kind === 'vxlan' && l.name === vx);
    assert.deepEqual(
      req && { group: req.group, learning: req.learning, proxy: req.proxy, dev: req.dev },
      { group: '239.1.2.3', learning: true, proxy: true, dev: 'ul0' },
    );
    assert.equal((await k.neighList(undefined, 'bridge')).filter((e) => e.dev === vx).length, 0);
    const arp = (await k.neighList(undefined, 4)).filter((e) => e.dev === vx);
    assert.deepEqual(
      arp.map((e) => [e.dst, e.mac]),
      [['10.0.9.5', '02:42:0a:00:09:05']],
    );
    await d.deleteRemote(ID, 'r1');
    assert.equal((await k.neighList(undefined, 4)).filter((e) => e.dev === vx).length, 0);
    await d.deleteNetwork(n);
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
