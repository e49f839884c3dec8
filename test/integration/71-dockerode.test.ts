/**
 * dockerode (the Node Docker client, via docker-modem) against a live cnmd: ping, version,
 * createNetwork, listNetworks with filters, getNetwork().inspect/connect/disconnect/remove and
 * pruneNetworks, with the shapes dockerode's users read and the effect in a container's netns.
 * Errors come back as dockerode errors with dockerd's status codes and `json.message`.
 * Needs root.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Docker from 'dockerode';
import { api, exec, skipUnlessRoot, startDaemon, withWorld } from './harness.js';
import { runContainer, served } from './workload.js';

/** dockerode's rejection: an Error with `statusCode` and the parsed body in `json`. */
async function refused(p: Promise<unknown>, status: number, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.equal(err.statusCode, status, String(err));
    assert.match(String(err.json?.message), message);
    return true;
  });
}

async function addrsIn(ns: string): Promise<string[]> {
  const r = await exec(ns, ['ip', '-j', 'addr', 'show'], { check: true });
  return (JSON.parse(r.stdout) as any[]).flatMap((l) =>
    (l.addr_info as any[]).map((a) => `${String(a.local)}/${String(a.prefixlen)}`),
  );
}

test(
  'dockerode: networks lifecycle, filters, connect/disconnect, prune, errors',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      await startDaemon(w);
      const docker = new Docker({ socketPath: w.socketPath });

      await t.test('ping and version', async () => {
        assert.equal(String(await docker.ping()), 'OK');
        const v = await docker.version();
        assert.equal(v.ApiVersion, '1.47');
        assert.equal(v.Os, 'linux');
        // A client pinned to an older API version is served under its /vX.Y prefix.
        const old = new Docker({ socketPath: w.socketPath, version: 'v1.41' });
        assert.ok((await old.listNetworks()).some((n) => n.Name === 'bridge'));
      });

      let netId = '';
      await t.test('createNetwork and inspect', async () => {
        const net = await docker.createNetwork({
          Name: 'dk1',
          Driver: 'bridge',
          Attachable: true,
          Labels: { app: 'dk', tier: 'one' },
          Options: { 'com.docker.network.bridge.name': 'brdk1' },
          IPAM: {
            Driver: 'default',
            Config: [{ Subnet: '10.81.0.0/24', Gateway: '10.81.0.1', IPRange: '10.81.0.64/26' }],
          },
        });
        assert.match(net.id, /^[0-9a-f]{64}$/);
        netId = net.id;
        const n = await net.inspect();
        assert.equal(n.Name, 'dk1');
        assert.equal(n.Id, net.id);
        assert.equal(n.Driver, 'bridge');
        assert.equal(n.Scope, 'local');
        assert.equal(n.Attachable, true);
        assert.deepEqual(n.Labels, { app: 'dk', tier: 'one' });
        assert.deepEqual(n.IPAM?.Config, [
          { Subnet: '10.81.0.0/24', IPRange: '10.81.0.64/26', Gateway: '10.81.0.1' },
        ]);
        assert.deepEqual(n.Containers, {});
        assert.match(n.Created, /^\d{4}-\d{2}-\d{2}T/);
        await docker.createNetwork({ Name: 'dk2', Labels: { app: 'dk', prune: 'yes' } });
        await docker.createNetwork({ Name: 'dk3', Labels: { prune: 'yes' } });
        await refused(docker.createNetwork({ Name: 'dk1' }), 409, /already exists/);
        await refused(
          docker.createNetwork({ Name: 'bad', IPAM: { Config: [{ Subnet: '10.81.0.0/33' }] } }),
          400,
          /10\.81\.0\.0\/33/,
        );
      });

      await t.test('listNetworks with filters (object and JSON string forms)', async () => {
        const names = (list: Docker.NetworkInspectInfo[]): string[] =>
          list.map((n) => n.Name).sort();
        assert.deepEqual(names(await docker.listNetworks({ filters: { label: ['app=dk'] } })), [
          'dk1',
          'dk2',
        ]);
        assert.deepEqual(
          names(await docker.listNetworks({ filters: { label: ['app', 'tier=one'] } })),
          ['dk1'],
        );
        assert.deepEqual(
          names(await docker.listNetworks({ filters: JSON.stringify({ name: { dk: true } }) })),
          ['dk1', 'dk2', 'dk3'],
        );
        assert.deepEqual(names(await docker.listNetworks({ filters: { type: ['builtin'] } })), [
          'bridge',
          'host',
          'none',
        ]);
        assert.deepEqual(
          names(await docker.listNetworks({ filters: { id: [netId.slice(0, 10)] } })),
          ['dk1'],
        );
        await refused(docker.listNetworks({ filters: { colour: ['red'] } }), 400, /invalid filter/);
        const [item] = await docker.listNetworks({ filters: { name: ['^dk1$'] } });
        assert.deepEqual(item?.Containers, {}, 'list items carry an empty Containers map');
      });

      await t.test('connect and disconnect a cnm container', async () => {
        const c = served(
          await runContainer(api(w), {
            Name: 'dkc',
            Cmd: ['sleep', '600'],
            Networks: [{ Name: 'dk2' }],
          }),
        );
        const net = docker.getNetwork('dk1');
        await net.connect({
          Container: 'dkc',
          EndpointConfig: { IPAMConfig: { IPv4Address: '10.81.0.70' }, Aliases: ['svc'] },
        });
        const n = await net.inspect();
        assert.deepEqual(Object.keys(n.Containers ?? {}), [c.id]);
        assert.equal(n.Containers?.[c.id]?.IPv4Address, '10.81.0.70/24');
        assert.equal(n.Containers?.[c.id]?.Name, 'dkc');
        assert.ok((await addrsIn(c.ns)).includes('10.81.0.70/24'));
        // dockerd answers a second attach with 403 (ForbiddenErrorf in libnetwork).
        await refused(net.connect({ Container: 'dkc' }), 403, /already exists/);
        await refused(net.connect({ Container: 'nobody' }), 404, /No such container/);
        await refused(net.remove(), 403, /active endpoints/);

        await net.disconnect({ Container: c.id.slice(0, 12), Force: true });
        assert.deepEqual((await net.inspect()).Containers, {});
        assert.ok(!(await addrsIn(c.ns)).includes('10.81.0.70/24'));
        assert.equal((await api(w).delete('/cnm/containers/dkc?force=1')).status, 204);
      });

      await t.test('remove and pruneNetworks', async () => {
        await docker.getNetwork(netId).remove();
        await refused(docker.getNetwork('dk1').inspect(), 404, /network dk1 not found/);
        await refused(docker.getNetwork('dk1').remove(), 404, /not found/);
        const res = await docker.pruneNetworks({ filters: { label: ['prune=yes'] } });
        assert.deepEqual([...(res.NetworksDeleted ?? [])].sort(), ['dk2', 'dk3']);
        const none = await docker.pruneNetworks({ filters: { label: ['prune=yes'] } });
        assert.deepEqual(none.NetworksDeleted ?? [], []);
        const left = (await docker.listNetworks()).map((n) => n.Name).sort();
        assert.deepEqual(left, ['bridge', 'host', 'none']);
      });
    }),
);
