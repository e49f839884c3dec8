/**
 * Hostile input: seeded malformed and adversarial requests — bad JSON, wrong types, huge
 * bodies, path traversal in names, invalid CIDRs, nonsense options, bridge names of host
 * interfaces (`eth0`, `lo`, `up0`), attempts to pick container interface names. Every one must
 * get a 4xx with a message, and nothing may change.
 *
 * Two tests: 10,000+ requests in-process (the real API handler and controller over the fake
 * kernel and the memory store; no root), and a smaller live run against cnmd in a world with a
 * host snapshot before and after (root). `CNM_FUZZ_SEED` replays a run.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { invoke } from '../../src/api/fake-controller.test-helper.js';
import { createApiHandler } from '../../src/api/server.js';
import { Controller } from '../../src/cnm/controller.js';
import { BridgeDriver } from '../../src/drivers/bridge/bridge-driver.js';
import { hostDriver, noneDriver } from '../../src/drivers/null-drivers.js';
import { DriverRegistry } from '../../src/drivers/registry.js';
import { FakeKernel } from '../../src/kernel/fake/fake-kernel.js';
import { MemoryStore } from '../../src/store/index.js';
import { api, skipUnlessRoot, snapshotHost, startDaemon, withWorld } from './harness.js';
import { seededRandom } from './invariants.js';
import {
  assertSameHost,
  createContainer,
  createNetwork,
  waitHostSettled,
  withoutPids,
} from './workload.js';

interface Hostile {
  method: string;
  url: string;
  /** A string is sent as is (malformed JSON); anything else is JSON-encoded. */
  body?: unknown;
  what: string;
}

const HOST_IFS = ['eth0', 'lo', 'up0', 'cnm0'];
const BAD_NAMES = [
  '',
  '.',
  '..',
  '../../etc/passwd',
  'a/b',
  '%2e%2e%2f',
  'a\u0000b',
  'naïve',
  'x'.repeat(200),
  '-lead',
  'sp ace',
  '$(reboot)',
];
const BAD_CIDRS = [
  '10.0.0.0/33',
  '300.1.1.0/24',
  '::/129',
  'abc',
  '10.0.0.0/',
  '/24',
  '10.0.0.0/-1',
  '1.2.3.4.5/24',
  '',
  '0.0.0.0/0',
];
const BAD_OPTIONS: Record<string, string>[] = [
  { 'com.docker.network.driver.mtu': '-1' },
  { 'com.docker.network.driver.mtu': '99999999' },
  { 'com.docker.network.driver.mtu': 'abc' },
  { 'com.docker.network.bridge.enable_icc': 'maybe' },
  { 'com.docker.network.bridge.enable_ip_masquerade': '2' },
  { 'com.docker.network.bridge.name': 'x'.repeat(16) },
  { 'com.docker.network.bridge.name': 'a b' },
  { 'com.docker.network.bridge.name': '../x' },
  { 'com.docker.network.bridge.name': '' },
  { 'com.docker.network.bridge.host_binding_ipv4': 'nope' },
];
const WRONG_TYPES: Record<string, unknown>[] = [
  { Name: 123 },
  { Name: null },
  { Name: ['a'] },
  { Name: 'ok', Options: [] },
  { Name: 'ok', Options: { a: 1 } },
  { Name: 'ok', IPAM: 'x' },
  { Name: 'ok', IPAM: { Config: [{ Subnet: 5 }] } },
  { Name: 'ok', IPAM: { Config: 'x' } },
  { Name: 'ok', Internal: 'yes' },
  { Name: 'ok', Labels: { a: 1 } },
  { Name: 'ok', EnableIPv6: 'true' },
  { Name: 'ok', Driver: 7 },
  { Name: 'ok', Driver: 'nosuchdriver' },
  { Name: 'ok', Driver: '../../bin/sh' },
];

/** Builds the `i`-th hostile request; every one is certain to be refused. */
function hostile(rnd: () => number, hostIfs: readonly string[] = HOST_IFS): Hostile {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const junk = (): string =>
    Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)))
      .toString('latin1')
      .replace(/^[\s{["0-9tfn-]/, '#');
  switch (Math.floor(rnd() * 16)) {
    case 0:
      return {
        method: 'POST',
        url: '/networks/create',
        body: pick(['{', '{"Name":', 'nul', '{"Name":"a"}}', '[', '{"Name":"a",}', junk()]),
        what: 'bad JSON',
      };
    case 1:
      return {
        method: 'POST',
        url: pick(['/networks/create', '/cnm/containers/create']),
        body: pick([null, [], 'str', 42, true]),
        what: 'non-object body',
      };
    case 2:
      return { method: 'POST', url: '/networks/create', body: pick(WRONG_TYPES), what: 'types' };
    case 3:
      return {
        method: 'POST',
        url: '/networks/create',
        body: { Name: pick(BAD_NAMES), Driver: 'bridge' },
        what: 'bad network name',
      };
    case 4:
      return {
        method: 'POST',
        url: '/networks/create',
        body: {
          Name: `fz${Math.floor(rnd() * 1e6)}`,
          IPAM: { Config: [{ Subnet: pick(BAD_CIDRS) }] },
        },
        what: 'bad CIDR',
      };
    case 5:
      return {
        method: 'POST',
        url: '/networks/create',
        body: {
          Name: `fz${Math.floor(rnd() * 1e6)}`,
          IPAM: {
            Config: [
              pick([
                { Subnet: '10.77.0.0/24', Gateway: '10.78.0.1' },
                { Subnet: '10.77.0.0/24', IPRange: '10.99.0.0/25' },
                { Subnet: '10.77.0.0/24', AuxiliaryAddresses: { a: 'nope' } },
                { Subnet: '10.77.0.0/24', Gateway: '10.77.0.0' },
                { Subnet: '172.17.0.0/16' },
              ]),
            ],
          },
        },
        what: 'bad IPAM',
      };
    case 6:
      return {
        method: 'POST',
        url: '/networks/create',
        body: { Name: `fz${Math.floor(rnd() * 1e6)}`, Options: pick(BAD_OPTIONS) },
        what: 'bad option',
      };
    case 7:
      return {
        method: 'POST',
        url: '/networks/create',
        body: {
          Name: `fz${Math.floor(rnd() * 1e6)}`,
          Options: { 'com.docker.network.bridge.name': pick(hostIfs) },
        },
        what: 'host interface as bridge name',
      };
    case 8:
      return {
        method: 'POST',
        url: '/cnm/containers/create',
        body: pick<Record<string, unknown>>([
          { Name: 'c-fz' },
          { Cmd: 'sh' },
          { Cmd: [1, 2] },
          { Cmd: ['true'], Name: pick(BAD_NAMES.filter((n) => n !== '')) },
          { Cmd: ['true'], Networks: [{ Name: 5 }] },
          { Cmd: ['true'], Networks: [{ Name: 'nosuchnet' }] },
          { Cmd: ['true'], Networks: [{ Name: 'fz', IPv4Address: '10.0.0.300' }] },
          { Cmd: ['true'], Networks: [{ Name: 'bridge', IPv4Address: '172.17.0.9' }] },
          { Cmd: ['true'], Ports: [pick(['99999:80', 'abc', '80:0', '-1:80', '80:80/xyz'])] },
          { Cmd: ['true'], Sysctls: { 'kernel.panic': '1' } },
          { Cmd: ['true'], Sysctls: { 'net/../../kernel/panic': '1' } },
          { Cmd: ['true'], Env: ['noequals'] },
          { Cmd: ['true'], Hostname: 'a_b!' },
          { Cmd: ['true'], Dns: ['not-an-ip'] },
          { Cmd: ['true'], Networks: [{ Name: 'fz' }, { Name: 'fz' }] },
          { Cmd: ['true'], Name: 'fc' },
        ]),
        what: 'bad container',
      };
    case 9:
      // Container interface names are cnm's: an attempt to choose one through driver options
      // or an unknown field must not take effect (it is refused or the name is cnm's own).
      return {
        method: 'POST',
        url: '/networks/fz/connect',
        body: pick<unknown>([
          { Container: 5 },
          { Container: 'nosuch' },
          { Container: 'fc' }, // already connected
          { Container: 'fc', EndpointConfig: 'x' },
          { Container: 'fc', EndpointConfig: { IPAMConfig: { IPv4Address: 'bad' } } },
          {},
        ]),
        what: 'bad connect',
      };
    case 10:
      return {
        method: 'POST',
        url: pick(['/networks/bridge/disconnect', '/networks/nosuch/disconnect']),
        body: pick<unknown>([{ Container: 'fc' }, { Container: 9 }, { Container: 'nosuch' }]),
        what: 'bad disconnect',
      };
    case 11:
      return {
        method: pick(['DELETE']),
        url: pick([
          '/networks/bridge',
          '/networks/host',
          '/networks/none',
          '/networks/nosuch',
          '/networks/..%2F..%2Fetc',
          '/cnm/containers/nosuch',
          '/networks/fz', // in use
        ]),
        what: 'bad delete',
      };
    case 12:
      return {
        method: pick(['PATCH', 'PUT', 'TRACE']),
        url: pick(['/networks', '/networks/fz', '/cnm/containers/fc']),
        what: 'bad method',
      };
    case 13:
      return {
        method: 'GET',
        url: pick([
          '/networks/%00',
          `/networks/${'a'.repeat(5000)}`,
          '/../../etc/passwd',
          '/networks?filters=notjson',
          '/networks?filters={"nope":["x"]}',
          '/v0.1/networks',
          '/cnm/containers/nosuch/json',
        ]),
        what: 'bad GET',
      };
    case 14:
      return {
        method: 'POST',
        url: pick(['/cnm/containers/nosuch/start', '/cnm/containers/nosuch/stop']),
        what: 'missing container',
      };
    default:
      return {
        method: 'POST',
        url: '/networks/create',
        body: { Name: 'fz', Driver: 'bridge' },
        what: 'duplicate name',
      };
  }
}

test('fuzz (in-process): 10,000 hostile requests get 4xx with a message and change nothing', async (t) => {
  const seed = Number(process.env['CNM_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
  t.diagnostic(`seed ${seed}`);
  const rnd = seededRandom(seed);
  const dir = await mkdtemp(path.join(tmpdir(), 'cnm-fuzz-'));
  try {
    const kernel = new FakeKernel({ hostLinks: ['eth0', 'up0'] });
    const store = new MemoryStore();
    const drivers = new DriverRegistry();
    drivers.register(
      new BridgeDriver(kernel, {
        table: 'cnm',
        bridgePrefix: 'cnmbr-',
        defaultBridgeName: 'cnm0',
        mtu: 1500,
      }),
    );
    drivers.register(hostDriver());
    drivers.register(noneDriver());
    const ctl = new Controller(kernel, store, drivers, {
      dataRoot: path.join(dir, 'lib'),
      execRoot: path.join(dir, 'run'),
      vethPrefix: 'cnmv',
      defaultBridgeName: 'cnm0',
      mtu: 1500,
      dns: [],
      hostResolvConf: () => '',
      version: 'fuzz',
      log: () => {},
    });
    await ctl.init();
    const handler = createApiHandler(ctl);
    assert.equal(
      (await invoke(handler, 'POST', '/networks/create', { Name: 'fz', Driver: 'bridge' })).status,
      201,
    );
    const fc = await invoke(handler, 'POST', '/cnm/containers/create', {
      Name: 'fc',
      Cmd: ['true'],
      Networks: [{ Name: 'fz' }],
    });
    assert.equal(fc.status, 201, fc.text());
    const snapshot = async () =>
      JSON.stringify({
        links: (await kernel.linkList()).map((l) => `${l.name} ${l.kind} ${l.alias ?? ''}`),
        addrs: (await kernel.addrList()).map((a) => `${a.index} ${a.address}/${a.prefixLen}`),
        ns: kernel.namespaces().sort(),
        records: (await store.list('')).map((r) => `${r.key} ${JSON.stringify(r.value)}`),
        networks: ctl.listNetworks(),
        containers: ctl.listContainers({ all: true }),
      });
    const before = await snapshot();
    const N = 10_000;
    const tally = new Map<number, number>();
    const huge = Buffer.alloc(2 * 1024 * 1024, 'a');
    for (let i = 0; i < N; i++) {
      const h: Hostile =
        i % 1000 === 999
          ? { method: 'POST', url: '/networks/create', body: huge, what: 'huge body' }
          : hostile(rnd);
      const r = await invoke(
        handler,
        h.method,
        h.url,
        typeof h.body === 'string' || Buffer.isBuffer(h.body)
          ? Buffer.from(h.body as string)
          : h.body,
      );
      tally.set(r.status, (tally.get(r.status) ?? 0) + 1);
      const ctx = `#${i} ${h.what}: ${h.method} ${h.url.slice(0, 80)} ${JSON.stringify(h.body)?.slice(0, 200)} -> ${r.status} ${r.text().slice(0, 200)}`;
      assert.ok(r.status >= 400 && r.status < 500, ctx);
      if (h.method !== 'HEAD') {
        let msg: unknown;
        try {
          msg = (r.json() as { message?: unknown }).message;
        } catch {
          msg = undefined;
        }
        assert.ok(typeof msg === 'string' && msg.length > 0, `no message: ${ctx}`);
      }
    }
    assert.equal(await snapshot(), before, 'state changed');
    for (const n of ['eth0', 'up0', 'lo']) assert.ok(await kernel.linkGet(n), `${n} still exists`);
    t.diagnostic(
      `${N} requests: ${[...tally].map(([s, n]) => `${s}×${n}`).join(' ')}; state unchanged`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test(
  'fuzz (live): hostile requests against cnmd get 4xx and leave the host unchanged',
  { skip: skipUnlessRoot(), timeout: 120_000 },
  (t) =>
    withWorld(t, async (w) => {
      const seed = Number(process.env['CNM_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
      t.diagnostic(`seed ${seed}`);
      const rnd = seededRandom(seed);
      const d = await startDaemon(w);
      const a = api(w);
      await createNetwork(a, { Name: 'fz', Driver: 'bridge' });
      await createContainer(a, { Name: 'fc', Cmd: ['true'], Networks: [{ Name: 'fz' }] });
      await waitHostSettled(w);
      const before = withoutPids(await snapshotHost(w), [d.pid]);
      const N = 600;
      for (let i = 0; i < N; i++) {
        // The world's host netns has lo, up0 and cnm0 (no eth0: that name is free there).
        const h = hostile(rnd, ['lo', 'up0', 'cnm0']);
        const r =
          typeof h.body === 'string'
            ? await rawPost(w.socketPath, h.url, h.body)
            : await a.request(h.method, h.url, h.body);
        const ctx = `#${i} ${h.what}: ${h.method} ${h.url.slice(0, 80)} -> ${r.status} ${r.text.slice(0, 200)}`;
        assert.ok(r.status >= 400 && r.status < 500, ctx);
        assert.ok(typeof r.body?.message === 'string', `no message: ${ctx}`);
      }
      assert.equal(d.exitInfo, undefined, 'cnmd still running');
      assertSameHost(before, withoutPids(await snapshotHost(w), [d.pid]), 'after fuzzing');
      t.diagnostic(`${N} live requests refused; host unchanged`);
    }),
);

/** POSTs a raw (possibly malformed) body over the unix socket. */
async function rawPost(
  socketPath: string,
  url: string,
  body: string,
): Promise<{ status: number; body: any; text: string }> {
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method: 'POST',
        path: url,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body, 'latin1'),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
      },
    );
    req.on('error', reject);
    req.end(Buffer.from(body, 'latin1'));
  });
}
