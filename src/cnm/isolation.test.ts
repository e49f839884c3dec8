import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePolicies, renderElements, tenantAccs } from '../policy/compile.js';
import { IncrementalCompiler } from '../policy/incremental.js';
import { isolationOf, withoutIsolation } from './isolation.js';

test('isolationOf() accepts tenant on bridge and refuses anything else', () => {
  assert.equal(isolationOf({}, 'bridge'), undefined);
  assert.equal(isolationOf({ 'io.cnm.isolation': 'tenant' }, 'bridge'), 'tenant');
  assert.equal(isolationOf({ 'io.cnm.isolation': 'tenant' }), 'tenant');
  assert.throws(() => isolationOf({ 'io.cnm.isolation': 'Tenant' }, 'bridge'), {
    code: 'NET_ISOLATION_INVALID',
    message: /Invalid value "Tenant" for option "io.cnm.isolation"/,
  });
  assert.throws(() => isolationOf({ 'io.cnm.isolation': 'tenant' }, 'macvlan'), {
    code: 'NET_ISOLATION_INVALID',
  });
  assert.deepEqual(withoutIsolation({ 'io.cnm.isolation': 'tenant', a: 'b' }), { a: 'b' });
});

test('tenantAccs() isolates members and allows same-tenant peers and non-members', () => {
  const inc = new IncrementalCompiler();
  const members = [
    { tenant: 'a', ips: ['10.0.0.2'] },
    { tenant: 'a', ips: ['10.0.0.3'] },
    { tenant: 'b', ips: ['10.0.0.4'] },
  ];
  inc.setExtra('t', { touches: () => true, compute: () => tenantAccs(members, ['10.0.0.0/24']) });
  inc.flush();
  const text = renderElements('t', inc.elements());
  assert.equal(
    text,
    [
      'add element inet t in_iso4 { 10.0.0.2 }',
      'add element inet t in_iso4 { 10.0.0.3 }',
      'add element inet t in_iso4 { 10.0.0.4 }',
      'add element inet t in_pair4 { 10.0.0.2 . 10.0.0.3 }',
      'add element inet t in_pair4 { 10.0.0.3 . 10.0.0.2 }',
      'add element inet t in_net4_w { 10.0.0.2 . 0.0.0.0-9.255.255.255 }',
      'add element inet t in_net4_w { 10.0.0.2 . 10.0.1.0-255.255.255.255 }',
      'add element inet t in_net4_w { 10.0.0.3 . 0.0.0.0-9.255.255.255 }',
      'add element inet t in_net4_w { 10.0.0.3 . 10.0.1.0-255.255.255.255 }',
      'add element inet t in_net4_w { 10.0.0.4 . 0.0.0.0-9.255.255.255 }',
      'add element inet t in_net4_w { 10.0.0.4 . 10.0.1.0-255.255.255.255 }',
      '',
    ].join('\n'),
  );
  inc.removeExtra('t');
  inc.flush();
  assert.equal(
    renderElements('t', inc.elements()),
    renderElements('t', compilePolicies({ policies: [], pods: [], namespaces: [] })),
  );
});
