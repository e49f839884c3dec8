import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliError } from '../client.js';
import { runCreateRequest } from './run.js';
import { updateRequest } from './update.js';

describe('bandwidth flags → requests', () => {
  it('run --ingress-rate/--egress-rate go into the create body as given', () => {
    const r = runCreateRequest(['true'], { ingressRate: '10mbit', egressRate: '5mbit' }, {});
    const body = r.body as { IngressRate?: string; EgressRate?: string };
    assert.equal(body.IngressRate, '10mbit');
    assert.equal(body.EgressRate, '5mbit');
    const plain = runCreateRequest(['true'], {}, {}).body as Record<string, unknown>;
    assert.equal('IngressRate' in plain, false, 'absent when not given');
  });

  it('update sends only the given rates, to the container by name', () => {
    assert.deepEqual(updateRequest('web', { egressRate: 'none' }), {
      method: 'POST',
      path: '/cnm/containers/web/update',
      body: { EgressRate: 'none' },
    });
    assert.deepEqual(updateRequest('a/b', { ingressRate: '1mbit', egressRate: '2mbit' }).body, {
      IngressRate: '1mbit',
      EgressRate: '2mbit',
    });
    assert.equal(
      updateRequest('a/b', { ingressRate: '1mbit' }).path,
      '/cnm/containers/a%2Fb/update',
    );
    assert.throws(() => updateRequest('web', {}), CliError);
  });
});
