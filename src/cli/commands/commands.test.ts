import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { CliError, requestPath } from '../client.js';
import { filtersQuery, parseKeyValues } from '../options.js';
import { demuxExec, execRequest } from './exec.js';
import { ipamConfig, networkCreateRequest } from './network-create.js';
import { networkConnectRequest } from './network-connect.js';
import { networkDisconnectRequest } from './network-disconnect.js';
import { networkInspectRequest } from './network-inspect.js';
import { networkLsRequest, renderNetworkList } from './network-ls.js';
import { networkPruneRequest } from './network-prune.js';
import { networkRmRequest } from './network-rm.js';
import { portsText, psRequest } from './ps.js';
import { containerRequests, runCreateRequest } from './run.js';
import { stopRequest } from './stop.js';

describe('network create → request', () => {
  it('networkCreateRequest() maps every flag to Docker’s body', () => {
    const r = networkCreateRequest('n1', {
      driver: 'bridge',
      subnet: ['10.1.0.0/24', 'fd00::/64'],
      gateway: ['fd00::1', '10.1.0.1'],
      ipRange: ['10.1.0.128/25'],
      auxAddress: ['router=10.1.0.2'],
      ipv6: true,
      internal: true,
      attachable: true,
      opt: ['com.docker.network.bridge.name=br1'],
      label: ['team=a', 'flag'],
      ipamDriver: 'default',
      ipamOpt: ['x=y'],
      scope: 'local',
      configOnly: false,
      configFrom: 'base',
    });
    assert.equal(r.method, 'POST');
    assert.equal(r.path, '/networks/create');
    assert.deepEqual(r.body, {
      Name: 'n1',
      Driver: 'bridge',
      Scope: 'local',
      EnableIPv6: true,
      IPAM: {
        Driver: 'default',
        Config: [
          {
            Subnet: '10.1.0.0/24',
            IPRange: '10.1.0.128/25',
            Gateway: '10.1.0.1',
            AuxiliaryAddresses: { router: '10.1.0.2' },
          },
          { Subnet: 'fd00::/64', Gateway: 'fd00::1' },
        ],
        Options: { x: 'y' },
      },
      Internal: true,
      Attachable: true,
      Ingress: false,
      ConfigOnly: false,
      ConfigFrom: { Network: 'base' },
      Options: { 'com.docker.network.bridge.name': 'br1' },
      Labels: { team: 'a', flag: '' },
    });
  });

  it('ipamConfig() refuses what the docker CLI refuses, with its wording', () => {
    assert.throws(
      () => ipamConfig({ gateway: ['10.0.0.1'] }),
      /every ip-range or gateway must have a corresponding subnet/,
    );
    assert.throws(
      () => ipamConfig({ subnet: ['10.0.0.0/24'], gateway: ['10.9.0.1'] }),
      /no matching subnet for gateway 10.9.0.1/,
    );
    assert.throws(() => ipamConfig({ subnet: ['10.0.0.0/16', '10.0.1.0/24'] }), /overlapping/);
    assert.throws(
      () => ipamConfig({ subnet: ['10.0.0.0/24'], auxAddress: ['a=10.1.0.1'] }),
      /no matching subnet for aux-address/,
    );
    assert.throws(() => ipamConfig({ subnet: ['banana'], gateway: ['10.0.0.1'] }), CliError);
  });
});

describe('network subcommands → request', () => {
  it('ls turns -f flags into the map-form filters', () => {
    const r = networkLsRequest({ filter: ['driver=bridge', 'label=a=b', 'driver=macvlan'] });
    assert.deepEqual(JSON.parse(r.query?.['filters'] ?? ''), {
      driver: { bridge: true, macvlan: true },
      label: { 'a=b': true },
    });
    assert.equal(networkLsRequest({}).query?.['filters'], undefined);
    assert.throws(() => filtersQuery(['nokey']), CliError);
  });

  it('inspect, rm, prune, connect, disconnect build the right calls', () => {
    assert.deepEqual(networkInspectRequest('a b', { verbose: true }), {
      method: 'GET',
      path: '/networks/a%20b',
      query: { verbose: 'true' },
    });
    assert.deepEqual(networkRmRequest('web'), { method: 'DELETE', path: '/networks/web' });
    assert.deepEqual(
      JSON.parse(networkPruneRequest({ filter: ['until=24h'] }).query?.['filters'] ?? ''),
      { until: { '24h': true } },
    );
    assert.deepEqual(
      networkConnectRequest('net', 'c1', { ip: '10.0.0.5', alias: ['db'], driverOpt: ['k=v'] })
        .body,
      {
        Container: 'c1',
        EndpointConfig: {
          IPAMConfig: { IPv4Address: '10.0.0.5' },
          Aliases: ['db'],
          DriverOpts: { k: 'v' },
        },
      },
    );
    assert.deepEqual(networkConnectRequest('net', 'c1', {}).body, {
      Container: 'c1',
      EndpointConfig: {},
    });
    assert.deepEqual(networkDisconnectRequest('net', 'c1', { force: true }), {
      method: 'POST',
      path: '/networks/net/disconnect',
      body: { Container: 'c1', Force: true },
    });
  });

  it('ls renders the default table sorted by name, with 12-char ids', () => {
    const mk = (Name: string, Id: string) =>
      ({
        Name,
        Id,
        Driver: 'bridge',
        Scope: 'local',
        EnableIPv6: false,
        Internal: false,
        Labels: {},
        Created: '2024-01-01T00:00:00Z',
      }) as never;
    const text = renderNetworkList([mk('zeta', 'f'.repeat(64)), mk('alpha', '0'.repeat(64))], {});
    assert.equal(
      text,
      'NETWORK ID     NAME      DRIVER    SCOPE\n000000000000   alpha     bridge    local\nffffffffffff   zeta      bridge    local\n',
    );
    assert.equal(
      renderNetworkList([mk('a', '1'.repeat(64))], { quiet: true }),
      `${'1'.repeat(12)}\n`,
    );
  });
});

describe('run → request', () => {
  it('first-network flags go to the first --network; the rest join plainly', () => {
    const r = runCreateRequest(
      ['sh', '-c', 'echo hi'],
      {
        name: 'c1',
        network: ['front'],
        net: ['back'],
        ip: '10.0.0.9',
        ip6: 'fd00::9',
        macAddress: '02:00:00:00:00:09',
        networkAlias: ['web'],
        alias: ['www'],
        hostname: 'h1',
        sysctl: ['net.ipv4.ip_forward=1'],
        dns: ['1.1.1.1'],
        dnsSearch: ['example.com'],
        dnsOpt: ['ndots:1'],
        dnsOption: ['timeout:2'],
        label: ['a=b'],
        publish: ['8080:80'],
        env: ['A=1', 'FROM_CLI', 'UNSET'],
        workdir: '/tmp',
        rm: true,
      },
      { FROM_CLI: 'yes' },
    );
    assert.deepEqual(r.body, {
      Name: 'c1',
      Cmd: ['sh', '-c', 'echo hi'],
      Env: ['A=1', 'FROM_CLI=yes'],
      WorkingDir: '/tmp',
      Hostname: 'h1',
      Labels: { a: 'b' },
      Networks: [
        {
          Name: 'front',
          IPv4Address: '10.0.0.9',
          IPv6Address: 'fd00::9',
          MacAddress: '02:00:00:00:00:09',
          Aliases: ['web', 'www'],
        },
        { Name: 'back' },
      ],
      Ports: ['8080:80'],
      Dns: ['1.1.1.1'],
      DnsSearch: ['example.com'],
      DnsOptions: ['ndots:1', 'timeout:2'],
      Sysctls: { 'net.ipv4.ip_forward': '1' },
      AutoRemove: true,
    });
  });

  it('per-endpoint flags without --network go to bridge; a bare sysctl is refused', () => {
    const r = runCreateRequest(['true'], { ip: '172.17.0.9' }, {});
    assert.deepEqual((r.body as { Networks: unknown }).Networks, [
      { Name: 'bridge', IPv4Address: '172.17.0.9' },
    ]);
    assert.throws(() => runCreateRequest(['true'], { sysctl: ['net.x'] }, {}), CliError);
    assert.throws(() => runCreateRequest([], {}, {}), CliError);
  });

  it('container sub-requests and ps/stop queries', () => {
    assert.equal(
      requestPath(containerRequests.logs('c 1', true)),
      '/v1.47/cnm/containers/c%201/logs?follow=1',
    );
    assert.equal(
      requestPath(containerRequests.remove('c1', true)),
      '/v1.47/cnm/containers/c1?force=1',
    );
    assert.equal(
      requestPath(stopRequest('c1', { timeout: 3 })),
      '/v1.47/cnm/containers/c1/stop?t=3',
    );
    assert.equal(
      requestPath(psRequest({ all: true, filter: ['status=exited'] })),
      `/v1.47/cnm/containers/json?all=1&filters=${encodeURIComponent('{"status":{"exited":true}}')}`,
    );
    assert.equal(
      portsText([
        { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
        { IP: '::1', PrivatePort: 53, PublicPort: 53, Type: 'udp' },
      ]),
      '0.0.0.0:8080->80/tcp, [::1]:53->53/udp',
    );
  });

  it('parseKeyValues() keeps "=" inside values', () => {
    assert.deepEqual(parseKeyValues(['a=b=c'], '--opt'), { a: 'b=c' });
  });
});

describe('exec', () => {
  it('execRequest() sends Cmd and resolved Env', () => {
    assert.deepEqual(execRequest('c1', ['ls', '-l'], { env: ['X'] }, { X: '1' }).body, {
      Cmd: ['ls', '-l'],
      Env: ['X=1'],
    });
  });

  it('demuxExec() splits frames across chunk boundaries and returns the exit code', async () => {
    const frame = (s: number, p: Buffer): Buffer => {
      const h = Buffer.alloc(8);
      h[0] = s;
      h.writeUInt32BE(p.length, 4);
      return Buffer.concat([h, p]);
    };
    const code = Buffer.alloc(4);
    code.writeInt32BE(7);
    const all = Buffer.concat([
      frame(1, Buffer.from('out')),
      frame(2, Buffer.from('err')),
      frame(3, code),
    ]);
    const chunks = [all.subarray(0, 5), all.subarray(5, 13), all.subarray(13)];
    const out = new PassThrough();
    const err = new PassThrough();
    assert.equal(await demuxExec(chunks, out, err), 7);
    assert.equal(out.read()?.toString(), 'out');
    assert.equal(err.read()?.toString(), 'err');
    await assert.rejects(demuxExec([frame(1, Buffer.from('x'))], out, err), /without an exit code/);
  });
});
