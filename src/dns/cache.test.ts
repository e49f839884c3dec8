import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import { AnswerCache } from './cache.js';

function answer(ttl: number, rcode = 0, soa?: { ttl: number; minimum: number }): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id: 1,
    flags: rcode,
    questions: [{ type: 'A', name: 'x.test', class: 'IN' }],
    answers: rcode === 0 && !soa ? [{ type: 'A', name: 'x.test', ttl, data: '192.0.2.1' }] : [],
    authorities: soa
      ? [
          {
            type: 'SOA',
            name: 'test',
            ttl: soa.ttl,
            data: {
              mname: 'ns.test',
              rname: 'h.test',
              serial: 1,
              refresh: 1,
              retry: 1,
              expire: 1,
              minimum: soa.minimum,
            },
          },
        ]
      : [],
  });
}

test('get() serves with the caller id and TTLs counted down, until the TTL ends', () => {
  let now = 0;
  const c = new AnswerCache({ maxEntries: 10, maxTtlSec: 3600, now: () => now });
  assert.ok(c.put('k', answer(30)));
  const a = dnsPacket.decode(c.get('k', 99)!);
  assert.equal(a.id, 99);
  assert.equal((a.answers?.[0] as { ttl?: number } | undefined)?.ttl, 30);
  now = 10_500;
  assert.equal(
    (dnsPacket.decode(c.get('k', 1)!).answers?.[0] as { ttl?: number } | undefined)?.ttl,
    20,
  );
  now = 30_000;
  assert.equal(c.get('k', 1), undefined);
});

test('put() caches NXDOMAIN by its SOA and refuses SERVFAIL, TC and TTL 0', () => {
  const c = new AnswerCache({ maxEntries: 10, maxTtlSec: 3600 });
  assert.ok(c.put('nx', answer(0, 3, { ttl: 300, minimum: 60 })));
  assert.equal(c.put('sf', answer(30, 2)), false);
  assert.equal(c.put('zero', answer(0)), false);
  const tc = answer(30);
  tc[2]! |= 0x02;
  assert.equal(c.put('tc', tc), false);
});

test('the least recently used entry goes first when full', () => {
  const c = new AnswerCache({ maxEntries: 2, maxTtlSec: 3600 });
  c.put('a', answer(30));
  c.put('b', answer(30));
  c.get('a', 1);
  c.put('c', answer(30));
  assert.ok(c.get('a', 1));
  assert.equal(c.get('b', 1), undefined);
  assert.equal(c.size, 2);
});
