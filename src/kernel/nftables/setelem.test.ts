import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST } from '../rtnetlink/constants.js';
import { parseMessages, toHex } from '../rtnetlink/message.js';
import { CASE_SETS, CASE_TABLE, ELEMENT_CASES } from './setelem-cases.js';
import { NftElementSyntaxError, encodeElementBatch, wireElements } from './setelem.js';

const FIXTURES = new URL('../../../test/fixtures/nftables/', import.meta.url);

/** `<type> <payload hex>` lines of a fixture captured from `nft --debug=mnl`. */
function fixture(name: string): string[] {
  return fs
    .readFileSync(new URL(`${name}.hex`, FIXTURES), 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** The element messages of a batch as `<type> <payload hex>` (payload: after nlmsghdr). */
function elementLines(bytes: Uint8Array[]): string[] {
  return bytes
    .slice(1, -1)
    .flatMap((b) => parseMessages(b))
    .map((m) => `${m.type} ${toHex(m.payload)}`);
}

for (const { name, change } of ELEMENT_CASES) {
  test(`encodeElementBatch() matches what nft sends: ${name}`, () => {
    const parts = encodeElementBatch('inet', CASE_TABLE, [change]);
    assert.deepEqual(elementLines(parts.map((p) => p.bytes)), fixture(name));
  });
}

test('encodeElementBatch() frames one batch: begin, requests with ACK, end', () => {
  const parts = encodeElementBatch('inet', 't', [
    ELEMENT_CASES.find((c) => c.name === 'hash-del')!.change,
    ELEMENT_CASES.find((c) => c.name === 'hash-add')!.change,
  ]);
  const msgs = parts.map((p) => parseMessages(p.bytes)[0]!);
  // NFNL_MSG_BATCH_BEGIN / END, family AF_UNSPEC, res_id = NFNL_SUBSYS_NFTABLES big-endian.
  assert.equal(msgs[0]!.type, 0x10);
  assert.equal(toHex(msgs[0]!.payload), '0000000a');
  assert.equal(msgs.at(-1)!.type, 0x11);
  assert.equal(toHex(msgs.at(-1)!.payload), '0000000a');
  assert.deepEqual(
    msgs.slice(1, -1).map((m) => [m.type, m.flags]),
    [
      [0x0a0e, NLM_F_REQUEST | NLM_F_ACK],
      [0x0a0c, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE],
    ],
  );
  assert.deepEqual(
    parts.map((p) => p.change),
    [-1, 0, 1, -1],
  );
});

test('encodeElementBatch() splits a large change into messages below 64 KiB', () => {
  const elements = Array.from(
    { length: 3000 },
    (_, i) => `fd00::${i.toString(16)} . fd01::/64 . tcp . 1-${i + 1}`,
  );
  const parts = encodeElementBatch('inet', 't', [
    { op: 'add', set: 'rng6', shape: CASE_SETS.rng6!.shape, elements },
  ]);
  assert.ok(parts.length > 4, `${parts.length} parts`);
  for (const p of parts) assert.ok(p.bytes.length < 65536);
  // Every element is in exactly one message, each with KEY and KEY_END.
  const entries = parts.slice(1, -1).flatMap((p) => listEntries(p.bytes));
  assert.equal(entries.length, 3000);
  assert.ok(entries.every((e) => e.join() === '1,10'));
});

/** The list entries of an element message, each as its attribute types in order. */
function listEntries(message: Uint8Array): number[][] {
  const walk = (b: Uint8Array): { type: number; body: Uint8Array }[] => {
    const out = [];
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let at = 0; at + 4 <= b.length; at += (v.getUint16(at, true) + 3) & ~3) {
      const len = v.getUint16(at, true);
      out.push({ type: v.getUint16(at + 2, true) & 0x3fff, body: b.subarray(at + 4, at + len) });
    }
    return out;
  };
  const payload = parseMessages(message)[0]!.payload.subarray(4);
  const list = walk(payload).find((a) => a.type === 3)!;
  return walk(list.body).map((e) => walk(e.body).map((a) => a.type));
}

test('encodeElementBatch() keeps an rbtree interval and its end in one message', () => {
  const elements = Array.from({ length: 4000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/25`);
  const parts = encodeElementBatch('inet', 't', [
    { op: 'add', set: 'iv4', shape: CASE_SETS.iv4!.shape, elements },
  ]);
  assert.ok(parts.length > 3, `${parts.length} parts`);
  let total = 0;
  for (const p of parts.slice(1, -1)) {
    const entries = listEntries(p.bytes);
    total += entries.length;
    // Starts are [KEY], ends [FLAGS, KEY]: a message begins with a start, ends with an end.
    assert.deepEqual(entries[0], [1]);
    assert.deepEqual(entries.at(-1), [3, 1]);
  }
  assert.equal(total, 8000);
});

test('wireElements() rejects text that does not fit the shape', () => {
  const { iso4, port4, vm, dm, ifmac } = {
    iso4: CASE_SETS.iso4!.shape,
    port4: CASE_SETS.port4!.shape,
    vm: CASE_SETS.vm!.shape,
    dm: CASE_SETS.dm!.shape,
    ifmac: CASE_SETS.ifmac!.shape,
  };
  for (const [shape, text] of [
    [iso4, '10.0.0.0/24'], // range without flags interval
    [iso4, 'fd00::1'], // wrong family
    [iso4, '10.0.0.1 . 10.0.0.2'], // too many fields
    [port4, '10.0.0.1 . 10.0.0.2 . tcp . 70000'], // port out of range
    [port4, '10.0.0.1 . 10.0.0.2 . foo . 80'], // unknown protocol
    [vm, '10.0.0.1'], // map element without data
    [vm, '10.0.0.1 : jump'], // jump without chain
    [dm, '10.0.0.1 : 0x1-0x2'], // range as data
    [iso4, '10.0.0.1 : accept'], // data in a set
    [ifmac, '"veth1" . 02:42:0a:09:00'], // five octets
    [ifmac, '"veth1" . 02:42:0a:09:00:zz'], // not hex
    [ifmac, '"veth1" . 0242.0a09.0002'], // not nft's MAC syntax
    [ifmac, '"veth1" . 02:42:0a:09:00:02-02:42:0a:09:00:09'], // range without flags interval
  ] as const) {
    assert.throws(() => wireElements(shape, text), NftElementSyntaxError, text);
  }
});

test('wireElements() puts an rbtree end at high + 1 and none at the top', () => {
  const iv4 = CASE_SETS.iv4!.shape;
  const ends = (t: string): string[] => wireElements(iv4, t).map((e) => toHex(e.key));
  assert.deepEqual(ends('10.0.0.1-10.0.0.255'), ['0a000001', '0a000100']);
  assert.deepEqual(ends('0.0.0.0/0'), ['00000000']);
});
