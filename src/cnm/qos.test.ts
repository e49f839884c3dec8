import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BridgeDriver } from '../drivers/bridge/bridge-driver.js';
import { macvlanDriver } from '../drivers/macvlan/macvlan-driver.js';
import { hostDriver, noneDriver } from '../drivers/null-drivers.js';
import { DriverRegistry } from '../drivers/registry.js';
import { CnmError } from '../errors.js';
import { allFeatures } from '../kernel/capabilities.js';
import { FakeKernel } from '../kernel/fake/fake-kernel.js';
import { MemoryStore } from '../store/index.js';
import { Controller } from './controller.js';
import { parseRate, qdiscsOf, tbfForRate, withRates } from './qos.js';

function invalid(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CnmError);
    assert.equal(err.kind, 'invalid');
    assert.equal(err.code, 'RATE_INVALID');
    assert.match(err.message, re);
    return true;
  });
}

describe('parseRate()', () => {
  test('reads tc units, case-insensitively, in bits per second', () => {
    assert.equal(parseRate('10mbit', 'ingress'), 10_000_000);
    assert.equal(parseRate('10Mbit', 'ingress'), 10_000_000);
    assert.equal(parseRate('1.5gbit', 'egress'), 1_500_000_000);
    assert.equal(parseRate('512kbit', 'egress'), 512_000);
    assert.equal(parseRate('1mibit', 'egress'), 1_048_576);
    assert.equal(parseRate('64000', 'egress'), 64_000, 'no unit: bits per second');
    assert.equal(parseRate('64000bit', 'egress'), 64_000);
    // As in tc, "bps" units are bytes per second: mbps is megabytes.
    assert.equal(parseRate('1000bps', 'egress'), 8_000);
    assert.equal(parseRate('2mbps', 'egress'), 16_000_000);
    assert.equal(parseRate(' 20mbit ', 'egress'), 20_000_000);
  });

  test('0 and none mean no limit', () => {
    assert.equal(parseRate('0', 'ingress'), null);
    assert.equal(parseRate('0mbit', 'ingress'), null);
    assert.equal(parseRate('none', 'ingress'), null);
    assert.equal(parseRate('NONE', 'ingress'), null);
  });

  test('refuses garbage, unknown units, negatives and rates out of range', () => {
    invalid(() => parseRate('fast', 'ingress'), /^Invalid ingress rate "fast": expected a number/);
    invalid(() => parseRate('10 mbit', 'egress'), /^Invalid egress rate "10 mbit"/);
    invalid(() => parseRate('10mb', 'egress'), /"10mb"/);
    invalid(() => parseRate('-5mbit', 'egress'), /"-5mbit"/);
    invalid(() => parseRate('', 'egress'), /""/);
    invalid(() => parseRate('7kbit', 'egress'), /between 8kbit and 100gbit/);
    invalid(() => parseRate('101gbit', 'egress'), /between 8kbit and 100gbit/);
  });
});

describe('tbfForRate()', () => {
  test('bytes per second, a 64 KiB bucket at low rates, 5 ms of the rate above', () => {
    assert.deepEqual(tbfForRate(10_000_000), {
      kind: 'tbf',
      rate: 1_250_000,
      burst: 65_536,
      limit: 131_072,
    });
    const fast = tbfForRate(10_000_000_000);
    assert.equal(fast.rate, 1_250_000_000);
    assert.equal(fast.burst, 6_250_000, '5 ms');
    assert.equal(fast.limit, 62_500_000, '50 ms');
    const top = tbfForRate(100e9);
    assert.ok(top.limit < 2 ** 32 && top.burst < 2 ** 32, 'fits the kernel u32 fields');
  });

  test('qdiscsOf() and withRates(): absent or none means no qdisc', () => {
    assert.deepEqual(qdiscsOf({ cmd: ['x'] }), {});
    assert.deepEqual(Object.keys(qdiscsOf({ cmd: ['x'], egressRate: '5mbit' })), ['egress']);
    const spec = withRates({ cmd: ['x'], ingressRate: '1mbit' }, { egressRate: ' 2mbit ' });
    assert.deepEqual(spec, { cmd: ['x'], ingressRate: '1mbit', egressRate: '2mbit' });
    assert.deepEqual(withRates(spec, { ingressRate: 'none' }), { cmd: ['x'], egressRate: '2mbit' });
  });
});

describe('Controller bandwidth limits (FakeKernel)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cnm-qos-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function make(kernel = new FakeKernel({ hostLinks: ['eth9'] }), store = new MemoryStore()) {
    const drivers = new DriverRegistry();
    drivers.register(
      new BridgeDriver(kernel, {
        table: 'cnm',
        bridgePrefix: 'cnmbr-',
        defaultBridgeName: 'cnm0',
        mtu: 1500,
      }),
    );
    drivers.register(hostDriver());
    drivers.register(noneDriver());
    drivers.register(macvlanDriver({ kernel, capabilities: allFeatures() }));
    const ctl = new Controller(kernel, store, drivers, {
      dataRoot: join(dir, 'lib'),
      execRoot: join(dir, 'run'),
      vethPrefix: 'cnmv',
      defaultBridgeName: 'cnm0',
      mtu: 1500,
      dns: [],
      hostResolvConf: () => 'nameserver 198.51.100.53\n',
      version: 'test',
      log: () => {},
    });
    await ctl.init();
    return { ctl, kernel, store };
  }

  /** The root tbf of the container's eth0 host end (ingress) and sandbox end (egress). */
  async function shaping(ctl: Controller, k: FakeKernel, name: string) {
    const c = ctl.inspectContainer(name);
    const ep = [...(await k.linkList())].find((l) => l.alias?.includes('ep:'));
    const host = ep ? (await k.qdiscList(undefined, ep.name))[0]?.tbf : undefined;
    const sb = (await k.qdiscList(c.sandboxKey, 'eth0'))[0]?.tbf;
    return { ingress: host?.rate, egress: sb?.rate };
  }

  async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof CnmError, String(err));
      assert.equal(err.kind, 'invalid');
      assert.equal(err.code, code);
      assert.match(err.message, re);
      return true;
    });
  }

  test('createContainer() puts a tbf on the host end (ingress) and on eth0 (egress)', async () => {
    const { ctl, kernel } = await make();
    await ctl.createNetwork({ name: 'n1' });
    await ctl.createContainer({
      name: 'a',
      cmd: ['sleep', '1'],
      networks: [{ name: 'n1' }],
      ingressRate: '10mbit',
      egressRate: '20mbit',
    });
    assert.deepEqual(await shaping(ctl, kernel, 'a'), { ingress: 1_250_000, egress: 2_500_000 });
    assert.equal(ctl.inspectContainer('a').spec.ingressRate, '10mbit', 'kept in the record');
    // No limit, no qdisc (and no extra kernel work on the create path).
    await ctl.createContainer({ name: 'b', cmd: ['sleep', '1'], egressRate: 'none' });
    const b = ctl.inspectContainer('b');
    assert.equal(b.spec.egressRate, undefined, '"none" is no limit');
    assert.equal((await kernel.qdiscList(b.sandboxKey, 'eth0'))[0]?.kind, 'noqueue');
  });

  test('a bad rate or a driver without a veth is refused and nothing is created', async () => {
    const { ctl, kernel } = await make();
    await ctl.createNetwork({ name: 'mv', driver: 'macvlan', options: { parent: 'eth9' } });
    const before = { links: (await kernel.linkList()).length, ns: kernel.namespaces().length };
    await rejects(
      ctl.createContainer({ name: 'x', cmd: ['true'], ingressRate: '10 parsecs' }),
      'RATE_INVALID',
      /^Invalid ingress rate "10 parsecs"/,
    );
    await rejects(
      ctl.createContainer({
        name: 'x',
        cmd: ['true'],
        networks: [{ name: 'mv' }],
        egressRate: '1mbit',
      }),
      'QOS_UNSUPPORTED',
      /^Cannot limit bandwidth on network "mv": driver "macvlan" has no veth pair to shape/,
    );
    await rejects(
      ctl.createContainer({
        name: 'x',
        cmd: ['true'],
        networks: [{ name: 'host' }],
        egressRate: '1mbit',
      }),
      'QOS_UNSUPPORTED',
      /network "host": driver "host"/,
    );
    assert.equal(ctl.listContainers({ all: true }).length, 0);
    assert.deepEqual(
      { links: (await kernel.linkList()).length, ns: kernel.namespaces().length },
      before,
    );
    // A limited container cannot join a macvlan network later either.
    await ctl.createContainer({ name: 'y', cmd: ['true'], egressRate: '1mbit' });
    await rejects(ctl.connect('mv', 'y'), 'QOS_UNSUPPORTED', /"mv"/);
  });

  test('updateContainer() changes, removes and adds limits at run time', async () => {
    const { ctl, kernel, store } = await make();
    await ctl.createContainer({ name: 'a', cmd: ['true'], egressRate: '20mbit' });
    await ctl.updateContainer('a', { egressRate: '5mbit', ingressRate: '1mbit' });
    assert.deepEqual(await shaping(ctl, kernel, 'a'), { ingress: 125_000, egress: 625_000 });
    const id = ctl.inspectContainer('a').id;
    const rec = (await store.get(`containers/${id}`))?.value as { spec: { egressRate?: string } };
    assert.equal(rec.spec.egressRate, '5mbit', 'persisted');
    await ctl.updateContainer('a', { egressRate: '0' });
    assert.deepEqual(await shaping(ctl, kernel, 'a'), { ingress: 125_000, egress: undefined });
    assert.equal(ctl.inspectContainer('a').spec.egressRate, undefined);
    await ctl.updateContainer('a', { ingressRate: 'none' });
    assert.deepEqual(await shaping(ctl, kernel, 'a'), { ingress: undefined, egress: undefined });
    // Bad input changes nothing.
    await ctl.updateContainer('a', { ingressRate: '3mbit' });
    await rejects(ctl.updateContainer('a', { ingressRate: 'x' }), 'RATE_INVALID', /"x"/);
    await rejects(ctl.updateContainer('a', {}), 'UPDATE_EMPTY', /give an ingress or egress rate/);
    assert.deepEqual(await shaping(ctl, kernel, 'a'), { ingress: 375_000, egress: undefined });
    await ctl.createContainer({ name: 'h', cmd: ['true'], networks: [{ name: 'none' }] });
    await rejects(
      ctl.updateContainer('h', { egressRate: '1mbit' }),
      'QOS_UNSUPPORTED',
      /network mode "none" has no interface to shape/,
    );
  });

  test('a kernel failure during an update puts the old limits and record back', async () => {
    const { ctl, kernel } = await make();
    await ctl.createContainer({ name: 'a', cmd: ['true'], egressRate: '20mbit' });
    kernel.failNext('qdiscReplace', 'ENOMEM');
    await assert.rejects(ctl.updateContainer('a', { egressRate: '1mbit' }), /ENOMEM|memory/i);
    assert.equal(ctl.inspectContainer('a').spec.egressRate, '20mbit');
    assert.deepEqual(await shaping(ctl, kernel, 'a'), { ingress: undefined, egress: 2_500_000 });
  });

  test('restart re-applies limits; drift repair re-applies them on a re-created veth', async () => {
    const kernel = new FakeKernel({ hostLinks: ['eth9'] });
    const store = new MemoryStore();
    const first = await make(kernel, store);
    await first.ctl.createContainer({ name: 'a', cmd: ['true'], ingressRate: '8mbit' });
    const host = (await kernel.linkList()).find((l) => l.alias?.includes('ep:'))!.name;
    await kernel.qdiscDel(host);
    await first.ctl.close();
    const second = await make(kernel, store);
    assert.deepEqual(await shaping(second.ctl, kernel, 'a'), {
      ingress: 1_000_000,
      egress: undefined,
    });
    await kernel.linkDel(host);
    const repairs = await second.ctl.repairDrift();
    assert.ok(
      repairs.some((r) => r.includes('veth re-created')),
      repairs.join(),
    );
    assert.deepEqual(await shaping(second.ctl, kernel, 'a'), {
      ingress: 1_000_000,
      egress: undefined,
    });
    await second.ctl.close();
  });
});
