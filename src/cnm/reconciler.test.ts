import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startReconciler } from './reconciler.js';

test('startReconciler() runs checks periodically and reports repairs by check name', async () => {
  let calls = 0;
  const r = startReconciler({
    intervalMs: 10,
    checks: [{ name: 'links', run: async () => (++calls === 1 ? ['veth re-created'] : []) }],
    log: () => {},
  });
  assert.deepEqual(await r.runOnce(), ['links: veth re-created']);
  await new Promise((res) => setTimeout(res, 50));
  await r.stop();
  assert.ok(calls >= 2, `timer ran the check (${calls} calls)`);
  const after = calls;
  await new Promise((res) => setTimeout(res, 30));
  assert.equal(calls, after, 'stop() stops the timer');
});

test('startReconciler() logs a failing check and keeps running the others', async () => {
  const logs: string[] = [];
  const r = startReconciler({
    intervalMs: 1000,
    checks: [
      { name: 'bad', run: () => Promise.reject(new Error('boom')) },
      { name: 'good', run: async () => ['fixed'] },
    ],
    log: (l, m) => logs.push(`${l} ${m}`),
  });
  assert.deepEqual(await r.runOnce(), ['good: fixed']);
  await r.stop();
  assert.match(logs.join('\n'), /error Drift check "bad" failed/);
});

test('runOnce() never overlaps a check in progress', async () => {
  let active = 0;
  let maxActive = 0;
  const r = startReconciler({
    intervalMs: 1000,
    checks: [
      {
        name: 'slow',
        run: async () => {
          maxActive = Math.max(maxActive, ++active);
          await new Promise((res) => setTimeout(res, 20));
          active--;
          return [];
        },
      },
    ],
    log: () => {},
  });
  await Promise.all([r.runOnce(), r.runOnce(), r.runOnce()]);
  await r.stop();
  assert.equal(maxActive, 1);
});

test('a check with a share is skipped until its share of the time is used up', async () => {
  let slow = 0;
  let repairing = 0;
  const r = startReconciler({
    intervalMs: 60_000,
    checks: [
      {
        name: 'slow',
        share: 0.01,
        run: async () => {
          slow++;
          await new Promise((res) => setTimeout(res, 20)); // 20 ms at 1%: 2 s before the next
          return [];
        },
      },
      { name: 'fixer', share: 0.01, run: async () => (++repairing <= 2 ? ['fixed'] : []) },
    ],
    log: () => {},
  });
  await r.runOnce();
  await r.runOnce();
  await r.runOnce();
  await r.stop();
  assert.equal(slow, 1, 'skipped while its share is used up');
  // A check that repaired something runs again at once, to see that the repair held.
  assert.equal(repairing, 3);
});
