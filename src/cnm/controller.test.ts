import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BridgeDriver } from '../drivers/bridge/bridge-driver.js';
import { hostDriver, noneDriver } from '../drivers/null-drivers.js';
import { DriverRegistry } from '../drivers/registry.js';
import { CnmError } from '../errors.js';
import { FakeKernel } from '../kernel/fake/fake-kernel.js';
import { MemoryStore } from '../store/index.js';
import { Controller } from './controller.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnm-ctl-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function make(kernel = new FakeKernel(), store = new MemoryStore(), sub = 'a') {
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
  const ctl = new Controller(kernel, store, drivers, {
    dataRoot: join(dir, sub, 'lib'),
    execRoot: join(dir, sub, 'run'),
    vethPrefix: 'cnmv',
    defaultBridgeName: 'cnm0',
    mtu: 1500,
    dns: [],
    hostResolvConf: () => 'nameserver 127.0.0.53\nnameserver 198.51.100.53\nsearch example.test\n',
    version: 'test',
    log: () => {},
  });
  await ctl.init();
  return { ctl, kernel, store };
}

async function rejectsWith(p: Promise<unknown> | (() => unknown), kind: string, code?: string) {
  await assert.rejects(typeof p === 'function' ? async () => p() : p, (err: unknown) => {
    assert.ok(err instanceof CnmError, `expected CnmError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    if (code) assert.equal(err.code, code, err.message);
    return true;
  });
}

async function state(ctl: Controller, kernel: FakeKernel, store: MemoryStore) {
  return {
    networks: ctl.listNetworks().map((n) => n.name),
    containers: ctl.listContainers({ all: true }).map((c) => c.name),
    links: (await kernel.linkList()).map((l) => l.name).sort(),
    netns: kernel.namespaces().sort(),
    records: (await store.list('')).map((r) => r.key),
  };
}

describe('Controller', () => {
  test('init() creates the predefined bridge, host and none networks', async () => {
    const { ctl, kernel } = await make(undefined, undefined, 'init');
    assert.deepEqual(
      ctl.listNetworks().map((n) => n.name),
      ['bridge', 'host', 'none'],
    );
    const bridge = ctl.inspectNetwork('bridge');
    assert.equal(bridge.ipam.config[0]?.subnet, '172.17.0.0/16');
    assert.equal(bridge.ipam.config[0]?.gateway, '172.17.0.1');
    assert.ok(await kernel.linkGet('cnm0'));
    assert.ok(kernel.nftScripts.some((s) => s.includes('table inet cnm')));
  });

  test('createNetwork() picks 172.18.0.0/16 next and skips subnets in use', async () => {
    const { ctl } = await make(undefined, undefined, 'pick');
    const a = await ctl.createNetwork({ name: 'a' });
    assert.equal(ctl.inspectNetwork(a.id).ipam.config[0]?.subnet, '172.18.0.0/16');
    await ctl.createNetwork({ name: 'c', ipam: { config: [{ subnet: '172.19.0.0/16' }] } });
    const b = await ctl.createNetwork({ name: 'b' });
    assert.equal(ctl.inspectNetwork(b.id).ipam.config[0]?.subnet, '172.20.0.0/16');
  });

  test('createNetwork() refuses bad input and changes nothing', async () => {
    const { ctl, kernel, store } = await make(undefined, undefined, 'bad');
    await ctl.createNetwork({ name: 'taken', ipam: { config: [{ subnet: '10.1.0.0/24' }] } });
    const before = await state(ctl, kernel, store);
    await rejectsWith(
      ctl.createNetwork({ name: 'x', ipam: { config: [{ subnet: '10.2.0.0/33' }] } }),
      'invalid',
    );
    await rejectsWith(
      ctl.createNetwork({
        name: 'x',
        ipam: { config: [{ subnet: '10.2.0.0/24', gateway: '10.3.0.1' }] },
      }),
      'invalid',
    );
    await rejectsWith(
      ctl.createNetwork({ name: 'x', ipam: { config: [{ subnet: '10.1.0.0/16' }] } }),
      'forbidden',
      'SUBNET_OVERLAP',
    );
    await rejectsWith(ctl.createNetwork({ name: 'taken' }), 'conflict', 'NET_NAME_IN_USE');
    await rejectsWith(
      ctl.createNetwork({ name: 'x', driver: 'nope' }),
      'not-found',
      'DRIVER_UNKNOWN',
    );
    await rejectsWith(
      ctl.createNetwork({ name: 'x', options: { 'com.example.x': '1' } }),
      'invalid',
      'OPTION_UNKNOWN',
    );
    await rejectsWith(ctl.createNetwork({ name: 'bad/name' }), 'invalid', 'NET_NAME_INVALID');
    await rejectsWith(
      ctl.createNetwork({ name: 'h2', driver: 'host' }),
      'forbidden',
      'NET_SINGLETON',
    );
    kernel.failNext('linkAdd', 'EPERM');
    await assert.rejects(ctl.createNetwork({ name: 'kfail' }));
    assert.deepEqual(await state(ctl, kernel, store), before);
  });

  test('createContainer() attaches an endpoint with the next address and Docker MAC', async () => {
    const { ctl, kernel } = await make(undefined, undefined, 'ctr');
    await ctl.createNetwork({ name: 'n', ipam: { config: [{ subnet: '10.5.0.0/24' }] } });
    const c = await ctl.createContainer({ name: 'web', cmd: ['true'], networks: [{ name: 'n' }] });
    const ep = c.networks.n!;
    assert.equal(ep.ipAddress, '10.5.0.2');
    assert.equal(ep.ipPrefixLen, 24);
    assert.equal(ep.gateway, '10.5.0.1');
    assert.equal(ep.macAddress, '02:42:0a:05:00:02');
    const links = await kernel.linkList(c.sandboxKey);
    assert.ok(links.some((l) => l.name === 'eth0' && l.up));
    const addrs = await kernel.addrList(c.sandboxKey, 4);
    assert.ok(addrs.some((a) => a.address === '10.5.0.2' && a.prefixLen === 24));
    const routes = await kernel.routeList(c.sandboxKey, 4);
    assert.ok(routes.some((r) => r.dst === 'default' && r.gateway === '10.5.0.1'));
    const s = await ctl.createContainer({
      name: 'static',
      cmd: ['true'],
      networks: [{ name: 'n', ipv4: '10.5.0.50' }],
    });
    assert.equal(s.networks.n!.ipAddress, '10.5.0.50');
    await rejectsWith(
      ctl.createContainer({
        name: 'dup-ip',
        cmd: ['true'],
        networks: [{ name: 'n', ipv4: '10.5.0.50' }],
      }),
      'conflict',
      'ADDRESS_IN_USE',
    );
    await rejectsWith(
      ctl.createContainer({ name: 'web', cmd: ['true'] }),
      'conflict',
      'CONTAINER_NAME_IN_USE',
    );
  });

  test('createContainer() rolls back every step when the kernel fails', async () => {
    const { ctl, kernel, store } = await make(undefined, undefined, 'rollback');
    await ctl.createNetwork({ name: 'n', ipam: { config: [{ subnet: '10.6.0.0/24' }] } });
    const before = await state(ctl, kernel, store);
    kernel.failNext('routeAdd', 'ENETUNREACH');
    await assert.rejects(
      ctl.createContainer({
        name: 'c',
        cmd: ['true'],
        networks: [{ name: 'n', ipv4: '10.6.0.9' }],
        ports: ['8080:80'],
      }),
    );
    assert.deepEqual(await state(ctl, kernel, store), before);
    // The address and the port were released: the same request now succeeds.
    const c = await ctl.createContainer({
      name: 'c',
      cmd: ['true'],
      networks: [{ name: 'n', ipv4: '10.6.0.9' }],
      ports: ['8080:80'],
    });
    assert.equal(c.networks.n!.ipAddress, '10.6.0.9');
    assert.deepEqual(c.ports, [{ hostIp: '', hostPort: 8080, containerPort: 80, proto: 'tcp' }]);
  });

  test('published ports conflict across containers and free up on removal', async () => {
    const { ctl, kernel, store } = await make(undefined, undefined, 'ports');
    await ctl.createNetwork({ name: 'n' });
    await ctl.createContainer({
      name: 'a',
      cmd: ['true'],
      networks: [{ name: 'n' }],
      ports: ['8080:80', '127.0.0.1:9000:90/udp'],
    });
    const before = await state(ctl, kernel, store);
    await rejectsWith(
      ctl.createContainer({
        name: 'b',
        cmd: ['true'],
        networks: [{ name: 'n' }],
        ports: ['8080:81'],
      }),
      'conflict',
      'PORT_IN_USE',
    );
    await rejectsWith(
      ctl.createContainer({
        name: 'b',
        cmd: ['true'],
        networks: [{ name: 'n' }],
        ports: ['127.0.0.1:8080:81'],
      }),
      'conflict',
      'PORT_IN_USE',
    );
    assert.deepEqual(await state(ctl, kernel, store), before);
    const udpOtherIp = await ctl.createContainer({
      name: 'b',
      cmd: ['true'],
      networks: [{ name: 'n' }],
      ports: ['127.0.0.2:9000:90/udp', '9000:90'],
    });
    assert.equal(udpOtherIp.ports.length, 2);
    await ctl.removeContainer('a');
    await ctl.createContainer({
      name: 'c',
      cmd: ['true'],
      networks: [{ name: 'n' }],
      ports: ['8080:80'],
    });
    assert.ok(
      kernel.nftScripts.some((s) => s.includes('delete element inet cnm pm4any { tcp . 8080 }')),
    );
  });

  test('createContainer() reports a failed sandbox, not what failed after it, and undoes all', async () => {
    const { ctl, kernel, store } = await make(undefined, undefined, 'nsfail');
    await ctl.createNetwork({ name: 'n' });
    const before = await state(ctl, kernel, store);
    // The endpoint's batch is queued behind the sandbox and fails too (no such netns).
    kernel.failNext('netnsAdd', 'EPERM');
    await assert.rejects(
      ctl.createContainer({ name: 'a', cmd: ['true'], networks: [{ name: 'n' }] }),
      (err: Error) => /netns/.test(err.message) && /EPERM/.test(err.message),
    );
    assert.deepEqual(await state(ctl, kernel, store), before);
    await ctl.createContainer({ name: 'a', cmd: ['true'], networks: [{ name: 'n' }] });
  });

  test('removeContainer() keeps the sandbox and the record when a detach fails', async () => {
    const { ctl, kernel, store } = await make(undefined, undefined, 'rmfail');
    await ctl.createNetwork({ name: 'n' });
    const c = await ctl.createContainer({ name: 'a', cmd: ['true'], networks: [{ name: 'n' }] });
    const before = await state(ctl, kernel, store);
    assert.ok(before.netns.includes(c.sandboxKey));
    // The host end of the veth cannot be deleted: the endpoint stays, so must its sandbox.
    kernel.failNext('linkDel', 'EBUSY');
    await assert.rejects(ctl.removeContainer('a'), /Cannot remove container "a" completely/);
    assert.deepEqual(await state(ctl, kernel, store), before);
    assert.equal(ctl.inspectContainer('a').networks['n']?.endpointId, c.networks['n']?.endpointId);
    await ctl.removeContainer('a');
    const after = await state(ctl, kernel, store);
    assert.equal(after.netns.includes(c.sandboxKey), false);
    assert.equal(after.containers.includes('a'), false);
  });

  test('a refused nft update leaves no mirrored elements behind', async () => {
    const { ctl, kernel, store } = await make(undefined, undefined, 'nftfail');
    await ctl.createNetwork({ name: 'n' });
    const before = await state(ctl, kernel, store);
    kernel.failNext('nftRun', 'EINVAL');
    await assert.rejects(
      ctl.createContainer({
        name: 'a',
        cmd: ['true'],
        networks: [{ name: 'n' }],
        ports: ['8080:80'],
      }),
    );
    assert.deepEqual(await state(ctl, kernel, store), before);
    // Had the firewall mirror kept the refused port, this would be a PORT_IN_USE conflict.
    const a = await ctl.createContainer({
      name: 'a',
      cmd: ['true'],
      networks: [{ name: 'n' }],
      ports: ['8080:80'],
    });
    assert.equal(a.ports[0]?.hostPort, 8080);
    kernel.failNext('nftRun', 'EINVAL');
    await assert.rejects(ctl.createNetwork({ name: 'm' }));
    await ctl.createNetwork({ name: 'm' });
    assert.ok(kernel.nftScripts.at(-1)?.includes('add element inet cnm bridges'));
  });

  test('repairDrift() keeps checking default routes when some endpoints have none to check', async () => {
    const { ctl, kernel } = await make(undefined, undefined, 'driftroute');
    await ctl.createNetwork({
      name: 'int',
      internal: true,
      ipam: { config: [{ subnet: '10.61.0.0/24' }] },
    });
    await ctl.createNetwork({ name: 'n', ipam: { config: [{ subnet: '10.62.0.0/24' }] } });
    await ctl.createContainer({ name: 'i', cmd: ['true'], networks: [{ name: 'int' }] });
    const c = await ctl.createContainer({ name: 'c', cmd: ['true'], networks: [{ name: 'n' }] });
    // A first pass sees c's route in place; the internal endpoint has no route to check.
    assert.deepEqual(await ctl.repairDrift(), []);
    await kernel.routeDel(
      { family: 4, dst: 'default', gateway: '10.62.0.1', dev: 'eth0' },
      c.sandboxKey,
    );
    await ctl.repairDrift();
    await ctl.repairDrift();
    const routes = await kernel.routeList(c.sandboxKey, 4);
    assert.ok(routes.some((r) => r.dst === 'default' && r.gateway === '10.62.0.1'));
  });

  test('repairDrift() re-creates a deleted veth and sets the sysctl profile on it again', async () => {
    const { ctl, kernel } = await make(undefined, undefined, 'driftsysctl');
    await ctl.createNetwork({
      name: 'p',
      options: { 'io.cnm.sysctl.net.ipv4.conf.IFNAME.arp_notify': '1' },
      ipam: { config: [{ subnet: '10.63.0.0/24' }] },
    });
    const c = await ctl.createContainer({ name: 'c', cmd: ['true'], networks: [{ name: 'p' }] });
    const key = 'net.ipv4.conf.eth0.arp_notify';
    assert.equal(await kernel.sysctlGet(key, c.sandboxKey), '1');
    // A new interface starts from the kernel's default (the fake keeps values by name).
    await kernel.sysctlSet(key, '0', c.sandboxKey);
    const veth = (await kernel.linkList()).find((l) => l.alias?.startsWith('cnm:ep:'))!;
    await kernel.linkDel(veth.name);
    const done = await ctl.repairDrift();
    assert.deepEqual(done, ['container "c" on "p": veth re-created']);
    assert.ok(await kernel.linkGet(veth.name), 'veth back');
    assert.equal(await kernel.sysctlGet(key, c.sandboxKey), '1', 'profile applied again');
  });

  test('removeNetwork() refuses a network in use and predefined networks', async () => {
    const { ctl } = await make(undefined, undefined, 'rm');
    await ctl.createNetwork({ name: 'n' });
    await ctl.createContainer({ name: 'c', cmd: ['true'], networks: [{ name: 'n' }] });
    await rejectsWith(ctl.removeNetwork('n'), 'forbidden', 'NET_IN_USE');
    await rejectsWith(ctl.removeNetwork('bridge'), 'forbidden', 'NET_PREDEFINED');
    await ctl.removeContainer('c');
    await ctl.removeNetwork('n');
    await rejectsWith(async () => ctl.inspectNetwork('n'), 'not-found', 'NET_NOT_FOUND');
  });

  test('connect() and disconnect() add and remove eth1, releasing the address', async () => {
    const { ctl, kernel } = await make(undefined, undefined, 'connect');
    await ctl.createNetwork({ name: 'a', ipam: { config: [{ subnet: '10.7.0.0/24' }] } });
    await ctl.createNetwork({ name: 'b', ipam: { config: [{ subnet: '10.8.0.0/24' }] } });
    const c = await ctl.createContainer({ name: 'c', cmd: ['true'], networks: [{ name: 'a' }] });
    await ctl.connect('b', 'c', { ipv4: '10.8.0.7', aliases: ['x'] });
    const v = ctl.inspectContainer('c');
    assert.equal(v.networks.b!.ipAddress, '10.8.0.7');
    assert.deepEqual(v.networks.b!.aliases, ['x']);
    assert.ok((await kernel.linkList(c.sandboxKey)).some((l) => l.name === 'eth1'));
    await rejectsWith(ctl.connect('b', 'c'), 'forbidden', 'ENDPOINT_EXISTS');
    await ctl.disconnect('b', 'c');
    assert.ok(!(await kernel.linkList(c.sandboxKey)).some((l) => l.name === 'eth1'));
    const d = await ctl.createContainer({
      name: 'd',
      cmd: ['true'],
      networks: [{ name: 'b', ipv4: '10.8.0.7' }],
    });
    assert.equal(d.networks.b!.ipAddress, '10.8.0.7');
    await rejectsWith(ctl.connect('host', 'c'), 'forbidden');
  });

  test('a container has no hostname, hosts or resolv.conf file before it starts', async () => {
    const { ctl } = await make(undefined, undefined, 'files');
    await ctl.createNetwork({ name: 'a', ipam: { config: [{ subnet: '10.9.0.0/24' }] } });
    await ctl.createNetwork({ name: 'b', ipam: { config: [{ subnet: '10.10.0.0/24' }] } });
    const c = await ctl.createContainer({ name: 'c', cmd: ['true'], networks: [{ name: 'a' }] });
    // Written at start, from the endpoints the container has then (startContainer needs root).
    assert.equal(existsSync(c.resolvConfPath), false);
    assert.equal(existsSync(c.hostsPath), false);
    assert.equal(existsSync(c.hostnamePath), false);
    // A connect or disconnect before the start does not make them either.
    await ctl.connect('b', 'c');
    await ctl.disconnect('b', 'c');
    assert.equal(existsSync(c.hostsPath), false);
    assert.equal(existsSync(c.resolvConfPath), false);
  });

  test('a restarted controller restores networks, endpoints and address reservations', async () => {
    const kernel = new FakeKernel();
    const store = new MemoryStore();
    const first = await make(kernel, store, 'restart');
    await first.ctl.createNetwork({ name: 'n', ipam: { config: [{ subnet: '10.9.0.0/24' }] } });
    await first.ctl.createContainer({
      name: 'c',
      cmd: ['true'],
      networks: [{ name: 'n', ipv4: '10.9.0.20' }],
      ports: ['8081:80'],
    });
    await first.ctl.close();
    const linksBefore = (await kernel.linkList()).map((l) => l.name).sort();
    const second = await make(kernel, store, 'restart');
    assert.deepEqual(
      second.ctl
        .listNetworks()
        .map((n) => n.name)
        .sort(),
      ['bridge', 'host', 'n', 'none'],
    );
    assert.equal(second.ctl.inspectContainer('c').networks.n!.ipAddress, '10.9.0.20');
    assert.deepEqual((await kernel.linkList()).map((l) => l.name).sort(), linksBefore);
    await rejectsWith(
      second.ctl.createContainer({
        name: 'd',
        cmd: ['true'],
        networks: [{ name: 'n', ipv4: '10.9.0.20' }],
      }),
      'conflict',
      'ADDRESS_IN_USE',
    );
    await rejectsWith(
      second.ctl.createContainer({
        name: 'd',
        cmd: ['true'],
        networks: [{ name: 'n' }],
        ports: ['8081:80'],
      }),
      'conflict',
      'PORT_IN_USE',
    );
  });

  test('init() removes cnm links that no record claims', async () => {
    const kernel = new FakeKernel();
    await kernel.linkAdd({ kind: 'bridge', name: 'cnmbr-orphan', alias: 'cnm:net:dead' });
    await kernel.linkAdd({ kind: 'bridge', name: 'notours' });
    await make(kernel, new MemoryStore(), 'orphans');
    const names = (await kernel.linkList()).map((l) => l.name);
    assert.ok(!names.includes('cnmbr-orphan'));
    assert.ok(names.includes('notours'));
  });
});
