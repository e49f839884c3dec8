import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  RTM_DELQDISC,
  RTM_NEWQDISC,
} from './constants.js';
import { fromHex, parseMessages, toHex } from './message.js';
import {
  CNM_QDISC_HANDLE,
  decodeQdisc,
  encodeQdisc,
  encodeQdiscDump,
  tbfBufferTicks,
} from './qdisc.js';

/**
 * Expected bytes are written out by hand from linux/rtnetlink.h (struct tcmsg, TCA_*) and
 * linux/pkt_sched.h (struct tc_ratespec, struct tc_tbf_qopt, TCA_TBF_*), little-endian. The
 * real kernel accepting these requests is covered by the Kernel contract suite (root).
 */
const hex = (s: string): string => s.replace(/\s+/g, '');

describe('rtnetlink qdisc codec', () => {
  test('encodeQdisc() lays out a root tbf as pkt_sched.h says', () => {
    const bytes = encodeQdisc(
      RTM_NEWQDISC,
      NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
      {
        index: 4,
        handle: CNM_QDISC_HANDLE,
        tbf: { rate: 1_250_000, burst: 32_768, limit: 131_072 },
      },
      1,
    );
    const want = hex(`
      6c000000 2400 0505 01000000 00000000
      00 00 0000 04000000 00000100 ffffffff 00000000
      0800 0100 74626600
      4000 0200
        2800 0100
          00 01 0000 0000 0000 d0121300
          00 00 0000 0000 0000 00000000
          00000200 00400600 00000000
        0c00 0400 d012130000000000
        0800 0600 00800000
    `);
    // nlmsghdr (len 108, RTM_NEWQDISC 36, REQUEST|ACK|REPLACE|CREATE, seq 1); tcmsg (ifindex 4,
    // handle 1:, parent TC_H_ROOT); TCA_KIND "tbf"; TCA_OPTIONS { TCA_TBF_PARMS (rate: linklayer
    // ethernet, 1250000 B/s; peakrate 0; limit 131072; buffer 409600 ticks = 26.2144 ms; mtu 0),
    // TCA_TBF_RATE64, TCA_TBF_BURST 32768 }.
    assert.equal(toHex(bytes), want);
  });

  test('encodeQdisc() without tbf is a bare delete of the root qdisc', () => {
    const bytes = encodeQdisc(RTM_DELQDISC, NLM_F_REQUEST | NLM_F_ACK, { index: 7 }, 2);
    assert.equal(
      toHex(bytes),
      hex('24000000 2500 0500 02000000 00000000  00 00 0000 07000000 00000000 ffffffff 00000000'),
    );
  });

  test('encodeQdisc() puts rates beyond 2^32-1 B/s in TCA_TBF_RATE64 and saturates the u32', () => {
    const bytes = encodeQdisc(RTM_NEWQDISC, NLM_F_REQUEST, {
      index: 1,
      tbf: { rate: 12_500_000_000, burst: 1 << 20, limit: 1 << 22 },
    });
    const s = toHex(bytes);
    assert.ok(s.includes(hex('00 01 0000 0000 0000 ffffffff')), 'u32 rate saturated');
    // 12_500_000_000 = 0x2_e90e_dd00
    assert.ok(s.includes(hex('0c00 0400 00dd0ee902000000')), 'TCA_TBF_RATE64');
  });

  test('tbfBufferTicks() is the time to send the burst at the rate, in 64 ns ticks', () => {
    assert.equal(tbfBufferTicks(1_250_000, 32_768), 409_600);
    // Rounded up, so the bucket never ends up smaller than asked.
    assert.equal(tbfBufferTicks(3, 1), Math.ceil(1e9 / 3 / 64));
    assert.equal(tbfBufferTicks(1, 0xffffffff), 0xffffffff, 'saturates');
  });

  test('encodeQdiscDump() asks every device', () => {
    const bytes = encodeQdiscDump(NLM_F_REQUEST | NLM_F_DUMP, 3);
    assert.equal(toHex(bytes), hex('24000000 2600 0103 03000000 00000000') + '00'.repeat(20));
  });

  test('decodeQdisc() reads a tbf dump reply captured from the kernel', () => {
    // RTM_GETQDISC dump on kernel 6.18 after encodeQdisc() set a tbf (1250000 B/s, burst 32768,
    // limit 131072) on a bridge (ifindex 2): TCA_KIND, TCA_OPTIONS { TCA_TBF_PARMS } (no
    // RATE64 below 2^32), TCA_HW_OFFLOAD, TCA_STATS2, TCA_STATS; then NLMSG_DONE.
    const reply = fromHex(
      'bc00000024000200124e7c4443130000000000000200000000000100ffffffff020000000800010074626600' +
        '2c000200280001000001000000000000d0121300000000000000000000000000000002000040060000000000' +
        '05000c0000000000300007001400010000000000000000000000000000000000180003000000000000000000' +
        '0000000000000000000000002c00030000000000000000000000000000000000000000000000000000000000' +
        '000000000000000000000000',
    );
    const [msg] = parseMessages(reply);
    assert.deepEqual(decodeQdisc(msg!), {
      index: 2,
      handle: 0x10000,
      parent: 0xffffffff,
      kind: 'tbf',
      tbf: { rate: 1_250_000, burst: 32_768, limit: 131_072 },
    });
  });

  test('decodeQdisc() of a default qdisc has a kind and no tbf', () => {
    const reply = fromHex(
      hex(`
        30000000 2400 0200 05000000 00000000
        00 00 0000 01000000 00000000 ffffffff 02000000
        0c00 0100 6e6f717565756500
      `),
    );
    const [msg] = parseMessages(reply);
    assert.deepEqual(decodeQdisc(msg!), {
      index: 1,
      handle: 0,
      parent: 0xffffffff,
      kind: 'noqueue',
    });
  });
});
