import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FirewallState, baseRuleset } from './firewall.js';

const vip = { id: 'abc123', vip: '10.9.0.9', bridge: 'br9', backends: ['10.9.0.2', '10.9.0.3'] };

test('baseRuleset() dispatches VIPs through one vmap in prerouting and output', () => {
  const rs = baseRuleset('t');
  assert.match(rs, /map vips \{ type ipv4_addr : verdict; \}/);
  assert.equal(rs.match(/ip daddr vmap @vips/g)?.length, 2);
});

test('setVip() creates the chain once, then only rewrites it', () => {
  const fw = new FirewallState('t');
  assert.deepEqual(fw.setVip(vip).split('\n'), [
    'add chain inet t svc_abc123',
    'flush chain inet t svc_abc123',
    'add rule inet t svc_abc123 iifname != "br9" fib saddr type != local drop',
    'add rule inet t svc_abc123 dnat ip to numgen inc mod 2 map { 0 : 10.9.0.2, 1 : 10.9.0.3 }',
    'add element inet t vips { 10.9.0.9 : jump svc_abc123 }',
  ]);
  assert.deepEqual(fw.setVip({ ...vip, backends: [] }).split('\n'), [
    'flush chain inet t svc_abc123',
    'add rule inet t svc_abc123 iifname != "br9" fib saddr type != local drop',
    'add rule inet t svc_abc123 drop',
  ]);
  assert.match(fw.fullScript(), /add element inet t vips \{ 10\.9\.0\.9 : jump svc_abc123 \}/);
});

test('removeVip() removes element and chain; unknown ids give nothing', () => {
  const fw = new FirewallState('t');
  fw.setVip(vip);
  assert.deepEqual(fw.removeVip('abc123').split('\n'), [
    'delete element inet t vips { 10.9.0.9 }',
    'flush chain inet t svc_abc123',
    'delete chain inet t svc_abc123',
  ]);
  assert.equal(fw.removeVip('abc123'), '');
  assert.equal(fw.hasVip('abc123'), false);
});
