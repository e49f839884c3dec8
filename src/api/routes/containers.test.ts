import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FakeController, invoke, makeContainer } from '../fake-controller.test-helper.js';
import { createApiHandler } from '../server.js';

const NOW = new Date('2024-01-02T03:14:06Z');

function setup(): { ctl: FakeController; handler: ReturnType<typeof createApiHandler> } {
  const ctl = new FakeController();
  ctl.containers.push(
    makeContainer({
      name: 'web',
      id: 'f00d' + '1'.repeat(60),
      spec: {
        cmd: ['nginx', '-g', 'daemon off;'],
        labels: { app: 'web' },
        ports: ['8080:80', '127.0.0.1::53/udp'],
        networks: [{ name: 'front', ipv4: '172.18.0.5' }],
      },
      networks: {
        front: {
          networkId: 'n'.repeat(64),
          endpointId: 'e'.repeat(64),
          ipAddress: '172.18.0.5',
          ipPrefixLen: 16,
          gateway: '172.18.0.1',
          ipv6Address: '',
          ipv6PrefixLen: 0,
          ipv6Gateway: '',
          macAddress: '02:42:ac:12:00:05',
          aliases: ['w'],
          dnsNames: ['web', 'f00d11111111'],
        },
      },
      ports: [
        { hostIp: '', hostPort: 8080, containerPort: 80, proto: 'tcp' },
        { hostIp: '127.0.0.1', hostPort: 40000, containerPort: 53, proto: 'udp' },
      ],
    }),
    makeContainer({
      name: 'done',
      id: 'beef' + '2'.repeat(60),
      state: {
        status: 'exited',
        running: false,
        pid: 0,
        exitCode: 3,
        startedAt: '2024-01-02T03:04:06Z',
        finishedAt: '2024-01-02T03:09:06Z',
        error: '',
      },
    }),
  );
  return { ctl, handler: createApiHandler(ctl, { now: () => NOW, logPollMs: 5 }) };
}

describe('POST /cnm/containers/create', () => {
  it('maps the PascalCase spec and answers 201 with the inspect JSON', async () => {
    const { handler, ctl } = setup();
    const r = await invoke(handler, 'POST', '/v1.47/cnm/containers/create', {
      Name: 'x',
      Cmd: ['sh', '-c', 'echo hi'],
      Env: ['A=1'],
      WorkingDir: '/tmp',
      Hostname: 'hx',
      Labels: { l: 'v' },
      Networks: [
        {
          Name: 'front',
          IPv4Address: '172.18.0.9',
          IPv6Address: '',
          MacAddress: '02:00:00:00:00:01',
          Aliases: ['a'],
          DriverOpts: { k: 'v' },
        },
      ],
      Ports: ['80'],
      Dns: ['1.1.1.1'],
      DnsSearch: ['example.com'],
      DnsOptions: ['ndots:2'],
      Sysctls: { 'net.ipv4.ip_forward': '1' },
      AutoRemove: true,
    });
    assert.equal(r.status, 201, r.text());
    assert.equal((r.json() as { Name: string }).Name, '/x');
    assert.deepEqual(ctl.calls.at(-1)?.args[0], {
      name: 'x',
      cmd: ['sh', '-c', 'echo hi'],
      env: ['A=1'],
      workingDir: '/tmp',
      hostname: 'hx',
      labels: { l: 'v' },
      networks: [
        {
          name: 'front',
          ipv4: '172.18.0.9',
          mac: '02:00:00:00:00:01',
          aliases: ['a'],
          driverOpts: { k: 'v' },
        },
      ],
      ports: ['80'],
      dns: ['1.1.1.1'],
      dnsSearch: ['example.com'],
      dnsOptions: ['ndots:2'],
      sysctls: { 'net.ipv4.ip_forward': '1' },
      autoRemove: true,
    });
  });

  const wrong: [Record<string, unknown>, string][] = [
    [{}, 'Cmd'],
    [{ Cmd: [] }, 'Cmd'],
    [{ Cmd: 'ls' }, 'Cmd'],
    [{ Cmd: ['ls', 1] }, 'Cmd[1]'],
    [{ Cmd: ['ls'], Name: 1 }, 'Name'],
    [{ Cmd: ['ls'], Env: 'A=1' }, 'Env'],
    [{ Cmd: ['ls'], Networks: [{}] }, 'Networks[0].Name'],
    [{ Cmd: ['ls'], Networks: [{ Name: 'n', Aliases: 'a' }] }, 'Networks[0].Aliases'],
    [{ Cmd: ['ls'], Ports: [80] }, 'Ports[0]'],
    [{ Cmd: ['ls'], Sysctls: { a: 1 } }, 'Sysctls.a'],
    [{ Cmd: ['ls'], AutoRemove: 'yes' }, 'AutoRemove'],
    [{ Cmd: ['ls'], Labels: [] }, 'Labels'],
  ];
  for (const [body, named] of wrong) {
    it(`${JSON.stringify(body)} → 400 naming "${named}"`, async () => {
      const { handler, ctl } = setup();
      const r = await invoke(handler, 'POST', '/cnm/containers/create', body);
      assert.equal(r.status, 400);
      assert.ok(
        (r.json() as { message: string }).message.startsWith(`Invalid field "${named}"`),
        r.text(),
      );
      assert.equal(ctl.calls.filter((c) => c.method === 'createContainer').length, 0);
    });
  }
});

describe('GET /cnm/containers/{id}/json', () => {
  it('has Docker’s container inspect shape', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'GET', '/cnm/containers/web/json');
    assert.equal(r.status, 200);
    const c = r.json() as Record<string, any>;
    for (const k of [
      'Id',
      'Name',
      'Created',
      'Path',
      'Args',
      'State',
      'HostnamePath',
      'HostsPath',
      'ResolvConfPath',
      'LogPath',
      'Config',
      'HostConfig',
      'NetworkSettings',
    ]) {
      assert.ok(k in c, k);
    }
    assert.equal(c['Name'], '/web');
    assert.equal(c['Path'], 'nginx');
    assert.deepEqual(c['Args'], ['-g', 'daemon off;']);
    assert.deepEqual(Object.keys(c['State']), [
      'Status',
      'Running',
      'Paused',
      'Restarting',
      'OOMKilled',
      'Dead',
      'Pid',
      'ExitCode',
      'Error',
      'StartedAt',
      'FinishedAt',
    ]);
    assert.equal(c['State'].Pid, 4242);
    assert.equal(c['State'].FinishedAt, '0001-01-01T00:00:00Z');
    assert.deepEqual(c['HostConfig'].PortBindings, {
      '80/tcp': [{ HostIp: '', HostPort: '8080' }],
      '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }],
    });
    assert.deepEqual(c['NetworkSettings'].Ports, {
      '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }],
      '53/udp': [{ HostIp: '127.0.0.1', HostPort: '40000' }],
    });
    assert.equal(c['NetworkSettings'].SandboxKey, '/run/cnm/netns/f00d11111111');
    const net = c['NetworkSettings'].Networks.front;
    for (const k of [
      'NetworkID',
      'EndpointID',
      'Gateway',
      'IPAddress',
      'IPPrefixLen',
      'IPv6Gateway',
      'GlobalIPv6Address',
      'GlobalIPv6PrefixLen',
      'MacAddress',
      'Aliases',
      'DNSNames',
    ]) {
      assert.ok(k in net, k);
    }
    assert.deepEqual(net.IPAMConfig, { IPv4Address: '172.18.0.5' });
  });

  it('unknown container → 404 No such container', async () => {
    const { handler } = setup();
    const r = await invoke(handler, 'GET', '/cnm/containers/ghost/json');
    assert.equal(r.status, 404);
    assert.deepEqual(r.json(), { message: 'No such container: ghost' });
  });
});

describe('GET /cnm/containers/json', () => {
  it('lists running by default, all with all=1, with human status', async () => {
    const { handler } = setup();
    const running = (await invoke(handler, 'GET', '/cnm/containers/json')).json() as {
      Names: string[];
      Status: string;
    }[];
    assert.deepEqual(
      running.map((c) => c.Names[0]),
      ['/web'],
    );
    assert.equal(running[0]?.Status, 'Up 10 minutes');
    const all = (await invoke(handler, 'GET', '/cnm/containers/json?all=1')).json() as {
      Status: string;
    }[];
    assert.equal(all[1]?.Status, 'Exited (3) 5 minutes ago');
  });

  it('filters by name, id, label, status, network', async () => {
    const { handler } = setup();
    const q = async (f: unknown): Promise<string[]> =>
      (
        (
          await invoke(
            handler,
            'GET',
            `/cnm/containers/json?all=true&filters=${encodeURIComponent(JSON.stringify(f))}`,
          )
        ).json() as { Names: string[] }[]
      ).map((c) => c.Names[0] ?? '');
    assert.deepEqual(await q({ name: ['do'] }), ['/done']);
    assert.deepEqual(await q({ id: ['beef'] }), ['/done']);
    assert.deepEqual(await q({ label: ['app=web'] }), ['/web']);
    assert.deepEqual(await q({ status: { exited: true } }), ['/done']);
    assert.deepEqual(await q({ network: ['front'] }), ['/web']);
    const bad = await invoke(
      handler,
      'GET',
      `/cnm/containers/json?filters=${encodeURIComponent('{"status":["asleep"]}')}`,
    );
    assert.equal(bad.status, 400);
    assert.equal((await invoke(handler, 'GET', '/cnm/containers/json?all=maybe')).status, 400);
  });
});

describe('start, stop, remove, wait', () => {
  it('start/stop/remove answer 204 and pass their options', async () => {
    const { handler, ctl } = setup();
    assert.equal((await invoke(handler, 'POST', '/cnm/containers/web/start')).status, 204);
    assert.equal((await invoke(handler, 'POST', '/cnm/containers/web/stop?t=3')).status, 204);
    assert.deepEqual(ctl.calls.at(-1), {
      method: 'stopContainer',
      args: ['web', { timeoutSec: 3 }],
    });
    assert.equal((await invoke(handler, 'POST', '/cnm/containers/web/stop?t=-1')).status, 400);
    assert.equal((await invoke(handler, 'DELETE', '/cnm/containers/web?force=1')).status, 204);
    assert.deepEqual(ctl.calls.at(-1), {
      method: 'removeContainer',
      args: ['web', { force: true }],
    });
  });

  it('wait returns the StatusCode; unknown container is a plain 404', async () => {
    const { handler, ctl } = setup();
    ctl.waitCode = 7;
    const r = await invoke(handler, 'POST', '/cnm/containers/web/wait');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { StatusCode: 7 });
    assert.equal((await invoke(handler, 'POST', '/cnm/containers/ghost/wait')).status, 404);
  });
});

describe('GET /cnm/containers/{id}/logs', () => {
  it('streams the file, and with follow keeps reading until the container stops', async () => {
    const { handler, ctl } = setup();
    const dir = await mkdtemp(join(tmpdir(), 'cnm-api-logs-'));
    try {
      const logPath = join(dir, 'log');
      await writeFile(logPath, 'one\n');
      const web = ctl.containers[0]!;
      web.logPath = logPath;
      const plain = await invoke(handler, 'GET', '/cnm/containers/web/logs');
      assert.equal(plain.text(), 'one\n');
      const followed = invoke(handler, 'GET', '/cnm/containers/web/logs?follow=1');
      await new Promise((r) => setTimeout(r, 20));
      await appendFile(logPath, 'two\n');
      await new Promise((r) => setTimeout(r, 20));
      await appendFile(logPath, 'three\n'); // written before the process exits
      web.state = { ...web.state, status: 'exited', running: false, exitCode: 0 };
      assert.equal((await followed).text(), 'one\ntwo\nthree\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('POST /cnm/containers/{id}/exec', () => {
  it('frames stdout (1) and stderr (2), then the exit code in a type-3 frame', async () => {
    const { handler, ctl } = setup();
    ctl.execScript = { stdout: ['hello\n'], stderr: ['oops'], code: 42 };
    const r = await invoke(handler, 'POST', '/cnm/containers/web/exec', {
      Cmd: ['sh', '-c', 'x'],
      Env: ['A=1'],
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/vnd.docker.multiplexed-stream');
    const frames: { stream: number; payload: Buffer }[] = [];
    let off = 0;
    while (off < r.body.length) {
      const len = r.body.readUInt32BE(off + 4);
      assert.deepEqual([...r.body.subarray(off + 1, off + 4)], [0, 0, 0]);
      frames.push({ stream: r.body[off]!, payload: r.body.subarray(off + 8, off + 8 + len) });
      off += 8 + len;
    }
    assert.deepEqual(
      frames
        .filter((f) => f.stream !== 3)
        .map((f) => [f.stream, f.payload.toString()])
        .sort(),
      [
        [1, 'hello\n'],
        [2, 'oops'],
      ],
    );
    const last = frames.at(-1)!;
    assert.equal(last.stream, 3);
    assert.equal(last.payload.length, 4);
    assert.equal(last.payload.readInt32BE(0), 42);
    assert.deepEqual(ctl.calls.at(-1), {
      method: 'execContainer',
      args: ['web', ['sh', '-c', 'x'], { env: ['A=1'] }],
    });
  });

  it('refuses a missing or mistyped Cmd before calling the controller', async () => {
    const { handler, ctl } = setup();
    for (const body of [{}, { Cmd: 'ls' }, { Cmd: ['ls'], Env: [1] }]) {
      assert.equal((await invoke(handler, 'POST', '/cnm/containers/web/exec', body)).status, 400);
    }
    assert.equal(ctl.calls.filter((c) => c.method === 'execContainer').length, 0);
  });
});
