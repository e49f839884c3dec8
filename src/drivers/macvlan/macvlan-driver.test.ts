import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConflictError, InvalidError, UnavailableError } from '../../errors.js';
import { allFeatures } from '../../kernel/capabilities.js';
import { FakeKernel } from '../../kernel/fake/fake-kernel.js';
import { IP, MAC, Prefix } from '../../netaddr/index.js';
import type { DriverEndpoint, DriverNetwork } from '../types.js';
import { ipvlanDriver, macvlanDriver } from './macvlan-driver.js';
import { parseIpvlanOptions, parseMacvlanOptions, parseParent } from './options.js';

describe('macvlan/ipvlan options', () => {
  test('parseMacvlanOptions() defaults to bridge mode and needs a parent', () => {
    assert.deepEqual(parseMacvlanOptions({ parent: 'eth0' }), {
      kind: 'macvlan',
      parent: { name: 'eth0' },
      mode: 'bridge',
    });
    assert.throws(() => parseMacvlanOptions({}), /"parent" is required/);
    assert.throws(
      () => parseMacvlanOptions({ parent: 'eth0', macvlan_mode: 'source' }),
      /expected one of bridge, private, vepa, passthru/,
    );
    assert.throws(() => parseMacvlanOptions({ parent: 'eth0', x: '1' }), InvalidError);
  });

  test('parseParent() reads IFACE.VID as an 802.1q sub-interface', () => {
    assert.deepEqual(parseParent('eth0.10'), { name: 'eth0.10', vlan: { lower: 'eth0', id: 10 } });
    assert.deepEqual(parseParent('br-lan'), { name: 'br-lan' });
    assert.throws(() => parseParent('eth0.4095'), /between 1 and 4094/);
    assert.throws(() => parseParent('a/b'), /Invalid parent interface/);
  });

  test('parseIpvlanOptions() takes mode and flag as Docker does', () => {
    assert.deepEqual(
      parseIpvlanOptions({ parent: 'eth0', ipvlan_mode: 'l3', ipvlan_flag: 'private' }),
      {
        kind: 'ipvlan',
        parent: { name: 'eth0' },
        mode: 'l3',
        flag: 'private',
      },
    );
    assert.throws(() => parseIpvlanOptions({ parent: 'eth0', ipvlan_mode: 'l4' }), /l2, l3, l3s/);
    assert.throws(
      () => parseIpvlanOptions({ parent: 'eth0', macvlan_mode: 'bridge' }),
      /Unknown option/,
    );
  });
});

function net<O>(options: O, extra: Partial<DriverNetwork<O>> = {}): DriverNetwork<O> {
  return {
    id: 'a'.repeat(64),
    name: 'mv',
    options,
    internal: false,
    ipv4: { subnet: Prefix.parse('192.168.77.0/24'), gateway: IP.parse('192.168.77.1') },
    ...extra,
  };
}

function endpoint(ns: string | undefined): DriverEndpoint {
  return {
    id: 'e'.repeat(64),
    ns,
    ifName: 'eth0',
    hostIfName: 'cnmvunused',
    mac: MAC.parse('02:42:c0:a8:4d:0a'),
    ipv4: { address: IP.parse('192.168.77.10'), prefixLen: 24 },
    gatewayEndpoint: true,
  };
}

describe('macvlan driver', () => {
  test('ensureEndpoint() makes a child inside the sandbox with address and default route', async () => {
    const k = new FakeKernel({ hostLinks: ['eth0'] });
    await k.netnsAdd('/ns/c1');
    const d = macvlanDriver({ kernel: k, capabilities: allFeatures() });
    const n = net(d.parseOptions({ parent: 'eth0' }, { name: 'mv', predefined: false }));
    d.validateNetwork(n, []);
    await d.ensureNetwork(n);
    await d.ensureEndpoint(n, endpoint('/ns/c1'));
    const child = await k.linkGet('eth0', '/ns/c1');
    assert.equal(child?.kind, 'macvlan');
    assert.equal(child?.mac, '02:42:c0:a8:4d:0a');
    assert.equal(child?.up, true);
    const addrs = await k.addrList('/ns/c1', 4);
    assert.ok(addrs.some((a) => a.address === '192.168.77.10' && a.prefixLen === 24));
    const routes = await k.routeList('/ns/c1', 4);
    assert.ok(routes.some((r) => r.dst === 'default' && r.gateway === '192.168.77.1'));
    // Again: nothing new, no error.
    await d.ensureEndpoint(n, endpoint('/ns/c1'));
    await d.deleteEndpoint(n, endpoint('/ns/c1'));
    assert.equal(await k.linkGet('eth0', '/ns/c1'), undefined);
    assert.ok(await k.linkGet('eth0'), "the daemon's own eth0 stays");
  });

  test('deleteEndpoint() without a sandbox never touches the daemon namespace', async () => {
    const k = new FakeKernel({ hostLinks: ['eth0'] });
    const d = macvlanDriver({ kernel: k, capabilities: allFeatures() });
    const n = net(d.parseOptions({ parent: 'eth0' }, { name: 'mv', predefined: false }));
    await d.deleteEndpoint(n, endpoint(undefined));
    assert.ok(await k.linkGet('eth0'));
  });

  test('internal networks get no default route', async () => {
    const k = new FakeKernel({ hostLinks: ['eth0'] });
    await k.netnsAdd('/ns/c1');
    const d = macvlanDriver({ kernel: k, capabilities: allFeatures() });
    const n = net(d.parseOptions({ parent: 'eth0' }, { name: 'mv', predefined: false }), {
      internal: true,
    });
    await d.ensureEndpoint(n, endpoint('/ns/c1'));
    assert.ok(!(await k.routeList('/ns/c1', 4)).some((r) => r.dst === 'default'));
  });

  test('ensureNetwork() refuses a missing parent and a VLAN parent without 802.1q', async () => {
    const k = new FakeKernel({ hostLinks: ['eth0'] });
    const caps = { ...allFeatures(), vlan: { present: false, detail: 'EOPNOTSUPP' } };
    const d = macvlanDriver({ kernel: k, capabilities: caps });
    const parse = (parent: string) => d.parseOptions({ parent }, { name: 'mv', predefined: false });
    await assert.rejects(
      d.ensureNetwork(net(parse('eth9'))),
      /parent interface "eth9" does not exist/,
    );
    await assert.rejects(
      d.ensureNetwork(net(parse('eth0.10'))),
      (err: unknown) => err instanceof UnavailableError && /802\.1q VLAN support/.test(err.message),
    );
  });

  test('ensureNetwork() creates a missing 802.1q parent and deleteNetwork() removes only its own', async () => {
    const k = new FakeKernel({ hostLinks: ['eth0'] });
    const d = macvlanDriver({ kernel: k, capabilities: allFeatures() });
    const n = net(d.parseOptions({ parent: 'eth0.10' }, { name: 'mv', predefined: false }));
    await d.ensureNetwork(n);
    assert.equal((await k.linkGet('eth0.10'))?.kind, 'vlan');
    assert.deepEqual(d.ownedLinks(n), ['eth0.10']);
    assert.deepEqual(d.kernelFeatures?.(n), ['macvlan', 'vlan']);
    await d.deleteNetwork(n);
    assert.equal(await k.linkGet('eth0.10'), undefined);
  });

  test('validateNetwork() refuses a kernel without the driver and shared VLAN or passthru parents', () => {
    const k = new FakeKernel();
    const none = { ...allFeatures(), ipvlan: { present: false, detail: 'EOPNOTSUPP' } };
    const iv = ipvlanDriver({ kernel: k, capabilities: none });
    const ivNet = net(iv.parseOptions({ parent: 'eth0' }, { name: 'iv', predefined: false }), {
      name: 'iv',
    });
    assert.throws(
      () => iv.validateNetwork(ivNet, []),
      /Cannot create network "iv": driver "ipvlan" needs the kernel's ipvlan support/,
    );
    const mv = macvlanDriver({ kernel: k, capabilities: allFeatures() });
    const p = (o: Record<string, string>) => mv.parseOptions(o, { name: 'x', predefined: false });
    const first = net(p({ parent: 'eth0' }), { name: 'first' });
    mv.validateNetwork(net(p({ parent: 'eth0' })), [first]);
    assert.throws(
      () => mv.validateNetwork(net(p({ parent: 'eth0', macvlan_mode: 'passthru' })), [first]),
      (err: unknown) => err instanceof ConflictError && /used by network "first"/.test(err.message),
    );
    const vlan = net(p({ parent: 'eth0.5' }), { name: 'first' });
    assert.throws(() => mv.validateNetwork(net(p({ parent: 'eth0.5' })), [vlan]), ConflictError);
  });

  test('ipvlan L3 routes by device, with no gateway, and takes no MAC', async () => {
    const k = new FakeKernel({ hostLinks: ['eth0'] });
    await k.netnsAdd('/ns/c1');
    const d = ipvlanDriver({ kernel: k, capabilities: allFeatures() });
    const n = net(
      d.parseOptions({ parent: 'eth0', ipvlan_mode: 'l3' }, { name: 'iv', predefined: false }),
    );
    await d.ensureEndpoint(n, endpoint('/ns/c1'));
    assert.equal((await k.linkGet('eth0', '/ns/c1'))?.kind, 'ipvlan');
    const def = (await k.routeList('/ns/c1', 4)).find((r) => r.dst === 'default');
    assert.equal(def?.gateway, undefined);
    assert.equal(def?.dev, 'eth0');
  });
});
