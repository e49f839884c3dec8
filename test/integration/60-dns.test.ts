/**
 * Embedded DNS: names, aliases, `NAME.NETWORK`, short ids and PTRs on user-defined bridges,
 * scoped to the networks a container shares; round robin; UDP and TCP; forwarding to the world's
 * fake upstream (never a real resolver: cnmd gets `--resolv-conf` of the world); a dead upstream;
 * resolv.conf changes; search domains and ndots; records changing under load; malformed input.
 * Needs root.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import {
  OUTSIDE_IP,
  api,
  exec,
  skipUnlessRoot,
  startDaemon,
  startServer,
  withWorld,
  type ApiClient,
} from './harness.js';
import { createNetwork, execIn, runContainer, served, type Served } from './workload.js';

const PY = '/usr/bin/python3';
const SLEEP = ['sleep', '600'];

/**
 * A DNS client run inside a container's netns: `python3 -c DNS_PY <json>`. Modes: `ask` sends
 * each query (UDP or TCP) and prints rcode, TC, answers and milliseconds; `raw` sends bytes
 * (hex) and prints the reply's hex or null; `load` asks names in a loop for `secs` and counts
 * answers that are not NOERROR-with-records.
 */
const DNS_PY = String.raw`
import json, random, socket, struct, sys, time
a = json.loads(sys.argv[1]); srv = a["server"]; fam = socket.AF_INET6 if ":" in srv else socket.AF_INET
TYPES = {"A": 1, "PTR": 12, "MX": 15, "AAAA": 28, "TXT": 16}
def q(name, t):
    i = random.randint(0, 65535)
    m = struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0)
    for l in name.rstrip(".").split("."):
        if l: m += bytes([len(l)]) + l.encode()
    return i, m + b"\0" + struct.pack("!HH", TYPES[t], 1)
def rname(m, o):
    out, j, jumped = [], o, None
    while True:
        n = m[j]
        if n == 0: j += 1; break
        if n >= 0xc0:
            if jumped is None: jumped = j + 2
            j = ((n & 0x3f) << 8) | m[j + 1]; continue
        out.append(m[j + 1:j + 1 + n].decode()); j += 1 + n
    return ".".join(out), (jumped if jumped is not None else j)
def parse(m):
    rc, tc, an = m[3] & 15, bool(m[2] & 2), struct.unpack("!H", m[6:8])[0]
    _, o = rname(m, 12); o += 4; ans = []
    for _ in range(an):
        _, o = rname(m, o); t, c, ttl, ln = struct.unpack("!HHIH", m[o:o + 10]); o += 10; d = m[o:o + ln]
        if t == 1: ans.append(socket.inet_ntop(socket.AF_INET, d))
        elif t == 28: ans.append(socket.inet_ntop(socket.AF_INET6, d))
        elif t == 12: ans.append(rname(m, o)[0])
        else: ans.append(d.hex())
        o += ln
    return {"rcode": rc, "tc": tc, "answers": ans}
def udp(m, i, timeout=2.0):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(timeout); s.sendto(m, (srv, 53))
    while True:
        r = s.recv(65535)
        if r[:2] == m[:2]: return r
def tcp(msgs, timeout=2.0):
    s = socket.create_connection((srv, 53), timeout=timeout)
    s.sendall(b"".join(struct.pack("!H", len(m)) + m for m in msgs)); out = []; buf = b""
    while len(out) < len(msgs):
        d = s.recv(65535)
        if not d: break
        buf += d
        while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
            n = struct.unpack("!H", buf[:2])[0]; out.append(buf[2:2 + n]); buf = buf[2 + n:]
    return out
res = []
if a["mode"] == "ask":
    for x in a["queries"]:
        i, m = q(x["name"], x.get("type", "A")); t0 = time.monotonic()
        try:
            r = tcp([m])[0] if x.get("tcp") else udp(m, i, x.get("timeout", 2.0))
            out = parse(r)
        except Exception as e:
            out = {"error": type(e).__name__}
        out["ms"] = (time.monotonic() - t0) * 1000; res.append(out)
elif a["mode"] == "tcpmany":
    msgs = [q(x["name"], x.get("type", "A"))[1] for x in a["queries"]]
    res = [parse(r) for r in tcp(msgs)]
elif a["mode"] == "raw":
    for h in a["packets"]:
        try:
            if a.get("tcp"):
                s = socket.create_connection((srv, 53), timeout=1.0); s.sendall(bytes.fromhex(h))
                r = s.recv(65535); res.append(r.hex() if r else None)
            else:
                s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(0.5)
                s.sendto(bytes.fromhex(h), (srv, 53)); res.append(s.recv(65535).hex())
        except Exception:
            res.append(None)
elif a["mode"] == "load":
    end, ok, bad, fails = time.monotonic() + a["secs"], 0, 0, []
    s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(1.0)
    while time.monotonic() < end:
        for n in a["names"]:
            i, m = q(n, "A")
            try:
                s.sendto(m, (srv, 53)); r = s.recv(65535)
                while r[:2] != m[:2]: r = s.recv(65535)
                p = parse(r)
                if p["rcode"] == 0 and p["answers"]: ok += 1
                else: bad += 1; fails.append([n, p["rcode"]])
            except Exception as e:
                bad += 1; fails.append([n, type(e).__name__])
    res = {"ok": ok, "bad": bad, "fails": fails[:10]}
print(json.dumps(res))
`;

interface Answer {
  rcode: number;
  tc: boolean;
  answers: string[];
  ms: number;
  error?: string;
}

async function dnsClient(ns: string, args: Record<string, unknown>): Promise<any> {
  const r = await exec(ns, [PY, '-c', DNS_PY, JSON.stringify(args)], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

async function ask(
  c: Served,
  server: string,
  ...queries: { name: string; type?: string; tcp?: boolean; timeout?: number }[]
): Promise<Answer[]> {
  return (await dnsClient(c.ns, { mode: 'ask', server, queries })) as Answer[];
}

async function one(c: Served, server: string, name: string, type = 'A'): Promise<Answer> {
  return (await ask(c, server, { name, type }))[0]!;
}

async function run(a: ApiClient, spec: Record<string, unknown>): Promise<Served> {
  return served(await runContainer(a, { Cmd: SLEEP, ...spec }));
}

const GW1 = '10.61.0.1';
const GW2 = '10.62.0.1';
const GW6 = 'fd61::1';
const NOERROR = 0;
const FORMERR = 1;
const SERVFAIL = 2;
const NXDOMAIN = 3;
const REFUSED = 5;

test('embedded DNS on user-defined bridges', { skip: skipUnlessRoot(), timeout: 180_000 }, (t) =>
  withWorld(t, async (w) => {
    await startDaemon(w, ['--resolv-conf', w.resolvConf]);
    const a = api(w);
    await createNetwork(a, {
      Name: 'n1',
      EnableIPv6: true,
      IPAM: {
        Config: [
          { Subnet: '10.61.0.0/24', Gateway: GW1 },
          { Subnet: 'fd61::/64', Gateway: GW6 },
        ],
      },
    });
    await createNetwork(a, {
      Name: 'n2',
      IPAM: { Config: [{ Subnet: '10.62.0.0/24', Gateway: GW2 }] },
    });
    const web = await run(a, { Name: 'web', Networks: [{ Name: 'n1', Aliases: ['www'] }] });
    const webIns = (await a.get(`/cnm/containers/${web.id}/json`)).body;
    const web6 = webIns.NetworkSettings.Networks.n1.GlobalIPv6Address as string;
    const db = await run(a, { Name: 'db', Networks: [{ Name: 'n2' }] });
    const multi = await run(a, { Name: 'multi', Networks: [{ Name: 'n1' }, { Name: 'n2' }] });
    const c1 = await run(a, { Name: 'c1', Networks: [{ Name: 'n1' }] });

    await t.test('names, aliases, NAME.NETWORK, short id and AAAA resolve', async () => {
      const r = await ask(
        c1,
        GW1,
        { name: 'web' },
        { name: 'WWW' },
        { name: 'web.n1' },
        { name: web.id.slice(0, 12) },
        { name: 'web', type: 'AAAA' },
        { name: 'web', type: 'MX' },
      );
      for (const x of r.slice(0, 4)) {
        assert.equal(x.rcode, NOERROR);
        assert.deepEqual(x.answers, [web.ip['n1']]);
      }
      assert.ok(web6, 'web has an IPv6 address');
      assert.deepEqual(r[4]!.answers, [web6]);
      assert.deepEqual(r[5], { ...r[5], rcode: NOERROR, answers: [] }, 'NODATA for other types');
      // Also over the IPv6 gateway, and over TCP.
      assert.deepEqual((await one(c1, GW6, 'web')).answers, [web.ip['n1']]);
      const tcp = await ask(c1, GW1, { name: 'www', tcp: true });
      assert.deepEqual(tcp[0]!.answers, [web.ip['n1']]);
      const many = await dnsClient(c1.ns, {
        mode: 'tcpmany',
        server: GW1,
        queries: [{ name: 'web' }, { name: 'c1' }, { name: 'multi' }],
      });
      assert.equal(many.length, 3, 'pipelined TCP queries all answered');
    });

    await t.test('PTR for container addresses', async () => {
      const rev = web.ip['n1']!.split('.').reverse().join('.') + '.in-addr.arpa';
      assert.deepEqual((await one(c1, GW1, rev, 'PTR')).answers, ['web.n1']);
      const nib = [...(await expand6(web6))].reverse().join('.') + '.ip6.arpa';
      assert.deepEqual((await one(c1, GW1, nib, 'PTR')).answers, ['web.n1']);
    });

    await t.test('scoping: only networks the asker shares', async () => {
      // db is on n2 only: c1 (n1) cannot see it, the upstream says NXDOMAIN.
      assert.equal((await one(c1, GW1, 'db')).rcode, NXDOMAIN);
      assert.equal((await one(c1, GW1, 'db.n2')).rcode, NXDOMAIN);
      assert.equal((await one(db, GW2, 'web')).rcode, NXDOMAIN);
      // multi is on both: it sees web and db, by name and by NAME.NETWORK.
      assert.deepEqual((await one(multi, GW1, 'db')).answers, [db.ip['n2']]);
      assert.deepEqual((await one(multi, GW1, 'web')).answers, [web.ip['n1']]);
      assert.deepEqual((await one(multi, GW2, 'db.n2')).answers, [db.ip['n2']]);
      // A source that is not in the network is not answered (no open resolver on the bridge).
      const fromHost = await dnsClient(w.hostNs, {
        mode: 'ask',
        server: GW1,
        queries: [{ name: 'web', timeout: 0.5 }],
      });
      assert.match(fromHost[0].error, /^(timeout|TimeoutError)$/);
    });

    await t.test('resolv.conf: embedded server on user networks, upstream on bridge', async () => {
      const c = await run(a, {
        Name: 'rc',
        Networks: [{ Name: 'n2' }, { Name: 'n1' }],
        DnsSearch: ['example.test'],
        DnsOptions: ['ndots:2'],
      });
      const rc = await execIn(w, c.id, ['cat', '/etc/resolv.conf']);
      assert.match(rc.stdout, new RegExp(`^nameserver ${GW2}$`, 'm'));
      assert.equal(rc.stdout.match(/^nameserver/gm)?.length, 1);
      assert.match(rc.stdout, /^search example\.test$/m);
      assert.match(rc.stdout, /^options ndots:2$/m);
      const b = await run(a, { Name: 'onbridge' });
      const rb = await execIn(w, b.id, ['cat', '/etc/resolv.conf']);
      assert.match(rb.stdout, new RegExp(`^nameserver ${OUTSIDE_IP.replace(/\./g, '\\.')}$`, 'm'));
    });

    await t.test('several containers with one alias: all records, rotating', async () => {
      const ips: string[] = [];
      for (const n of ['rr1', 'rr2', 'rr3']) {
        const c = await run(a, { Name: n, Networks: [{ Name: 'n1', Aliases: ['pool'] }] });
        ips.push(c.ip['n1']!);
      }
      const r = await ask(c1, GW1, { name: 'pool' }, { name: 'pool' }, { name: 'pool' });
      const firsts = new Set(r.map((x) => x.answers[0]));
      for (const x of r) assert.deepEqual([...x.answers].sort(), [...ips].sort());
      assert.equal(firsts.size, 3, `order rotates: ${JSON.stringify(r.map((x) => x.answers))}`);
    });

    await t.test('names follow the lifecycle at once', async () => {
      const c = await run(a, { Name: 'eph', Networks: [{ Name: 'n1' }] });
      assert.deepEqual((await one(c1, GW1, 'eph')).answers, [c.ip['n1']]);
      // Connect-time alias on n2, resolvable by n2 members, gone on disconnect.
      const con = await a.post('/networks/n2/connect', {
        Container: c.id,
        EndpointConfig: { Aliases: ['ephalias'] },
      });
      assert.equal(con.status, 200, con.text);
      const ip2 = (await a.get(`/cnm/containers/${c.id}/json`)).body.NetworkSettings.Networks.n2
        .IPAddress as string;
      assert.deepEqual((await one(db, GW2, 'ephalias')).answers, [ip2]);
      assert.equal((await a.post('/networks/n2/disconnect', { Container: c.id })).status, 200);
      assert.equal((await one(db, GW2, 'ephalias')).rcode, NXDOMAIN);
      assert.equal((await one(db, GW2, 'eph')).rcode, NXDOMAIN);
      // Stop: gone; start again: back; remove: gone.
      assert.equal((await a.post(`/cnm/containers/${c.id}/stop?t=0`)).status, 204);
      assert.equal((await one(c1, GW1, 'eph')).rcode, NXDOMAIN);
      assert.equal((await a.post(`/cnm/containers/${c.id}/start`)).status, 204);
      assert.deepEqual((await one(c1, GW1, 'eph')).answers, [c.ip['n1']]);
      assert.equal((await a.delete(`/cnm/containers/${c.id}?force=1`)).status, 204);
      assert.equal((await one(c1, GW1, 'eph')).rcode, NXDOMAIN);
    });

    await t.test('records change under load without a failed lookup', async () => {
      const load = dnsClient(c1.ns, {
        mode: 'load',
        server: GW1,
        names: ['web', 'pool', 'www.outside.test'],
        secs: 4,
      });
      for (let i = 0; i < 4; i++) {
        const c = await run(a, {
          Name: `churn${i}`,
          Networks: [{ Name: 'n1', Aliases: ['pool'] }],
        });
        assert.equal((await a.delete(`/cnm/containers/${c.id}?force=1`)).status, 204);
      }
      const r = await load;
      assert.ok(r.ok > 100, `answers under load: ${JSON.stringify(r)}`);
      assert.equal(r.bad, 0, JSON.stringify(r.fails));
    });

    await t.test('forwarding: upstream answers, NXDOMAIN passed through', async () => {
      const r = await ask(c1, GW1, { name: 'www.outside.test' }, { name: 'nope.invalid' });
      assert.deepEqual(r[0]!.answers, [OUTSIDE_IP]);
      assert.equal(r[1]!.rcode, NXDOMAIN);
      const tcp = await ask(c1, GW1, { name: 'tcp.outside.test', tcp: true });
      assert.deepEqual(tcp[0]!.answers, [OUTSIDE_IP]);
    });

    await t.test('search domains and ndots from resolv.conf (glibc in the container)', async () => {
      const getent = async (c: Served, name: string) =>
        (await execIn(w, c.id, ['getent', 'ahostsv4', name])).stdout.split(/\s/)[0] ?? '';
      const s1 = await run(a, {
        Name: 'srch1',
        Networks: [{ Name: 'n1' }],
        DnsSearch: ['outside.test'],
      });
      // "foo" has no dot: the search domain makes it foo.outside.test, answered upstream.
      assert.equal(await getent(s1, 'foo'), OUTSIDE_IP);
      // ndots:1 (default): "web.n1" has a dot, so it is tried as is first: the local name.
      assert.equal(await getent(s1, 'web.n1'), web.ip['n1']);
      const s2 = await run(a, {
        Name: 'srch2',
        Networks: [{ Name: 'n1' }],
        DnsSearch: ['outside.test'],
        DnsOptions: ['ndots:2'],
      });
      // ndots:2: the search domain comes first, and the upstream knows web.n1.outside.test.
      assert.equal(await getent(s2, 'web.n1'), OUTSIDE_IP);
    });

    await t.test('a dead first upstream is skipped once marked down', async () => {
      const c = await run(a, {
        Name: 'deadup',
        Networks: [{ Name: 'n1' }],
        Dns: ['203.0.113.9', OUTSIDE_IP],
      });
      const rc = await execIn(w, c.id, ['cat', '/etc/resolv.conf']);
      assert.match(rc.stdout, new RegExp(`^nameserver ${GW1}$`, 'm'), 'own --dns are upstreams');
      const first = await one(c, GW1, 'd0.outside.test');
      assert.deepEqual(first.answers, [OUTSIDE_IP]);
      const later = await ask(
        c,
        GW1,
        ...Array.from({ length: 5 }, (_, i) => ({ name: `d${i + 1}.outside.test` })),
      );
      for (const x of later) {
        assert.deepEqual(x.answers, [OUTSIDE_IP]);
        assert.ok(x.ms < 50, `lookup after the dead upstream was marked down took ${x.ms} ms`);
      }
      // Local names never waited on it at all.
      assert.ok((await one(c, GW1, 'web')).ms < 50);
    });

    await t.test('the daemon re-reads its resolv.conf when it changes', async () => {
      await exec(w.outsideNs, ['ip', 'addr', 'add', '203.0.113.77/24', 'dev', 'out0'], {
        check: true,
      });
      await startServer(w.outsideNs, 'dns', 53, '203.0.113.77');
      await writeFile(w.resolvConf, 'nameserver 203.0.113.77\n');
      await new Promise((r) => setTimeout(r, 1100));
      assert.deepEqual((await one(c1, GW1, 'changed.outside.test')).answers, ['203.0.113.77']);
      await writeFile(w.resolvConf, `nameserver ${OUTSIDE_IP}\n`);
    });

    await t.test('internal networks: names resolve, nothing is forwarded', async () => {
      await createNetwork(a, {
        Name: 'int',
        Internal: true,
        IPAM: { Config: [{ Subnet: '10.63.0.0/24', Gateway: '10.63.0.1' }] },
      });
      const i1 = await run(a, { Name: 'i1', Networks: [{ Name: 'int' }] });
      const i2 = await run(a, { Name: 'i2', Networks: [{ Name: 'int' }] });
      assert.deepEqual((await one(i2, '10.63.0.1', 'i1')).answers, [i1.ip['int']]);
      assert.equal((await one(i2, '10.63.0.1', 'x.outside.test')).rcode, REFUSED);
    });

    await t.test('malformed packets get FORMERR or are dropped; serving goes on', async () => {
      const hdr = (id: string, flags: string, qd: string) => `${id}${flags}${qd}000000000000`;
      const r = await dnsClient(c1.ns, {
        mode: 'raw',
        server: GW1,
        packets: [
          'ab', // runt: dropped
          hdr('1234', '0100', '0000'), // no question: FORMERR
          hdr('1235', '0100', '0001') + '3f61', // label runs off the end: FORMERR
          hdr('1236', '0100', '0001') + 'c00c00010001', // pointer in the question: FORMERR
          hdr('1237', '8100', '0001') + '0000010001', // a response: dropped
          hdr('1238', '2800', '0001') + '0000010001', // opcode UPDATE: NOTIMP
          'ff'.repeat(5000), // oversize: dropped
        ],
      });
      assert.equal(r[0], null);
      assert.equal(r[1].slice(0, 8), '12348181');
      assert.equal(r[2].slice(0, 8), '12358181');
      assert.equal(r[3].slice(0, 8), '12368181');
      assert.equal(r[4], null);
      assert.equal(r[5].slice(0, 8), '12388084');
      assert.equal(r[6], null);
      void FORMERR;
      // TCP: a length no query can have closes the connection; a truncated frame waits and
      // is dropped by the idle timer; neither stops the server.
      const t1 = await dnsClient(c1.ns, {
        mode: 'raw',
        tcp: true,
        server: GW1,
        packets: ['0005ffffffffff'],
      });
      assert.equal(t1[0], null);
      const t2 = await dnsClient(c1.ns, {
        mode: 'raw',
        tcp: true,
        server: GW1,
        packets: ['ffff00'],
      });
      assert.equal(t2[0], null);
      assert.deepEqual((await one(c1, GW1, 'web')).answers, [web.ip['n1']]);
      assert.deepEqual((await ask(c1, GW1, { name: 'web', tcp: true }))[0]!.answers, [
        web.ip['n1'],
      ]);
      void SERVFAIL;
    });

    await t.test(
      'GET /cnm/dns/metrics counts queries, answers by rcode and forwarding',
      async () => {
        const before = (await a.get('/cnm/dns/metrics')).body;
        assert.ok(before.metrics.queries.udp > 0);
        assert.ok(before.metrics.answers.FORMERR >= 3, JSON.stringify(before.metrics.answers));
        assert.ok(before.metrics.forwarded > 0 && before.metrics.forwardLatencyMs.count > 0);
        assert.equal(
          before.metrics.forwardLatencyMs.buckets.length,
          before.latencyBucketsMs.length + 1,
        );
        await one(c1, GW1, 'web');
        await one(c1, GW1, 'web');
        const after = (await a.get('/cnm/dns/metrics')).body;
        assert.equal(after.metrics.queries.udp - before.metrics.queries.udp, 2);
        assert.equal(after.metrics.local - before.metrics.local, 2);
        assert.equal(after.metrics.answers.NOERROR - before.metrics.answers.NOERROR, 2);
      },
    );
  }),
);

async function expand6(ip: string): Promise<string> {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
  return groups.map((g) => g.padStart(4, '0')).join('');
}
