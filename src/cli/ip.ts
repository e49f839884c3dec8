/**
 * Just enough address parsing for `network create` to pair `--gateway`, `--ip-range` and
 * `--aux-address` with the `--subnet` containing them, as the docker CLI does. Pure.
 */

/** An address as a number plus its width in bits (32 or 128). */
export interface ParsedIp {
  bits: 32 | 128;
  value: bigint;
}

/** Parses dotted IPv4 or IPv6 (with `::` and a trailing dotted quad); `undefined` if invalid. */
export function parseIp(s: string): ParsedIp | undefined {
  const v4 = (t: string): bigint | undefined => {
    const parts = t.split('.');
    if (parts.length !== 4) return undefined;
    let n = 0n;
    for (const p of parts) {
      if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
      n = (n << 8n) | BigInt(p);
    }
    return n;
  };
  if (!s.includes(':')) {
    const n = v4(s);
    return n === undefined ? undefined : { bits: 32, value: n };
  }
  let text = s;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    // A trailing dotted quad (`::ffff:1.2.3.4`) is two hex groups.
    const n = v4(text.slice(lastColon + 1));
    if (n === undefined) return undefined;
    text = `${text.slice(0, lastColon + 1)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string | undefined): bigint[] | undefined => {
    if (h === undefined || h === '') return [];
    const out: bigint[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt(`0x${g}`));
    }
    return out;
  };
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  if (head === undefined || rest === undefined) return undefined;
  const known = head.length + rest.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return undefined;
  const all = [...head, ...Array<bigint>(8 - known).fill(0n), ...rest];
  return { bits: 128, value: all.reduce((acc, g) => (acc << 16n) | g, 0n) };
}

/** A CIDR prefix; `undefined` if invalid. */
export function parseCidr(s: string): { ip: ParsedIp; len: number } | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (ip === undefined || !/^\d{1,3}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  return len > ip.bits ? undefined : { ip, len };
}

/** True when `addrOrCidr` (an address, or a prefix's address) lies inside `subnet`. */
export function subnetContains(subnet: string, addrOrCidr: string): boolean | undefined {
  const net = parseCidr(subnet);
  const ip = addrOrCidr.includes('/') ? parseCidr(addrOrCidr)?.ip : parseIp(addrOrCidr);
  if (net === undefined || ip === undefined) return undefined;
  if (net.ip.bits !== ip.bits) return false;
  const shift = BigInt(net.ip.bits - net.len);
  return net.ip.value >> shift === ip.value >> shift;
}
