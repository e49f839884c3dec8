import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeController, invoke, makeNetwork } from '../fake-controller.test-helper.js';
import { MAX_BODY_BYTES } from '../body.js';
import { createApiHandler } from '../server.js';

const NOW = new Date('2024-06-01T00:00:00Z');

function setup(): { ctl: FakeController; handler: ReturnType<typeof createApiHandler> } {
  const ctl = new FakeController();
  ctl.networks.push(
    makeNetwork({ name: 'bridge', id: '1111' + 'a'.repeat(60), predefined: true }),
    makeNetwork({
      name: 'host',
      id: '2222' + 'b'.repeat(60),
      driver: 'host',
      predefined: true,
      ipam: { driver: 'default', options: {}, config: [] },
    }),
    makeNetwork({
      name: 'web-front',
      id: '3333' + 'c'.repeat(60),
      labels: { team: 'a', tier: 'front' },
      containers: {
        ['d'.repeat(64)]: {
          name: 'c1',
          endpointId: 'e'.repeat(64),
          macAddress: '02:42:ac:12:00:02',
          ipv4Address: '172.18.0.2/16',
          ipv6Address: '',
        },
      },
    }),
    makeNetwork({
      name: 'db',
      id: '4444' + 'd'.repeat(60),
      driver: 'macvlan',
      scope: 'local',
      labels: { team: 'b' },
    }),
    makeNetwork({ name: 'ov', id: '5555' + 'e'.repeat(60), driver: 'overlay', scope: 'global' }),
  );
  return { ctl, handler: createApiHandler(ctl, { now: () => NOW }) };
}

async function names(
  handler: ReturnType<typeof createApiHandler>,
  filters: unknown,
): Promise<string[]> {
  const r = await invoke(
    handler,
    'GET',
    `/v1.41/networks?filters=${encodeURIComponent(JSON.stringify(filters))}`,
  );
  assert.equal(r.status, 200, r.text());
  return (r.json() as { Name: string }[]).map((n) => n.Name).sort();
}

describe('GET /networks filters', () => {
  it('map form and list form give the same result', async () => {
    const { handler } = setup();
    assert.deepEqual(await names(handler, { name: { web: true } }), ['web-front']);
    assert.deepEqual(await names(handler, { name: ['web'] }), ['web-front']);
  });

  it('name matches as a substring (unanchored regexp, as dockerd)', async () => {
    const { handler } = setup();
    assert.deepEqual(await names(handler, { name: ['o'] }), ['host', 'ov', 'web-front']);
    assert.deepEqual(await names(handler, { name: ['^b'] }), ['bridge']);
  });

  it('id matches by prefix', async () => {
    const { handler } = setup();
    assert.deepEqual(await names(handler, { id: ['3333'] }), ['web-front']);
    assert.deepEqual(await names(handler, { id: ['cccc'] }), []);
  });

  it('driver and scope match exactly', async () => {
    const { handler } = setup();
    assert.deepEqual(await names(handler, { driver: ['macvlan', 'host'] }), ['db', 'host']);
    assert.deepEqual(await names(handler, { scope: ['global'] }), ['ov']);
  });

  it('label matches key or key=value, all of them', async () => {
    const { handler } = setup();
    assert.deepEqual(await names(handler, { label: ['team'] }), ['db', 'web-front']);
    assert.deepEqual(await names(handler, { label: ['team=a'] }), ['web-front']);
    assert.deepEqual(await names(handler, { label: ['team=a', 'tier=back'] }), []);
  });

  it('type splits builtin from custom', async () => {
    const { handler } = setup();
    assert.deepEqual(await names(handler, { type: ['builtin'] }), ['bridge', 'host']);
    assert.deepEqual(await names(handler, { type: ['custom'] }), ['db', 'ov', 'web-front']);
  });

  it('dangling selects unused custom networks', async () => {
    const { handler } = setup();
    assert.deepEqual(await names(handler, { dangling: ['true'] }), ['db', 'ov']);
    assert.deepEqual(await names(handler, { dangling: { '0': true } }), [
      'bridge',
      'host',
      'web-front',
    ]);
  });

  it('keys combine with AND', async () => {
    const { handler } = setup();
    assert.deepEqual(await names(handler, { label: ['team'], driver: ['bridge'] }), ['web-front']);
  });

  it('refuses an unknown key with dockerd wording, and bad values', async () => {
    const { handler } = setup();
    const r = await invoke(
      handler,
      'GET',
      `/networks?filters=${encodeURIComponent('{"colour":["x"]}')}`,
    );
    assert.equal(r.status, 400);
    assert.deepEqual(r.json(), { message: "invalid filter 'colour'" });
    for (const f of [
      { type: ['odd'] },
      { dangling: ['maybe'] },
      { name: 'x' },
      { name: [1] },
      { name: { x: 'yes' } },
    ]) {
      const bad = await invoke(
        handler,
        'GET',
        `/networks?filters=${encodeURIComponent(JSON.stringify(f))}`,
      );
      assert.equal(bad.status, 400, JSON.stringify(f));
    }
    assert.equal((await invoke(handler, 'GET', '/networks?filters=%7Bnot-json')).status, 400);
  });

  it('the list form leaves Containers empty as dockerd does', async () => {
    const { handler } = setup();
    const r = (await invoke(handler, 'GET', '/networks')).json() as {
      Name: string;
      Containers: object;
    }[];
    assert.deepEqual(r.find((n) => n.Name === 'web-front')?.Containers, {});
  });
});

describe('GET /networks/{id}', () => {
  it('has exactly Docker’s keys in Docker’s order', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'GET', '/v1.47/networks/web-front?verbose=false');
    assert.equal(r.status, 200);
    const n = r.json() as Record<string, unknown>;
    assert.deepEqual(Object.keys(n), [
      'Name',
      'Id',
      'Created',
      'Scope',
      'Driver',
      'EnableIPv4',
      'EnableIPv6',
      'IPAM',
      'Internal',
      'Attachable',
      'Ingress',
      'ConfigFrom',
      'ConfigOnly',
      'Containers',
      'Options',
      'Labels',
    ]);
    assert.deepEqual(n['IPAM'], {
      Driver: 'default',
      Options: {},
      Config: [{ Subnet: '172.18.0.0/16', Gateway: '172.18.0.1' }],
    });
    assert.deepEqual(n['ConfigFrom'], { Network: '' });
    assert.deepEqual(n['Containers'], {
      ['d'.repeat(64)]: {
        Name: 'c1',
        EndpointID: 'e'.repeat(64),
        MacAddress: '02:42:ac:12:00:02',
        IPv4Address: '172.18.0.2/16',
        IPv6Address: '',
      },
    });
  });

  it('scope must match, and must be a known scope', async () => {
    const { handler } = setup();
    assert.equal((await invoke(handler, 'GET', '/networks/web-front?scope=local')).status, 200);
    const r = await invoke(handler, 'GET', '/networks/web-front?scope=global');
    assert.equal(r.status, 404);
    assert.deepEqual(r.json(), { message: 'network web-front not found' });
    assert.equal((await invoke(handler, 'GET', '/networks/web-front?scope=moon')).status, 400);
    assert.equal((await invoke(handler, 'GET', '/networks/web-front?verbose=perhaps')).status, 400);
  });

  it('not found is 404 with the controller message', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'GET', '/networks/nope');
    assert.equal(r.status, 404);
    assert.deepEqual(r.json(), { message: 'network nope not found' });
  });
});

describe('POST /networks/create', () => {
  const full = {
    Name: 'n1',
    Driver: 'bridge',
    Scope: 'local',
    Internal: true,
    Attachable: true,
    Ingress: false,
    ConfigOnly: false,
    ConfigFrom: { Network: 'cfg' },
    EnableIPv4: true,
    EnableIPv6: true,
    IPAM: {
      Driver: 'default',
      Config: [
        {
          Subnet: '10.1.0.0/24',
          IPRange: '10.1.0.128/25',
          Gateway: '10.1.0.1',
          AuxiliaryAddresses: { r: '10.1.0.2' },
        },
      ],
      Options: { o: '1' },
    },
    Options: { 'com.docker.network.bridge.name': 'br-n1' },
    Labels: { a: 'b' },
    CheckDuplicate: true,
  };

  it('maps every field to the controller request and answers 201', async () => {
    const { handler, ctl } = setup();
    const r = await invoke(handler, 'POST', '/v1.47/networks/create', full);
    assert.equal(r.status, 201);
    const body = r.json() as { Id: string; Warning: string };
    assert.equal(body.Warning, '');
    assert.match(body.Id, /^[0-9a-f]{64}$/);
    assert.deepEqual(ctl.calls.at(-1), {
      method: 'createNetwork',
      args: [
        {
          name: 'n1',
          driver: 'bridge',
          scope: 'local',
          internal: true,
          attachable: true,
          ingress: false,
          configOnly: false,
          enableIPv4: true,
          enableIPv6: true,
          configFrom: 'cfg',
          options: { 'com.docker.network.bridge.name': 'br-n1' },
          labels: { a: 'b' },
          ipam: {
            driver: 'default',
            options: { o: '1' },
            config: [
              {
                subnet: '10.1.0.0/24',
                ipRange: '10.1.0.128/25',
                gateway: '10.1.0.1',
                auxAddresses: { r: '10.1.0.2' },
              },
            ],
          },
        },
      ],
    });
  });

  it('reads null and "" as unset, and keys case-insensitively', async () => {
    const { handler, ctl } = setup();
    const r = await invoke(handler, 'POST', '/networks/create', {
      name: 'n2',
      Driver: '',
      Labels: null,
      EnableIPv6: null,
      IPAM: {
        Driver: '',
        Config: [{ Subnet: '10.2.0.0/24', Gateway: '', IPRange: '' }],
        Options: null,
      },
      ConfigFrom: null,
    });
    assert.equal(r.status, 201, r.text());
    assert.deepEqual(ctl.calls.at(-1)?.args[0], {
      name: 'n2',
      ipam: { config: [{ subnet: '10.2.0.0/24' }] },
    });
  });

  const wrong: [string, unknown, string][] = [
    ['Name', 5, 'Name'],
    ['Driver', true, 'Driver'],
    ['Scope', 1, 'Scope'],
    ['Internal', 'yes', 'Internal'],
    ['Attachable', 1, 'Attachable'],
    ['Ingress', 'no', 'Ingress'],
    ['ConfigOnly', 0, 'ConfigOnly'],
    ['ConfigFrom', 'cfg', 'ConfigFrom'],
    ['ConfigFrom', { Network: 3 }, 'ConfigFrom.Network'],
    ['EnableIPv4', 'true', 'EnableIPv4'],
    ['EnableIPv6', 1, 'EnableIPv6'],
    ['IPAM', [], 'IPAM'],
    ['IPAM', { Driver: 1 }, 'IPAM.Driver'],
    ['IPAM', { Config: {} }, 'IPAM.Config'],
    ['IPAM', { Config: ['10.0.0.0/8'] }, 'IPAM.Config[0]'],
    ['IPAM', { Config: [{ Subnet: 10 }] }, 'IPAM.Config[0].Subnet'],
    ['IPAM', { Config: [{}] }, 'IPAM.Config[0].Subnet'],
    ['IPAM', { Config: [{ Subnet: '10.0.0.0/8', IPRange: 1 }] }, 'IPAM.Config[0].IPRange'],
    ['IPAM', { Config: [{ Subnet: '10.0.0.0/8', Gateway: false }] }, 'IPAM.Config[0].Gateway'],
    [
      'IPAM',
      { Config: [{ Subnet: '10.0.0.0/8', AuxiliaryAddresses: { a: 1 } }] },
      'IPAM.Config[0].AuxiliaryAddresses.a',
    ],
    ['IPAM', { Options: { a: 1 } }, 'IPAM.Options.a'],
    ['Options', { mtu: 1500 }, 'Options.mtu'],
    ['Options', ['a'], 'Options'],
    ['Labels', { a: null }, 'Labels.a'],
    ['CheckDuplicate', 'yes', 'CheckDuplicate'],
  ];
  for (const [field, value, named] of wrong) {
    it(`${field}=${JSON.stringify(value)} → 400 naming "${named}"`, async () => {
      const { handler, ctl } = setup();
      const r = await invoke(handler, 'POST', '/networks/create', { Name: 'n', [field]: value });
      assert.equal(r.status, 400, r.text());
      assert.match(
        (r.json() as { message: string }).message,
        new RegExp(`^Invalid field "${named.replace(/[[\].]/g, '\\$&')}"`),
      );
      assert.equal(ctl.calls.filter((c) => c.method === 'createNetwork').length, 0);
    });
  }

  it('missing or empty Name → 400', async () => {
    const { handler } = setup();
    assert.equal((await invoke(handler, 'POST', '/networks/create', {})).status, 400);
    assert.equal((await invoke(handler, 'POST', '/networks/create', { Name: '' })).status, 400);
    assert.equal((await invoke(handler, 'POST', '/networks/create')).status, 400);
  });

  it('invalid JSON → 400 saying so; a non-object body → 400', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'POST', '/networks/create', '{"Name": ');
    assert.equal(r.status, 400);
    assert.match((r.json() as { message: string }).message, /^Invalid JSON in request body/);
    const arr = await invoke(handler, 'POST', '/networks/create', '[1]');
    assert.equal(arr.status, 400);
    assert.match((arr.json() as { message: string }).message, /expected a JSON object/);
  });

  it('a body over 1 MiB → 413, by Content-Length or by streaming', async () => {
    const { handler, ctl } = setup();
    const huge = JSON.stringify({ Name: 'n', Labels: { x: 'y'.repeat(MAX_BODY_BYTES) } });
    const r = await invoke(handler, 'POST', '/networks/create', huge);
    assert.equal(r.status, 413);
    const lying = await invoke(handler, 'POST', '/networks/create', huge, {
      'content-length': '10',
    });
    assert.equal(lying.status, 413);
    assert.equal(ctl.calls.filter((c) => c.method === 'createNetwork').length, 0);
  });

  it('a duplicate name is 409 with dockerd wording', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'POST', '/networks/create', { Name: 'db' });
    assert.equal(r.status, 409);
    assert.deepEqual(r.json(), { message: 'network with name db already exists' });
  });
});

describe('connect, disconnect, remove, prune', () => {
  it('connect maps EndpointConfig and ignores the CLI’s zero values', async () => {
    const { handler, ctl } = setup();
    const r = await invoke(handler, 'POST', '/v1.47/networks/db/connect', {
      Container: 'c1',
      EndpointConfig: {
        IPAMConfig: { IPv4Address: '10.0.0.5', IPv6Address: '', LinkLocalIPs: null },
        Links: null,
        Aliases: ['x'],
        MacAddress: '',
        DriverOpts: null,
        NetworkID: '',
        IPPrefixLen: 0,
      },
    });
    assert.equal(r.status, 200, r.text());
    assert.deepEqual(ctl.calls.at(-1), {
      method: 'connect',
      args: ['db', 'c1', { ipv4: '10.0.0.5', aliases: ['x'] }],
    });
  });

  it('connect refuses links, link-local IPs and gateway priorities instead of ignoring them', async () => {
    const { handler, ctl } = setup();
    const before = ctl.calls.length;
    for (const [cfg, re] of [
      [{ Links: ['a:b'] }, /EndpointConfig\.Links.*legacy links/],
      [{ IPAMConfig: { LinkLocalIPs: ['169.254.1.1'] } }, /LinkLocalIPs.*link-local/],
      [{ GwPriority: 5 }, /GwPriority.*gateway priorities/],
      [{ GwPriority: 'high' }, /GwPriority.*expected a number/],
    ] as const) {
      const r = await invoke(handler, 'POST', '/v1.47/networks/db/connect', {
        Container: 'c1',
        EndpointConfig: cfg,
      });
      assert.equal(r.status, 400, r.text());
      assert.match(r.text(), re);
    }
    assert.equal(ctl.calls.length, before, 'the controller saw none of them');
    const zero = await invoke(handler, 'POST', '/v1.47/networks/db/connect', {
      Container: 'c1',
      EndpointConfig: { GwPriority: 0, Links: [], IPAMConfig: { LinkLocalIPs: [] } },
    });
    assert.equal(zero.status, 200, zero.text());
  });

  it('connect validates Container and EndpointConfig types', async () => {
    const { handler } = setup();
    for (const body of [
      {},
      { Container: 1 },
      { Container: 'c', EndpointConfig: { Aliases: 'x' } },
      { Container: 'c', EndpointConfig: { IPAMConfig: { IPv4Address: 4 } } },
    ]) {
      assert.equal(
        (await invoke(handler, 'POST', '/networks/db/connect', body)).status,
        400,
        JSON.stringify(body),
      );
    }
  });

  it('disconnect passes Force', async () => {
    const { handler, ctl } = setup();
    const r = await invoke(handler, 'POST', '/networks/db/disconnect', {
      Container: 'c1',
      Force: true,
    });
    assert.equal(r.status, 200);
    assert.deepEqual(ctl.calls.at(-1), {
      method: 'disconnect',
      args: ['db', 'c1', { force: true }],
    });
    assert.equal(
      (await invoke(handler, 'POST', '/networks/db/disconnect', { Container: 'c1', Force: 'y' }))
        .status,
      400,
    );
  });

  it('DELETE → 204', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'DELETE', '/networks/db');
    assert.equal(r.status, 204);
    assert.equal((await invoke(handler, 'DELETE', '/networks/db')).status, 404);
  });

  it('prune parses label, label! and until in every form', async () => {
    const { handler, ctl } = setup();
    const f = { label: ['a=b'], 'label!': ['keep'], until: ['24h'] };
    const r = await invoke(
      handler,
      'POST',
      `/networks/prune?filters=${encodeURIComponent(JSON.stringify(f))}`,
    );
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { NetworksDeleted: ['old1'] });
    assert.deepEqual(ctl.calls.at(-1)?.args[0], {
      label: ['a=b'],
      labelNot: ['keep'],
      until: new Date(NOW.getTime() - 24 * 3600_000),
    });
    for (const [until, expected] of [
      ['2024-01-01T00:00:00Z', '2024-01-01T00:00:00.000Z'],
      ['1700000000', '2023-11-14T22:13:20.000Z'],
      ['1h30m', '2024-05-31T22:30:00.000Z'],
    ] as [string, string][]) {
      await invoke(
        handler,
        'POST',
        `/networks/prune?filters=${encodeURIComponent(JSON.stringify({ until: { [until]: true } }))}`,
      );
      assert.equal((ctl.calls.at(-1)?.args[0] as { until: Date }).until.toISOString(), expected);
    }
    for (const bad of [{ until: ['soon'] }, { until: ['1h', '2h'] }, { driver: ['x'] }]) {
      const b = await invoke(
        handler,
        'POST',
        `/networks/prune?filters=${encodeURIComponent(JSON.stringify(bad))}`,
      );
      assert.equal(b.status, 400, JSON.stringify(bad));
    }
  });
});
