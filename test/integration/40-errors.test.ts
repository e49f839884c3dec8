/**
 * Bad requests change nothing: each is refused with Docker's status code (invalid input 400,
 * overlap and in-use removal 403, not found 404, duplicate name and address/port in use 409) and
 * a message, and the host netns, `GET /networks` and `GET /cnm/containers/json?all=1` are the
 * same before and after. Needs root.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, skipUnlessRoot, snapshotHost, startDaemon, withWorld } from './harness.js';
import { assertSameHost, createNetwork, runContainer, table, waitHostSettled } from './workload.js';

interface Case {
  what: string;
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: unknown;
  status: number;
  /** The message must match this. */
  message: RegExp;
}

const SLEEP = ['sleep', '600'];

test(
  'refused requests: Docker status codes, a message, and no change anywhere',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      await startDaemon(w);
      const a = api(w);
      const baseId = await createNetwork(a, {
        Name: 'base',
        Driver: 'bridge',
        IPAM: { Config: [{ Subnet: '10.50.0.0/16', Gateway: '10.50.0.1' }] },
      });
      await createNetwork(a, { Name: 'spare', Driver: 'bridge' });
      const c1 = await runContainer(a, {
        Name: 'c1',
        Cmd: SLEEP,
        Networks: [{ Name: 'base', IPv4Address: '10.50.0.10' }],
        Ports: ['8080:80', '9090:90/udp'],
      });
      // A container with no network yet besides `spare`, for connect attempts.
      const c2 = await runContainer(a, { Name: 'c2', Cmd: SLEEP, Networks: [{ Name: 'spare' }] });

      const net = (body: Record<string, unknown>): Partial<Case> => ({
        method: 'POST',
        path: '/networks/create',
        body: { Driver: 'bridge', ...body },
      });
      const ctr = (body: Record<string, unknown>): Partial<Case> => ({
        method: 'POST',
        path: '/cnm/containers/create',
        body: { Cmd: SLEEP, ...body },
      });
      const cases: Case[] = [
        {
          what: 'bad CIDR (/33)',
          ...net({ Name: 'x', IPAM: { Config: [{ Subnet: '10.60.0.0/33' }] } }),
          status: 400,
          message: /10\.60\.0\.0\/33/,
        },
        {
          what: 'bad CIDR (text)',
          ...net({ Name: 'x', IPAM: { Config: [{ Subnet: 'ten/8' }] } }),
          status: 400,
          message: /ten\/8/,
        },
        {
          what: 'gateway outside subnet',
          ...net({
            Name: 'x',
            IPAM: { Config: [{ Subnet: '10.61.0.0/24', Gateway: '10.62.0.1' }] },
          }),
          status: 400,
          message: /10\.62\.0\.1/,
        },
        {
          what: 'overlapping subnet',
          ...net({ Name: 'x', IPAM: { Config: [{ Subnet: '10.50.128.0/24' }] } }),
          status: 403,
          message: /overlap/i,
        },
        {
          what: 'duplicate network name',
          ...net({ Name: 'base' }),
          status: 409,
          message: /already exists/,
        },
        {
          what: 'unknown driver',
          ...net({ Name: 'x', Driver: 'nosuch' }),
          status: 404,
          message: /nosuch/,
        },
        {
          what: 'unknown option',
          ...net({ Name: 'x', Options: { 'com.docker.network.bridge.nosuch': '1' } }),
          status: 400,
          message: /nosuch/,
        },
        {
          what: 'bad option value',
          ...net({ Name: 'x', Options: { 'com.docker.network.bridge.enable_icc': 'maybe' } }),
          status: 400,
          message: /maybe/,
        },
        {
          what: 'static IP in use (create)',
          ...ctr({ Name: 'x', Networks: [{ Name: 'base', IPv4Address: '10.50.0.10' }] }),
          status: 409,
          message: /10\.50\.0\.10/,
        },
        {
          what: 'static IP in use (connect)',
          method: 'POST',
          path: '/networks/base/connect',
          body: { Container: 'c2', EndpointConfig: { IPAMConfig: { IPv4Address: '10.50.0.10' } } },
          status: 409,
          message: /10\.50\.0\.10/,
        },
        {
          what: 'static IP is the gateway',
          ...ctr({ Name: 'x', Networks: [{ Name: 'base', IPv4Address: '10.50.0.1' }] }),
          status: 409,
          message: /10\.50\.0\.1/,
        },
        {
          what: 'static IP outside subnet',
          ...ctr({ Name: 'x', Networks: [{ Name: 'base', IPv4Address: '10.99.0.5' }] }),
          status: 400,
          message: /10\.99\.0\.5/,
        },
        {
          what: 'static IP outside subnet (connect)',
          method: 'POST',
          path: '/networks/base/connect',
          body: { Container: 'c2', EndpointConfig: { IPAMConfig: { IPv4Address: '10.99.0.5' } } },
          status: 400,
          message: /10\.99\.0\.5/,
        },
        {
          what: 'port in use (tcp)',
          ...ctr({ Name: 'x', Networks: [{ Name: 'spare' }], Ports: ['8080:80'] }),
          status: 409,
          message: /8080.*already allocated/,
        },
        {
          what: 'port in use (udp, 2nd spec)',
          ...ctr({ Name: 'x', Networks: [{ Name: 'spare' }], Ports: ['7070:70', '9090:90/udp'] }),
          status: 409,
          message: /9090.*already allocated/,
        },
        {
          what: 'bad port spec',
          ...ctr({ Name: 'x', Ports: ['99999:80'] }),
          status: 400,
          message: /99999/,
        },
        { what: 'container name in use', ...ctr({ Name: 'c1' }), status: 409, message: /c1/ },
        {
          what: 'remove network in use',
          method: 'DELETE',
          path: `/networks/${baseId}`,
          status: 403,
          message: /active endpoints/,
        },
        {
          what: 'remove predefined network',
          method: 'DELETE',
          path: '/networks/bridge',
          status: 403,
          message: /pre-defined/,
        },
        {
          what: 'unknown container (inspect)',
          method: 'GET',
          path: '/cnm/containers/nosuchctr/json',
          status: 404,
          message: /nosuchctr/,
        },
        {
          what: 'unknown container (start)',
          method: 'POST',
          path: '/cnm/containers/nosuchctr/start',
          status: 404,
          message: /nosuchctr/,
        },
        {
          what: 'unknown container (remove)',
          method: 'DELETE',
          path: '/cnm/containers/nosuchctr?force=1',
          status: 404,
          message: /nosuchctr/,
        },
        {
          what: 'unknown container (connect)',
          method: 'POST',
          path: '/networks/base/connect',
          body: { Container: 'nosuchctr' },
          status: 404,
          message: /nosuchctr/,
        },
        {
          what: 'unknown network (inspect)',
          method: 'GET',
          path: '/networks/nosuchnet',
          status: 404,
          message: /nosuchnet/,
        },
        {
          what: 'unknown network (remove)',
          method: 'DELETE',
          path: '/networks/nosuchnet',
          status: 404,
          message: /nosuchnet/,
        },
        {
          what: 'unknown network (connect)',
          method: 'POST',
          path: '/networks/nosuchnet/connect',
          body: { Container: 'c2' },
          status: 404,
          message: /nosuchnet/,
        },
        {
          what: 'unknown network (create ctr)',
          ...ctr({ Name: 'x', Networks: [{ Name: 'nosuchnet' }] }),
          status: 404,
          message: /nosuchnet/,
        },
        {
          what: 'unknown network, 2nd of two',
          ...ctr({ Name: 'x', Networks: [{ Name: 'spare' }, { Name: 'nosuchnet' }] }),
          status: 404,
          message: /nosuchnet/,
        },
      ] as Case[];

      const state = async () => ({
        host: await snapshotHost(w),
        networks: (await a.get('/networks')).body,
        // `Status` ("Up 3 seconds") moves with the clock; `State` is what must not change.
        containers: (
          (await a.get('/cnm/containers/json?all=1')).body as Record<string, unknown>[]
        ).map(({ Status: _status, ...rest }) => rest),
      });
      await waitHostSettled(w);
      const rows = [['case', 'status', 'message']];
      const failures: string[] = [];
      for (const c of cases) {
        const before = await state();
        const r = await a.request(c.method, c.path, c.body);
        const message = String(r.body?.message ?? '');
        rows.push([c.what, String(r.status), message.slice(0, 90)]);
        try {
          assert.equal(r.status, c.status, `${c.what}: status (${r.text})`);
          assert.match(message, c.message, `${c.what}: message`);
          const after = await state();
          assertSameHost(before.host, after.host, c.what);
          assert.deepEqual(after.networks, before.networks, `${c.what}: GET /networks changed`);
          assert.deepEqual(after.containers, before.containers, `${c.what}: containers changed`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      t.diagnostic('refused requests:');
      for (const line of table(rows).split('\n')) t.diagnostic(line);
      assert.deepEqual(failures, []);

      // Nothing leaked in IPAM or ports either: the refused requests' resources are usable.
      const ok = await runContainer(a, {
        Name: 'x',
        Cmd: SLEEP,
        Networks: [{ Name: 'base', IPv4Address: '10.50.0.11' }],
        Ports: ['7070:70'],
      });
      assert.equal(ok.NetworkSettings.Networks.base.IPAddress, '10.50.0.11');
      assert.equal(c1.NetworkSettings.Networks.base.IPAddress, '10.50.0.10');
      assert.equal(c2.State.Status, 'running');
      const conn = await a.post('/networks/base/connect', { Container: 'c2' });
      assert.equal(conn.status, 200, conn.text);
    }),
);
