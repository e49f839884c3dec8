/**
 * `-p` port specs: `[hostIp:][hostPort[-end]:]containerPort[-end][/tcp|udp]`, as the docker CLI.
 */
import { InvalidError } from '../errors.js';
import { IP } from '../netaddr/index.js';
import type { PortBinding, PortSpec } from './types.js';

function parsePort(s: string, what: string, spec: string): number {
  if (!/^\d{1,5}$/.test(s)) {
    throw new InvalidError('PORT_INVALID', `Invalid ${what} "${s}" in port spec "${spec}"`);
  }
  const n = Number(s);
  if (n < 1 || n > 65535) {
    throw new InvalidError(
      'PORT_INVALID',
      `Invalid ${what} "${s}" in port spec "${spec}": it must be between 1 and 65535`,
    );
  }
  return n;
}

function parseRange(s: string, what: string, spec: string): { start: number; end?: number } {
  const dash = s.indexOf('-');
  if (dash < 0) return { start: parsePort(s, what, spec) };
  const start = parsePort(s.slice(0, dash), what, spec);
  const end = parsePort(s.slice(dash + 1), what, spec);
  if (end < start) {
    throw new InvalidError('PORT_INVALID', `Invalid ${what} range "${s}" in port spec "${spec}"`);
  }
  return end === start ? { start } : { start, end };
}

/**
 * Parses one `-p` spec.
 * @throws InvalidError PORT_INVALID
 * @example parsePortSpec('127.0.0.1:8080:80/udp')
 */
export function parsePortSpec(spec: string): PortSpec {
  let rest = spec.trim();
  let proto: 'tcp' | 'udp' = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p !== 'tcp' && p !== 'udp') {
      throw new InvalidError(
        'PORT_INVALID',
        `Invalid protocol "${p}" in port spec "${spec}": expected tcp or udp`,
      );
    }
    proto = p;
    rest = rest.slice(0, slash);
  }
  let hostIp = '';
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') {
      throw new InvalidError('PORT_INVALID', `Invalid port spec "${spec}"`);
    }
    hostIp = rest.slice(1, close);
    rest = rest.slice(close + 2);
  } else {
    const parts = rest.split(':');
    if (parts.length === 3) {
      hostIp = parts[0]!;
      rest = `${parts[1]}:${parts[2]}`;
    } else if (parts.length > 3) {
      throw new InvalidError('PORT_INVALID', `Invalid port spec "${spec}"`);
    }
  }
  if (hostIp) {
    const ip = IP.tryParse(hostIp);
    if (!ip)
      throw new InvalidError('PORT_INVALID', `Invalid host IP "${hostIp}" in port spec "${spec}"`);
    if (ip.family !== 4) {
      throw new InvalidError(
        'PORT_INVALID',
        `Cannot publish on "${hostIp}" in port spec "${spec}": cnm publishes ports on IPv4 host addresses`,
      );
    }
    hostIp = ip.isUnspecified ? '' : ip.toString();
  }
  const colon = rest.indexOf(':');
  const hostPart = colon >= 0 ? rest.slice(0, colon) : '';
  const ctrPart = colon >= 0 ? rest.slice(colon + 1) : rest;
  if (ctrPart === '')
    throw new InvalidError('PORT_INVALID', `No container port in port spec "${spec}"`);
  const ctr = parseRange(ctrPart, 'container port', spec);
  const host = hostPart === '' ? undefined : parseRange(hostPart, 'host port', spec);
  const out: PortSpec = { hostIp, hostPort: host?.start ?? 0, containerPort: ctr.start, proto };
  if (host?.end !== undefined) out.hostPortEnd = host.end;
  if (ctr.end !== undefined) out.containerPortEnd = ctr.end;
  if (host && ctr.end !== undefined) {
    const hostLen = (host.end ?? host.start) - host.start;
    if (hostLen !== ctr.end - ctr.start) {
      throw new InvalidError(
        'PORT_INVALID',
        `Invalid port spec "${spec}": host and container port ranges differ in length`,
      );
    }
  }
  return out;
}

/**
 * Turns a spec into concrete bindings, picking free host ports where the spec leaves a choice.
 * `inUse(hostIp, proto, port)` says whether a host port is taken.
 * @throws InvalidError PORT_INVALID when no port of a range or of the ephemeral range is free
 */
export function bindPorts(
  spec: PortSpec,
  inUse: (hostIp: string, proto: 'tcp' | 'udp', port: number) => boolean,
  ephemeral: { start: number; end: number } = { start: 32768, end: 60999 },
): PortBinding[] {
  const { hostIp, proto } = spec;
  const ctrEnd = spec.containerPortEnd ?? spec.containerPort;
  if (ctrEnd !== spec.containerPort) {
    // Container range: each container port gets the host port at the same offset (or an
    // ephemeral one when no host port was given).
    const out: PortBinding[] = [];
    for (let c = spec.containerPort; c <= ctrEnd; c++) {
      const hostPort =
        spec.hostPort === 0
          ? pickFree(hostIp, proto, ephemeral, inUse, out)
          : spec.hostPort + (c - spec.containerPort);
      out.push({ hostIp, hostPort, containerPort: c, proto });
    }
    return out;
  }
  if (spec.hostPort !== 0 && spec.hostPortEnd === undefined) {
    return [{ hostIp, hostPort: spec.hostPort, containerPort: spec.containerPort, proto }];
  }
  const range = spec.hostPort === 0 ? ephemeral : { start: spec.hostPort, end: spec.hostPortEnd! };
  return [
    {
      hostIp,
      hostPort: pickFree(hostIp, proto, range, inUse, []),
      containerPort: spec.containerPort,
      proto,
    },
  ];
}

function pickFree(
  hostIp: string,
  proto: 'tcp' | 'udp',
  range: { start: number; end: number },
  inUse: (hostIp: string, proto: 'tcp' | 'udp', port: number) => boolean,
  taken: PortBinding[],
): number {
  for (let p = range.start; p <= range.end; p++) {
    if (!inUse(hostIp, proto, p) && !taken.some((b) => b.hostPort === p && b.proto === proto))
      return p;
  }
  throw new InvalidError(
    'PORT_INVALID',
    `No free host port in ${range.start}-${range.end}/${proto}`,
  );
}
