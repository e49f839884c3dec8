/**
 * Tests of the integration harness itself: a world builds, its outside servers answer and see
 * the host's uplink address, its leak snapshot notices changes, and destroying it (also after a
 * failed test) leaves nothing behind. Needs root; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';
import { isAlive, mountsUnder } from '../../scripts/sweep.js';
import {
  HOST_UPLINK_IP,
  OUTSIDE_IP,
  api,
  createWorld,
  destroyWorld,
  diffSnapshots,
  exec,
  httpGet,
  run,
  snapshotHost,
  startServer,
  skipUnlessRoot,
  tcpConnect,
  tcpEcho,
  udpEcho,
  withWorld,
  type World,
} from './harness.js';

/** Asserts that nothing of world `w` is left: netns, mounts, dir, the given processes. */
async function assertGone(w: World, pids: number[]): Promise<void> {
  const netns = (await readdir('/run/netns').catch(() => [] as string[])).filter((n) =>
    n.startsWith(`${w.name}-`),
  );
  assert.deepEqual(netns, [], 'netns left behind');
  assert.deepEqual(await mountsUnder(w.dir), [], 'mounts left behind');
  assert.equal(existsSync(w.dir), false, 'dir left behind');
  for (const pid of pids) assert.equal(isAlive(pid), false, `process ${pid} left running`);
}

// A DNS A query for `name`, answered with the first address or the rcode, from inside `ns`.
const DNS_QUERY_PY = `
import socket, struct, sys
name, server = sys.argv[1], sys.argv[2]
q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0" + struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(q, (server, 53)); r = s.recv(512)
rcode, an = r[3] & 15, struct.unpack("!H", r[6:8])[0]
print(socket.inet_ntoa(r[-4:]) if an else "rcode=%d" % rcode)
`;

describe('integration world', { skip: skipUnlessRoot() }, () => {
  test('createWorld() joins host and outside netns with a routed uplink', (t) =>
    withWorld(t, async (w) => {
      const hostAddrs = await exec(w.hostNs, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'up0'], {
        check: true,
      });
      assert.match(hostAddrs.stdout, /inet 203\.0\.113\.2\/24/);
      const hostRoutes = await exec(w.hostNs, ['ip', '-4', 'route'], { check: true });
      assert.match(hostRoutes.stdout, /^default via 203\.0\.113\.1 dev up0/m);
      // The outside knows only its own link: replies to containers must come back through NAT.
      const outRoutes = await exec(w.outsideNs, ['ip', '-4', 'route'], { check: true });
      assert.deepEqual(
        outRoutes.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(' ')[0]),
        ['203.0.113.0/24'],
      );
      assert.equal(await tcpConnect(w.outsideNs, '10.0.0.1', 80, 1000), false);
    }));

  test('the outside HTTP server sees the host uplink address as client', (t) =>
    withWorld(t, async (w) => {
      const res = await httpGet(w.hostNs, `${w.outsideUrl}probe`);
      assert.equal(res.status, 200);
      assert.equal(res.json.client, HOST_UPLINK_IP);
      assert.equal(res.json.path, '/probe');
    }));

  test('the outside echo and DNS servers answer and name the peer', (t) =>
    withWorld(t, async (w) => {
      const target = { ip: OUTSIDE_IP, port: 7 };
      assert.match((await tcpEcho(w.hostNs, target, 'hello')) ?? '', /^203\.0\.113\.2:\d+ hello$/);
      assert.match((await udpEcho(w.hostNs, target, 'hi')) ?? '', /^203\.0\.113\.2:\d+ hi$/);
      // Nothing listens on UDP 9: the probe gives up at its timeout instead of hanging.
      assert.equal(await udpEcho(w.hostNs, { ip: OUTSIDE_IP, port: 9 }, 'x', 300), null);
      const dns = async (name: string): Promise<string> =>
        (
          await exec(w.hostNs, ['python3', '-c', DNS_QUERY_PY, name, OUTSIDE_IP], { check: true })
        ).stdout.trim();
      assert.equal(await dns('www.outside.test'), OUTSIDE_IP);
      assert.equal(await dns('example.com'), 'rcode=3');
    }));

  test('startServer() in the host netns is reachable from the outside', (t) =>
    withWorld(t, async (w) => {
      const srv = await startServer(w.hostNs, 'http', 8080);
      const res = await httpGet(w.outsideNs, `http://${HOST_UPLINK_IP}:8080/`);
      assert.equal(res.json.client, OUTSIDE_IP);
      await srv.stop();
      assert.equal(await tcpConnect(w.outsideNs, HOST_UPLINK_IP, 8080, 1000), false);
    }));

  test('api() speaks JSON over the world socket', (t) =>
    withWorld(t, async (w) => {
      // A stand-in for cnmd: the client is tested here, the daemon in its own tests.
      const server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          res.setHeader('Content-Type', 'application/json');
          res.statusCode = req.url === '/_ping' ? 200 : 201;
          res.end(
            JSON.stringify({ method: req.method, url: req.url, got: body && JSON.parse(body) }),
          );
        });
      });
      await new Promise<void>((r) => server.listen(w.socketPath, r));
      try {
        const ping = await api(w).get('/_ping');
        assert.equal(ping.status, 200);
        const created = await api(w).post('/networks/create', { Name: 'n1' });
        assert.equal(created.status, 201);
        assert.deepEqual(created.body, {
          method: 'POST',
          url: '/networks/create',
          got: { Name: 'n1' },
        });
      } finally {
        await new Promise((r) => server.close(r));
      }
    }));

  test('snapshotHost() reports links, addresses and nft rules that appear', (t) =>
    withWorld(t, async (w) => {
      const before = await snapshotHost(w);
      assert.ok(before.links.includes('up0 veth'));
      assert.ok(before.addresses.includes('up0 inet 203.0.113.2/24'));
      // A bridge, not a dummy: this kernel has no dummy driver.
      await exec(w.hostNs, ['ip', 'link', 'add', 'leak0', 'type', 'bridge'], { check: true });
      await exec(w.hostNs, ['ip', 'addr', 'add', '10.99.0.1/24', 'dev', 'leak0'], { check: true });
      await exec(w.hostNs, ['nft', 'add table inet leaktest'], { check: true });
      const diff = diffSnapshots(before, await snapshotHost(w));
      assert.ok(diff.includes('+ links: leak0 bridge'), diff.join('\n'));
      assert.ok(diff.includes('+ addresses: leak0 inet 10.99.0.1/24'), diff.join('\n'));
      assert.ok(
        diff.some((l) => l.startsWith('+ nft: ') && l.includes('leaktest')),
        diff.join('\n'),
      );
    }));

  test('destroyWorld() removes netns, nested netns mounts, processes and the dir', async () => {
    const w = await createWorld({ name: 'destroy' });
    let pids: number[] = [];
    try {
      // What cnmd does for a container: a netns bind-mounted under its exec root, a process in it.
      const nsDir = path.join(w.execRoot, 'netns');
      await mkdir(nsDir, { recursive: true });
      const nsFile = path.join(nsDir, 'c1');
      await writeFile(nsFile, '');
      await run('unshare', [`--net=${nsFile}`, 'true'], { check: true });
      const inContainer = await startServer(nsFile, 'tcp-echo', 7);
      const inHost = await startServer(w.hostNs, 'udp-echo', 5353);
      pids = [inContainer.pid, inHost.pid];
      assert.deepEqual(await mountsUnder(w.dir), [nsFile]);
    } finally {
      await destroyWorld(w);
    }
    await assertGone(w, pids);
    await destroyWorld(w); // a second call is harmless
  });

  test('withWorld() cleans up a world whose test threw', async () => {
    let seen: World | undefined;
    let pid = 0;
    await assert.rejects(
      withWorld('throws', async (w) => {
        seen = w;
        pid = (await startServer(w.hostNs, 'http', 8081)).pid;
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.ok(seen !== undefined);
    await assertGone(seen, [pid]);
  });
});
