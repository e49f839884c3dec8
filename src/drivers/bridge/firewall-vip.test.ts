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

test('a dual-stack VIP gets its own IPv6 chain behind the vips6 map', () => {
  const rs = baseRuleset('t');
  assert.match(rs, /map vips6 \{ type ipv6_addr : verdict; \}/);
  assert.equal(rs.match(/ip6 daddr vmap @vips6/g)?.length, 2);
  const fw = new FirewallState('t');
  const v = { ...vip, vip6: 'fd09::9', backends6: ['fd09::2', 'fd09::3'] };
  const script = fw.setVip(v).split('\n');
  assert.deepEqual(script.slice(5), [
    'add chain inet t svc6_abc123',
    'flush chain inet t svc6_abc123',
    'add rule inet t svc6_abc123 iifname != "br9" fib saddr type != local drop',
    'add rule inet t svc6_abc123 dnat ip6 to numgen inc mod 2 map { 0 : fd09::2, 1 : fd09::3 }',
    'add element inet t vips6 { fd09::9 : jump svc6_abc123 }',
  ]);
  assert.deepEqual(
    fw
      .setVip({ ...v, backends6: [] })
      .split('\n')
      .slice(3),
    [
      'flush chain inet t svc6_abc123',
      'add rule inet t svc6_abc123 iifname != "br9" fib saddr type != local drop',
      'add rule inet t svc6_abc123 drop',
    ],
  );
  assert.deepEqual(fw.removeVip('abc123').split('\n').slice(3), [
    'delete element inet t vips6 { fd09::9 }',
    'flush chain inet t svc6_abc123',
    'delete chain inet t svc6_abc123',
  ]);
});

test('a dual-stack network masquerades IPv6 VIP hairpin traffic (hairpin6)', () => {
  assert.match(baseRuleset('t'), /ct status dnat oifname \. ip6 saddr @hairpin6 masquerade/);
  const fw = new FirewallState('t');
  const n = {
    bridge: 'br9',
    subnet4: '10.9.0.0/24',
    subnet6: 'fd09::/64',
    internal: true,
    icc: true,
    masquerade: true,
  };
  const add = fw.addNetwork(n).split('\n');
  assert.ok(add.includes('add element inet t hairpin6 { "br9" . fd09::/64 }'), add.join('\n'));
  assert.ok(!add.some((l) => l.includes('masq6')), 'internal: no way out, hairpin still');
  assert.ok(
    fw
      .removeNetwork('br9')
      .split('\n')
      .includes('delete element inet t hairpin6 { "br9" . fd09::/64 }'),
  );
});
