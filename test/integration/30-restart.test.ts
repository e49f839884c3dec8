/**
 * Restart and crash recovery: with networks, running containers and published ports in place,
 * a graceful restart and a `kill -9` of cnmd each leave containers running (same PIDs), every
 * path working and the host exactly as before (no duplicate, no leak); a container whose process
 * exited while cnmd was down shows `exited` with its exit code; and when someone deletes a cnm
 * veth and flushes the ruleset while cnmd is down, the next start restores both. Needs root.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import {
  HOST_UPLINK_IP,
  api,
  exec,
  httpGet,
  skipUnlessRoot,
  snapshotHost,
  startDaemon,
  tcpConnect,
  udpEcho,
  withWorld,
  type HostSnapshot,
} from './harness.js';
import {
  alive,
  assertSameHost,
  createNetwork,
  inspect,
  parentPid,
  runContainer,
  runServer,
  served,
  until,
  withoutPids,
  waitHostSettled,
} from './workload.js';

test(
  'restart, kill -9 and hand-made damage: containers survive, state is restored exactly',
  { skip: skipUnlessRoot(), timeout: 150_000 },
  (t) =>
    withWorld(t, async (w) => {
      const d = await startDaemon(w);
      const a = api(w);
      await createNetwork(a, { Name: 'neta', Driver: 'bridge' });
      await createNetwork(a, {
        Name: 'netq',
        Driver: 'bridge',
        Options: { 'com.docker.network.bridge.enable_icc': 'false' },
      });
      const [a1, a2, b1, q1] = await Promise.all([
        runServer(a, 'a1', ['neta'], { Ports: ['8080:80', '8080:80/udp'] }),
        runServer(a, 'a2', ['neta']),
        runServer(a, 'b1', ['bridge'], { Ports: ['127.0.0.1:9090:80'] }),
        runServer(a, 'q1', ['netq']),
      ]);
      // Exits with 7 once the test creates its go-file (while cnmd is down).
      const go = path.join(w.dir, 'e1-go');
      const e1 = served(
        await runContainer(a, {
          Name: 'e1',
          Cmd: ['sh', '-c', `while [ ! -e ${go} ]; do sleep 0.1; done; exit 7`],
          Networks: [{ Name: 'neta' }],
        }),
      );
      const e1Shim = parentPid(e1.pid);
      const running = [a1, a2, b1, q1];

      /** Every path the setup built, probed in parallel. */
      const checkPaths = async (phase: string): Promise<void> => {
        const [pub, pubUdp, local, same, egressA, egressB, hairpin, isolated, iccOff] =
          await Promise.all([
            httpGet(w.outsideNs, `http://${HOST_UPLINK_IP}:8080/`).catch(() => undefined),
            udpEcho(w.outsideNs, { ip: HOST_UPLINK_IP, port: 8080 }, 'u'),
            httpGet(w.hostNs, 'http://127.0.0.1:9090/').catch(() => undefined),
            httpGet(a2.ns, `http://${a1.ip['neta']}/`).catch(() => undefined),
            httpGet(a1.ns, w.outsideUrl).catch(() => undefined),
            httpGet(b1.ns, w.outsideUrl).catch(() => undefined),
            httpGet(a2.ns, `http://${HOST_UPLINK_IP}:8080/`).catch(() => undefined),
            tcpConnect(a1.ns, b1.ip['bridge']!, 80, 2000),
            httpGet(q1.ns, `http://${a1.ip['neta']}/`, 2000).catch(() => undefined),
          ]);
        t.diagnostic(`${phase}: paths probed`);
        assert.equal(pub?.json?.hostname, a1.id.slice(0, 12), `${phase}: outside -> 8080/tcp`);
        assert.ok(pubUdp?.endsWith(' u'), `${phase}: outside -> 8080/udp`);
        assert.equal(local?.json?.hostname, b1.id.slice(0, 12), `${phase}: 127.0.0.1:9090`);
        assert.equal(same?.json?.client, a2.ip['neta'], `${phase}: a2 -> a1`);
        assert.equal(egressA?.json?.client, HOST_UPLINK_IP, `${phase}: a1 -> outside`);
        assert.equal(egressB?.json?.client, HOST_UPLINK_IP, `${phase}: b1 -> outside`);
        assert.equal(hairpin?.json?.hostname, a1.id.slice(0, 12), `${phase}: hairpin`);
        assert.equal(isolated, false, `${phase}: a1 -> b1 must stay blocked`);
        assert.equal(iccOff, undefined, `${phase}: q1 -> a1 must stay blocked`);
      };
      const checkPids = async (phase: string): Promise<void> => {
        for (const c of running) {
          const ins = await inspect(a, c.id);
          assert.equal(ins.State.Status, 'running', `${phase}: ${c.name} status`);
          assert.equal(ins.State.Pid, c.pid, `${phase}: ${c.name} keeps its PID`);
          assert.ok(alive(c.pid), `${phase}: ${c.name} process alive`);
        }
      };
      const host = async (): Promise<HostSnapshot> => withoutPids(await snapshotHost(w), [d.pid]);

      await checkPaths('initial');
      await waitHostSettled(w);
      const s0 = await host();
      assert.ok(s0.pids.includes(e1Shim), 'e1 shim lives in the host netns');

      // 1. Graceful restart.
      await d.restart();
      await checkPids('graceful restart');
      await checkPaths('graceful restart');
      assertSameHost(s0, await host(), 'graceful restart');
      assert.equal((await inspect(a, e1.id)).State.Status, 'running');

      // 2. kill -9; e1's process exits while cnmd is down.
      await d.kill9();
      await writeFile(go, '');
      await until('e1 and its shim to exit', () => !alive(e1.pid) && !alive(e1Shim));
      await d.restart();
      await checkPids('kill -9');
      await checkPaths('kill -9');
      const e1After = await inspect(a, e1.id);
      assert.equal(e1After.State.Status, 'exited', 'e1 exited while cnmd was down');
      assert.equal(e1After.State.ExitCode, 7, 'e1 exit code');
      const waited = await a.post(`/cnm/containers/${e1.id}/wait`);
      assert.equal(waited.body?.StatusCode, 7);
      // The same host, less e1's shim, which ended with its process.
      const s1 = withoutPids(s0, [e1Shim]);
      assertSameHost(s1, await host(), 'kill -9 restart');

      // 3. Hand-made damage while cnmd is down: a cnm veth deleted, the ruleset flushed.
      const a1Ep = await endpointVeth(
        w.hostNs,
        (await inspect(a, a1.id)).NetworkSettings.Networks.neta.EndpointID,
      );
      assert.ok(s0.links.includes(`${a1Ep} veth`), `a1's veth ${a1Ep} exists`);
      await d.stop();
      await exec(w.hostNs, ['ip', 'link', 'del', a1Ep], { check: true });
      await exec(w.hostNs, ['nft', 'flush', 'ruleset'], { check: true });
      const damaged = await snapshotHost(w);
      assert.equal(damaged.nft.length, 0, 'ruleset flushed');
      assert.equal(damaged.links.includes(`${a1Ep} veth`), false, 'veth deleted');
      assert.equal(await tcpConnect(w.outsideNs, HOST_UPLINK_IP, 8080, 1500), false);
      await d.restart();
      await checkPids('repair');
      await checkPaths('repair');
      // A re-created veth gets a fresh random MAC, hence a fresh IPv6 link-local address (and
      // its local route): the only expected difference.
      const noLinkLocal = (s: HostSnapshot): HostSnapshot => ({
        ...s,
        addresses: s.addresses.filter((x) => !x.startsWith(`${a1Ep} inet6 fe80:`)),
        routes: s.routes.filter((x) => !/^local local fe80:/.test(x) || !x.endsWith(` ${a1Ep}`)),
      });
      assertSameHost(noLinkLocal(s1), noLinkLocal(await host()), 'repair');
    }),
);

/** The host end of an endpoint's veth: cnm marks it with the alias `cnm:ep:<endpoint id>`. */
async function endpointVeth(hostNs: string, endpointId: string): Promise<string> {
  const r = await exec(hostNs, ['ip', '-j', 'link', 'show'], { check: true });
  const links = JSON.parse(r.stdout) as { ifname: string; ifalias?: string }[];
  const hit = links.find((l) => l.ifalias === `cnm:ep:${endpointId.slice(0, 12)}`);
  assert.ok(hit, `no link with alias cnm:ep:${endpointId.slice(0, 12)}`);
  return hit.ifname;
}
