import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rulesetShape } from '../drivers/bridge/firewall.js';
import { shapeJson } from '../drivers/bridge/nft-json.test-helper.js';
import { FakeKernel } from '../kernel/fake/fake-kernel.js';
import { policyRuleset } from '../policy/compile.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { PolicyEngine } from './policy-engine.js';

async function setup(): Promise<{ kernel: FakeKernel; engine: PolicyEngine }> {
  const kernel = new FakeKernel();
  const engine = new PolicyEngine(kernel, new MemoryStore(), {
    table: 'cnm_policy',
    log: () => undefined,
    relabel: async () => undefined,
  });
  await engine.init();
  return { kernel, engine };
}

test('verify() re-loads the policy table only when it differs from the intent', async () => {
  const { kernel, engine } = await setup();
  // The table as loaded: chains with their rules, every set empty.
  const intact = rulesetShape(policyRuleset('cnm_policy'));
  kernel.nftOutput = () => shapeJson(intact, 'inet', 'cnm_policy');
  const before = kernel.nftScripts.length;
  assert.deepEqual(await engine.verify(), []);
  assert.equal(kernel.nftScripts.length, before + 1, 'only the listing');

  // Flushed (a chain without its rules): the whole table again.
  const flushed = rulesetShape(policyRuleset('cnm_policy'));
  flushed.chains.set('inet forward', 0);
  kernel.nftOutput = () => shapeJson(flushed, 'inet', 'cnm_policy');
  assert.deepEqual(await engine.verify(), [
    'table re-loaded: chain inet forward has 0 rules, not 6',
  ]);
  assert.ok(kernel.nftScripts.at(-1)?.includes('table inet cnm_policy {'));

  // Gone: the listing fails.
  kernel.failNext('nftRun', 'ENOENT');
  assert.deepEqual(await engine.verify(), ['table re-loaded: the table is missing']);

  // A foreign element (or one changed in place): re-loaded once; if the kernel still lists it
  // after that, reported once and left.
  const foreign = rulesetShape(policyRuleset('cnm_policy'));
  foreign.sets.set('inet in_iso4', 1);
  foreign.elements = new Map([['inet in_iso4', ['10.9.9.9']]]);
  kernel.nftOutput = () => shapeJson(foreign, 'inet', 'cnm_policy');
  const why = 'set inet in_iso4 has 1 elements, not 0';
  assert.deepEqual(await engine.verify(), [`table re-loaded: ${why}`]);
  assert.deepEqual(await engine.verify(), [`table re-loaded: ${why}`], 'a count is always fixed');
  kernel.nftOutput = () => shapeJson(intact, 'inet', 'cnm_policy');
  assert.deepEqual(await engine.verify(), []);
});
