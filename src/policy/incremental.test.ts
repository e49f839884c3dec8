import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IP } from '../netaddr/index.js';
import {
  compilePolicies,
  policyRuleset,
  setNames,
  setShape,
  shardSet,
  type PolicyElements,
} from './compile.js';
import {
  IncrementalCompiler,
  deltaChanges,
  deltaScript,
  type ElementDelta,
} from './incremental.js';
import type {
  LabelSelector,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PolicyNamespace,
  PolicyPod,
} from './types.js';

/** A small deterministic PRNG (mulberry32), so a failure names a reproducible seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NS = ['ns0', 'ns1', 'ns2'];
const VALS = ['a', 'b', 'c'];

function gen(r: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const chance = (p: number) => r() < p;
  const selector = (): LabelSelector => {
    const s: LabelSelector = {};
    if (chance(0.5)) s.matchLabels = { [pick(['app', 'tier'])]: pick(VALS) };
    if (chance(0.3)) {
      const op = pick(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const);
      s.matchExpressions = [
        {
          key: pick(['app', 'tier', 'env']),
          operator: op,
          ...(op === 'In' || op === 'NotIn' ? { values: [pick(VALS), pick(VALS)] } : {}),
        },
      ];
    }
    return s;
  };
  // Blocks inside one /24 (or /64) and across several, so pieces land in several shards and
  // in the wide set, and move between them as except holes and overlaps cut them.
  const cidr = (): string =>
    chance(0.15)
      ? pick(['fd00::/64', 'fd00::8/125', 'fd00:0:0:1::/64', 'fd00::/63'])
      : pick([
          '10.0.0.0/24',
          '10.0.0.0/28',
          '10.0.0.8/29',
          `10.0.0.${Math.floor(r() * 16)}/32`,
          '0.0.0.0/0',
          '10.0.0.0/22',
          `10.0.${Math.floor(r() * 4)}.0/24`,
          '10.0.1.0/25',
        ]);
  const peer = (): NetworkPolicyPeer => {
    const k = r();
    if (k < 0.3) {
      const c = cidr();
      return {
        ipBlock: {
          cidr: c,
          ...(c.startsWith('10.0.0.0/2') && chance(0.5)
            ? {
                except: [
                  `10.0.${c.endsWith('/22') ? Math.floor(r() * 2) : 0}.${Math.floor(r() * 16)}/32`,
                ],
              }
            : {}),
        },
      };
    }
    if (k < 0.55) return { podSelector: selector() };
    if (k < 0.75) return { namespaceSelector: selector() };
    return { namespaceSelector: selector(), podSelector: selector() };
  };
  const port = (): NetworkPolicyPort => {
    const protocol = pick(['TCP', 'UDP'] as const);
    const k = r();
    if (k < 0.2) return { protocol };
    if (k < 0.45) return { protocol, port: pick(['http', 'dns']) };
    const p = 75 + Math.floor(r() * 10);
    return chance(0.4)
      ? { protocol, port: p, endPort: p + Math.floor(r() * 5) }
      : { protocol, port: p };
  };
  const rule = () => ({
    ...(chance(0.85) ? { peers: Array.from({ length: 1 + Math.floor(r() * 2) }, peer) } : {}),
    ...(chance(0.7) ? { ports: Array.from({ length: 1 + Math.floor(r() * 2) }, port) } : {}),
  });
  const policy = (name: string): NetworkPolicy => {
    const ingress = Array.from({ length: Math.floor(r() * 3) }, rule).map((x) => ({
      ...(x.peers ? { from: x.peers } : {}),
      ...(x.ports ? { ports: x.ports } : {}),
    }));
    const egress = Array.from({ length: Math.floor(r() * 3) }, rule).map((x) => ({
      ...(x.peers ? { to: x.peers } : {}),
      ...(x.ports ? { ports: x.ports } : {}),
    }));
    const types = pick([undefined, ['Ingress'], ['Egress'], ['Ingress', 'Egress']] as const);
    return {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace: pick(NS) },
      spec: {
        podSelector: chance(0.3) ? {} : selector(),
        ...(types ? { policyTypes: [...types] } : {}),
        ingress,
        egress,
      },
    };
  };
  const pod = (id: string): PolicyPod => {
    const n = Number(id.slice(1));
    const labels: Record<string, string> = {};
    for (const k of ['app', 'tier', 'env']) if (chance(0.6)) labels[k] = pick(VALS);
    return {
      id,
      namespace: pick(NS),
      labels,
      ips: [`10.0.${n % 3}.${n}`, ...(chance(0.3) ? [`fd00:0:0:${n % 2}::${n}`] : [])],
      namedPorts: [
        ...(chance(0.5) ? [{ name: 'http', port: 80, protocol: 'TCP' as const }] : []),
        ...(chance(0.4) ? [{ name: 'http', port: 78 + n, protocol: 'TCP' as const }] : []),
        ...(chance(0.4) ? [{ name: 'dns', port: 53, protocol: 'UDP' as const }] : []),
      ],
    };
  };
  const namespace = (name: string): PolicyNamespace => ({
    name,
    labels: chance(0.5) ? { env: pick(VALS) } : { app: pick(VALS) },
  });
  return { pick, chance, policy, pod, namespace };
}

function applyDelta(mirror: PolicyElements, d: ElementDelta): void {
  for (const [set, es] of d.del) {
    for (const e of es) assert.ok(mirror.get(set)!.delete(e), `delete of an absent ${set} ${e}`);
  }
  for (const [set, es] of d.add) {
    for (const e of es) {
      assert.ok(!mirror.get(set)!.has(e), `add of a present ${set} ${e}`);
      mirror.get(set)!.add(e);
    }
  }
}

function sorted(e: PolicyElements): Record<string, string[]> {
  return Object.fromEntries(setNames().map((n) => [n, [...(e.get(n) ?? [])].sort()]));
}

test('IncrementalCompiler matches a full recompile over random add/remove/label sequences', () => {
  for (let seed = 1; seed <= 60; seed++) {
    const r = rng(seed);
    const g = gen(r);
    const inc = new IncrementalCompiler();
    const policies = new Map<string, NetworkPolicy>();
    const pods = new Map<string, PolicyPod>();
    const namespaces = new Map<string, PolicyNamespace>();
    const mirror: PolicyElements = new Map(setNames().map((n) => [n, new Set<string>()]));
    for (let step = 0; step < 40; step++) {
      // One to three changes per flush, as an API call batch would make.
      const batch = 1 + Math.floor(r() * 3);
      const did: string[] = [];
      for (let b = 0; b < batch; b++) {
        const k = r();
        if (k < 0.35) {
          const name = `p${Math.floor(r() * 8)}`;
          const old = [...policies.values()].find((p) => p.metadata.name === name);
          if (old) inc.removePolicy(old.metadata.namespace, name);
          if (old) policies.delete(`${old.metadata.namespace}/${name}`);
          const p = g.policy(name);
          policies.set(`${p.metadata.namespace}/${name}`, p);
          inc.setPolicy(p);
          did.push(`set policy ${name}`);
        } else if (k < 0.5 && policies.size > 0) {
          const p = g.pick([...policies.values()]);
          policies.delete(`${p.metadata.namespace}/${p.metadata.name}`);
          inc.removePolicy(p.metadata.namespace, p.metadata.name);
          did.push(`remove policy ${p.metadata.name}`);
        } else if (k < 0.8) {
          const p = g.pod(`c${1 + Math.floor(r() * 12)}`);
          pods.set(p.id, p);
          inc.setPod(p);
          did.push(`set pod ${p.id}`);
        } else if (k < 0.9 && pods.size > 0) {
          const id = g.pick([...pods.keys()]);
          pods.delete(id);
          inc.removePod(id);
          did.push(`remove pod ${id}`);
        } else if (g.chance(0.8)) {
          const n = g.namespace(g.pick(NS));
          namespaces.set(n.name, n);
          inc.setNamespace(n);
          did.push(`label namespace ${n.name}`);
        } else {
          const name = g.pick(NS);
          namespaces.delete(name);
          inc.removeNamespace(name);
          did.push(`unlabel namespace ${name}`);
        }
      }
      const delta = inc.flush();
      const what = `seed ${seed} step ${step} (${did.join(', ')})`;
      applyDelta(mirror, delta);
      const full = compilePolicies({
        policies: [...policies.values()],
        pods: [...pods.values()],
        namespaces: [...namespaces.values()],
      });
      assert.deepEqual(sorted(inc.elements()), sorted(full), `elements after ${what}`);
      assert.deepEqual(sorted(mirror), sorted(full), `deltas applied after ${what}`);
    }
  }
});

test('IncrementalCompiler: one more policy at 1,000 touches only its own elements', () => {
  const inc = new IncrementalCompiler();
  inc.setPod({
    id: 'idle',
    namespace: 'default',
    labels: { app: 'idle' },
    ips: ['10.9.0.2'],
    namedPorts: [],
  });
  const filler = (i: number): NetworkPolicy => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: `f${i}`, namespace: 'default' },
    spec: {
      podSelector: { matchLabels: { app: 'idle' } },
      ingress: [
        {
          from: [{ ipBlock: { cidr: `10.${(i >> 8) & 255}.${i & 255}.0/24` } }],
          ports: [{ protocol: 'TCP', port: 1000 + i }],
        },
      ],
    },
  });
  for (let i = 0; i < 1000; i++) inc.setPolicy(filler(i));
  inc.flush();
  const rng4 = (): number[] =>
    setNames()
      .filter((n) => n.startsWith('in_rng4_'))
      .map((n) => inc.elements().get(n)!.size);
  assert.equal(
    rng4().reduce((a, b) => a + b, 0),
    1000,
  );
  // The /24s are spread over the 16 shards by their third octet's low nibble; none is wide.
  assert.equal(inc.elements().get('in_rng4_w')!.size, 0);
  assert.ok(Math.max(...rng4()) <= 1000 / 16 + 1, `shard sizes ${rng4().join(' ')}`);
  inc.setPolicy(filler(5000));
  const d = inc.flush();
  assert.deepEqual(
    deltaScript('t', d),
    'add element inet t in_rng4_8 { 10.9.0.2 . 10.19.136.0/24 . tcp . 6000 }\n',
  );
  inc.removePolicy('default', 'f5000');
  assert.equal(deltaScript('t', inc.flush()).split('\n')[0]!.startsWith('delete element'), true);
  // Overlapping ranges still come out disjoint: a /16 covering 256 existing /24s.
  inc.setPolicy({
    ...filler(7000),
    spec: {
      ...filler(7000).spec,
      ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16' } }], ports: [{ port: 1001 }] }],
    },
  });
  const over = inc.flush();
  const cut = [...over.del].filter(([, es]) => es.size > 0).map(([n]) => n);
  assert.ok(cut.length > 1 && cut.every((n) => /^in_rng4_\d+$/.test(n)), `cut in ${cut.join()}`);
  inc.removePolicy('default', 'f7000');
  inc.flush();
  // A block wider than a /24 that nothing cuts is one element of the wide set.
  inc.setPolicy({
    ...filler(7001),
    spec: {
      ...filler(7001).spec,
      ingress: [{ from: [{ ipBlock: { cidr: '10.200.0.0/16' } }], ports: [{ port: 1001 }] }],
    },
  });
  assert.deepEqual(
    deltaScript('t', inc.flush()),
    'add element inet t in_rng4_w { 10.9.0.2 . 10.200.0.0/16 . tcp . 1001 }\n',
  );
  inc.removePolicy('default', 'f7001');
  inc.flush();
  assert.equal(
    rng4().reduce((a, b) => a + b, 0),
    1000,
  );
  assert.equal(inc.elements().get('in_rng4_w')!.size, 0);
});

test('deltaChanges() lists deletions before additions, with each set’s shape', () => {
  const delta: ElementDelta = {
    add: new Map([
      ['in_iso4', new Set(['10.0.0.2'])],
      ['in_rng4_w', new Set(['10.0.0.2 . 10.1.0.0/16 . tcp . 80'])],
      ['eg_pair6', new Set<string>()],
    ]),
    del: new Map([['in_rng4_0', new Set(['10.0.0.2 . 10.1.0.0/24 . tcp . 80'])]]),
  };
  assert.deepEqual(deltaChanges(delta), [
    {
      op: 'delete',
      set: 'in_rng4_0',
      shape: { key: ['ipv4_addr', 'ipv4_addr', 'inet_proto', 'inet_service'], interval: true },
      elements: ['10.0.0.2 . 10.1.0.0/24 . tcp . 80'],
    },
    {
      op: 'add',
      set: 'in_iso4',
      shape: { key: ['ipv4_addr'], interval: false },
      elements: ['10.0.0.2'],
    },
    {
      op: 'add',
      set: 'in_rng4_w',
      shape: { key: ['ipv4_addr', 'ipv4_addr', 'inet_proto', 'inet_service'], interval: true },
      elements: ['10.0.0.2 . 10.1.0.0/16 . tcp . 80'],
    },
  ]);
  assert.deepEqual(deltaChanges({ add: new Map(), del: new Map() }), []);
});

test('setShape() matches the declarations of policyRuleset()', () => {
  const ruleset = policyRuleset('t');
  for (const name of setNames()) {
    const s = setShape(name);
    const decl = `set ${name} { type ${s.key.join(' . ')};${s.interval ? ' flags interval;' : ''} }`;
    assert.ok(ruleset.includes(decl), decl);
  }
  assert.throws(() => setShape('in_foo4'), /Unknown policy set "in_foo4"/);
  assert.throws(() => setShape('in_rng4'), /Unknown policy set "in_rng4"/);
  assert.throws(() => setShape('in_net4_16'), /Unknown policy set "in_net4_16"/);
  assert.throws(() => setShape('in_pair4_0'), /Unknown policy set "in_pair4_0"/);
});

test('shardSet(): one /24 (IPv4) or /64 (IPv6) picks a shard by its low nibble, wider is wide', () => {
  const r = (a: string, b: string): [bigint, bigint] => [IP.parse(a).value, IP.parse(b).value];
  assert.equal(shardSet('in', 'rng', 4, r('10.0.3.0', '10.0.3.255')), 'in_rng4_3');
  assert.equal(shardSet('eg', 'net', 4, r('10.0.29.7', '10.0.29.7')), 'eg_net4_13');
  assert.equal(shardSet('in', 'net', 4, r('10.0.3.0', '10.0.4.0')), 'in_net4_w');
  assert.equal(shardSet('in', 'net', 4, r('0.0.0.0', '255.255.255.255')), 'in_net4_w');
  assert.equal(shardSet('in', 'rng', 6, r('fd00:0:0:1a::1', 'fd00:0:0:1a::ffff')), 'in_rng6_10');
  assert.equal(shardSet('in', 'rng', 6, r('fd00:0:0:1a::', 'fd00:0:0:1b::')), 'in_rng6_w');
  // Every element of a compile lands in the set shardSet names: checked by the goldens and the
  // random sequences above (full compile and incremental agree set by set).
});
