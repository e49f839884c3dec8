import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matchesSelector, selectsAll } from './selector.js';

const labels = { app: 'web', tier: 'front' };

test('matchesSelector() treats {} as everything', () => {
  assert.equal(matchesSelector({}, labels), true);
  assert.equal(matchesSelector({}, {}), true);
  assert.equal(selectsAll({}), true);
  assert.equal(selectsAll({ matchLabels: { a: 'b' } }), false);
});

test('matchesSelector() ANDs matchLabels', () => {
  assert.equal(matchesSelector({ matchLabels: { app: 'web' } }, labels), true);
  assert.equal(matchesSelector({ matchLabels: { app: 'web', tier: 'back' } }, labels), false);
  assert.equal(matchesSelector({ matchLabels: { missing: '' } }, labels), false);
});

test('matchesSelector() evaluates In, NotIn, Exists, DoesNotExist', () => {
  const m = (operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist', values?: string[]) =>
    matchesSelector(
      { matchExpressions: [{ key: 'app', operator, ...(values ? { values } : {}) }] },
      labels,
    );
  assert.equal(m('In', ['web', 'api']), true);
  assert.equal(m('In', ['api']), false);
  assert.equal(m('NotIn', ['api']), true);
  assert.equal(m('NotIn', ['web']), false);
  assert.equal(m('Exists'), true);
  assert.equal(m('DoesNotExist'), false);
  // A missing key satisfies NotIn and DoesNotExist, fails In and Exists.
  const k = (operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist') =>
    matchesSelector({ matchExpressions: [{ key: 'x', operator, values: ['1'] }] }, labels);
  assert.deepEqual(
    [k('In'), k('NotIn'), k('Exists'), k('DoesNotExist')],
    [false, true, false, true],
  );
});

test('matchesSelector() ANDs matchLabels with matchExpressions', () => {
  const sel = {
    matchLabels: { app: 'web' },
    matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['back'] }],
  };
  assert.equal(matchesSelector(sel, labels), false);
  assert.equal(matchesSelector(sel, { app: 'web', tier: 'back' }), true);
});
