import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { dnsUdpAvailable, openDnsUdp } from '../kernel/dns-udp.js';
import { Forwarder } from './forwarder.js';
import { newMetrics } from './metrics.js';
import { NameTable } from './names.js';
import { DnsServer, type UdpOpener } from './server.js';

// A real UDP exchange over 127.0.0.1 on a free high port: no root, nothing beyond loopback. The
// listener's subnet is 127.0.0.0/8 so the client's source is allowed. Every test runs twice: with
// node:dgram listeners and with the addon's native ones (the daemon's default).
const PORT = await new Promise<number>((resolve) => {
  // The kernel picks a free port; it is handed back and bound again by the server just below.
  const probe = dgram.createSocket('udp4');
  probe.bind(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
function suite(kind: string, udp: UdpOpener | undefined): void {
  const table = new NameTable();
  const metrics = newMetrics();
  const forwarder = new Forwarder(metrics);
  const server = new DnsServer({
    table,
    forwarder,
    metrics,
    defaultUpstreams: () => [],
    log: () => undefined,
    port: PORT,
    ...(udp ? { udp } : {}),
  });
  const client = dgram.createSocket('udp4');

  function ep(id: string, ipv4: string, aliases: string[]) {
    return {
      endpointId: id,
      networkId: 'N1',
      containerId: `${id}00000000000000`,
      containerName: id,
      aliases,
      ipv4,
      dns: [],
    };
  }

  /** A query for `name` A with id `id`, the name's case as given. */
  function query(id: number, name: string): Buffer {
    const labels = name
      .split('.')
      .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
    const head = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    return Buffer.concat([head, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
  }

  function ask(id: number, name: string): Promise<{ msg: Buffer; ips: string[] }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`No answer for "${name}"`)), 2000);
      const onMsg = (msg: Buffer) => {
        if (msg.readUInt16BE(0) !== id) return;
        clearTimeout(timer);
        client.off('message', onMsg);
        const ips: string[] = [];
        const qend = 12 + Buffer.byteLength(name) + 2 + 4;
        for (let off = qend, i = 0; i < msg.readUInt16BE(6); i++) {
          const len = msg.readUInt16BE(off + 10);
          ips.push([...msg.subarray(off + 12, off + 12 + len)].join('.'));
          off += 12 + len;
        }
        resolve({ msg, ips });
      };
      client.on('message', onMsg);
      client.send(query(id, name), PORT, '127.0.0.1');
    });
  }

  before(async () => {
    table.addNetwork({ id: 'N1', name: 'n1', internal: false });
    await server.listen({ networkId: 'N1', addresses: ['127.0.0.1'], subnets: ['127.0.0.0/8'] });
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  });

  after(async () => {
    client.close();
    await server.close();
    forwarder.close();
  });

  test('DnsServer answers repeated questions with their own id and the asker’s name case', async () => {
    table.addEndpoint(ep('solo', '10.0.0.2', []));
    for (const [id, name] of [
      [0x1111, 'solo'],
      [0x2222, 'solo'],
      [0x3333, 'SoLo'],
      [0x4444, 'SoLo'],
    ] as const) {
      const { msg, ips } = await ask(id, name);
      assert.equal(msg.readUInt16BE(0), id);
      assert.equal(msg.subarray(13, 17).toString('latin1'), name);
      assert.deepEqual(ips, ['10.0.0.2']);
    }
  });

  test('DnsServer keeps rotating a round-robin name from the remembered answers', async () => {
    for (const [i, a] of ['10.0.0.11', '10.0.0.12', '10.0.0.13'].entries()) {
      table.addEndpoint(ep(`rr${i}`, a, ['pool']));
    }
    server.syncMetrics();
    const localBefore = metrics.local;
    const firsts: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { ips } = await ask(0x5000 + i, 'pool');
      assert.deepEqual([...ips].sort(), ['10.0.0.11', '10.0.0.12', '10.0.0.13']);
      firsts.push(ips[0]!);
    }
    // Six queries, three starting points: each start twice, in turn.
    assert.deepEqual(firsts.slice(3), firsts.slice(0, 3));
    assert.equal(new Set(firsts).size, 3, `order rotates: ${firsts.join(' ')}`);
    server.syncMetrics();
    assert.equal(metrics.local - localBefore, 6);
  });

  test('DnsServer forgets remembered answers when the names change', async () => {
    assert.equal((await ask(0x6001, 'pool')).ips.length, 3);
    table.removeEndpoint('rr1');
    const { ips } = await ask(0x6002, 'pool');
    assert.deepEqual([...ips].sort(), ['10.0.0.11', '10.0.0.13']);
    table.removeEndpoint('solo');
    const { msg } = await ask(0x6003, 'solo');
    // Not local any more; no upstream: SERVFAIL, no records.
    assert.equal(msg[3]! & 0x0f, 2);
    assert.equal(msg.readUInt16BE(6), 0);
  });

  test('DnsServer survives malformed datagrams and still answers', async () => {
    table.addEndpoint(ep('sturdy', '10.0.0.9', []));
    assert.deepEqual((await ask(0x7000, 'sturdy')).ips, ['10.0.0.9']);
    // Runts, garbage of every length up to past the query limit, a response, a query with a
    // label running off the end: none may crash the listener or its native thread.
    const junk: Buffer[] = [Buffer.alloc(0), Buffer.alloc(5, 0xff), Buffer.alloc(5000, 0x41)];
    for (let n = 12; n < 80; n += 7)
      junk.push(Buffer.from(query(0x7100 + n, 'sturdy').subarray(0, n)));
    const resp = query(0x7200, 'sturdy');
    resp[2] = 0x81;
    junk.push(resp);
    for (let i = 0; i < 64; i++) {
      const b = Buffer.alloc(12 + ((i * 37) % 300));
      for (let j = 0; j < b.length; j++) b[j] = (i * 131 + j * 17) & 0xff;
      junk.push(b);
    }
    for (const b of junk) client.send(b, PORT, '127.0.0.1');
    // A cut-off question is a format error, answered with FORMERR and its id.
    const bad = query(0x7300, 'sturdy').subarray(0, 20);
    const formerr = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('No FORMERR')), 2000);
      const on = (m: Buffer) => {
        if (m.readUInt16BE(0) !== 0x7300) return;
        clearTimeout(timer);
        client.off('message', on);
        resolve(m);
      };
      client.on('message', on);
      client.send(bad, PORT, '127.0.0.1');
    });
    assert.equal(formerr[3]! & 0x0f, 1, `${kind}: FORMERR`);
    assert.deepEqual((await ask(0x7001, 'sturdy')).ips, ['10.0.0.9']);
    server.syncMetrics();
    assert.ok(metrics.malformed > 0);
  });
}

describe('node:dgram listeners', () => suite('dgram', undefined));
describe('native listeners', { skip: !dnsUdpAvailable() && 'addon not built' }, () =>
  suite('native', openDnsUdp),
);
