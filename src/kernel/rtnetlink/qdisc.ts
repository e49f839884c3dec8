/**
 * RTM_NEWQDISC / RTM_DELQDISC / RTM_GETQDISC: struct tcmsg plus TCA_* attributes, for the one
 * qdisc cnm sets, a root token bucket filter (`tc qdisc replace dev X root handle 1: tbf …`).
 *
 * Layouts from linux/rtnetlink.h and linux/pkt_sched.h (little-endian hosts):
 * - struct tcmsg (20 bytes): family u8, pad u8, pad u16, ifindex s32, handle u32, parent u32,
 *   info u32.
 * - struct tc_ratespec (12 bytes): cell_log u8, linklayer u8, overhead u16, cell_align s16,
 *   mpu u16, rate u32 (bytes per second, saturated at 2^32-1; TCA_TBF_RATE64 carries the rest).
 * - struct tc_tbf_qopt (36 bytes): rate, peakrate (tc_ratespec each), limit u32, buffer u32
 *   (time to send `burst` at `rate`, in 64 ns scheduler ticks), mtu u32 (peak bucket, unused).
 */
import {
  AF_UNSPEC,
  PSCHED_TICK_NS,
  RTM_GETQDISC,
  TC_H_ROOT,
  TC_LINKLAYER_ETHERNET,
  TCA_KIND,
  TCA_OPTIONS,
  TCA_TBF_BURST,
  TCA_TBF_PARMS,
  TCA_TBF_RATE64,
} from './constants.js';
import { attr, MessageBuilder, parseAttrs, type NlMessage } from './message.js';

/** Size of struct tcmsg. */
export const TCMSG_LEN = 20;
/** Size of struct tc_tbf_qopt. */
export const TBF_QOPT_LEN = 36;
/** The handle cnm gives its root qdisc: `1:` (major 1, minor 0). */
export const CNM_QDISC_HANDLE = 0x10000;

const U32_MAX = 0xffffffff;

/** Token bucket parameters, in the kernel's units. */
export interface TbfParams {
  /** Bytes per second. */
  rate: number;
  /** Bucket size in bytes. */
  burst: number;
  /** Queue length in bytes behind the bucket. */
  limit: number;
}

/** A qdisc request with the device resolved. */
export interface QdiscRequest {
  index: number;
  /** tcm_parent; TC_H_ROOT by default. */
  parent?: number;
  /** tcm_handle; 0 lets the kernel pick (or, on delete, matches any). */
  handle?: number;
  /** A tbf to create or change; absent for a delete. */
  tbf?: TbfParams;
}

/** A qdisc as decoded, device as ifindex. */
export interface QdiscEntry {
  index: number;
  handle: number;
  parent: number;
  kind: string;
  tbf?: TbfParams;
}

/** TBF's `buffer` field: the time to send `burst` bytes at `rate`, in scheduler ticks. */
export function tbfBufferTicks(rate: number, burst: number): number {
  const ticks = Math.ceil((burst * 1e9) / rate / PSCHED_TICK_NS);
  return Math.min(ticks, U32_MAX);
}

/**
 * Encodes RTM_NEWQDISC (with `tbf`) or RTM_DELQDISC. TCA_TBF_BURST makes the kernel compute the
 * bucket from bytes (tbf_change prefers it over `buffer`); TCA_TBF_RATE64 is always sent, so a
 * rate of 4 GB/s and more needs no special case (the kernel takes the larger of the two).
 */
export function encodeQdisc(type: number, flags: number, q: QdiscRequest, seq = 0): Uint8Array {
  const m = new MessageBuilder(type, flags);
  m.struct(TCMSG_LEN, (v) => {
    v.setUint8(0, AF_UNSPEC);
    v.setInt32(4, q.index, true);
    v.setUint32(8, q.handle ?? 0, true);
    v.setUint32(12, q.parent ?? TC_H_ROOT, true);
  });
  if (q.tbf) {
    // The u32 fields saturate rather than wrap; callers keep burst and limit in range.
    const rate = Math.round(q.tbf.rate);
    const burst = Math.min(Math.round(q.tbf.burst), U32_MAX);
    const limit = Math.min(Math.round(q.tbf.limit), U32_MAX);
    m.str(TCA_KIND, 'tbf');
    m.begin(TCA_OPTIONS);
    const parms = new Uint8Array(TBF_QOPT_LEN);
    const v = new DataView(parms.buffer);
    // rate: linklayer ethernet (no legacy rate table needed), rate saturated to u32.
    v.setUint8(1, TC_LINKLAYER_ETHERNET);
    v.setUint32(8, Math.min(rate, U32_MAX), true);
    // peakrate (12..23) stays zero: no peak bucket.
    v.setUint32(24, limit, true);
    v.setUint32(28, tbfBufferTicks(rate, burst), true);
    m.bytes(TCA_TBF_PARMS, parms);
    const r64 = new Uint8Array(8);
    new DataView(r64.buffer).setBigUint64(0, BigInt(rate), true);
    m.bytes(TCA_TBF_RATE64, r64);
    m.u32(TCA_TBF_BURST, burst);
    m.end();
  }
  return m.finish(seq);
}

/** Encodes an RTM_GETQDISC dump request (the kernel dumps every device; filter by index). */
export function encodeQdiscDump(flags: number, seq = 0): Uint8Array {
  const m = new MessageBuilder(RTM_GETQDISC, flags);
  m.struct(TCMSG_LEN, () => {});
  return m.finish(seq);
}

/**
 * Decodes an RTM_NEWQDISC reply. For a tbf, `burst` is recomputed from the kernel's `buffer`
 * (ticks of 64 ns), so it reads back within a byte or so of what was set.
 */
export function decodeQdisc(msg: NlMessage): QdiscEntry {
  const p = msg.payload;
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const a = parseAttrs(p, TCMSG_LEN);
  const out: QdiscEntry = {
    index: view.getInt32(4, true),
    handle: view.getUint32(8, true),
    parent: view.getUint32(12, true),
    kind: attr.str(a.get(TCA_KIND)) ?? '',
  };
  const opts = a.get(TCA_OPTIONS);
  if (out.kind === 'tbf' && opts) {
    const o = parseAttrs(opts);
    const parms = o.get(TCA_TBF_PARMS);
    if (parms && parms.length >= TBF_QOPT_LEN) {
      const pv = new DataView(parms.buffer, parms.byteOffset, parms.byteLength);
      const r64 = o.get(TCA_TBF_RATE64);
      // The kernel adds TCA_TBF_RATE64 only for rates that do not fit the u32.
      const rate =
        r64 && r64.length >= 8
          ? Number(new DataView(r64.buffer, r64.byteOffset, 8).getBigUint64(0, true))
          : pv.getUint32(8, true);
      const ticks = pv.getUint32(28, true);
      out.tbf = {
        rate,
        burst: Math.round((ticks * PSCHED_TICK_NS * rate) / 1e9),
        limit: pv.getUint32(24, true),
      };
    }
  }
  return out;
}
