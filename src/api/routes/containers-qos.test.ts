import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeController, invoke, makeContainer } from '../fake-controller.test-helper.js';
import { createApiHandler } from '../server.js';

function setup(): { ctl: FakeController; handler: ReturnType<typeof createApiHandler> } {
  const ctl = new FakeController();
  ctl.containers.push(
    makeContainer({
      name: 'web',
      id: 'f00d' + '1'.repeat(60),
      spec: { cmd: ['sleep', '9'], ingressRate: '10mbit' },
    }),
  );
  return { ctl, handler: createApiHandler(ctl) };
}

describe('container bandwidth limits over the API', () => {
  it('create passes IngressRate and EgressRate to the controller as given', async () => {
    const { handler, ctl } = setup();
    const r = await invoke(handler, 'POST', '/cnm/containers/create', {
      Cmd: ['true'],
      IngressRate: '10mbit',
      EgressRate: 'none',
    });
    assert.equal(r.status, 201);
    const spec = ctl.calls.at(-1)?.args[0] as { ingressRate?: string; egressRate?: string };
    assert.equal(spec.ingressRate, '10mbit');
    assert.equal(spec.egressRate, 'none');
  });

  it('a rate of the wrong type is 400 naming the field, before the controller', async () => {
    const { handler, ctl } = setup();
    const r = await invoke(handler, 'POST', '/cnm/containers/create', {
      Cmd: ['true'],
      IngressRate: 10,
    });
    assert.equal(r.status, 400);
    assert.match(String((r.json() as { message: string }).message), /IngressRate/);
    assert.equal(ctl.calls.filter((c) => c.method === 'createContainer').length, 0);
  });

  it("POST /cnm/containers/{id}/update answers 200 with Docker's Warnings shape", async () => {
    const { handler, ctl } = setup();
    const r = await invoke(handler, 'POST', '/v1.47/cnm/containers/web/update', {
      EgressRate: '5mbit',
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { Warnings: [] });
    assert.deepEqual(ctl.calls.at(-1), {
      method: 'updateContainer',
      args: ['web', { egressRate: '5mbit' }],
    });
    const missing = await invoke(handler, 'POST', '/cnm/containers/ghost/update', {
      EgressRate: '5mbit',
    });
    assert.equal(missing.status, 404);
  });

  it('inspect shows the limits in HostConfig, "" for none', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'GET', '/cnm/containers/web/json');
    const hc = (r.json() as { HostConfig: { IngressRate: string; EgressRate: string } }).HostConfig;
    assert.equal(hc.IngressRate, '10mbit');
    assert.equal(hc.EgressRate, '');
  });
});
