/**
 * Anti-spoofing on bridge networks (seed 5.1's ARP spoofing threat): a container crafts raw
 * Ethernet frames (AF_PACKET in its own netns) with another container's IPv4 source, another
 * MAC source, ARP claiming another container's address, and ARP with a foreign sender MAC.
 * Sniffers on a third container's eth0 and on the bridge in the host netns must see none of
 * them while they do see the same container's honest frames (and its ARP probe from 0.0.0.0);
 * the third container's and the host's neighbour entries for the victim keep the victim's MAC;
 * normal traffic keeps working; all of it again after a daemon restart. Needs root.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  api,
  exec,
  httpGet,
  skipUnlessRoot,
  startDaemon,
  tcpConnect,
  withWorld,
} from './harness.js';
import { PY, createNetwork, inspect, runServer, type Served } from './workload.js';

/** Sends frames given as hex strings on `eth0`, each three times. argv[1]: JSON list. */
const SEND_PY = String.raw`
import json, socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
for _ in range(3):
    for f in json.loads(sys.argv[1]):
        s.send(bytes.fromhex(f))
    time.sleep(0.05)
`;

/** Captures on `argv[1]` for `argv[2]` seconds; prints which markers (argv[3], JSON) it saw. */
const SNIFF_PY = String.raw`
import json, socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
s.settimeout(0.1)
markers = json.loads(sys.argv[3])
seen = set()
print("READY", flush=True)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        d = s.recv(65535)
    except socket.timeout:
        continue
    for m in markers:
        if m.encode() in d:
            seen.add(m)
print(json.dumps(sorted(seen)), flush=True)
`;

const macBytes = (mac: string): Buffer => Buffer.from(mac.replaceAll(':', ''), 'hex');
const ipBytes = (ip: string): Buffer => Buffer.from(ip.split('.').map(Number));
const BCAST = 'ff:ff:ff:ff:ff:ff';

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) + (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

/** An Ethernet + IPv4 + UDP frame (UDP checksum 0: none) carrying `marker`. */
function udpFrame(f: { src: string; dst: string; ipSrc: string; ipDst: string; marker: string }) {
  const payload = Buffer.from(f.marker);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(40000, 0);
  udp.writeUInt16BE(9999, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  const ip = Buffer.alloc(20);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip.writeUInt8(64, 8);
  ip.writeUInt8(17, 9);
  ipBytes(f.ipSrc).copy(ip, 12);
  ipBytes(f.ipDst).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const eth = Buffer.concat([macBytes(f.dst), macBytes(f.src), Buffer.from([0x08, 0x00])]);
  return Buffer.concat([eth, ip, udp, payload]).toString('hex');
}

/** An Ethernet + ARP frame; `marker` rides after the ARP body (where the padding goes). */
function arpFrame(f: {
  src: string;
  dst: string;
  op: 1 | 2;
  sha: string;
  spa: string;
  tha: string;
  tpa: string;
  marker: string;
}) {
  const eth = Buffer.concat([macBytes(f.dst), macBytes(f.src), Buffer.from([0x08, 0x06])]);
  const arp = Buffer.concat([
    Buffer.from([0, 1, 8, 0, 6, 4, 0, f.op]),
    macBytes(f.sha),
    ipBytes(f.spa),
    macBytes(f.tha),
    ipBytes(f.tpa),
  ]);
  return Buffer.concat([eth, arp, Buffer.from(f.marker)]).toString('hex');
}

interface Party extends Served {
  mac: string;
}

test(
  'anti-spoofing: foreign IP, foreign MAC and ARP for another address are dropped at the port',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      const d = await startDaemon(w);
      const a = api(w);
      await createNetwork(a, { Name: 'neta', Driver: 'bridge' });
      const party = async (name: string): Promise<Party> => {
        const s = await runServer(a, name, ['neta']);
        const c = await inspect(a, s.id);
        return { ...s, mac: String(c.NetworkSettings.Networks.neta.MacAddress) };
      };
      const [A, B, C] = await Promise.all([party('a'), party('b'), party('c')]);
      const ip = (p: Party): string => p.ip['neta']!;
      const gw = A.gw['neta']!;
      const addrs = JSON.parse(
        (await exec(w.hostNs, ['ip', '-j', 'addr'], { check: true })).stdout,
      );
      const br = (addrs as any[]).find((l) => (l.addr_info ?? []).some((x: any) => x.local === gw));
      assert.ok(br, `the bridge with ${gw}`);
      const brName = String(br.ifname);
      const brMac = String(br.address);
      const FAKE_MAC = '02:00:de:ad:be:ef';

      const frames: Record<string, { frame: string; allowed: boolean }> = {
        honest: {
          allowed: true,
          frame: udpFrame({
            src: A.mac,
            dst: BCAST,
            ipSrc: ip(A),
            ipDst: ip(C),
            marker: 'M-honest',
          }),
        },
        'arp probe (sender 0.0.0.0)': {
          allowed: true,
          frame: arpFrame({
            ...{ src: A.mac, dst: BCAST, op: 1, sha: A.mac, spa: '0.0.0.0' },
            ...{ tha: '00:00:00:00:00:00', tpa: ip(A), marker: 'M-probe' },
          }),
        },
        "IPv4 with B's source": {
          allowed: false,
          frame: udpFrame({ src: A.mac, dst: BCAST, ipSrc: ip(B), ipDst: ip(C), marker: 'M-ip' }),
        },
        "B's MAC as source": {
          allowed: false,
          frame: udpFrame({ src: B.mac, dst: BCAST, ipSrc: ip(A), ipDst: ip(C), marker: 'M-macb' }),
        },
        'made-up MAC as source': {
          allowed: false,
          frame: udpFrame({
            src: FAKE_MAC,
            dst: BCAST,
            ipSrc: ip(A),
            ipDst: ip(C),
            marker: 'M-mac',
          }),
        },
        "gratuitous ARP claiming B's IP": {
          allowed: false,
          frame: arpFrame({
            ...{ src: A.mac, dst: BCAST, op: 2, sha: A.mac, spa: ip(B) },
            ...{ tha: BCAST, tpa: ip(B), marker: 'M-garp' },
          }),
        },
        "ARP reply to C claiming B's IP": {
          allowed: false,
          frame: arpFrame({
            ...{ src: A.mac, dst: C.mac, op: 2, sha: A.mac, spa: ip(B) },
            ...{ tha: C.mac, tpa: ip(C), marker: 'M-arpc' },
          }),
        },
        "ARP reply to the host claiming B's IP": {
          allowed: false,
          frame: arpFrame({
            ...{ src: A.mac, dst: brMac, op: 2, sha: A.mac, spa: ip(B) },
            ...{ tha: brMac, tpa: gw, marker: 'M-arph' },
          }),
        },
        'ARP with a foreign sender MAC': {
          allowed: false,
          frame: arpFrame({
            ...{ src: A.mac, dst: BCAST, op: 1, sha: FAKE_MAC, spa: ip(A) },
            ...{ tha: '00:00:00:00:00:00', tpa: ip(C), marker: 'M-arpmac' },
          }),
        },
      };
      const markerOf = (f: string): string => Buffer.from(f, 'hex').toString('latin1');
      const markers = Object.values(frames).map((f) => /M-[a-z]+/.exec(markerOf(f.frame))![0]);

      const neighMac = async (ns: string, addr: string): Promise<string | undefined> => {
        const r = await exec(ns, ['ip', '-j', 'neigh', 'show', addr], { check: true });
        return (JSON.parse(r.stdout || '[]') as any[])[0]?.lladdr;
      };

      /** `guarded: false` is the control: the same frames with A's port unchecked get through. */
      const attempt = async (round: string, guarded = true): Promise<void> => {
        // Both C and the host know B (a connection each), then the ARP lock time (1 s) passes,
        // so an accepted reply would override the entries.
        assert.ok(await tcpConnect(C.ns, ip(B), 80), `${round}: C reaches B`);
        assert.ok(await tcpConnect(w.hostNs, ip(B), 80), `${round}: the host reaches B`);
        await new Promise((r) => setTimeout(r, 1500));
        const sniff = (ns: string, dev: string) =>
          exec(ns, [PY, '-c', SNIFF_PY, dev, '2.5', JSON.stringify(markers)], {
            check: true,
            timeoutMs: 10_000,
          });
        const sniffers = [sniff(C.ns, 'eth0'), sniff(w.hostNs, brName)];
        await new Promise((r) => setTimeout(r, 800));
        const list = Object.values(frames).map((f) => f.frame);
        await exec(A.ns, [PY, '-c', SEND_PY, JSON.stringify(list)], { check: true });
        const [atC, atHost] = (await Promise.all(sniffers)).map(
          (r) => new Set(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as string[]),
        );
        for (const [what, f] of Object.entries(frames)) {
          const m = /M-[a-z]+/.exec(markerOf(f.frame))![0];
          t.diagnostic(
            `${round}: ${what}: C ${atC!.has(m) ? 'saw it' : 'saw nothing'}, host ${atHost!.has(m) ? 'saw it' : 'saw nothing'}`,
          );
          if (!guarded) {
            // Unicast ARP replies reach only their addressee.
            assert.ok(atC!.has(m) || atHost!.has(m), `${round}: ${what} gets through unchecked`);
            continue;
          }
          assert.equal(atC!.has(m), f.allowed, `${round}: ${what} at C`);
          assert.equal(atHost!.has(m), f.allowed, `${round}: ${what} at the host's bridge`);
        }
        if (!guarded) {
          assert.equal(await neighMac(C.ns, ip(B)), A.mac, `${round}: C's entry for B poisoned`);
          assert.equal(await neighMac(w.hostNs, ip(B)), A.mac, `${round}: host's entry poisoned`);
          return;
        }
        assert.equal(await neighMac(C.ns, ip(B)), B.mac, `${round}: C's neighbour entry for B`);
        assert.equal(await neighMac(w.hostNs, ip(B)), B.mac, `${round}: host's entry for B`);
        // Normal traffic is untouched: A ↔ B, A → host, A → outside.
        for (const [from, url] of [
          [A.ns, `http://${ip(B)}/`],
          [B.ns, `http://${ip(A)}/`],
          [A.ns, w.outsideUrl],
        ] as const) {
          const r = await httpGet(from, url);
          assert.equal(r.status, 200, `${round}: ${url}`);
        }
        assert.equal(
          (await httpGet(B.ns, `http://${ip(A)}/`)).json?.client,
          ip(B),
          `${round}: B seen with its own address`,
        );
      };

      // Control: with A's port taken out of `ep_ports` the very same frames get through and
      // poison C's and the host's neighbour entries, so the checks below can fail. cnmd is
      // stopped meanwhile (its state stays): its drift pass would put the element back at once.
      const pinned = (await exec(w.hostNs, ['nft', 'list', 'set', 'bridge', 'cnm', 'ep_mac']))
        .stdout;
      const portA = new RegExp(`"([^"]+)" \\. ${A.mac}`).exec(pinned)?.[1];
      assert.ok(portA, `A's port in ep_mac:\n${pinned}`);
      const epPorts = (verb: string) =>
        exec(w.hostNs, ['nft', verb, 'element', 'bridge', 'cnm', 'ep_ports', `{ "${portA}" }`], {
          check: true,
        });
      await d.stop();
      await epPorts('delete');
      await attempt('control (unchecked)', false);
      await epPorts('add');
      await d.restart();
      for (const ns of [C.ns, w.hostNs]) {
        await exec(ns, ['ip', 'neigh', 'flush', 'to', ip(B)], { check: true });
      }

      await attempt('first');
      // A restart re-loads the ruleset atomically: the elements come back with the endpoints.
      await d.restart();
      await attempt('after restart');
    }),
);
