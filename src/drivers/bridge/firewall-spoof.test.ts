import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NftElementChange } from '../../kernel/types.js';
import { FirewallState, baseRuleset, formatElementChanges, setShapes } from './firewall.js';

const ep = { port: 'veth1', mac: '02:42:0a:09:00:02', ipv4: '10.9.0.2', ipv6: 'fd00::2' };

/** Element changes of table `bridge t` as the nft statements they stand for. */
const lines = (changes: readonly NftElementChange[]): string[] =>
  formatElementChanges('bridge', 't', changes);

test('baseRuleset() checks every container port in bridge prerouting, default drop', () => {
  const rs = baseRuleset('t');
  const bridge = rs.slice(rs.lastIndexOf('table bridge t {'));
  for (const set of [
    'set ep_ports { type ifname; }',
    'set ep_mac { type ifname . ether_addr; }',
    'set ep_ip4 { type ifname . ipv4_addr; }',
    'set ep_ip6 { type ifname . ipv6_addr; }',
    'set ep_src4 { type ifname . ether_addr . ipv4_addr; }',
    'set ep_src6 { type ifname . ether_addr . ipv6_addr; }',
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
    'iifname . ether saddr . ip saddr @ep_src4 accept',
    'iifname . ether saddr . ip6 saddr @ep_src6 accept',
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
    'add element bridge t ep_src4 { "veth1" . 02:42:0a:09:00:02 . 10.9.0.2 }',
    'add element bridge t ep_ip6 { "veth1" . fd00::2 }',
    'add element bridge t ep_src6 { "veth1" . 02:42:0a:09:00:02 . fd00::2 }',
  ];
  assert.deepEqual(lines(fw.addEndpoint(ep)), add);
  assert.deepEqual(fw.addEndpoint({ ...ep }), [], 'idempotent');
  const full = fw.fullScript().split('\n');
  for (const line of add) assert.ok(full.includes(line), line);
  // IPv4 only: no ep_ip6 element (the port may then only send link-local IPv6).
  assert.deepEqual(
    lines(fw.addEndpoint({ port: 'veth2', mac: '02:00:00:00:00:03', ipv4: '10.9.0.3' })),
    [
      'add element bridge t ep_ports { "veth2" }',
      'add element bridge t ep_mac { "veth2" . 02:00:00:00:00:03 }',
      'add element bridge t ep_ip4 { "veth2" . 10.9.0.3 }',
      'add element bridge t ep_src4 { "veth2" . 02:00:00:00:00:03 . 10.9.0.3 }',
    ],
  );
});

test('addEndpoint() with other values re-pins in one script; removeEndpoint() only once', () => {
  const fw = new FirewallState('t');
  fw.addEndpoint(ep);
  assert.deepEqual(lines(fw.addEndpoint({ port: 'veth1', mac: ep.mac, ipv4: '10.9.0.7' })), [
    'delete element bridge t ep_ports { "veth1" }',
    'delete element bridge t ep_mac { "veth1" . 02:42:0a:09:00:02 }',
    'delete element bridge t ep_ip4 { "veth1" . 10.9.0.2 }',
    'delete element bridge t ep_src4 { "veth1" . 02:42:0a:09:00:02 . 10.9.0.2 }',
    'delete element bridge t ep_ip6 { "veth1" . fd00::2 }',
    'delete element bridge t ep_src6 { "veth1" . 02:42:0a:09:00:02 . fd00::2 }',
    'add element bridge t ep_ports { "veth1" }',
    'add element bridge t ep_mac { "veth1" . 02:42:0a:09:00:02 }',
    'add element bridge t ep_ip4 { "veth1" . 10.9.0.7 }',
    'add element bridge t ep_src4 { "veth1" . 02:42:0a:09:00:02 . 10.9.0.7 }',
  ]);
  assert.deepEqual(lines(fw.removeEndpoint('veth1')), [
    'delete element bridge t ep_ports { "veth1" }',
    'delete element bridge t ep_mac { "veth1" . 02:42:0a:09:00:02 }',
    'delete element bridge t ep_ip4 { "veth1" . 10.9.0.7 }',
    'delete element bridge t ep_src4 { "veth1" . 02:42:0a:09:00:02 . 10.9.0.7 }',
  ]);
  assert.deepEqual(fw.removeEndpoint('veth1'), []);
  assert.equal(fw.endpoint('veth1'), undefined);
  assert.ok(!fw.fullScript().includes('"veth1"'));
});

test('addEndpoint() gives element changes with the shape each set declares, one per set', () => {
  const fw = new FirewallState('t');
  const changes = fw.addEndpoint(ep);
  assert.deepEqual(
    changes.map((c) => [c.op, c.set, c.shape.key.join(' . '), c.elements.length]),
    [
      ['add', 'ep_ports', 'ifname', 1],
      ['add', 'ep_mac', 'ifname . ether_addr', 1],
      ['add', 'ep_ip4', 'ifname . ipv4_addr', 1],
      ['add', 'ep_src4', 'ifname . ether_addr . ipv4_addr', 1],
      ['add', 'ep_ip6', 'ifname . ipv6_addr', 1],
      ['add', 'ep_src6', 'ifname . ether_addr . ipv6_addr', 1],
    ],
  );
  assert.ok(changes.every((c) => !c.shape.interval && c.shape.data === undefined));
  assert.deepEqual(lines(fw.addIccPort('veth1')), ['add element bridge t icc_off { "veth1" }']);
  assert.deepEqual(fw.addIccPort('veth1'), [], 'idempotent');
  assert.ok(fw.hasIccPort('veth1'));
  assert.deepEqual(lines(fw.removeIccPort('veth1')), [
    'delete element bridge t icc_off { "veth1" }',
  ]);
  assert.equal(fw.hasIccPort('veth1'), false);
});

test('setShapes() reads every set declaration the encoder can take', () => {
  const shapes = setShapes(baseRuleset('t'));
  assert.deepEqual(shapes.get('bridge ep_mac'), { key: ['ifname', 'ether_addr'], interval: false });
  assert.deepEqual(shapes.get('inet masq4'), { key: ['ipv4_addr'], interval: true });
  assert.deepEqual(shapes.get('inet intra'), {
    key: ['ifname', 'ifname'],
    interval: false,
    data: 'verdict',
  });
  // A concatenated map value is not something the encoder takes: left out.
  assert.equal(shapes.has('inet pm4'), false);
});
