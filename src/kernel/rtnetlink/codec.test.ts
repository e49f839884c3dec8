import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { decodeAddr } from './addr.js';
import { REQUEST_CASES } from './codec-cases.js';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
} from './constants.js';
import { decodeLink } from './link.js';
import {
  fromHex,
  MessageBuilder,
  parseAttrs,
  parseMessages,
  parseStatus,
  attr,
  type NlMessage,
} from './message.js';
import { decodeNeigh } from './neigh.js';
import { decodeRoute } from './route.js';
import { bytesToIp, cidrToBytes, ipToBytes } from './wire-address.js';

const dir = new URL('../../../test/fixtures/rtnetlink/', import.meta.url);

function fixture(name: string): Uint8Array[] {
  return fs
    .readFileSync(new URL(`${name}.hex`, dir), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(fromHex);
}

/** All messages of a captured reply, dump terminator included. */
function replies(name: string): NlMessage[] {
  return fixture(name).flatMap((d) => parseMessages(d));
}

describe('rtnetlink encode', () => {
  for (const c of REQUEST_CASES) {
    test(`encodes ${c.name} exactly as the kernel-accepted capture`, () => {
      const [expected] = fixture(`${c.name}.request`);
      assert.deepEqual(
        Buffer.from(c.encode()).toString('hex'),
        Buffer.from(expected!).toString('hex'),
      );
    });
  }

  test('MessageBuilder nests attributes and pads to 4 bytes', () => {
    const m = new MessageBuilder(RTM_NEWLINK, 1);
    m.struct(16, () => {});
    m.begin(18).str(1, 'veth').end().u8(7, 1);
    const bytes = m.finish(9);
    const [msg] = parseMessages(bytes);
    assert.equal(msg?.seq, 9);
    assert.equal(bytes.length % 4, 0);
    const a = parseAttrs(msg!.payload, 16);
    assert.equal(attr.str(parseAttrs(a.get(18)!).get(1)), 'veth');
    assert.equal(attr.u8(a.get(7)), 1);
  });
});

describe('rtnetlink decode of captured kernel replies', () => {
  test('link dump: multi-part messages end with NLMSG_DONE status 0', () => {
    const msgs = replies('link-dump.reply');
    const done = msgs.at(-1)!;
    assert.equal(done.type, NLMSG_DONE);
    assert.equal(parseStatus(done)?.errno, 0);
    const links = msgs.filter((m) => m.type === RTM_NEWLINK).map(decodeLink);
    const byName = new Map(links.map((l) => [l.name, l]));
    assert.deepEqual([...byName.keys()].sort(), ['br0', 'lo', 'va', 'vb', 'vx0']);
    const va = byName.get('va')!;
    assert.equal(va.kind, 'veth');
    assert.equal(va.mtu, 1400);
    assert.equal(va.mac, '02:00:00:00:0a:01');
    assert.equal(va.master, byName.get('br0')!.index);
    assert.equal(va.alias, 'cnm:ep');
    assert.equal(va.link, byName.get('vb')!.index);
    assert.equal(va.up, true);
    assert.equal(byName.get('vb')!.lowerUp, true);
    assert.equal(byName.get('vx0')!.kind, 'vxlan');
    assert.equal(byName.get('lo')!.kind, undefined);
    assert.equal(typeof va.hairpin, 'boolean', 'a bridge port reports its IFLA_BRPORT_MODE');
    assert.equal(byName.get('vb')!.hairpin, undefined, 'not a bridge port');
    assert.equal(byName.get('br0')!.hairpin, undefined);
  });

  test('link get of a bridge port in hairpin mode (after hairpin-set)', () => {
    const [msg] = replies('link-get-hairpin.reply');
    assert.equal(msg?.type, RTM_NEWLINK);
    const va = decodeLink(msg!);
    assert.equal(va.name, 'va');
    assert.equal(va.hairpin, true);
    assert.equal(va.master, 2);
  });

  test('addr dump: IPv4 with label, IPv6 without', () => {
    const addrs = replies('addr-dump.reply')
      .filter((m) => m.type === RTM_NEWADDR)
      .map(decodeAddr);
    const v4 = addrs.find((a) => a.address === '10.9.0.2');
    assert.deepEqual(v4, {
      index: 4,
      family: 4,
      address: '10.9.0.2',
      prefixLen: 24,
      scope: 0,
      label: 'va',
    });
    const v6 = addrs.find((a) => a.address === 'fd09::2');
    assert.deepEqual(v6, { index: 4, family: 6, address: 'fd09::2', prefixLen: 64, scope: 0 });
  });

  test('route dump: default via gateway, metrics MTU, connected routes', () => {
    const routes = replies('route-dump-v4.reply')
      .filter((m) => m.type === RTM_NEWROUTE)
      .map(decodeRoute);
    const def = routes.find((r) => r.dst === 'default' && r.table === 254);
    assert.equal(def?.gateway, '10.9.0.1');
    assert.equal(def?.oif, 4);
    assert.equal(def?.protocol, 4);
    const dev = routes.find((r) => r.dst === '198.51.100.0/24');
    assert.equal(dev?.mtu, 1280);
    assert.equal(dev?.metric, 10);
    assert.equal(dev?.scope, 253);
    const connected = routes.find((r) => r.dst === '10.9.0.0/24' && r.table === 254);
    assert.equal(connected?.src, '10.9.0.2');
    assert.ok(
      routes.some((r) => r.table === 255),
      'the dump includes the local table',
    );
  });

  test('neighbour and FDB dumps', () => {
    const arp = replies('neigh-dump-v4.reply')
      .filter((m) => m.type === RTM_NEWNEIGH)
      .map(decodeNeigh)
      .find((n) => n.dst === '10.9.0.7');
    assert.equal(arp?.mac, '02:00:00:00:00:07');
    assert.equal(arp?.state, 0x80);
    const fdb = replies('fdb-dump.reply')
      .filter((m) => m.type === RTM_NEWNEIGH)
      .map(decodeNeigh)
      .find((n) => n.mac === '02:00:00:00:00:aa');
    assert.equal(fdb?.family, 'bridge');
    assert.equal(fdb?.dst, '10.9.0.9');
    assert.equal(fdb?.index, 5);
    assert.equal(fdb!.flags & 0x02, 0x02, 'NTF_SELF');
  });

  test('NLMSG_ERROR with extended ack gives errno and the kernel text', () => {
    const [err] = replies('error-enetunreach.reply');
    assert.equal(err?.type, NLMSG_ERROR);
    assert.deepEqual(parseStatus(err!), { errno: 101, extack: 'Nexthop has invalid gateway' });
  });
});

describe('wire addresses', () => {
  test('ipToBytes()/bytesToIp() round-trip and compress IPv6 per RFC 5952', () => {
    assert.equal(bytesToIp(ipToBytes('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
    assert.equal(bytesToIp(ipToBytes('::ffff:192.0.2.1')), '::ffff:c000:201');
    assert.equal(bytesToIp(ipToBytes('::')), '::');
    assert.equal(bytesToIp(ipToBytes('fe80::1')), 'fe80::1');
    assert.equal(bytesToIp(ipToBytes('10.0.0.255')), '10.0.0.255');
  });

  test('ipToBytes() and cidrToBytes() reject malformed input', () => {
    assert.throws(() => ipToBytes('10.0.0.256'), /Invalid IP address "10.0.0.256"/);
    assert.throws(() => ipToBytes('1::2::3'), TypeError);
    assert.throws(() => cidrToBytes('10.0.0.0/33'), /Invalid CIDR "10.0.0.0\/33"/);
    assert.deepEqual(cidrToBytes('default', 6).prefixLen, 0);
  });
});
