/**
 * The real docker CLI (28.x) drives cnmd through `DOCKER_HOST=unix://<world socket>`: version,
 * info, every `docker network` subcommand with its flags, connect/disconnect of a real cnm
 * container (seen in `docker network inspect` and in the container's netns), and refusals with
 * dockerd's wording and exit codes. Then raw API misuse (malformed JSON, unknown versions,
 * oversize bodies, wrong types): 400-class answers in Docker's shape, nothing changes, and the
 * daemon keeps serving. Needs root and /usr/local/bin/docker (skipped without it).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import {
  api,
  exec,
  run,
  skipUnlessRoot,
  startDaemon,
  withWorld,
  type ExecResult,
  type World,
} from './harness.js';
import { runContainer, served, until } from './workload.js';

const DOCKER = ['/usr/local/bin/docker', '/usr/bin/docker'].find((p) => existsSync(p));

function skip(): string | false {
  return skipUnlessRoot() || (DOCKER === undefined ? 'needs the docker CLI' : false);
}

/** Runs the docker CLI against the world's cnmd, with a private config dir (no contexts). */
async function docker(w: World, args: string[]): Promise<ExecResult & { code: number }> {
  const config = path.join(w.dir, 'docker-config');
  await mkdir(config, { recursive: true });
  const r = await run(DOCKER ?? 'docker', args, {
    timeoutMs: 30_000,
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: w.dir,
      DOCKER_HOST: `unix://${w.socketPath}`,
      DOCKER_CONFIG: config,
    },
  });
  return { ...r, code: r.code ?? -1 };
}

/** docker CLI call expected to succeed; returns stdout. */
async function ok(w: World, args: string[]): Promise<string> {
  const r = await docker(w, args);
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

/** docker CLI call expected to fail with `code` and a stderr matching `re`. */
async function fails(w: World, args: string[], re: RegExp, code = 1): Promise<void> {
  const r = await docker(w, args);
  assert.equal(r.code, code, `docker ${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
  assert.match(r.stderr, re, `docker ${args.join(' ')}`);
}

async function inspectNet(w: World, name: string): Promise<any> {
  const [n] = JSON.parse(await ok(w, ['network', 'inspect', name])) as any[];
  return n;
}

/** IPv4/IPv6 addresses inside a netns file, as `addr/prefix`. */
async function addrsIn(ns: string): Promise<string[]> {
  const r = await exec(ns, ['ip', '-j', 'addr', 'show'], { check: true });
  return (JSON.parse(r.stdout) as any[]).flatMap((l) =>
    (l.addr_info as any[]).map((a) => `${String(a.local)}/${String(a.prefixlen)}`),
  );
}

/** A raw request: the body is sent as given (malformed JSON, huge payloads). */
function raw(
  w: World,
  method: string,
  urlPath: string,
  body?: string | Buffer,
): Promise<{ status: number; text: string; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: w.socketPath,
        method,
        path: urlPath,
        headers: {
          Host: 'cnm',
          'Content-Type': 'application/json',
          ...(body === undefined ? {} : { 'Content-Length': Buffer.byteLength(body) }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test(
  'docker CLI: version, info, network create/ls/inspect/connect/disconnect/rm/prune, errors',
  { skip: skip(), timeout: 180_000 },
  (t) =>
    withWorld(t, async (w) => {
      await startDaemon(w);
      const a = api(w);

      await t.test('docker version and docker info', async () => {
        const v = JSON.parse(await ok(w, ['version', '--format', '{{json .}}']));
        assert.equal(v.Server.Version, '0.1.0');
        assert.equal(v.Server.ApiVersion, '1.47');
        assert.equal(v.Server.MinAPIVersion, '1.24');
        assert.equal(v.Server.Os, 'linux');
        assert.equal(v.Client.ApiVersion, '1.47', 'the CLI negotiates down to 1.47');
        const plain = await ok(w, ['version']);
        assert.match(plain, /^Server: cnm 0\.1\.0$/m);
        const info = JSON.parse(await ok(w, ['info', '--format', '{{json .}}']));
        assert.equal(info.ServerVersion, '0.1.0');
        assert.equal(info.OSType, 'linux');
        assert.equal(info.Containers, 0);
        for (const d of ['bridge', 'host', 'none']) assert.ok(info.Plugins.Network.includes(d), d);
        assert.equal(info.Swarm.LocalNodeState, 'inactive');
        assert.equal(info.DockerRootDir, w.dataRoot);
        assert.match(await ok(w, ['info']), /Server Version: 0\.1\.0/);
      });

      await t.test('network create: every flag lands in inspect and the kernel', async () => {
        const id = (
          await ok(w, [
            'network',
            'create',
            '-d',
            'bridge',
            '--subnet',
            '10.71.0.0/24',
            '--gateway',
            '10.71.0.1',
            '--ip-range',
            '10.71.0.128/25',
            '--aux-address',
            'router=10.71.0.2',
            '--attachable',
            '--label',
            'team=net',
            '--label',
            'flag',
            '-o',
            'com.docker.network.bridge.name=br71',
            '--opt',
            'com.docker.network.driver.mtu=1400',
            '--ipam-driver',
            'default',
            '--ipam-opt',
            'x=y',
            '--scope',
            'local',
            'n71',
          ])
        ).trim();
        assert.match(id, /^[0-9a-f]{64}$/);
        const n = await inspectNet(w, 'n71');
        assert.equal(n.Id, id);
        assert.equal(n.Driver, 'bridge');
        assert.equal(n.Scope, 'local');
        assert.equal(n.Attachable, true);
        assert.equal(n.Internal, false);
        assert.deepEqual(n.Labels, { team: 'net', flag: '' });
        assert.deepEqual(n.Options, {
          'com.docker.network.bridge.name': 'br71',
          'com.docker.network.driver.mtu': '1400',
        });
        assert.deepEqual(n.IPAM, {
          Driver: 'default',
          Options: { x: 'y' },
          Config: [
            {
              Subnet: '10.71.0.0/24',
              IPRange: '10.71.0.128/25',
              Gateway: '10.71.0.1',
              AuxiliaryAddresses: { router: '10.71.0.2' },
            },
          ],
        });
        const link = JSON.parse(
          (await exec(w.hostNs, ['ip', '-j', '-d', 'link', 'show', 'br71'], { check: true }))
            .stdout,
        )[0];
        assert.equal(link.mtu, 1400);
        assert.equal(link.linkinfo.info_kind, 'bridge');
        const br = await addrsIn(w.hostNs);
        assert.ok(br.includes('10.71.0.1/24'), `gateway on br71: ${br.join(' ')}`);

        await ok(w, ['network', 'create', '--ipv6', '--subnet', 'fd71::/64', '--internal', 'n6']);
        const n6 = await inspectNet(w, 'n6');
        assert.equal(n6.EnableIPv6, true);
        assert.equal(n6.Internal, true);
        assert.equal(n6.IPAM.Config[0].Subnet, 'fd71::/64');

        await ok(w, ['network', 'create', '--config-only', '--subnet', '10.72.0.0/24', 'cfg']);
        await ok(w, ['network', 'create', '--config-from', 'cfg', 'fromcfg']);
        const from = await inspectNet(w, 'fromcfg');
        assert.equal(from.ConfigFrom.Network, 'cfg');
        assert.equal(from.IPAM.Config[0].Subnet, '10.72.0.0/24');
        assert.equal((await inspectNet(w, 'cfg')).ConfigOnly, true);
      });

      await t.test('network create refusals: dockerd wording, exit codes', async () => {
        await fails(w, ['network', 'create', 'n71'], /network with name n71 already exists/);
        await fails(w, ['network', 'create', '-d', 'nosuchdriver', 'o1'], /"nosuchdriver"/);
        await fails(w, ['network', 'create', '--ipam-driver', 'dhcp', 'i1'], /IPAM driver "dhcp"/);
        await fails(w, ['network', 'create', '--scope', 'swarm', 's1'], /scope "swarm"/);
        await fails(w, ['network', 'create', '--ingress', 'ing'], /swarm/);
        await fails(w, ['network', 'create', '-o', 'bogus=1', 'b1'], /Unknown option "bogus"/);
        await fails(
          w,
          ['network', 'create', '-o', 'com.docker.network.driver.mtu=big', 'b2'],
          /Invalid value "big"/,
        );
        await fails(w, ['network', 'create', '--subnet', '10.71.0.0/25', 'ov'], /overlap/i);
        // Client-side: unknown flags never reach the daemon (docker's usage exit code 125).
        await fails(w, ['network', 'create', '--bogus', 'x'], /unknown flag: --bogus/, 125);
        await fails(w, ['network', 'ls', '--filter', 'color=red'], /invalid filter 'color'/);
        const names = (await ok(w, ['network', 'ls', '--format', '{{.Name}}'])).trim().split('\n');
        assert.deepEqual(names, ['bridge', 'cfg', 'fromcfg', 'host', 'n6', 'n71', 'none']);
      });

      await t.test('network ls: filters, --format, --no-trunc, -q', async () => {
        const ls = async (...args: string[]): Promise<string[]> =>
          (await ok(w, ['network', 'ls', '--format', '{{.Name}}', ...args]))
            .trim()
            .split('\n')
            .filter((l) => l !== '');
        assert.deepEqual(await ls('-f', 'name=n7'), ['n71']);
        assert.deepEqual(await ls('-f', 'driver=host'), ['host']);
        assert.deepEqual(await ls('-f', 'label=team=net'), ['n71']);
        assert.deepEqual(await ls('-f', 'label=flag'), ['n71']);
        assert.deepEqual(await ls('-f', 'type=builtin'), ['bridge', 'host', 'none']);
        assert.deepEqual(await ls('-f', 'type=custom'), ['cfg', 'fromcfg', 'n6', 'n71']);
        assert.deepEqual(await ls('-f', 'scope=local', '-f', 'name=^n6$'), ['n6']);
        assert.deepEqual(await ls('-f', 'dangling=true'), ['cfg', 'fromcfg', 'n6', 'n71']);
        const id = (await inspectNet(w, 'n71')).Id as string;
        assert.deepEqual(await ls('-f', `id=${id.slice(0, 6)}`), ['n71']);
        const table = await ok(w, ['network', 'ls', '-f', 'name=n71']);
        assert.match(table, /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE\n/);
        assert.match(table, new RegExp(`^${id.slice(0, 12)}\\s+n71\\s+bridge\\s+local$`, 'm'));
        const full = await ok(w, ['network', 'ls', '--no-trunc', '-f', 'name=n71']);
        assert.ok(full.includes(id));
        const q = (await ok(w, ['network', 'ls', '-q', '-f', 'name=n71'])).trim();
        assert.equal(q, id.slice(0, 12));
        const custom = await ok(w, [
          'network',
          'ls',
          '-f',
          'name=n71',
          '--format',
          '{{.Name}} {{.Driver}} {{.Internal}} {{.Labels}}',
        ]);
        // The docker CLI prints {{.Labels}} by ranging over a Go map: the order is random.
        const m = /^n71 bridge false (\S*)\n$/.exec(custom);
        assert.ok(m, `unexpected ls output: ${JSON.stringify(custom)}`);
        assert.deepEqual(m[1]!.split(',').sort(), ['flag=', 'team=net']);
      });

      await t.test('network inspect: many, -f, -v, missing', async () => {
        const both = JSON.parse(await ok(w, ['network', 'inspect', 'n71', 'n6'])) as any[];
        assert.deepEqual(
          both.map((n) => n.Name),
          ['n71', 'n6'],
        );
        assert.equal(
          await ok(w, ['network', 'inspect', '-f', '{{.Name}}', 'n71', 'n6']),
          'n71\nn6\n',
        );
        assert.equal(
          await ok(w, ['network', 'inspect', '-v', '-f', '{{.IPAM.Driver}}', 'n71']),
          'default\n',
        );
        await fails(
          w,
          ['network', 'inspect', 'nope'],
          /Error response from daemon: network nope not found/,
        );
        const partial = await docker(w, ['network', 'inspect', '-f', '{{.Name}}', 'n71', 'nope']);
        assert.equal(partial.code, 1);
        assert.equal(partial.stdout, 'n71\n');
      });

      await t.test(
        'network connect/disconnect of a cnm container: inspect and kernel',
        async () => {
          await ok(w, ['network', 'create', '--subnet', '10.73.0.0/24', 'home']);
          const c = served(
            await runContainer(a, {
              Name: 'web1',
              Cmd: ['sleep', '600'],
              Networks: [{ Name: 'home' }],
            }),
          );
          assert.ok(!(await addrsIn(c.ns)).includes('10.71.0.200/24'));

          await ok(w, [
            'network',
            'connect',
            '--ip',
            '10.71.0.200',
            '--alias',
            'web',
            '--alias',
            'www',
            'n71',
            'web1',
          ]);
          const n = await inspectNet(w, 'n71');
          const entry = n.Containers[c.id];
          assert.ok(entry !== undefined, `web1 in n71.Containers: ${JSON.stringify(n.Containers)}`);
          assert.equal(entry.Name, 'web1');
          assert.equal(entry.IPv4Address, '10.71.0.200/24');
          assert.match(entry.MacAddress, /^02:42:/);
          assert.match(entry.EndpointID, /^[0-9a-f]{64}$/);
          const inspected = (await a.get(`/cnm/containers/web1/json`)).body;
          assert.deepEqual(inspected.NetworkSettings.Networks.n71.Aliases, ['web', 'www']);
          assert.ok((await addrsIn(c.ns)).includes('10.71.0.200/24'), 'address in the netns');
          // Reaches the gateway over the new interface.
          const gw = await exec(c.ns, ['ip', '-4', 'route', 'get', '10.71.0.1'], { check: true });
          assert.match(gw.stdout, /dev eth1/);

          // By id prefix, with an IPv6 address.
          await ok(w, ['network', 'connect', '--ip6', 'fd71::10', 'n6', c.id.slice(0, 12)]);
          await until('IPv6 address in the netns', async () =>
            (await addrsIn(c.ns)).includes('fd71::10/64'),
          );
          assert.equal((await inspectNet(w, 'n6')).Containers[c.id].IPv6Address, 'fd71::10/64');

          await fails(w, ['network', 'connect', 'n71', 'web1'], /already exists in network n71/);
          await fails(w, ['network', 'connect', 'n71', 'ghost'], /No such container: ghost/);
          await fails(
            w,
            ['network', 'connect', '--link', 'a:b', 'fromcfg', 'web1'],
            /legacy links are not supported/,
          );
          await fails(
            w,
            ['network', 'connect', '--link-local-ip', '169.254.9.9', 'fromcfg', 'web1'],
            /link-local addresses are not supported/,
          );
          assert.deepEqual(
            (await inspectNet(w, 'fromcfg')).Containers,
            {},
            'refused connects changed nothing',
          );
          await fails(w, ['network', 'rm', 'n71'], /has active endpoints/);

          await ok(w, ['network', 'disconnect', 'n71', 'web1']);
          await ok(w, ['network', 'disconnect', '-f', 'n6', c.id]);
          assert.deepEqual((await inspectNet(w, 'n71')).Containers, {});
          const left = await addrsIn(c.ns);
          assert.ok(
            !left.includes('10.71.0.200/24') && !left.includes('fd71::10/64'),
            left.join(' '),
          );
          await fails(
            w,
            ['network', 'disconnect', 'n71', 'web1'],
            /is not connected to network n71/,
          );
          assert.equal((await a.delete('/cnm/containers/web1?force=1')).status, 204);
        },
      );

      await t.test('network rm (several) and prune (filters)', async () => {
        await ok(w, ['network', 'create', 'r1']);
        await ok(w, ['network', 'create', 'r2']);
        assert.equal(await ok(w, ['network', 'rm', 'r1', 'r2']), 'r1\nr2\n');
        await ok(w, ['network', 'create', 'r3']);
        const partial = await docker(w, ['network', 'rm', 'r3', 'nope']);
        assert.equal(partial.code, 1);
        assert.equal(partial.stdout, 'r3\n');
        assert.match(partial.stderr, /network nope not found/);

        await ok(w, ['network', 'create', '--label', 'tier=tmp', 'p1']);
        await ok(w, ['network', 'create', '--label', 'tier=keep', 'p2']);
        const pruned = await ok(w, ['network', 'prune', '-f', '--filter', 'label=tier=tmp']);
        assert.equal(pruned, 'Deleted Networks:\np1\n\n');
        // Nothing is older than an hour.
        assert.equal(await ok(w, ['network', 'prune', '-f', '--filter', 'until=1h']), '');
        await fails(
          w,
          ['network', 'prune', '-f', '--filter', 'until=soon'],
          /Invalid filter 'until=soon'/,
        );
        const all = await ok(w, ['network', 'prune', '-f', '--filter', 'label!=team']);
        assert.match(all, /^Deleted Networks:\n/);
        for (const gone of ['p2', 'fromcfg', 'n6', 'home'])
          assert.ok(all.includes(`${gone}\n`), all);
        const names = (await ok(w, ['network', 'ls', '--format', '{{.Name}}'])).trim().split('\n');
        assert.ok(names.includes('n71') && !names.includes('p2'), names.join(' '));
      });

      await t.test(
        'bad API input: 400-class in Docker shape, nothing changes, still serving',
        async () => {
          const before = (await a.get('/networks')).text;
          const cases: [string, string, string | Buffer | undefined, number, RegExp][] = [
            ['POST', '/v1.47/networks/create', '{"Name": "x",', 400, /Invalid JSON/],
            ['POST', '/v1.47/networks/create', '[1,2]', 400, /expected a JSON object/],
            ['POST', '/v1.47/networks/create', '{"Name": 5}', 400, /Invalid field "Name"/],
            [
              'POST',
              '/v1.47/networks/create',
              '{"Name":"x","IPAM":{"Config":[{"Subnet":1}]}}',
              400,
              /IPAM\.Config\[0\]\.Subnet/,
            ],
            [
              'POST',
              '/v1.99/networks/create',
              '{"Name":"x"}',
              400,
              /client version 1\.99 is too new/,
            ],
            ['GET', '/v1.12/networks', undefined, 400, /client version 1\.12 is too old/],
            [
              'POST',
              '/networks/create',
              Buffer.alloc(2 * 1024 * 1024, 0x20),
              413,
              /larger than the limit/,
            ],
            ['GET', '/networks?filters=%7Bnope', undefined, 400, /Invalid filters/],
            ['GET', '/networks/n71?verbose=maybe', undefined, 400, /verbose/],
            ['POST', '/networks/n71/connect', '{"Container": ["web1"]}', 400, /Container/],
            ['GET', '/nope', undefined, 404, /page not found/],
            ['PUT', '/networks/create', '{}', 405, /method not allowed/],
          ];
          for (const [method, p, body, status, re] of cases) {
            const r = await raw(w, method, p, body);
            assert.equal(r.status, status, `${method} ${p}: ${r.text}`);
            assert.equal(typeof r.json?.message, 'string', `Docker's {"message"} shape: ${r.text}`);
            assert.match(r.json.message, re);
          }
          assert.equal((await a.get('/networks')).text, before, 'nothing changed');
          const ping = await docker(w, ['network', 'ls', '-q']);
          assert.equal(ping.code, 0, 'daemon still serves the docker CLI');
        },
      );
    }),
);
