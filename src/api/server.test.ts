import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BugError,
  ConflictError,
  ForbiddenError,
  InvalidError,
  NotFoundError,
  UnavailableError,
  CnmError,
} from '../errors.js';
import { FakeController, invoke, makeNetwork } from './fake-controller.test-helper.js';
import { createApiHandler } from './server.js';

function setup(): {
  ctl: FakeController;
  handler: ReturnType<typeof createApiHandler>;
  logs: string[];
} {
  const ctl = new FakeController();
  const logs: string[] = [];
  const handler = createApiHandler(ctl, { log: (level, msg) => logs.push(`${level} ${msg}`) });
  return { ctl, handler, logs };
}

describe('GET|HEAD /_ping', () => {
  it('GET /_ping answers OK with dockerd headers', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'GET', '/_ping');
    assert.equal(r.status, 200);
    assert.equal(r.text(), 'OK');
    assert.equal(r.headers['api-version'], '1.47');
    assert.equal(r.headers['ostype'], 'linux');
    assert.equal(r.headers['docker-experimental'], 'false');
    assert.equal(r.headers['cache-control'], 'no-cache, no-store, must-revalidate');
    assert.equal(r.headers['pragma'], 'no-cache');
  });

  it('HEAD /_ping has the headers and no body', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'HEAD', '/v1.47/_ping');
    assert.equal(r.status, 200);
    assert.equal(r.headers['api-version'], '1.47');
    assert.equal(r.body.length, 0);
  });
});

describe('version prefix', () => {
  it('accepts unprefixed and /v1.24 to /v1.51 paths', async () => {
    const { handler, ctl } = setup();
    ctl.networks.push(makeNetwork({ name: 'web', id: 'a'.repeat(64) }));
    for (const p of [
      '/networks',
      '/v1.24/networks',
      '/v1.41/networks',
      '/v1.47/networks',
      '/v1.51/networks',
    ]) {
      const r = await invoke(handler, 'GET', p);
      assert.equal(r.status, 200, p);
      assert.equal((r.json() as unknown[]).length, 1);
    }
  });

  it('refuses versions outside the range with dockerd wording', async () => {
    const { handler } = setup();
    const old = await invoke(handler, 'GET', '/v1.23/networks');
    assert.equal(old.status, 400);
    assert.match((old.json() as { message: string }).message, /^client version 1.23 is too old/);
    const fresh = await invoke(handler, 'GET', '/v1.52/networks');
    assert.equal(fresh.status, 400);
    assert.match((fresh.json() as { message: string }).message, /^client version 1.52 is too new/);
  });

  it('every response carries Api-Version', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'GET', '/v1.41/nope');
    assert.equal(r.headers['api-version'], '1.47');
  });
});

describe('routing', () => {
  it('unknown route is 404 page not found', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'GET', '/containers/json');
    assert.equal(r.status, 404);
    assert.deepEqual(r.json(), { message: 'page not found' });
  });

  it('known path with the wrong method is 405 with Allow', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'PUT', '/networks/abc');
    assert.equal(r.status, 405);
    assert.match(r.headers['allow'] ?? '', /GET/);
  });

  it('decodes path params and refuses an encoded slash or NUL', async () => {
    const { handler, ctl } = setup();
    ctl.networks.push(makeNetwork({ name: 'my net', id: 'b'.repeat(64) }));
    assert.equal((await invoke(handler, 'GET', '/networks/my%20net')).status, 200);
    assert.equal((await invoke(handler, 'GET', '/networks/a%2Fb')).status, 400);
    assert.equal((await invoke(handler, 'GET', '/networks/a%00b')).status, 400);
    assert.equal((await invoke(handler, 'GET', '/networks/%E0%A4%A')).status, 400);
    assert.equal(ctl.calls.filter((c) => c.method === 'inspectNetwork').length, 1);
  });
});

describe('error kind → status', () => {
  const cases: [Error, number][] = [
    [new InvalidError('X', 'bad'), 400],
    [new ForbiddenError('X', 'no'), 403],
    [new NotFoundError('X', 'gone'), 404],
    [new ConflictError('X', 'taken'), 409],
    [new UnavailableError('X', 'down'), 503],
    [new CnmError('internal', 'X', 'broke'), 500],
    [new BugError('invariant'), 500],
    [new Error('plain'), 500],
  ];
  for (const [err, status] of cases) {
    it(`${err.name} (${err instanceof CnmError ? err.kind : 'no kind'}) → ${status} with its message`, async () => {
      const { handler, ctl, logs } = setup();
      ctl.failNext = err;
      const r = await invoke(handler, 'DELETE', '/networks/x');
      assert.equal(r.status, status);
      assert.deepEqual(r.json(), { message: err.message });
      assert.equal(
        logs.some((l) => l.startsWith('error')),
        status === 500,
      );
    });
  }
});

describe('GET /version and /info', () => {
  it('/version has Docker’s keys', async () => {
    const { handler } = setup();
    const v = (await invoke(handler, 'GET', '/v1.47/version')).json() as Record<string, unknown>;
    for (const k of [
      'Platform',
      'Components',
      'Version',
      'ApiVersion',
      'MinAPIVersion',
      'GitCommit',
      'GoVersion',
      'Os',
      'Arch',
      'KernelVersion',
      'BuildTime',
    ]) {
      assert.ok(k in v, k);
    }
    assert.equal(v['ApiVersion'], '1.47');
    assert.equal(v['MinAPIVersion'], '1.24');
    assert.equal(v['Arch'], 'amd64');
  });

  it('/info has the fields docker info reads', async () => {
    const { handler } = setup();
    const i = (await invoke(handler, 'GET', '/info')).json() as Record<string, unknown>;
    for (const k of [
      'ID',
      'Name',
      'Containers',
      'ContainersRunning',
      'ContainersStopped',
      'Images',
      'Driver',
      'DockerRootDir',
      'OperatingSystem',
      'OSType',
      'Architecture',
      'NCPU',
      'MemTotal',
      'ServerVersion',
      'KernelVersion',
      'Plugins',
      'Swarm',
    ]) {
      assert.ok(k in i, k);
    }
    assert.deepEqual((i['Plugins'] as { Network: string[] }).Network, ['bridge', 'host', 'none']);
    assert.equal((i['Swarm'] as { LocalNodeState: string }).LocalNodeState, 'inactive');
  });
});
