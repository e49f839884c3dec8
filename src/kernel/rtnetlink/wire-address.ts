/**
 * IP and MAC addresses to and from the byte form netlink carries. Kept here (not in netaddr/) so
 * the codec stays a leaf with no imports: it only needs bytes, not address arithmetic.
 */

/** Parses a dotted IPv4 address to 4 bytes, or returns undefined. */
function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/** Parses an IPv6 address (with `::` and an optional dotted IPv4 tail) to 16 bytes. */
function parseIPv6(text: string): Uint8Array | undefined {
  let head = text;
  const zone = head.indexOf('%');
  if (zone >= 0) head = head.slice(0, zone);
  const groups: number[] = [];
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const toGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (item.includes('.') && i === items.length - 1) {
        const v4 = parseIPv4(item);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return undefined;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const left = toGroups(halves[0]!);
  const right = halves.length === 2 ? toGroups(halves[1]!) : [];
  if (!left || !right) return undefined;
  if (halves.length === 2) {
    const fill = 8 - left.length - right.length;
    if (fill < 1) return undefined;
    groups.push(...left, ...new Array<number>(fill).fill(0), ...right);
  } else {
    if (left.length !== 8) return undefined;
    groups.push(...left);
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/**
 * Parses an IPv4 or IPv6 address to its 4- or 16-byte network form.
 * @throws TypeError when `text` is not an address
 */
export function ipToBytes(text: string): Uint8Array {
  const bytes = text.includes(':') ? parseIPv6(text) : parseIPv4(text);
  if (!bytes) throw new TypeError(`Invalid IP address "${text}"`);
  return bytes;
}

/** The family (4 or 6) of an address text, by its syntax. */
export function ipFamily(text: string): 4 | 6 {
  return text.includes(':') ? 6 : 4;
}

/** Formats 4 or 16 bytes as an IP address (IPv6 in RFC 5952 short form). */
export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new TypeError(`Invalid IP address length ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on ties.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/**
 * Splits `a.b.c.d/n` or `x::/n` into address bytes and prefix length; `default` is the zero
 * prefix of `family`.
 * @throws TypeError on a malformed CIDR
 */
export function cidrToBytes(
  cidr: string,
  family?: 4 | 6,
): { bytes: Uint8Array; prefixLen: number } {
  if (cidr === 'default') {
    return { bytes: new Uint8Array(family === 6 ? 16 : 4), prefixLen: 0 };
  }
  const slash = cidr.indexOf('/');
  const bytes = ipToBytes(slash < 0 ? cidr : cidr.slice(0, slash));
  const max = bytes.length * 8;
  const lenText = slash < 0 ? String(max) : cidr.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
    throw new TypeError(`Invalid CIDR "${cidr}"`);
  }
  return { bytes, prefixLen: Number(lenText) };
}

/**
 * Parses `aa:bb:cc:dd:ee:ff` to 6 bytes.
 * @throws TypeError on a malformed MAC
 */
export function macToBytes(text: string): Uint8Array {
  const parts = text.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new TypeError(`Invalid MAC address "${text}"`);
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** Formats link-layer address bytes as lower-case colon hex. */
export function bytesToMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}
