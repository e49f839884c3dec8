/**
 * `cnm compose` with examples/microservices/compose.yaml (the README's main-job topology):
 * `up -d` builds it with Compose v2 names and labels, real probes show who reaches whom,
 * `ps` lists it, a second `up` is harmless, an invalid file is refused before anything is
 * created, and `down` leaves the host netns exactly as it was after cnmd started (an external
 * network survives). Needs root.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import {
  REPO_ROOT,
  api,
  cnm,
  exec,
  httpGet,
  skipUnlessRoot,
  snapshotHost,
  startDaemon,
  tcpConnect,
  withWorld,
} from './harness.js';
import { PY, assertSameHost, createNetwork, served, until, waitHostSettled } from './workload.js';

const FILE = path.join(REPO_ROOT, 'examples/microservices/compose.yaml');
const SERVICES = ['gateway', 'svc-a', 'svc-b', 'db'];
const RPORT = 8080;

/** A replica: answers each TCP connection on RPORT with the address it was accepted on. */
const REPLICA_PY = String.raw`
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", ${RPORT})); s.listen(1024)
while True:
    c, _ = s.accept()
    try: c.sendall(c.getsockname()[0].encode())
    except OSError: pass
    c.close()
`;

/** `n` connections to `ip:RPORT`, one after another; prints `{address: count, "error": k}`. */
const CONNECT_PY = String.raw`
import json, socket, sys
ip, n = sys.argv[1], int(sys.argv[2]); out = {}
for _ in range(n):
    try:
        c = socket.create_connection((ip, ${RPORT}), timeout=2); d = b""
        while True:
            b = c.recv(64)
            if not b: break
            d += b
        c.close(); k = d.decode() or "empty"
    except OSError:
        k = "error"
    out[k] = out.get(k, 0) + 1
print(json.dumps(out))
`;

/** Asks `server` for `name` A over UDP; prints the addresses in answer order. */
const DIG_PY = String.raw`
import json, random, socket, struct, sys
srv, name = sys.argv[1], sys.argv[2]; i = random.randint(0, 65535)
m = struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0)
for l in name.split("."): m += bytes([len(l)]) + l.encode()
m += b"\0" + struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.sendto(m, (srv, 53))
r = s.recv(4096); an = struct.unpack("!H", r[6:8])[0]; o = len(m); out = []
for _ in range(an):
    o += 2; t, c, ttl, ln = struct.unpack("!HHIH", r[o:o + 10]); o += 10
    if t == 1: out.append(socket.inet_ntoa(r[o:o + ln]))
    o += ln
print(json.dumps(out))
`;

test(
  'compose: up/ps/down of the microservices example, probes, no leftovers',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  (t) =>
    withWorld(t, async (w) => {
      const d = await startDaemon(w);
      const a = api(w);
      await waitHostSettled(w);
      const s0 = await snapshotHost(w);
      assert.ok(s0.pids.includes(d.pid));

      await t.test('an invalid file is refused naming the key; nothing is created', async () => {
        const bad = path.join(w.dir, 'bad.yaml');
        await writeFile(
          bad,
          'services:\n  web:\n    command: sleep 600\n    volumes: ["./data:/data"]\n',
        );
        const r = await cnm(w, ['compose', '-f', bad, 'up', '-d']);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /Invalid compose file ".*bad\.yaml": services\.web\.volumes: /);
        const noFile = await cnm(w, ['compose', '-f', path.join(w.dir, 'none.yaml'), 'up']);
        assert.equal(noFile.code, 1);
        assert.match(noFile.stderr, /no such file or directory/);
        assert.equal((await a.get('/networks')).body.length, 3);
        assert.deepEqual((await a.get('/cnm/containers/json?all=1')).body, []);
      });

      // An external network the project uses but must never remove.
      await createNetwork(a, { Name: 'shared', Labels: { owner: 'ops' } });
      const withExternal = path.join(w.dir, 'ext.yaml');
      await writeFile(
        withExternal,
        'services:\n  tool:\n    command: sleep 600\n    networks: [shared]\nnetworks:\n  shared:\n    external: true\n',
      );

      await t.test('up -d creates networks and containers with Compose v2 names', async () => {
        const r = await cnm(w, ['compose', 'up', '-f', FILE, '-p', 'ms', '-d']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /^ Network ms_frontend {2}Created$/m);
        assert.match(r.stderr, /^ Network ms_backend {2}Created$/m);
        // Dependencies first: db before svc-a/svc-b before gateway.
        const started = [...r.stderr.matchAll(/^ Container (\S+) {2}Started$/gm)].map((m) => m[1]);
        assert.deepEqual(started, ['ms-db-1', 'ms-svc-a-1', 'ms-svc-b-1', 'ms-gateway-1']);

        const nets = (
          await a.get('/networks?filters={"label":{"com.docker.compose.project=ms":true}}')
        ).body as any[];
        assert.deepEqual(nets.map((n) => n.Name).sort(), ['ms_backend', 'ms_frontend']);
        const backend = nets.find((n) => n.Name === 'ms_backend');
        assert.equal(backend.Internal, true);
        assert.equal(backend.Labels['com.docker.compose.network'], 'backend');
        assert.equal(backend.IPAM.Config[0].Subnet, '10.10.2.0/24');

        const svcA = (await a.get('/cnm/containers/ms-svc-a-1/json')).body;
        assert.equal(svcA.Config.Labels['com.docker.compose.project'], 'ms');
        assert.equal(svcA.Config.Labels['com.docker.compose.service'], 'svc-a');
        assert.deepEqual(Object.keys(svcA.NetworkSettings.Networks).sort(), [
          'ms_backend',
          'ms_frontend',
        ]);
        assert.deepEqual(svcA.NetworkSettings.Networks.ms_frontend.Aliases, ['svc-a', 'api-a']);
        assert.ok(svcA.Config.Env.includes('SERVICE_NAME=svc-a'));
        const db = (await a.get('/cnm/containers/ms-db-1/json')).body;
        assert.equal(db.NetworkSettings.Networks.ms_backend.IPAddress, '10.10.2.10');
        assert.equal(db.HostConfig.Sysctls['net.ipv4.tcp_keepalive_time'], '600');
        const gw = (await a.get('/cnm/containers/ms-gateway-1/json')).body;
        assert.deepEqual(gw.NetworkSettings.Ports['80/tcp'], [
          { HostIp: '0.0.0.0', HostPort: '8080' },
        ]);
        assert.equal(gw.Config.Hostname, 'gateway');
      });

      await t.test('probes: who reaches whom', async () => {
        const ctr = async (svc: string) =>
          served((await a.get(`/cnm/containers/ms-${svc}-1/json`)).body);
        const [gateway, svcA, svcB, db] = await Promise.all(SERVICES.map(ctr));
        for (const c of [gateway, svcA, svcB, db]) {
          await until(
            `${c!.name} to listen`,
            () => tcpConnect(c!.ns, '127.0.0.1', 80, 1000),
            15_000,
          );
        }
        const reach = (from: typeof gateway, ip: string | undefined) =>
          tcpConnect(from!.ns, ip ?? '0.0.0.0', 80, 1500);
        assert.equal(await reach(gateway, svcA!.ip['ms_frontend']), true, 'gateway → svc-a');
        assert.equal(await reach(gateway, svcB!.ip['ms_frontend']), true, 'gateway → svc-b');
        assert.equal(await reach(gateway, db!.ip['ms_backend']), false, 'gateway ↛ db');
        assert.equal(await reach(svcA, db!.ip['ms_backend']), true, 'svc-a → db');
        assert.equal(await reach(svcB, db!.ip['ms_backend']), true, 'svc-b → db');
        assert.equal(await reach(db, svcA!.ip['ms_backend']), true, 'db → svc-a (backend)');
        assert.equal(await reach(db, gateway!.ip['ms_frontend']), false, 'db ↛ gateway');
        const out = await httpGet(svcA!.ns, w.outsideUrl, 3000);
        assert.equal(out.json.client, w.hostUplinkIp, 'svc-a reaches outside, masqueraded');
        await assert.rejects(httpGet(db!.ns, w.outsideUrl, 1500), 'db (internal) has no way out');
        const pub = await httpGet(w.outsideNs, `http://${w.hostUplinkIp}:8080/`, 3000);
        assert.equal(pub.status, 200, 'outside → published gateway port');
      });

      await t.test('ps lists the project; up again changes nothing', async () => {
        const ps = await cnm(w, ['compose', '-f', FILE, '-p', 'ms', 'ps']);
        assert.equal(ps.code, 0, ps.stderr);
        const lines = ps.stdout.trim().split('\n');
        assert.match(lines[0] ?? '', /^NAME\s+COMMAND\s+SERVICE\s+CREATED\s+STATUS\s+PORTS$/);
        assert.deepEqual(
          lines.slice(1).map((l) => l.split(/\s{2,}/)[0]),
          ['ms-db-1', 'ms-gateway-1', 'ms-svc-a-1', 'ms-svc-b-1'],
        );
        const gwLine = lines.find((l) => l.startsWith('ms-gateway-1')) ?? '';
        assert.match(
          gwLine,
          /"python3 -m http\.ser…"\s+gateway\s+.*Up .*0\.0\.0\.0:8080->80\/tcp$/,
        );
        const services = await cnm(w, ['compose', '-p', 'ms', 'ps', '--services']);
        assert.equal(services.stdout, 'db\ngateway\nsvc-a\nsvc-b\n');
        const json = await cnm(w, ['compose', '-p', 'ms', 'ps', '--format', 'json']);
        const rows = json.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        assert.deepEqual(
          rows.map((r) => [r.Service, r.State]),
          [
            ['db', 'running'],
            ['gateway', 'running'],
            ['svc-a', 'running'],
            ['svc-b', 'running'],
          ],
        );

        const again = await cnm(w, ['compose', '-p', 'ms', '-f', FILE, 'up', '-d']);
        assert.equal(again.code, 0, again.stderr);
        assert.doesNotMatch(again.stderr, /Created/);
        assert.equal((again.stderr.match(/ {2}Running$/gm) ?? []).length, 4);
        assert.equal((await a.get('/cnm/containers/json')).body.length, 4);

        const ext = await cnm(w, ['compose', '-f', withExternal, '-p', 'ext', 'up', '-d']);
        assert.equal(ext.code, 0, ext.stderr);
        assert.doesNotMatch(ext.stderr, /Network/);
        const tool = (await a.get('/cnm/containers/ext-tool-1/json')).body;
        assert.deepEqual(Object.keys(tool.NetworkSettings.Networks), ['shared']);
      });

      await t.test('deploy.replicas: a VIP service and a dnsrr service', async () => {
        const file = path.join(w.dir, 'replicas.yaml');
        const server = path.join(w.dir, 'replica.py');
        await writeFile(server, REPLICA_PY);
        await writeFile(
          file,
          [
            'services:',
            '  api:',
            `    command: [${PY}, ${server}]`,
            '    deploy: { replicas: 3 }',
            '  web:',
            '    command: sleep 600',
            '    deploy: { replicas: 2, endpoint_mode: dnsrr }',
            '  client:',
            '    command: sleep 600',
            '',
          ].join('\n'),
        );
        const up = await cnm(w, ['compose', '-f', file, '-p', 'rep', 'up', '-d']);
        assert.equal(up.code, 0, up.stderr);
        assert.match(up.stderr, /^ Service rep_api {2}Created \(3 replicas\)$/m);
        assert.match(up.stderr, /^ Service rep_web {2}Created \(2 replicas\)$/m);
        const api = (await a.get('/cnm/services/rep_api')).body;
        const web = (await a.get('/cnm/services/rep_web')).body;
        assert.equal(api.EndpointMode, 'vip');
        assert.equal(api.Running, 3);
        assert.equal(web.EndpointMode, 'dnsrr');
        assert.equal(web.VirtualIP, '');
        const client = served((await a.get('/cnm/containers/rep-client-1/json')).body);
        const gw = client.gw['rep_default']!;
        const dig = async (name: string): Promise<string[]> => {
          const r = await exec(client.ns, [PY, '-c', DIG_PY, gw, name], { timeoutMs: 10_000 });
          assert.equal(r.code, 0, r.stderr);
          return JSON.parse(r.stdout) as string[];
        };
        // The Compose service name resolves to the VIP; connections spread over the replicas.
        assert.deepEqual(await dig('api'), [api.VirtualIP]);
        for (const task of api.Tasks as { Name: string }[]) {
          const ns = (await a.get(`/cnm/containers/${task.Name}/json`)).body.NetworkSettings
            .SandboxKey as string;
          await until(`${task.Name} to listen`, () => tcpConnect(ns, '127.0.0.1', RPORT, 1000));
        }
        const r = await exec(client.ns, [PY, '-c', CONNECT_PY, api.VirtualIP, '300'], {
          timeoutMs: 60_000,
        });
        assert.equal(r.code, 0, r.stderr);
        const counts = JSON.parse(r.stdout) as Record<string, number>;
        const replicas = (api.Tasks as { IPAddress: string }[]).map((x) => x.IPAddress).sort();
        assert.deepEqual(Object.keys(counts).sort(), replicas, JSON.stringify(counts));
        for (const ip of replicas) {
          assert.ok(Math.abs(counts[ip]! - 100) <= 15, `${ip}: ${JSON.stringify(counts)}`);
        }
        // dnsrr: every replica's address under the service name.
        const webIps = (web.Tasks as { IPAddress: string }[]).map((x) => x.IPAddress).sort();
        assert.deepEqual([...(await dig('web'))].sort(), webIps);
        const ps = await cnm(w, ['compose', '-p', 'rep', 'ps', '--services']);
        assert.deepEqual(ps.stdout.trim().split('\n').sort(), ['api', 'client', 'web']);
        // up again: nothing new.
        const again = await cnm(w, ['compose', '-f', file, '-p', 'rep', 'up', '-d']);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stderr, /^ Service rep_api {2}Running$/m);

        const down = await cnm(w, ['compose', '-f', file, '-p', 'rep', 'down', '-t', '1']);
        assert.equal(down.code, 0, down.stderr);
        assert.match(down.stderr, /^ Service rep_api {2}Removed$/m);
        assert.match(down.stderr, /^ Service rep_web {2}Removed$/m);
        assert.match(down.stderr, /^ Network rep_default {2}Removed$/m);
        assert.deepEqual((await a.get('/cnm/services')).body, []);
      });

      await t.test('down removes the project and nothing else; host as before', async () => {
        const down = await cnm(w, ['compose', '-f', FILE, '-p', 'ms', 'down', '-t', '2']);
        assert.equal(down.code, 0, down.stderr);
        const removed = [...down.stderr.matchAll(/^ Container (\S+) {2}Removed$/gm)].map(
          (m) => m[1],
        );
        assert.deepEqual(removed, ['ms-gateway-1', 'ms-svc-b-1', 'ms-svc-a-1', 'ms-db-1']);
        assert.match(down.stderr, /^ Network ms_frontend {2}Removed$/m);
        assert.match(down.stderr, /^ Network ms_backend {2}Removed$/m);
        const left = (await a.get('/cnm/containers/json?all=1')).body as any[];
        assert.deepEqual(
          left.map((c) => c.Names[0]),
          ['/ext-tool-1'],
          'other projects untouched',
        );

        const extDown = await cnm(w, ['compose', '-f', withExternal, '-p', 'ext', 'down']);
        assert.equal(extDown.code, 0, extDown.stderr);
        assert.doesNotMatch(extDown.stderr, /Network/);
        assert.deepEqual(
          ((await a.get('/networks')).body as any[]).map((n) => n.Name).sort(),
          ['bridge', 'host', 'none', 'shared'],
          'the external network survives',
        );
        const ps = await cnm(w, ['compose', '-p', 'ms', 'ps', '-a']);
        assert.equal(ps.stdout.trim().split('\n').length, 1, 'only the header');
        assert.equal((await a.delete('/networks/shared')).status, 204);
        await waitHostSettled(w);
        assertSameHost(s0, await snapshotHost(w), 'after compose down');
      });
    }),
);
