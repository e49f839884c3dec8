import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FirewallState,
  canonicalElement,
  canonicalElementText,
  compareFirewallShape,
  parseFirewallShape,
  type FirewallShape,
} from './firewall.js';
import { shapeJson } from './nft-json.test-helper.js';

const net = { bridge: 'br1', subnet4: '10.9.0.0/24', internal: false, icc: true, masquerade: true };
const ep = { port: 'veth1', mac: '02:42:0a:09:00:02', ipv4: '10.9.0.2' };
const port = {
  hostIp: '',
  hostPort: 8080,
  proto: 'tcp' as const,
  containerIp: '10.9.0.2',
  containerPort: 80,
};

test('expectedShape() counts the base chains’ rules and every element per set', () => {
  const fw = new FirewallState('cnm');
  const empty = fw.expectedShape();
  assert.equal(empty.chains.get('inet forward'), 8);
  assert.equal(empty.chains.get('bridge antispoof'), 6);
  assert.equal(empty.chains.get('inet portmap'), 2);
  assert.equal(empty.sets.get('bridge ep_mac'), 0);
  assert.equal(empty.sets.size, 18);
  fw.addNetwork(net);
  fw.addEndpoint(ep);
  fw.addPorts([port]);
  fw.setVip({ id: 'abc', vip: '10.9.0.200', bridge: 'br1', backends: ['10.9.0.2'] });
  const s = fw.expectedShape();
  for (const [set, n] of [
    ['inet bridges', 1],
    ['inet intra', 1],
    ['inet hairpin4', 1],
    ['inet masq4', 1],
    ['inet pm4any', 1],
    ['inet vips', 1],
    ['bridge ep_ports', 1],
    ['bridge ep_mac', 1],
    ['bridge ep_ip4', 1],
    ['bridge ep_ip6', 0],
  ] as const) {
    assert.equal(s.sets.get(set), n, set);
  }
  assert.equal(s.chains.get('inet svc_abc'), 2);
  assert.equal(s.chains.has('inet svc6_abc'), false);
  fw.setVip({
    id: 'abc',
    vip: '10.9.0.200',
    bridge: 'br1',
    backends: ['10.9.0.2'],
    vip6: 'fd00::c8',
    backends6: ['fd00::2'],
  });
  // A dual-stack VIP's second chain is expected, or every drift pass would reload the ruleset.
  assert.equal(fw.expectedShape().chains.get('inet svc6_abc'), 2);
});

test('parseFirewallShape() reads nft’s JSON listing', () => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'bridge', name: 'cnm', handle: 1 } },
      {
        set: { family: 'bridge', name: 'ep_ports', table: 'cnm', type: 'ifname', elem: ['a', 'b'] },
      },
      {
        map: { family: 'bridge', name: 'm', table: 'cnm', elem: [[{ concat: ['1.2.3.4'] }, 'x']] },
      },
      { set: { family: 'bridge', name: 'icc_off', table: 'cnm', type: 'ifname' } },
      { chain: { family: 'bridge', table: 'cnm', name: 'forward', handle: 2 } },
      { rule: { family: 'bridge', table: 'cnm', chain: 'forward', handle: 3, expr: [] } },
      { rule: { family: 'bridge', table: 'cnm', chain: 'forward', handle: 4, expr: [] } },
    ],
  });
  const s = parseFirewallShape([json]);
  assert.deepEqual(
    [...s.sets],
    [
      ['bridge ep_ports', 2],
      ['bridge m', 1],
      ['bridge icc_off', 0],
    ],
  );
  assert.deepEqual([...s.chains], [['bridge forward', 2]]);
});

test('compareFirewallShape() adds back missing elements and re-loads for anything else', () => {
  const fw = new FirewallState('cnm');
  fw.addNetwork(net);
  fw.addEndpoint(ep);
  const want = fw.expectedShape();
  const have = (edit: (s: FirewallShape) => void): FirewallShape => {
    const s = parseFirewallShape([shapeJson(want, 'inet'), shapeJson(want, 'bridge')]);
    edit(s);
    return s;
  };
  assert.deepEqual(
    compareFirewallShape(
      want,
      have(() => {}),
    ),
    { short: [] },
  );
  assert.deepEqual(
    compareFirewallShape(
      want,
      have((s) => s.sets.set('bridge ep_mac', 0)),
    ),
    { short: [{ set: 'bridge ep_mac', missing: 1 }] },
  );
  const reload = (edit: (s: FirewallShape) => void): string | undefined =>
    compareFirewallShape(want, have(edit)).reload;
  assert.match(
    reload((s) => s.chains.delete('inet forward')) ?? '',
    /chain inet forward is missing/,
  );
  assert.match(reload((s) => s.chains.set('bridge antispoof', 5)) ?? '', /has 5 rules, not 6/);
  assert.match(reload((s) => s.chains.set('inet sneaky', 1)) ?? '', /unknown chain inet sneaky/);
  assert.match(reload((s) => s.sets.delete('inet pm4')) ?? '', /set inet pm4 is missing/);
  assert.match(reload((s) => s.sets.set('bridge ep_ports', 2)) ?? '', /has 2 elements, not 1/);
});

test('elementScript() re-adds every element of the named sets only', () => {
  const fw = new FirewallState('cnm');
  fw.addNetwork(net);
  fw.addEndpoint(ep);
  fw.addPorts([port]);
  assert.equal(
    fw.elementScript(['bridge ep_mac', 'inet pm4any']),
    [
      'add element inet cnm pm4any { tcp . 8080 : 10.9.0.2 . 80 }',
      'add element bridge cnm ep_mac { "veth1" . 02:42:0a:09:00:02 }',
    ].join('\n'),
  );
  assert.equal(fw.elementScript([]), '');
});

test('element texts: the mirror’s lines and nft’s JSON listing give the same canonical text', () => {
  // Elements as `nft -j list table` printed them for these statements (nft 1.0.6).
  const cases: [string, unknown][] = [
    ['"cnmbr-1" . "cnmbr-1" : accept', [{ concat: ['cnmbr-1', 'cnmbr-1'] }, { accept: null }]],
    ['10.1.0.0/24', { prefix: { addr: '10.1.0.0', len: 24 } }],
    ['fd00:0:0:1:0::/64', { prefix: { addr: 'fd00:0:0:1::', len: 64 } }],
    ['"br1" . 10.1.0.0/24', { concat: ['br1', { prefix: { addr: '10.1.0.0', len: 24 } }] }],
    [
      '127.0.0.1 . udp . 8081 : 10.1.0.3 . 53',
      [{ concat: ['127.0.0.1', 'udp', 8081] }, { concat: ['10.1.0.3', 53] }],
    ],
    ['10.1.0.200 : jump svc_abc', ['10.1.0.200', { jump: { target: 'svc_abc' } }]],
    ['"Veth1" . 02:42:0A:01:00:02', { concat: ['Veth1', '02:42:0a:01:00:02'] }],
    ['"veth1" . FD00:0:0:1::2', { concat: ['veth1', 'fd00:0:0:1::2'] }],
    ['10.1.0.9/32', '10.1.0.9'],
    ['"x"', { elem: { val: 'x', counter: { packets: 0, bytes: 0 } } }],
  ];
  for (const [text, json] of cases) {
    assert.equal(canonicalElementText(text), canonicalElement(json), text);
  }
});

test('compareFirewallShape() re-loads for an element changed in place (same count)', () => {
  const fw = new FirewallState('cnm');
  fw.addNetwork(net);
  fw.addEndpoint(ep);
  fw.addPorts([port]);
  const want = fw.expectedShape();
  const have = parseFirewallShape([shapeJson(want, 'inet'), shapeJson(want, 'bridge')]);
  assert.deepEqual(compareFirewallShape(want, have), { short: [] });
  have.elements!.set('inet pm4any', ['tcp . 8080 : 10.9.0.99 . 80']);
  assert.match(
    compareFirewallShape(want, have).reload ?? '',
    /set inet pm4any holds "tcp \. 8080 : 10\.9\.0\.99 \. 80", which cnm did not put there/,
  );
  // Short of one element and holding a foreign one: a re-load, not a top-up.
  fw.addPorts([{ ...port, hostPort: 8081 }]);
  const want2 = fw.expectedShape();
  assert.equal(want2.sets.get('inet pm4any'), 2, 'the cached shape follows changes');
  assert.match(compareFirewallShape(want2, have).reload ?? '', /pm4any holds/);
  have.elements!.set('inet pm4any', ['tcp . 8080 : 10.9.0.2 . 80']);
  assert.deepEqual(compareFirewallShape(want2, have), {
    short: [{ set: 'inet pm4any', missing: 1 }],
  });
});
