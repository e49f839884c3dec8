/**
 * Command lines of the load generators, the same for cnm's containers and for the kernel
 * ceiling's namespaces, so both paths run exactly the same tools with the same flags. Pure.
 *
 * - latency: `sockperf ping-pong` over TCP, 64 B, round trip (`--full-rtt`);
 * - throughput: `iperf3`, one stream and `-P 4`;
 * - packet rate: `iperf3 -u -l 64 -b RATE`, counted at the receiver;
 * - connection rate: a CRR loop in python3 ({@link CRR_PY}), because no Debian main package
 *   measures it (netperf's TCP_CRR is not in Debian main).
 */

/** The TCP/UDP ports the servers listen on (the host mode listens on 127.0.0.1 only). */
export const PORTS = { iperf3: 25201, sockperf: 21111, crr: 22865 } as const;

/** The host ports the bridge-published mode maps onto {@link PORTS}. */
export const PUBLISHED_PORTS = { iperf3: 35201, sockperf: 31111, crr: 32865 } as const;

/** The server kinds, in start order. */
export const SERVER_KINDS = ['iperf3', 'sockperf', 'crr'] as const;

/** Every server at `ip` on `ports`. */
export function targetAt(ip: string, ports: Record<ServerKind, number> = PORTS): Target {
  return {
    iperf3: { ip, port: ports.iperf3 },
    sockperf: { ip, port: ports.sockperf },
    crr: { ip, port: ports.crr },
  };
}

/** Which server; each runs as its own process (one per container on the cnm side). */
export type ServerKind = keyof typeof PORTS;

/** Where the client finds each server: address and port per server kind. */
export type Target = Record<ServerKind, { ip: string; port: number }>;

/** The server's command line, listening on `bind`. */
export function serverArgv(kind: ServerKind, bind: string): string[] {
  switch (kind) {
    case 'iperf3':
      return ['iperf3', '-s', '-B', bind, '-p', String(PORTS.iperf3)];
    case 'sockperf':
      return ['sockperf', 'server', '--tcp', '-i', bind, '-p', String(PORTS.sockperf)];
    case 'crr':
      return ['python3', '-c', CRR_PY, 'server', bind, String(PORTS.crr)];
  }
}

/** One measurement a client runs. */
export type ClientTest = 'rr' | 'tcp' | 'tcp4' | 'crr' | 'udp';

/** Every client test, in the order a repetition runs them. */
export const CLIENT_TESTS: readonly ClientTest[] = ['rr', 'crr', 'tcp', 'tcp4', 'udp'];

/** The client's command line for `test` against `target`, running `secs` seconds. */
export function clientArgv(
  test: ClientTest,
  target: Target,
  opts: { secs: number; udpRate: string },
): string[] {
  const t = String(opts.secs);
  switch (test) {
    case 'rr':
      return [
        'sockperf',
        'ping-pong',
        '--tcp',
        '-i',
        target.sockperf.ip,
        '-p',
        String(target.sockperf.port),
        '-m',
        '64',
        '-t',
        t,
        '--full-rtt',
      ];
    case 'tcp':
      return ['iperf3', '-c', target.iperf3.ip, '-p', String(target.iperf3.port), '-t', t, '-J'];
    case 'tcp4':
      return [
        'iperf3',
        '-c',
        target.iperf3.ip,
        '-p',
        String(target.iperf3.port),
        '-t',
        t,
        '-P',
        '4',
        '-J',
      ];
    case 'udp':
      return [
        'iperf3',
        '-c',
        target.iperf3.ip,
        '-p',
        String(target.iperf3.port),
        '-t',
        t,
        '-u',
        '-l',
        '64',
        '-b',
        opts.udpRate,
        '-J',
      ];
    case 'crr':
      return ['python3', '-c', CRR_PY, 'client', target.crr.ip, String(target.crr.port), t];
  }
}

/**
 * The CRR loop (what netperf's TCP_CRR measures): per connection, connect, send 1 byte,
 * receive 1 byte, close; single-threaded, for a fixed time. The client closes with
 * SO_LINGER 0 (a reset), so no TIME_WAIT builds up on either side: at thousands of
 * connections per second TIME_WAIT entries otherwise exhaust the ephemeral ports or, through
 * DNAT, make SYNs hit old entries and stall for a second (seen in the anchor measurements).
 * Prints one JSON line: connections, errors, seconds.
 */
export const CRR_PY = String.raw`
import json, socket, struct, sys, time
role, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if role == "server":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(1024)
    while True:
        c, _ = s.accept()
        try:
            if c.recv(1):
                c.sendall(b"r")
                c.recv(1)
        except OSError:
            pass
        c.close()
else:
    secs = float(sys.argv[4])
    linger = struct.pack("ii", 1, 0)
    n = errors = 0
    t0 = time.monotonic(); end = t0 + secs
    while time.monotonic() < end:
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        c.settimeout(3)
        try:
            c.connect((host, port)); c.sendall(b"q")
            if c.recv(1) == b"r":
                n += 1
            else:
                errors += 1
        except OSError:
            errors += 1
        c.close()
    print(json.dumps({"connections": n, "errors": errors, "seconds": time.monotonic() - t0}))
`;
