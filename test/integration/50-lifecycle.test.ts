/**
 * Container lifecycle as the container's own process sees it: `--network none` and `host`, two
 * networks at once, connect/disconnect while running, per-container sysctls, hostname,
 * /etc/hosts and /etc/resolv.conf, stop and exit codes, auto-remove, `nsenter -t PID -n`, and
 * finally, with everything removed, a host netns identical to the one right after cnmd started.
 * Needs root.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import {
  api,
  exec,
  run,
  skipUnlessRoot,
  snapshotHost,
  startDaemon,
  withWorld,
  type HostSnapshot,
} from './harness.js';
import {
  alive,
  assertSameHost,
  createNetwork,
  execIn,
  inspect,
  runContainer,
  until,
  waitHostSettled,
} from './workload.js';

const SLEEP = ['sleep', '600'];

test(
  'container lifecycle: network modes, attachments, files, exit, removal, no leaks',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      const d = await startDaemon(w);
      const a = api(w);
      await waitHostSettled(w);
      const s0: HostSnapshot = await snapshotHost(w);
      assert.ok(s0.pids.includes(d.pid));
      await createNetwork(a, {
        Name: 'n1',
        Driver: 'bridge',
        IPAM: { Config: [{ Subnet: '10.71.0.0/24', Gateway: '10.71.0.1' }] },
      });
      await createNetwork(a, {
        Name: 'n2',
        Driver: 'bridge',
        IPAM: { Config: [{ Subnet: '10.72.0.0/24', Gateway: '10.72.0.1' }] },
      });

      await t.test('--network none: only lo', async () => {
        const c = await runContainer(a, {
          Name: 'none1',
          Cmd: SLEEP,
          Networks: [{ Name: 'none' }],
        });
        assert.ok(c.NetworkSettings.SandboxKey, 'none still gets its own sandbox');
        assert.deepEqual(Object.keys(c.NetworkSettings.Networks), ['none']);
        const links = await execIn(w, c.Id, ['ip', '-o', 'link']);
        assert.equal(links.code, 0, links.stderr);
        const names = links.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(': ')[1]);
        assert.deepEqual(names, ['lo']);
        const addrs = await execIn(w, c.Id, ['ip', '-o', '-4', 'addr']);
        assert.match(addrs.stdout, /^\d+: lo\s+inet 127\.0\.0\.1\/8/);
        assert.equal(addrs.stdout.trim().split('\n').length, 1);
      });

      await t.test('--network host: the host netns interfaces', async () => {
        const c = await runContainer(a, {
          Name: 'host1',
          Cmd: SLEEP,
          Networks: [{ Name: 'host' }],
        });
        assert.deepEqual(Object.keys(c.NetworkSettings.Networks), ['host']);
        const addrs = await execIn(w, c.Id, ['ip', '-o', '-4', 'addr']);
        assert.match(addrs.stdout, /up0\s+inet 203\.0\.113\.2\/24/);
        // The very same namespace as the host's.
        const hosts = await exec(w.hostNs, ['readlink', '/proc/self/ns/net'], { check: true });
        const own = await run('readlink', [`/proc/${c.State.Pid}/ns/net`], { check: true });
        assert.equal(own.stdout.trim(), hosts.stdout.trim());
      });

      await t.test('two networks: eth0 + eth1, default route via the first', async () => {
        const c = await runContainer(a, {
          Name: 'multi',
          Cmd: SLEEP,
          Networks: [{ Name: 'n1' }, { Name: 'n2' }],
        });
        const ip1 = c.NetworkSettings.Networks.n1.IPAddress;
        const ip2 = c.NetworkSettings.Networks.n2.IPAddress;
        const addrs = await execIn(w, c.Id, ['ip', '-o', '-4', 'addr']);
        assert.match(addrs.stdout, new RegExp(`eth0\\s+inet ${ip1.replace(/\./g, '\\.')}/24`));
        assert.match(addrs.stdout, new RegExp(`eth1\\s+inet ${ip2.replace(/\./g, '\\.')}/24`));
        const routes = await execIn(w, c.Id, ['ip', '-4', 'route', 'show', 'default']);
        assert.equal(routes.stdout.trim().split('\n').length, 1, routes.stdout);
        assert.match(routes.stdout, /^default via 10\.71\.0\.1 dev eth0/);
      });

      await t.test('connect and disconnect a running container', async () => {
        const c = await runContainer(a, { Name: 'hop', Cmd: SLEEP, Networks: [{ Name: 'n1' }] });
        const con = await a.post('/networks/n2/connect', {
          Container: c.Id,
          EndpointConfig: { IPAMConfig: { IPv4Address: '10.72.0.50' }, Aliases: ['hopper'] },
        });
        assert.equal(con.status, 200, con.text);
        let ins = await inspect(a, c.Id);
        assert.equal(ins.NetworkSettings.Networks.n2?.IPAddress, '10.72.0.50');
        assert.deepEqual(ins.NetworkSettings.Networks.n2?.Aliases, ['hopper']);
        const up = await execIn(w, c.Id, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth1']);
        assert.match(up.stdout, /eth1\s+inet 10\.72\.0\.50\/24/);
        // Still the same process: attaching does not restart anything.
        assert.equal(ins.State.Pid, c.State.Pid);
        const net = (await a.get('/networks/n2')).body;
        assert.ok(net.Containers[c.Id], 'network inspect lists the container');

        const dis = await a.post('/networks/n2/disconnect', { Container: c.Id });
        assert.equal(dis.status, 200, dis.text);
        ins = await inspect(a, c.Id);
        assert.equal(ins.NetworkSettings.Networks.n2, undefined);
        const gone = await execIn(w, c.Id, ['ip', '-o', 'link', 'show', 'dev', 'eth1']);
        assert.notEqual(gone.code, 0, 'eth1 is gone');
        assert.equal((await a.get('/networks/n2')).body.Containers[c.Id], undefined);
        // The address was released: another container can take it.
        const other = await runContainer(a, {
          Name: 'taker',
          Cmd: SLEEP,
          Networks: [{ Name: 'n2', IPv4Address: '10.72.0.50' }],
        });
        assert.equal(other.NetworkSettings.Networks.n2.IPAddress, '10.72.0.50');
      });

      await t.test('--sysctl net.ipv4.ip_forward=1 is visible inside only', async () => {
        const rootBefore = await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8');
        const [withIt, without] = await Promise.all([
          runContainer(a, {
            Name: 'fwd',
            Cmd: SLEEP,
            Networks: [{ Name: 'n1' }],
            Sysctls: { 'net.ipv4.ip_forward': '1' },
          }),
          runContainer(a, { Name: 'nofwd', Cmd: SLEEP, Networks: [{ Name: 'n1' }] }),
        ]);
        const read = async (ns: string) =>
          (await exec(ns, ['cat', '/proc/sys/net/ipv4/ip_forward'], { check: true })).stdout.trim();
        assert.equal(await read(withIt.NetworkSettings.SandboxKey), '1');
        assert.equal(await read(without.NetworkSettings.SandboxKey), '0');
        // The process itself sees it too.
        const inside = await execIn(w, withIt.Id, ['cat', '/proc/sys/net/ipv4/ip_forward']);
        assert.equal(inside.stdout.trim(), '1');
        assert.equal(await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8'), rootBefore);
      });

      await t.test(
        'hostname, /etc/hosts and /etc/resolv.conf as the container sees them',
        async () => {
          const hostResolv = await readFile('/etc/resolv.conf', 'utf8');
          const hostHosts = await readFile('/etc/hosts', 'utf8');
          const c = await runContainer(a, {
            Name: 'files',
            Hostname: 'web1',
            Cmd: ['sh', '-c', 'echo "hostname=$(hostname)"; cat /etc/resolv.conf; exec sleep 600'],
            Networks: [{ Name: 'n1' }],
            Dns: ['203.0.113.1'],
            DnsSearch: ['example.test'],
            DnsOptions: ['ndots:2'],
          });
          const ip = c.NetworkSettings.Networks.n1.IPAddress;
          const [hn, hosts, resolv, etcHostname] = await Promise.all([
            execIn(w, c.Id, ['hostname']),
            execIn(w, c.Id, ['cat', '/etc/hosts']),
            execIn(w, c.Id, ['cat', '/etc/resolv.conf']),
            execIn(w, c.Id, ['cat', '/etc/hostname']),
          ]);
          assert.equal(hn.stdout.trim(), 'web1');
          assert.equal(etcHostname.stdout.trim(), 'web1');
          assert.match(hosts.stdout, /^127\.0\.0\.1\s+localhost/m);
          assert.match(hosts.stdout, new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+web1\\b`, 'm'));
          // A user-defined network: the embedded DNS on the network's gateway (docs/dns.md).
          assert.match(resolv.stdout, /^nameserver 10\.71\.0\.1$/m);
          assert.equal(resolv.stdout.match(/^nameserver /gm)?.length, 1, resolv.stdout);
          assert.match(resolv.stdout, /^search example\.test$/m);
          assert.match(resolv.stdout, /^options ndots:2$/m);
          // The container's own output (its log) says the same.
          await until('the container to print its files', async () =>
            (await a.get(`/cnm/containers/${c.Id}/logs`)).text.includes('options'),
          );
          const log = (await a.get(`/cnm/containers/${c.Id}/logs`)).text;
          assert.match(log, /^hostname=web1$/m);
          assert.match(log, /^search example\.test$/m);
          // The host's own files are untouched.
          assert.equal(await readFile('/etc/resolv.conf', 'utf8'), hostResolv);
          assert.equal(await readFile('/etc/hosts', 'utf8'), hostHosts);
        },
      );

      await t.test('stop gives exited with the exit code; wait reports it', async () => {
        const c = await runContainer(a, { Name: 'stopme', Cmd: SLEEP, Networks: [{ Name: 'n1' }] });
        const stop = await a.post(`/cnm/containers/${c.Id}/stop?t=5`);
        assert.equal(stop.status, 204, stop.text);
        const ins = await inspect(a, c.Id);
        assert.equal(ins.State.Status, 'exited');
        assert.equal(ins.State.ExitCode, 143, 'SIGTERM: 128 + 15');
        assert.equal(alive(c.State.Pid), false);

        const e = await runContainer(a, {
          Name: 'exit3',
          Cmd: ['sh', '-c', 'sleep 0.3; exit 3'],
          Networks: [{ Name: 'n1' }],
        });
        const waited = await a.post(`/cnm/containers/${e.Id}/wait`);
        assert.equal(waited.body?.StatusCode, 3);
        const after = await inspect(a, e.Id);
        assert.equal(after.State.Status, 'exited');
        assert.equal(after.State.ExitCode, 3);
        // An exited container keeps its configuration and can be started again.
        const again = await a.post(`/cnm/containers/${e.Id}/start`);
        assert.equal(again.status, 204, again.text);
        assert.equal((await a.post(`/cnm/containers/${e.Id}/wait`)).body?.StatusCode, 3);
      });

      await t.test('AutoRemove removes the container after it exits', async () => {
        const c = await runContainer(a, {
          Name: 'gone',
          Cmd: ['sh', '-c', 'sleep 0.3; exit 0'],
          Networks: [{ Name: 'n1' }],
          AutoRemove: true,
        });
        await until(
          'auto-removal',
          async () => (await a.get(`/cnm/containers/${c.Id}/json`)).status === 404,
        );
        assert.equal((await a.get('/networks/n1')).body.Containers[c.Id], undefined);
      });

      await t.test('nsenter -t <State.Pid> -n ip addr shows the container address', async () => {
        // On the default network, as in Docker's own example.
        const c = await runContainer(a, { Name: 'seed', Cmd: SLEEP });
        assert.deepEqual(Object.keys(c.NetworkSettings.Networks), ['bridge']);
        const ip = c.NetworkSettings.Networks.bridge.IPAddress;
        assert.match(ip, /^172\.17\./);
        const r = await run('nsenter', ['-t', String(c.State.Pid), '-n', 'ip', 'addr'], {
          check: true,
        });
        assert.match(r.stdout, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/16 .*eth0`));
        assert.match(
          r.stdout,
          new RegExp(`link/ether ${c.NetworkSettings.Networks.bridge.MacAddress}`),
        );
      });

      await t.test('removing everything leaves the host as cnmd started it', async () => {
        const all = (await a.get('/cnm/containers/json?all=1')).body as { Id: string }[];
        assert.ok(all.length >= 10, `containers: ${all.length}`);
        await Promise.all(
          all.map(async (c) => {
            const r = await a.delete(`/cnm/containers/${c.Id}?force=1`);
            assert.equal(r.status, 204, r.text);
          }),
        );
        for (const n of ['n1', 'n2']) {
          const r = await a.delete(`/networks/${n}`);
          assert.equal(r.status, 204, r.text);
        }
        assert.deepEqual((await a.get('/cnm/containers/json?all=1')).body, []);
        await waitHostSettled(w);
        assertSameHost(s0, await snapshotHost(w), 'after removing everything');
        assert.deepEqual(
          (await a.get('/networks')).body.map((n: { Name: string }) => n.Name).sort(),
          ['bridge', 'host', 'none'],
        );
      });
    }),
);
