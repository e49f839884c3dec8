import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UnavailableError } from '../errors.js';
import {
  allFeatures,
  assessHost,
  detectCapabilities,
  judgeTuning,
  nftProbeScript,
  requireFeature,
} from './capabilities.js';
import { FakeKernel } from './fake/fake-kernel.js';
import { KernelError } from './kernel-error.js';
import type { LinkAdd, NsRef } from './types.js';

/** A fake kernel without some link kinds and nftables expressions, as this VM's kernel. */
class LackingKernel extends FakeKernel {
  constructor(
    readonly lacks: { kinds: string[]; nft: RegExp[] },
    readonly linkCalls: { kind: string; ns: NsRef }[] = [],
  ) {
    super();
  }
  override async linkAdd(link: LinkAdd, ns?: NsRef): Promise<void> {
    this.linkCalls.push({ kind: link.kind, ns });
    if (this.lacks.kinds.includes(link.kind)) {
      throw new KernelError(`Cannot add link "${link.name}"`, {
        errno: 95,
        code: 'EOPNOTSUPP',
        extack: 'Unknown device type',
      });
    }
    return super.linkAdd(link, ns);
  }
  override async nftRun(script: string, opts?: { json?: boolean }): Promise<string> {
    if (this.lacks.nft.some((re) => re.test(script))) {
      throw new KernelError('Cannot run nftables script', { errno: 95, code: 'EOPNOTSUPP' });
    }
    return super.nftRun(script, opts);
  }
}

describe('detectCapabilities()', () => {
  test('reports what the kernel refuses and probes links only in its own namespace', async () => {
    const k = new LackingKernel({ kinds: ['ipvlan', 'vlan', 'dummy'], nft: [/ibrname/] });
    const caps = await detectCapabilities(k, { probeNs: '/run/cnm/probe-1' });
    for (const f of ['netns', 'veth', 'bridge', 'vxlan', 'macvlan', 'ifb', 'ipv6'] as const) {
      assert.equal(caps[f].present, true, f);
    }
    for (const f of ['ipvlan', 'vlan', 'dummy', 'nft-meta-ibrname'] as const) {
      assert.equal(caps[f].present, false, f);
    }
    assert.match(caps.ipvlan.detail, /EOPNOTSUPP: Unknown device type/);
    assert.equal(caps['nft-ct'].present, true);
    assert.equal(caps.tc.present, undefined);
    // Every link was made in the probe namespace, and that namespace is gone again.
    assert.ok(k.linkCalls.every((c) => c.ns === '/run/cnm/probe-1'));
    assert.deepEqual(k.namespaces(), []);
    assert.deepEqual(
      (await k.linkList()).map((l) => l.name),
      ['lo'],
    );
  });

  test('marks link features unknown when no probe namespace can be made', async () => {
    const k = new FakeKernel();
    k.failNext('netnsAdd', 'EPERM');
    const caps = await detectCapabilities(k, { probeNs: '/run/cnm/probe-2' });
    assert.equal(caps.netns.present, false);
    assert.equal(caps.macvlan.present, undefined);
    assert.equal(caps.nftables.present, true);
  });

  test('nft probes add and delete their table in one transaction', () => {
    assert.equal(
      nftProbeScript('inet', 'ct state established accept'),
      'add table inet cnm_probe\nadd chain inet cnm_probe c\nadd rule inet cnm_probe c ct state established accept\ndelete table inet cnm_probe\n',
    );
  });
});

describe('requireFeature()', () => {
  test('refuses a feature known absent, naming it', () => {
    const caps = { ...allFeatures(), ipvlan: { present: false, detail: 'EOPNOTSUPP' } };
    assert.throws(
      () =>
        requireFeature(caps, 'ipvlan', {
          action: 'Cannot create network "x"',
          by: 'driver "ipvlan"',
        }),
      (err: unknown) =>
        err instanceof UnavailableError &&
        err.code === 'KERNEL_FEATURE_MISSING' &&
        err.message ===
          'Cannot create network "x": driver "ipvlan" needs the kernel\'s ipvlan support, which this kernel does not have',
    );
  });

  test('lets an unprobed feature through', () => {
    const caps = { ...allFeatures(), vlan: { present: undefined, detail: 'not probed' } };
    requireFeature(caps, 'vlan', { action: 'x', by: 'y' });
  });
});

describe('judgeTuning() and assessHost()', () => {
  test('judgeTuning() advises on low values and leaves invisible keys alone', () => {
    const items = judgeTuning(
      new Map([
        ['net.core.somaxconn', '128'],
        ['net.core.rmem_max', '8388608'],
        ['net.ipv4.ip_local_port_range', '60000 61000'],
        ['net.ipv4.tcp_rmem', '4096 131072 33554432'],
        ['net.core.netdev_max_backlog', undefined],
      ]),
    );
    const by = (k: string) => items.find((i) => i.key === k)!;
    assert.equal(by('net.core.somaxconn').ok, false);
    assert.match(by('net.core.somaxconn').advice, /4096/);
    assert.equal(by('net.core.rmem_max').ok, true);
    assert.equal(by('net.ipv4.ip_local_port_range').ok, false);
    assert.equal(by('net.ipv4.tcp_rmem').ok, true);
    assert.equal(by('net.core.netdev_max_backlog').ok, true);
    assert.match(by('net.core.netdev_max_backlog').advice, /not visible/);
  });

  test('assessHost() is not ok when a stored network needs a missing feature', () => {
    const caps = { ...allFeatures(), ipvlan: { present: false, detail: 'EOPNOTSUPP' } };
    const report = assessHost({
      capabilities: caps,
      tuning: { sysctls: [], nics: [] },
      requirements: [
        { by: 'cnmd', features: ['netns', 'nftables'] },
        { by: 'network "iv" (driver ipvlan)', features: ['ipvlan'] },
      ],
    });
    assert.equal(report.ok, false);
    assert.deepEqual(report.missing, [
      { by: 'network "iv" (driver ipvlan)', feature: 'ipvlan', label: 'ipvlan support' },
    ]);
    assert.equal(report.features.find((f) => f.name === 'ipvlan')?.present, false);
  });
});
