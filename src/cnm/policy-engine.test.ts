import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rulesetShape } from '../drivers/bridge/firewall.js';
import { shapeJson } from '../drivers/bridge/nft-json.test-helper.js';
import { FakeKernel } from '../kernel/fake/fake-kernel.js';
import { policyRuleset } from '../policy/compile.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { PolicyEngine } from './policy-engine.js';

/**
 * An engine on a fake kernel; `calls` records each bridgedFiltering call as `NET on|off @N`, N the
 * number of element batches the kernel had taken by then.
 */
async function setup(): Promise<{ kernel: FakeKernel; engine: PolicyEngine; calls: string[] }> {
  const kernel = new FakeKernel();
  const calls: string[] = [];
  const engine = new PolicyEngine(kernel, new MemoryStore(), {
    table: 'cnm_policy',
    log: () => undefined,
    relabel: async () => undefined,
    bridgedFiltering: async (id, on) => {
      calls.push(`${id} ${on ? 'on' : 'off'} @${kernel.nftElementBatches.length}`);
    },
  });
  await engine.init();
  return { kernel, engine, calls };
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

// ---- br_netfilter per bridge: on exactly for networks with an isolated container, before the
// isolating elements land, off once nothing there is isolated.

const DENY_WEB = JSON.stringify({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'deny-web' },
  spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] },
});

test('bridged filtering follows isolation, per network, before isolating and after releasing', async () => {
  const { kernel, engine, calls } = await setup();
  const attach = (ep: string, ctr: string, net: string, ip: string, app: string) =>
    engine.endpointAttached({
      endpointId: ep,
      containerId: ctr,
      labels: { app },
      portNames: [],
      networkId: net,
      ipv4: ip,
    });
  await attach('e1', 'c1', 'netA', '10.1.0.2', 'web');
  await attach('e2', 'c2', 'netB', '10.2.0.2', 'db');
  assert.equal(calls.length, 0, 'no policy: no bridge is filtered');

  const batches = (): number => kernel.nftElementBatches.length;
  const before = batches();
  await engine.applyPolicies(DENY_WEB);
  assert.deepEqual(calls, [`netA on @${before}`], 'only its network, before its elements');
  assert.equal(batches(), before + 1, 'then the elements');

  // A second endpoint of the isolated container, on netB: netB is filtered too.
  await attach('e3', 'c1', 'netB', '10.2.0.3', 'web');
  assert.deepEqual(
    calls.map((c) => c.split(' @')[0]),
    ['netA on', 'netB on'],
  );
  // An unrelated container coming and going changes nothing.
  await attach('e4', 'c4', 'netA', '10.1.0.4', 'db');
  await engine.endpointDetached('e4');
  assert.equal(calls.length, 2);

  const beforeDetach = batches();
  await engine.endpointDetached('e3');
  assert.equal(calls.at(-1), `netB off @${beforeDetach + 1}`, 'off after the elements are gone');
  await engine.removePolicy('default', 'deny-web');
  assert.deepEqual(calls.at(-1)?.split(' @')[0], 'netA off');
  assert.equal(calls.length, 4);
});

test('a label change that isolates a container turns its bridge on', async () => {
  const { engine, calls } = await setup();
  await engine.applyPolicies(DENY_WEB);
  await engine.endpointAttached({
    endpointId: 'e1',
    containerId: 'c1',
    labels: { app: 'db' },
    portNames: [],
    networkId: 'netA',
    ipv4: '10.1.0.2',
  });
  assert.equal(calls.length, 0);
  await engine.containerLabelsChanged('c1', { app: 'web' });
  assert.deepEqual(
    calls.map((c) => c.split(' @')[0]),
    ['netA on'],
  );
  await engine.containerLabelsChanged('c1', { app: 'db' });
  assert.deepEqual(
    calls.map((c) => c.split(' @')[0]),
    ['netA on', 'netA off'],
  );
});

test('init turns the namespace-wide br_netfilter switch off', async () => {
  const { kernel } = await setup();
  assert.equal(await kernel.sysctlGet('net.bridge.bridge-nf-call-iptables'), '0');
  assert.equal(await kernel.sysctlGet('net.bridge.bridge-nf-call-ip6tables'), '0');
});
