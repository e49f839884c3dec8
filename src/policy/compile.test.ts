import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  compilePolicies,
  diffScript,
  policyRuleset,
  policyTypesOf,
  renderElements,
} from './compile.js';
import { parsePolicies } from './parse.js';
import type { PolicyNamespace, PolicyPod } from './types.js';

const DIR = join(import.meta.dirname, 'testdata');
/** `UPDATE_GOLDEN=1 node --import tsx --test src/policy/compile.test.ts` rewrites the goldens. */
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

/** The world every golden case compiles against. */
const PODS: PolicyPod[] = [
  {
    id: 'frontend',
    namespace: 'default',
    labels: { app: 'frontend', role: 'frontend' },
    ips: ['10.0.0.2'],
    namedPorts: [],
  },
  {
    id: 'backend',
    namespace: 'default',
    labels: { app: 'backend', role: 'db' },
    ips: ['10.0.0.3', 'fd00::3'],
    namedPorts: [
      { name: 'redis', port: 6379, protocol: 'TCP' },
      { name: 'redis', port: 6380, protocol: 'UDP' },
    ],
  },
  {
    id: 'other',
    namespace: 'default',
    labels: { app: 'other' },
    ips: ['10.0.0.4'],
    namedPorts: [],
  },
  {
    id: 'p1',
    namespace: 'myproject',
    labels: { role: 'frontend' },
    ips: ['10.0.1.2'],
    namedPorts: [],
  },
  {
    id: 'p2',
    namespace: 'myproject',
    labels: { role: 'batch' },
    ips: ['10.0.1.3'],
    namedPorts: [],
  },
  { id: 'd1', namespace: 'dev', labels: { role: 'frontend' }, ips: ['10.0.1.4'], namedPorts: [] },
];
const NAMESPACES: PolicyNamespace[] = [
  { name: 'myproject', labels: { project: 'myproject' } },
  { name: 'dev', labels: { env: 'dev' } },
];

function golden(name: string, actual: string): void {
  const file = join(DIR, name);
  if (UPDATE) writeFileSync(file, actual);
  assert.equal(actual, readFileSync(file, 'utf8'), `golden ${name}`);
}

for (const input of readdirSync(DIR).filter((f) => /\.(ya?ml|json)$/.test(f))) {
  test(`compilePolicies() matches testdata/${input.replace(/\.\w+$/, '.nft')}`, () => {
    const policies = parsePolicies(readFileSync(join(DIR, input), 'utf8'));
    const elems = compilePolicies({ policies, pods: PODS, namespaces: NAMESPACES });
    golden(input.replace(/\.\w+$/, '.nft'), renderElements('cnm_policy', elems));
  });
}

test('policyRuleset() matches testdata/ruleset.nft', () => {
  golden('ruleset.nft', policyRuleset('cnm_policy'));
});

test('policyTypesOf() defaults to Ingress, plus Egress when egress rules exist', () => {
  const [a, b] = parsePolicies(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a}
spec: {podSelector: {}, egress: [{}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b}
spec: {podSelector: {}, egress: []}
`);
  assert.deepEqual(policyTypesOf(a!), ['Ingress', 'Egress']);
  assert.deepEqual(policyTypesOf(b!), ['Ingress']);
});

test('compilePolicies() isolates only selected containers and unions every policy', () => {
  const text = ['frontend-backend.yaml', 'ns-or-pod-two-peers.yaml']
    .map((f) => readFileSync(join(DIR, f), 'utf8'))
    .join('\n---\n');
  const elems = compilePolicies({
    policies: parsePolicies(text),
    pods: PODS,
    namespaces: NAMESPACES,
  });
  assert.deepEqual([...elems.get('in_iso4')!], ['10.0.0.3']);
  assert.ok(elems.get('in_port4')!.has('10.0.0.3 . 10.0.0.2 . tcp . 6379'));
  assert.ok(elems.get('in_pair4')!.has('10.0.0.3 . 10.0.1.3'));
  assert.equal(elems.get('eg_iso4')!.size, 0);
});

test('diffScript() deletes what went away and adds what is new, and is empty when equal', () => {
  const policies = parsePolicies(readFileSync(join(DIR, 'frontend-backend.yaml'), 'utf8'));
  const a = compilePolicies({ policies, pods: PODS, namespaces: NAMESPACES });
  const b = compilePolicies({
    policies,
    pods: PODS.filter((p) => p.id !== 'frontend'),
    namespaces: NAMESPACES,
  });
  assert.equal(diffScript('t', a, a), '');
  assert.equal(
    diffScript('t', a, b),
    'delete element inet t in_port4 { 10.0.0.3 . 10.0.0.2 . tcp . 6379 }\n',
  );
});
