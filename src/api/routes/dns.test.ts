import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeController, invoke } from '../fake-controller.test-helper.js';
import { createApiHandler } from '../server.js';
import type { DnsMetricsView } from './dns.js';

function view(): DnsMetricsView {
  return {
    metrics: {
      queries: { udp: 7, tcp: 1 },
      local: 5,
      forwarded: 2,
      cacheHits: 1,
      cacheMisses: 1,
      answers: { NOERROR: 6, NXDOMAIN: 1, FORMERR: 1 },
      malformed: 1,
      dropped: 0,
      truncated: 0,
      upstreamFailures: 0,
      allUpstreamsDown: 0,
      forwardLatencyMs: { count: 1, sum: 3.5, max: 3.5, buckets: [0, 0, 1, 0] },
    },
    latencyBucketsMs: [1, 2, 5],
    upstreams: { '203.0.113.53': { down: false, srttMs: 3.5 } },
    cacheEntries: 1,
    endpoints: 4,
  };
}

test('GET /cnm/dns/metrics returns the DNS service counters as they are now', async () => {
  let calls = 0;
  const handler = createApiHandler(new FakeController(), {
    dnsMetrics: () => {
      calls++;
      return view();
    },
  });
  const r = await invoke(handler, 'GET', '/cnm/dns/metrics');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.text()), view());
  await invoke(handler, 'GET', '/cnm/dns/metrics');
  assert.equal(calls, 2, 'read on every request, never cached');
});

test('GET /cnm/dns/metrics is 503 without an embedded DNS; other methods are not routed', async () => {
  const handler = createApiHandler(new FakeController());
  const r = await invoke(handler, 'GET', '/cnm/dns/metrics');
  assert.equal(r.status, 503);
  assert.match(r.text(), /This daemon has no embedded DNS/);
  const post = await invoke(
    createApiHandler(new FakeController(), { dnsMetrics: view }),
    'POST',
    '/cnm/dns/metrics',
  );
  assert.notEqual(post.status, 200);
});
