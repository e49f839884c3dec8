import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import { Forwarder } from './forwarder.js';
import { newMetrics } from './metrics.js';
import type { UpstreamTransport } from './transport.js';
import { UpstreamHealth } from './upstreams.js';
import { isQuery, parseQuery } from './wire.js';

function query(name: string): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: 7,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'A', name, class: 'IN' }],
  });
}

function reply(msg: Buffer, opts: { tc?: boolean; ip?: string } = {}): Buffer {
  const q = dnsPacket.decode(msg);
  return dnsPacket.encode({
    type: 'response',
    id: q.id ?? 0,
    flags: opts.tc ? dnsPacket.TRUNCATED_RESPONSE : 0,
    questions: q.questions ?? [],
    answers: opts.tc
      ? []
      : [{ type: 'A', name: q.questions![0]!.name, ttl: 60, data: opts.ip ?? '192.0.2.1' }],
  });
}

/** A fake transport: `dead` servers time out at once, others answer; calls are logged. */
function fake(dead: Set<string>, tcOver = new Set<string>()) {
  const calls: string[] = [];
  const t: UpstreamTransport = {
    exchange: async (server, msg, opts) => {
      calls.push(`${server}/${opts.tcp ? 'tcp' : 'udp'}`);
      if (dead.has(server)) throw new Error('timeout');
      return reply(msg, { tc: !opts.tcp && tcOver.has(server) });
    },
  };
  return { t, calls };
}

const rcode = (p: dnsPacket.DecodedPacket) => (p as { rcode?: string }).rcode;

async function ask(f: Forwarder, name: string, servers: string[]) {
  const raw = query(name);
  const q = parseQuery(raw);
  assert.ok(isQuery(q));
  return dnsPacket.decode(await f.forward(raw, q, servers));
}

test('forward() skips an upstream once it failed, until a probe finds it back', async () => {
  const dead = new Set(['192.0.2.9']);
  const { t, calls } = fake(dead);
  let now = 0;
  const health = new UpstreamHealth({ now: () => now, probeMinMs: 1000 });
  const f = new Forwarder(newMetrics(), { transport: t, health, probeTickMs: 1e9 });
  const a = await ask(f, 'a.test', ['192.0.2.9', '192.0.2.1']);
  assert.equal(a.id, 7);
  assert.equal((a.answers?.[0] as { data: string }).data, '192.0.2.1');
  assert.deepEqual(calls, ['192.0.2.9/udp', '192.0.2.1/udp']);
  calls.length = 0;
  await ask(f, 'b.test', ['192.0.2.9', '192.0.2.1']);
  assert.deepEqual(calls, ['192.0.2.1/udp'], 'the dead one is not asked again');
  assert.deepEqual(health.dueProbes(), []);
  now = 1000;
  assert.deepEqual(health.dueProbes(), ['192.0.2.9']);
  dead.delete('192.0.2.9');
  health.ok('192.0.2.9', 1);
  calls.length = 0;
  await ask(f, 'c.test', ['192.0.2.9', '192.0.2.1']);
  assert.deepEqual(calls, ['192.0.2.9/udp']);
  f.close();
});

test('forward() answers SERVFAIL at once when every upstream is down', async () => {
  const { t } = fake(new Set(['192.0.2.9']));
  const m = newMetrics();
  const f = new Forwarder(m, { transport: t, probeTickMs: 1e9 });
  assert.equal(rcode(await ask(f, 'a.test', ['192.0.2.9'])), 'SERVFAIL');
  assert.equal(rcode(await ask(f, 'b.test', ['192.0.2.9'])), 'SERVFAIL');
  assert.equal(m.upstreamFailures, 1);
  assert.equal(m.allUpstreamsDown, 1);
  f.close();
});

test('forward() retries a truncated answer over TCP and caches the result', async () => {
  const { t, calls } = fake(new Set(), new Set(['192.0.2.1']));
  const m = newMetrics();
  const f = new Forwarder(m, { transport: t, probeTickMs: 1e9 });
  const a = await ask(f, 'big.test', ['192.0.2.1']);
  assert.equal(a.answers?.length, 1);
  assert.deepEqual(calls, ['192.0.2.1/udp', '192.0.2.1/tcp']);
  await ask(f, 'BIG.test', ['192.0.2.1']);
  assert.equal(calls.length, 2, 'second answer from the cache');
  assert.equal(m.cacheHits, 1);
  f.close();
});

test('forward() shares one upstream exchange between identical queries in flight', async () => {
  let n = 0;
  const t: UpstreamTransport = {
    exchange: async (_s, msg) => {
      n++;
      await new Promise((r) => setTimeout(r, 20));
      return reply(msg);
    },
  };
  const f = new Forwarder(newMetrics(), { transport: t, probeTickMs: 1e9, cacheMaxTtlSec: 0 });
  await Promise.all([1, 2, 3].map(() => ask(f, 'same.test', ['192.0.2.1'])));
  assert.equal(n, 1);
  f.close();
});
