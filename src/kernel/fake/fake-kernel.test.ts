import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KernelError } from '../kernel-error.js';
import { runKernelCases } from '../kernel.case.test.js';
import { FakeKernel } from './fake-kernel.js';

let fake = new FakeKernel();
let n = 0;
runKernelCases('FakeKernel', () => ({ kernel: fake, nsPath: () => `/run/cnm-test/ns-${++n}` }));

describe('FakeKernel', () => {
  test('failNext() fails exactly the next call of that method, without changing state', async () => {
    fake = new FakeKernel();
    await fake.netnsAdd('/ns/a');
    fake.failNext('linkAdd', 'ENOSPC');
    await assert.rejects(fake.linkAdd({ kind: 'dummy', name: 'd0' }, '/ns/a'), (err: unknown) => {
      assert.ok(err instanceof KernelError);
      assert.equal(err.errnoCode, 'ENOSPC');
      assert.equal(err.errno, 28);
      assert.match(
        err.message,
        /^Cannot add link "d0" in netns "\/ns\/a": No space left on device/,
      );
      return true;
    });
    assert.equal(await fake.linkGet('d0', '/ns/a'), undefined);
    await fake.linkAdd({ kind: 'dummy', name: 'd0' }, '/ns/a');
    assert.ok(await fake.linkGet('d0', '/ns/a'));
  });

  test('nftRun() records scripts and answers through nftOutput', async () => {
    fake = new FakeKernel();
    fake.nftOutput = (_s, json) => (json ? '{"nftables":[]}' : '');
    assert.equal(await fake.nftRun('list ruleset', { json: true }), '{"nftables":[]}');
    await fake.nftRun('add table inet cnm');
    assert.deepEqual(fake.nftScripts, ['list ruleset', 'add table inet cnm']);
  });

  test('nftElements() records each batch and fails on failNext', async () => {
    fake = new FakeKernel();
    const shape = { key: ['ipv4_addr'] as const, interval: false };
    await fake.nftElements('inet', 't', [{ op: 'add', set: 's', shape, elements: ['10.0.0.1'] }]);
    assert.deepEqual(fake.nftElementBatches, [
      {
        family: 'inet',
        table: 't',
        changes: [{ op: 'add', set: 's', shape, elements: ['10.0.0.1'] }],
      },
    ]);
    fake.failNext('nftElements', 'ENOENT');
    await assert.rejects(
      fake.nftElements('inet', 't', [{ op: 'delete', set: 's', shape, elements: ['10.0.0.9'] }]),
      /ENOENT/,
    );
    assert.equal(fake.nftElementBatches.length, 1);
  });

  test('hostLinks seed the daemon namespace (macvlan parents)', async () => {
    fake = new FakeKernel({ hostLinks: ['eth0'] });
    await fake.netnsAdd('/ns/s');
    await fake.linkAdd({
      kind: 'macvlan',
      name: 'mv0',
      parent: 'eth0',
      mode: 'bridge',
      ns: '/ns/s',
    });
    assert.equal((await fake.linkGet('mv0', '/ns/s'))?.kind, 'macvlan');
    // Deleting the parent deletes its children, wherever they live.
    await fake.linkDel('eth0');
    assert.equal(await fake.linkGet('mv0', '/ns/s'), undefined);
  });

  test('linkSet() refuses to rename an up link with EBUSY', async () => {
    fake = new FakeKernel();
    await fake.netnsAdd('/ns/r');
    await fake.linkAdd({ kind: 'dummy', name: 'd0', up: true }, '/ns/r');
    await assert.rejects(fake.linkSet('d0', { name: 'd1' }, '/ns/r'), /EBUSY/);
  });

  test('taking a link down flushes its IPv4 routes', async () => {
    fake = new FakeKernel();
    await fake.netnsAdd('/ns/d');
    await fake.linkAdd({ kind: 'dummy', name: 'd0', up: true }, '/ns/d');
    await fake.addrAdd('d0', '10.0.0.2/24', '/ns/d');
    await fake.routeAdd({ family: 4, dst: 'default', gateway: '10.0.0.1' }, '/ns/d');
    await fake.linkSet('d0', { up: false }, '/ns/d');
    assert.deepEqual(await fake.routeList('/ns/d', 4), []);
  });

  test('close() makes later calls fail', async () => {
    fake = new FakeKernel();
    await fake.close();
    await assert.rejects(fake.linkList(), /Kernel is closed/);
  });
});
