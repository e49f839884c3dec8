import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NameTable, type NameEndpoint } from './names.js';
import { QTYPE, type LocalRecord } from './wire.js';

const ip = (r: LocalRecord) => [...r.data].join('.');

function table(): NameTable {
  const t = new NameTable();
  t.addNetwork({ id: 'N1', name: 'n1', internal: false });
  t.addNetwork({ id: 'N2', name: 'n2', internal: true });
  return t;
}

function ep(id: string, net: string, ctr: string, ipv4: string, more: Partial<NameEndpoint> = {}) {
  return {
    endpointId: id,
    networkId: net,
    containerId: `${ctr}000000000000000000`,
    containerName: ctr,
    aliases: [],
    ipv4,
    dns: [],
    ...more,
  };
}

test('lookup() finds names, aliases, short ids and NAME.NETWORK on shared networks only', () => {
  const t = table();
  t.addEndpoint(ep('e1', 'N1', 'web', '10.0.1.2', { aliases: ['WWW'] }));
  t.addEndpoint(ep('e2', 'N2', 'db', '10.0.2.2'));
  t.addEndpoint(ep('e3', 'N1', 'cli', '10.0.1.3'));
  const asker = t.asker('N1', '10.0.1.3')!;
  for (const n of ['web', 'www', 'web000000000', 'web.n1']) {
    const r = t.lookup(asker, n, QTYPE.A);
    assert.ok(r.found, n);
    assert.deepEqual(r.records.map(ip), ['10.0.1.2']);
  }
  assert.equal(t.lookup(asker, 'db', QTYPE.A).found, false);
  assert.equal(t.lookup(asker, 'db.n2', QTYPE.A).found, false);
  const none = t.lookup(asker, 'web', QTYPE.AAAA);
  assert.ok(none.found && none.records.length === 0, 'NODATA, not NXDOMAIN');
});

test('asker() follows a container onto all its networks; internal-only stops forwarding', () => {
  const t = table();
  t.addEndpoint(ep('e1', 'N1', 'multi', '10.0.1.5', { dns: ['9.9.9.9'] }));
  t.addEndpoint(ep('e2', 'N2', 'multi', '10.0.2.5', { dns: ['9.9.9.9'] }));
  t.addEndpoint(ep('e3', 'N2', 'db', '10.0.2.2'));
  const a = t.asker('N1', '10.0.1.5')!;
  assert.equal(a.known, true);
  assert.deepEqual(a.dns, ['9.9.9.9']);
  assert.equal(a.internalOnly, false);
  assert.ok(t.lookup(a, 'db', QTYPE.A).found);
  assert.equal(t.asker('N2', '10.0.2.2')!.internalOnly, true);
  const stranger = t.asker('N1', '10.0.1.99')!;
  assert.equal(stranger.known, false);
  assert.equal(t.lookup(stranger, 'db', QTYPE.A).found, false);
});

test('lookup() rotates the records of a shared name', () => {
  const t = table();
  for (const i of [2, 3, 4])
    t.addEndpoint(ep(`e${i}`, 'N1', `c${i}`, `10.0.1.${i}`, { aliases: ['pool'] }));
  const a = t.asker('N1', '10.0.1.2')!;
  const firsts = [0, 1, 2, 3].map((): string => {
    const r = t.lookup(a, 'pool', QTYPE.A);
    assert.ok(r.found);
    assert.equal(r.records.length, 3);
    return ip(r.records[0]!);
  });
  assert.deepEqual(firsts, ['10.0.1.2', '10.0.1.3', '10.0.1.4', '10.0.1.2']);
});

test('lookup() hands out a rotor that shares the rotation with later lookups', () => {
  const t = table();
  for (const i of [2, 3, 4])
    t.addEndpoint(ep(`e${i}`, 'N1', `c${i}`, `10.0.1.${i}`, { aliases: ['pool'] }));
  const a = t.asker('N1', '10.0.1.2')!;
  const r = t.lookup(a, 'pool', QTYPE.A);
  assert.ok(r.found && r.rotor);
  assert.equal(r.rotor.size, 3);
  assert.deepEqual(r.rotor.records(1).map(ip), ['10.0.1.3', '10.0.1.4', '10.0.1.2']);
  // The lookup took start 0; the rotor goes on with 1, then a lookup takes 2.
  assert.equal(r.rotor.next(), 1);
  const again = t.lookup(a, 'pool', QTYPE.A);
  assert.ok(again.found);
  assert.equal(ip(again.records[0]!), '10.0.1.4');
  assert.equal(r.rotor.next(), 0);
  const solo = t.lookup(a, 'c2', QTYPE.A);
  assert.ok(solo.found && solo.rotor === undefined && solo.stable);
});

test('removeEndpoint() and removeNetwork() take names away at once', () => {
  const t = table();
  t.addEndpoint(ep('e1', 'N1', 'web', '10.0.1.2', { aliases: ['pool'] }));
  t.addEndpoint(ep('e2', 'N1', 'web2', '10.0.1.3', { aliases: ['pool'] }));
  const a = t.asker('N1', '10.0.1.9')!;
  t.removeEndpoint('e1');
  assert.equal(t.lookup(a, 'web', QTYPE.A).found, false);
  const r = t.lookup(a, 'pool', QTYPE.A);
  assert.ok(r.found);
  assert.deepEqual(r.records.map(ip), ['10.0.1.3']);
  t.removeNetwork('N1');
  assert.equal(t.endpointCount, 0);
  assert.equal(t.asker('N1', '10.0.1.3'), undefined);
});

test('reverse() names the container and network for its addresses, IPv6 in any form', () => {
  const t = table();
  t.addEndpoint(ep('e1', 'N1', 'web', '10.0.1.2', { ipv6: 'fd61::2' }));
  const a = t.asker('N1', '10.0.1.2')!;
  assert.equal(t.reverse(a, '10.0.1.2'), 'web.n1');
  assert.equal(t.reverse(a, 'fd61:0000:0000:0000:0000:0000:0000:0002'), 'web.n1');
  assert.equal(t.reverse(a, '10.0.1.7'), undefined);
});

test('NameTable.onChange() runs synchronously on every change, before the call returns', () => {
  const t = new NameTable();
  let calls = 0;
  t.onChange(() => calls++);
  t.addNetwork({ id: 'W', name: 'w', internal: false });
  assert.equal(calls, 1);
  t.addEndpoint({
    endpointId: 'e1',
    networkId: 'W',
    containerId: 'c1c1c1c1c1c1c1',
    containerName: 'one',
    aliases: [],
    ipv4: '10.9.0.2',
    dns: [],
  });
  const afterAdd = calls;
  assert.ok(afterAdd >= 2);
  t.removeEndpoint('e1');
  assert.ok(calls > afterAdd);
  const afterRemove = calls;
  t.removeEndpoint('e1'); // unknown now: no change, no call
  assert.equal(calls, afterRemove);
  t.removeNetwork('W');
  assert.ok(calls > afterRemove);
});
