import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, test } from 'node:test';
import { dnsUdpAvailable, openDnsUdp, type DnsUdpSocket } from './dns-udp.js';

// Real datagrams over 127.0.0.1 on a free high port: no root, nothing beyond loopback.
const skip = !dnsUdpAvailable() && 'addon not built (npm run install)';
const PORT = await new Promise<number>((resolve) => {
  const probe = dgram.createSocket('udp4');
  probe.bind(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});

const seen: { msg: Buffer; address: string; port: number }[] = [];
let sock: DnsUdpSocket;
const client = dgram.createSocket('udp4');
let clientPort = 0;

/** A query-shaped datagram: id, flags, counts (one question), then `body`. */
function q(id: number, body: string): Buffer {
  const head = Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([head, Buffer.from(body, 'latin1')]);
}

/** An answer-shaped datagram (id 0): header, then `body`. */
function a(body: string): Buffer {
  return Buffer.concat([
    Buffer.from([0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]),
    Buffer.from(body),
  ]);
}

/** Sends `msg` and waits for the reply with its id, or for it to reach JS (`'js'`). */
function exchange(msg: Buffer): Promise<Buffer | 'js'> {
  const id = msg.readUInt16BE(0);
  const before = seen.length;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Nothing for id ${id}`)), 2000);
    const poll = setInterval(() => {
      if (seen.length > before) done('js');
    }, 2);
    const on = (m: Buffer) => {
      if (m.readUInt16BE(0) === id) done(m);
    };
    const done = (r: Buffer | 'js') => {
      clearTimeout(timer);
      clearInterval(poll);
      client.off('message', on);
      resolve(r);
    };
    client.on('message', on);
    client.send(msg, PORT, '127.0.0.1');
  });
}

before(async () => {
  if (skip) return;
  sock = openDnsUdp('127.0.0.1', PORT, (msg, address, port) => seen.push({ msg, address, port }));
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  clientPort = client.address().port;
});

after(() => {
  if (skip) return;
  client.close();
  sock.close();
});

test(
  'openDnsUdp hands unknown queries to JS with the source, and send() replies',
  { skip },
  async () => {
    assert.equal(await exchange(q(0x0101, 'who')), 'js');
    const last = seen.at(-1)!;
    assert.equal(last.address, '127.0.0.1');
    assert.equal(last.port, clientPort);
    assert.deepEqual(last.msg, q(0x0101, 'who'));
    const reply = Buffer.from(last.msg);
    reply[2] = 0x81;
    const got = new Promise<Buffer>((r) => client.once('message', r));
    assert.equal(sock.send(reply, last.port, last.address), true);
    assert.deepEqual(await got, reply);
  },
);

test('openDnsUdp answers a remembered query natively with the asker’s id', { skip }, async () => {
  const answer = a('answer-one');
  assert.equal(sock.remember('127.0.0.1', q(0, 'known'), [answer], 0), true);
  const before = sock.stats();
  const r = await exchange(q(0xbeef, 'known'));
  assert.notEqual(r, 'js');
  assert.equal((r as Buffer).readUInt16BE(0), 0xbeef);
  assert.deepEqual((r as Buffer).subarray(2), answer.subarray(2));
  const after = sock.stats();
  assert.equal(after.hits - before.hits, 1);
  assert.equal(after.received - before.received, 1);
  // Another source, or other bytes after the id, are different questions.
  assert.equal(sock.remember('127.0.0.2', q(0, 'other'), [answer], 0), true);
  assert.equal(await exchange(q(0x0102, 'other')), 'js');
  assert.equal(await exchange(q(0x0103, 'KNOWN')), 'js');
});

test(
  'openDnsUdp rotates through several remembered answers from the start given',
  { skip },
  async () => {
    const answers = ['a', 'b', 'c'].map((x) => a(`${x}-first`));
    sock.remember('127.0.0.1', q(0, 'pool'), answers, 1);
    const firsts: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = (await exchange(q(0x0200 + i, 'pool'))) as Buffer;
      firsts.push(r.toString('latin1', 12, 13));
    }
    assert.deepEqual(firsts, ['b', 'c', 'a', 'b', 'c', 'a']);
  },
);

test('openDnsUdp clear() forgets every answer before it returns', { skip }, async () => {
  sock.remember('127.0.0.1', q(0, 'gone'), [a('x')], 0);
  assert.notEqual(await exchange(q(0x0301, 'gone')), 'js');
  sock.clear();
  assert.equal(await exchange(q(0x0302, 'gone')), 'js');
});

test('openDnsUdp remember() refuses entries over its limits', { skip }, () => {
  const one = a('x');
  assert.equal(sock.remember('127.0.0.1', q(0, 'tiny'), [Buffer.alloc(11)], 0), false);
  assert.equal(sock.remember('127.0.0.1', q(0, 'many'), new Array(33).fill(one), 0), false);
  assert.equal(sock.remember('127.0.0.1', q(0, 'big'), [Buffer.alloc(5000)], 0), false);
  assert.equal(sock.remember('127.0.0.1', Buffer.alloc(6), [one], 0), false);
  assert.throws(() => sock.remember('not-an-ip', q(0, 'x'), [one], 0), /IP address/);
});

test('openDnsUdp keeps serving after malformed and oversized datagrams', { skip }, async () => {
  for (const n of [0, 1, 2, 11, 12, 13, 4096, 5000])
    client.send(Buffer.alloc(n, 0xa5), PORT, '127.0.0.1');
  sock.remember('127.0.0.1', q(0, 'still'), [a('ok')], 0);
  const r = (await exchange(q(0x0401, 'still'))) as Buffer;
  assert.equal(r.toString('latin1', 12), 'ok');
});

test('openDnsUdp close() is idempotent and later calls throw EBADF', { skip }, () => {
  const other = openDnsUdp('127.0.0.1', 0, () => undefined);
  other.close();
  other.close();
  assert.throws(() => other.clear(), { code: 'EBADF' });
  assert.throws(() => other.send(Buffer.alloc(12), 53, '127.0.0.1'), { code: 'EBADF' });
  assert.equal(typeof other.stats().received, 'number');
});

test('openDnsUdp refuses an address in use', { skip }, () => {
  assert.throws(() => openDnsUdp('127.0.0.1', PORT, () => undefined), { code: 'EADDRINUSE' });
});
