import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FirewallState, baseRuleset } from './firewall.js';

const ep = { port: 'veth1', mac: '02:42:0a:09:00:02', ipv4: '10.9.0.2', ipv6: 'fd00::2' };

test('baseRuleset() checks every container port in bridge prerouting, default drop', () => {
  const rs = baseRuleset('t');
  const bridge = rs.slice(rs.lastIndexOf('table bridge t {'));
  for (const set of [
    'set ep_ports { type ifname; }',
    'set ep_mac { type ifname . ether_addr; }',
    'set ep_ip4 { type ifname . ipv4_addr; }',
    'set ep_ip6 { type ifname . ipv6_addr; }',
  ]) {
    assert.ok(bridge.includes(set), set);
  }
  const lines = bridge.split('\n');
  const chain = (name: string): string[] => {
    const start = lines.indexOf(`  chain ${name} {`);
    return lines.slice(start + 1, lines.indexOf('  }', start)).map((l) => l.trim());
  };
  assert.deepEqual(chain('prerouting'), [
    'type filter hook prerouting priority filter; policy accept;',
    'iifname @ep_ports jump antispoof',
  ]);
  assert.deepEqual(chain('antispoof'), [
    'iifname . ether saddr != @ep_mac drop',
    'iifname . ip saddr @ep_ip4 return',
    'arp htype 1 arp ptype ip arp hlen 6 arp plen 4 goto antispoof_arp',
    'ip6 saddr { ::, fe80::/10 } return',
    'iifname . ip6 saddr @ep_ip6 return',
    'drop',
  ]);
  assert.deepEqual(chain('antispoof_arp'), [
    'iifname . arp saddr ether != @ep_mac drop',
    'arp saddr ip 0.0.0.0 return',
    'iifname . arp saddr ip @ep_ip4 return',
    'drop',
  ]);
});

test('addEndpoint() pins a port to its MAC and addresses; fullScript() restores them', () => {
  const fw = new FirewallState('t');
  const add = [
    'add element bridge t ep_ports { "veth1" }',
    'add element bridge t ep_mac { "veth1" . 02:42:0a:09:00:02 }',
    'add element bridge t ep_ip4 { "veth1" . 10.9.0.2 }',
    'add element bridge t ep_ip6 { "veth1" . fd00::2 }',
  ];
  assert.deepEqual(fw.addEndpoint(ep).split('\n'), add);
  assert.equal(fw.addEndpoint({ ...ep }), '', 'idempotent');
  const full = fw.fullScript().split('\n');
  for (const line of add) assert.ok(full.includes(line), line);
  // IPv4 only: no ep_ip6 element (the port may then only send link-local IPv6).
  assert.deepEqual(
    fw.addEndpoint({ port: 'veth2', mac: '02:00:00:00:00:03', ipv4: '10.9.0.3' }).split('\n'),
    [
      'add element bridge t ep_ports { "veth2" }',
      'add element bridge t ep_mac { "veth2" . 02:00:00:00:00:03 }',
      'add element bridge t ep_ip4 { "veth2" . 10.9.0.3 }',
    ],
  );
});

test('addEndpoint() with other values re-pins in one script; removeEndpoint() only once', () => {
  const fw = new FirewallState('t');
  fw.addEndpoint(ep);
  assert.deepEqual(fw.addEndpoint({ port: 'veth1', mac: ep.mac, ipv4: '10.9.0.7' }).split('\n'), [
    'delete element bridge t ep_ports { "veth1" }',
    'delete element bridge t ep_mac { "veth1" . 02:42:0a:09:00:02 }',
    'delete element bridge t ep_ip4 { "veth1" . 10.9.0.2 }',
    'delete element bridge t ep_ip6 { "veth1" . fd00::2 }',
    'add element bridge t ep_ports { "veth1" }',
    'add element bridge t ep_mac { "veth1" . 02:42:0a:09:00:02 }',
    'add element bridge t ep_ip4 { "veth1" . 10.9.0.7 }',
  ]);
  assert.deepEqual(fw.removeEndpoint('veth1').split('\n'), [
    'delete element bridge t ep_ports { "veth1" }',
    'delete element bridge t ep_mac { "veth1" . 02:42:0a:09:00:02 }',
    'delete element bridge t ep_ip4 { "veth1" . 10.9.0.7 }',
  ]);
  assert.equal(fw.removeEndpoint('veth1'), '');
  assert.equal(fw.endpoint('veth1'), undefined);
  assert.ok(!fw.fullScript().includes('"veth1"'));
});
