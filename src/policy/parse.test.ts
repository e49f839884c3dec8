import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isKind } from '../errors.js';
import { parseNamedPort, parsePolicies } from './parse.js';

const head = 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n';

function invalid(text: string, re: RegExp): void {
  assert.throws(
    () => parsePolicies(text),
    (err) => isKind(err, 'invalid') && re.test((err as Error).message),
  );
}

test('parsePolicies() reads several YAML documents and fills the namespace', () => {
  const ps = parsePolicies(
    `${head}spec: {podSelector: {}}\n---\n---\n${head.replace('name: p', 'name: q, namespace: prod')}spec: {podSelector: {}}\n`,
  );
  assert.deepEqual(
    ps.map((p) => `${p.metadata.namespace}/${p.metadata.name}`),
    ['default/p', 'prod/q'],
  );
});

test('parsePolicies() reads JSON and kubectl List documents', () => {
  const one = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'j' },
    spec: { podSelector: {} },
  };
  assert.equal(parsePolicies(JSON.stringify(one))[0]!.metadata.name, 'j');
  assert.equal(
    parsePolicies(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [one, one] })).length,
    2,
  );
});

test('parsePolicies() keeps one combined peer apart from two peers', () => {
  const [one] = parsePolicies(`${head}spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {a: b}}
      podSelector: {matchLabels: {c: d}}
`);
  const [two] = parsePolicies(`${head}spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {a: b}}
    - podSelector: {matchLabels: {c: d}}
`);
  assert.equal(one!.spec.ingress![0]!.from!.length, 1);
  assert.equal(two!.spec.ingress![0]!.from!.length, 2);
});

test('parsePolicies() takes ports by number, numeric string, name and range', () => {
  const [p] = parsePolicies(`${head}spec:
  podSelector: {}
  ingress:
  - ports:
    - port: 80
    - port: "81"
      protocol: UDP
    - port: http
    - port: 32000
      endPort: 32768
    - protocol: SCTP
`);
  assert.deepEqual(p!.spec.ingress![0]!.ports, [
    { protocol: 'TCP', port: 80 },
    { protocol: 'UDP', port: 81 },
    { protocol: 'TCP', port: 'http' },
    { protocol: 'TCP', port: 32000, endPort: 32768 },
    { protocol: 'SCTP' },
  ]);
});

test('parsePolicies() refuses what the API server refuses', () => {
  invalid('apiVersion: v1\nkind: NetworkPolicy\nmetadata: {name: p}\n', /apiVersion/);
  invalid(
    `${head}spec: {podSelector: {}, ingress: [{ports: [{port: http, endPort: 90}]}]}`,
    /endPort/,
  );
  invalid(
    `${head}spec: {podSelector: {}, ingress: [{ports: [{port: 90, endPort: 80}]}]}`,
    /endPort/,
  );
  invalid(`${head}spec: {podSelector: {}, ingress: [{ports: [{port: 70000}]}]}`, /65535/);
  invalid(
    `${head}spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/8]}}]}]}`,
    /within/,
  );
  invalid(`${head}spec: {podSelector: {}, ingress: [{from: [{}]}]}`, /must set/);
  invalid(
    `${head}spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}`,
    /combined/,
  );
  invalid(
    `${head}spec: {podSelector: {matchExpressions: [{key: a, operator: In}]}}`,
    /at least one value/,
  );
  invalid(`${head}spec: {podSelector: {}, policyTypes: [Sideways]}`, /policy type/);
  invalid(`${head}spec: {podSelector: {}, ingress: [{ports: [{protocol: ICMP}]}]}`, /protocol/);
  invalid(`${head}spec: {podSelector: {}}\n: : :`, /parse|Invalid/);
});

test('parseNamedPort() reads name=port[/proto]', () => {
  assert.deepEqual(parseNamedPort('http=8080'), { name: 'http', port: 8080, protocol: 'TCP' });
  assert.deepEqual(parseNamedPort('dns=53/udp'), { name: 'dns', port: 53, protocol: 'UDP' });
  assert.throws(() => parseNamedPort('Bad_Name=1'), /port name/);
  assert.throws(() => parseNamedPort('x=0'), /between/);
});
