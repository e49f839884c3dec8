/**
 * Kubernetes NetworkPolicy on cnm containers, probed with real TCP connections through the
 * kernel: the seed's frontend → backend:6379, default deny, replies of allowed connections,
 * label changes, policies that exist before a container starts, removal; namespaces (selectors
 * alone and combined, namespace label changes); ipBlock with except to the outside world through
 * NAT; ports and named ports; IPv6 ipBlocks through the interval shards' dispatch (one /64
 * shard, a shard shared by another /64, the wide set). Needs root.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import {
  OUTSIDE_IP,
  api,
  skipUnlessRoot,
  startDaemon,
  tcpConnect,
  withWorld,
  type ApiClient,
  type World,
} from './harness.js';
import { PY, createNetwork, runContainer, served, until, type Served } from './workload.js';

/** A container command listening on every TCP port in argv (accept, then close). */
const LISTEN_PY = String.raw`
import socket, sys, threading
def serve(p):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p)); s.listen(64)
    while True:
        c, _ = s.accept(); c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
threading.Event().wait()
`;

/** Denied probes wait this long. */
const DENY_MS = 1200;

async function listener(
  a: ApiClient,
  name: string,
  network: string,
  labels: Record<string, string>,
  ports: number[] = [80, 6379],
  extra: Record<string, unknown> = {},
): Promise<Served & { addr: string }> {
  const c = served(
    await runContainer(a, {
      Name: name,
      Cmd: [PY, '-c', LISTEN_PY, ...ports.map(String)],
      Networks: [{ Name: network }],
      Labels: labels,
      ...extra,
    }),
  );
  await until(`${name} to listen`, () => tcpConnect(c.ns, '127.0.0.1', ports[0]!, 1000));
  return { ...c, addr: c.ip[network]! };
}

/** Posts policy text (YAML or JSON, unchanged) to `POST /cnm/policies`. */
async function apply(w: World, text: string): Promise<void> {
  const { status, body } = await new Promise<{ status: number; body: string }>(
    (resolve, reject) => {
      const req = http.request(
        {
          socketPath: w.socketPath,
          method: 'POST',
          path: '/cnm/policies',
          headers: { Host: 'cnm' },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(text);
    },
  );
  assert.equal(status, 200, `policy apply: ${body}`);
}

/** `cnm label`'s API call: sets labels of a container. */
async function label(a: ApiClient, name: string, labels: Record<string, string>): Promise<void> {
  const r = await a.post(`/cnm/containers/${name}/labels`, { Set: labels });
  assert.equal(r.status, 204, r.text);
}

/** Probes every `[from, to, port, expected]` row at once and reports all mismatches together. */
async function expectReach(
  rows: [from: Served, to: Served & { addr: string }, port: number, expected: boolean][],
  what: string,
): Promise<void> {
  const got = await Promise.all(
    rows.map(([f, t, port, exp]) => tcpConnect(f.ns, t.addr, port, exp ? 3000 : DENY_MS)),
  );
  const bad = rows
    .map(([f, t, port, exp], i) => ({ s: `${f.name} → ${t.name}:${port}`, exp, got: got[i] }))
    .filter((r) => r.exp !== r.got)
    .map((r) => `${r.s} expected ${r.exp ? 'open' : 'denied'}, got ${r.got ? 'open' : 'denied'}`);
  assert.deepEqual(bad, [], `${what}:\n${bad.join('\n')}`);
}

const BACKEND_POLICY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: backend-allow-frontend
spec:
  podSelector:
    matchLabels:
      app: backend
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: frontend
    ports:
    - protocol: TCP
      port: 6379
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: backend-no-egress
spec:
  podSelector:
    matchLabels:
      app: backend
  policyTypes: [Egress]
`;

test(
  'policy: frontend → backend:6379 only, replies pass, labels, late containers, removal',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  (t) =>
    withWorld(t, async (w) => {
      await startDaemon(w);
      const a = api(w);
      await createNetwork(a, { Name: 'app', Driver: 'bridge' });
      const [backend, frontend, other] = await Promise.all([
        listener(a, 'backend', 'app', { app: 'backend' }),
        listener(a, 'frontend', 'app', { app: 'frontend' }),
        listener(a, 'other', 'app', { app: 'other' }),
      ]);
      await expectReach(
        [
          [frontend, backend, 6379, true],
          [other, backend, 80, true],
          [backend, frontend, 80, true],
        ],
        'before any policy',
      );

      await apply(w, BACKEND_POLICY);
      const ls = await a.get('/cnm/policies');
      assert.deepEqual(
        (ls.body as any[]).map((p) => [p.Name, p.Selected.length]),
        [
          ['backend-allow-frontend', 1],
          ['backend-no-egress', 1],
        ],
      );
      await expectReach(
        [
          [frontend, backend, 6379, true], // allowed; its SYN-ACK is a reply (backend has no egress)
          [frontend, backend, 80, false],
          [other, backend, 6379, false],
          [other, backend, 80, false],
          [backend, frontend, 80, false], // backend is isolated for egress
          [frontend, other, 80, true], // nobody else is isolated
          [other, frontend, 6379, true],
        ],
        'with backend-allow-frontend and backend-no-egress',
      );

      // A label change applies before the API call returns.
      await label(a, 'other', { app: 'frontend' });
      await expectReach([[other, backend, 6379, true]], 'other relabelled as frontend');
      await label(a, 'other', { app: 'other' });
      await expectReach([[other, backend, 6379, false]], 'other relabelled back');

      // A policy applied before a container exists applies when it starts.
      await apply(
        w,
        `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
          "metadata":{"name":"late-deny"},
          "spec":{"podSelector":{"matchLabels":{"app":"late"}},"policyTypes":["Ingress"]}}`,
      );
      const late = await listener(a, 'late', 'app', { app: 'late' });
      await expectReach(
        [
          [frontend, late, 80, false],
          [late, frontend, 80, true],
        ],
        'late container under late-deny',
      );

      // Removing the policies restores connectivity.
      for (const p of ['backend-allow-frontend', 'backend-no-egress', 'late-deny']) {
        const r = await a.delete(`/cnm/policies/default/${p}`);
        assert.equal(r.status, 204, r.text);
      }
      await expectReach(
        [
          [other, backend, 80, true],
          [backend, frontend, 80, true],
          [frontend, late, 80, true],
        ],
        'after removing every policy',
      );
      const set = await exec4(w);
      assert.equal(set, '', 'no policy elements left');
    }),
);

/** Every element left in the policy table's sets, as text. */
async function exec4(w: World): Promise<string> {
  const { exec } = await import('./harness.js');
  const r = await exec(w.hostNs, ['nft', '-j', 'list', 'table', 'inet', 'cnm_policy'], {
    check: true,
  });
  const items = (JSON.parse(r.stdout) as { nftables: Record<string, any>[] }).nftables;
  return items
    .filter((i) => i['set']?.elem)
    .map((i) => `${i['set'].name}: ${JSON.stringify(i['set'].elem)}`)
    .join('\n');
}

test(
  'policy: namespaces, combined selectors, ipBlock with except to the outside, named ports',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  (t) =>
    withWorld(t, async (w) => {
      await startDaemon(w);
      const a = api(w);
      await createNetwork(a, { Name: 'shared', Driver: 'bridge' });
      for (const [ns, env] of [
        ['prod', 'prod'],
        ['dev', 'dev'],
      ]) {
        const r = await a.post('/cnm/namespaces', { Name: ns, Labels: { env } });
        assert.equal(r.status, 201, r.text);
      }
      const db = await listener(
        a,
        'db',
        'shared',
        { app: 'db', 'io.cnm.namespace': 'prod' },
        [80, 5432],
        { PortNames: ['pg=5432/tcp'] },
      );
      const web = await listener(a, 'web', 'shared', { app: 'web', 'io.cnm.namespace': 'prod' });
      const devweb = await listener(a, 'devweb', 'shared', {
        app: 'web',
        'io.cnm.namespace': 'dev',
      });
      const devjob = await listener(a, 'devjob', 'shared', {
        app: 'job',
        'io.cnm.namespace': 'dev',
      });

      // Same namespace only (podSelector {} in the policy's namespace).
      await apply(
        w,
        `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: same-ns, namespace: prod}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {}
`,
      );
      await expectReach(
        [
          [web, db, 80, true],
          [devweb, db, 80, false],
          [devjob, web, 80, false],
          [db, devweb, 80, true], // dev is not isolated
        ],
        'same-ns in prod',
      );

      // namespaceSelector AND podSelector in one peer, on a named port.
      await apply(
        w,
        `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dev-web-to-pg, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {env: dev}}
      podSelector: {matchExpressions: [{key: app, operator: In, values: [web]}]}
    ports:
    - port: pg
`,
      );
      await expectReach(
        [
          [devweb, db, 5432, true],
          [devweb, db, 80, false],
          [devjob, db, 5432, false],
          [web, db, 5432, true],
        ],
        'combined peer on named port',
      );
      // The namespace's labels change: the combined peer no longer matches.
      const nl = await a.post('/cnm/namespaces/dev/labels', { Set: { env: 'test' } });
      assert.equal(nl.status, 200, nl.text);
      await expectReach([[devweb, db, 5432, false]], 'dev relabelled env=test');
      // Two separate peers (OR): every pod of namespaces with env=test, or app=web pods of prod.
      await apply(
        w,
        `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dev-web-to-pg, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {env: test}}
    - podSelector: {matchLabels: {app: web}}
    ports:
    - {protocol: TCP, port: 5000, endPort: 6000}
`,
      );
      await expectReach(
        [
          [devweb, db, 5432, true],
          [devjob, db, 5432, true],
          [devjob, db, 80, false],
        ],
        'separate peers with an endPort range',
      );

      // Egress to the outside world (through NAT): ipBlock with except, and ports.
      const outside = { name: 'outside', addr: OUTSIDE_IP } as Served & { addr: string };
      await expectReach([[devjob, outside, 80, true]], 'outside before egress policy');
      const egress = (except: string) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: job-egress, namespace: dev}
spec:
  podSelector: {matchLabels: {app: job}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: 203.0.113.0/24, except: [${except}]}
    ports:
    - {protocol: TCP, port: 80}
`;
      await apply(w, egress('203.0.113.0/30'));
      await expectReach(
        [
          [devjob, outside, 80, false],
          [devjob, web, 80, false],
        ],
        'outside excepted',
      );
      await apply(w, egress('203.0.113.128/25'));
      await expectReach(
        [
          [devjob, outside, 80, true],
          [devjob, outside, 7, false],
          [devweb, outside, 7, true],
        ],
        'outside allowed on port 80 only',
      );

      const ns = await a.get('/cnm/namespaces');
      assert.equal(ns.status, 200);
      const prod = (ns.body as any[]).find((n) => n.Name === 'prod');
      assert.equal(prod.Containers, 2);
      assert.equal(prod.Policies, 2);
      assert.equal((await a.delete('/cnm/namespaces/prod')).status, 409, 'prod is in use');
    }),
);

/** Like LISTEN_PY, on IPv6 (`::`). */
const LISTEN6_PY = LISTEN_PY.replace(
  's = socket.socket();',
  's = socket.socket(socket.AF_INET6);',
).replace('s.bind(("0.0.0.0", p))', 's.bind(("::", p))');

test(
  'policy: IPv6 ipBlocks in one /64 shard and in the wide set, through the shard dispatch',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  (t) =>
    withWorld(t, async (w) => {
      await startDaemon(w);
      const a = api(w);
      // One /56 on the bridge, containers in different /64s: fd85:0:0:1::/64 and
      // fd85:0:0:11::/64 share shard 1 (the /64 number's low nibble), fd85:0:0:2::/64 is shard 2.
      await createNetwork(a, {
        Name: 'v6',
        EnableIPv6: true,
        IPAM: { Config: [{ Subnet: '10.85.6.0/24' }, { Subnet: 'fd85::/56' }] },
      });
      assert.ok(LISTEN6_PY.includes('AF_INET6') && LISTEN6_PY.includes('"::"'), 'IPv6 listener');
      const run = async (name: string, ip6: string, labels: Record<string, string>) => {
        const c = served(
          await runContainer(a, {
            Name: name,
            Cmd: [PY, '-c', LISTEN6_PY, '80', '6379'],
            Networks: [{ Name: 'v6', IPv6Address: ip6 }],
            Labels: labels,
          }),
        );
        return { ...c, addr: ip6 };
      };
      const srv = await run('srv', 'fd85::10', { app: 'srv' });
      const c1 = await run('c1', 'fd85:0:0:1::11', { app: 'c' });
      const c2 = await run('c2', 'fd85:0:0:2::12', { app: 'c' });
      const c3 = await run('c3', 'fd85:0:0:11::13', { app: 'c' });
      // Without a policy everything is reachable (also waits for IPv6 DAD to finish).
      for (const c of [c1, c2, c3]) {
        await until(`${c.name} → srv over IPv6`, () => tcpConnect(c.ns, srv.addr, 80, 1000));
      }
      await apply(
        w,
        `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: srv-v6}
spec:
  podSelector: {matchLabels: {app: srv}}
  ingress:
  - from: [{ipBlock: {cidr: "fd85:0:0:1::/64"}}]
    ports: [{port: 80}]
  - from: [{ipBlock: {cidr: "fd85:0:0:2::/63"}}]
    ports: [{port: 6379}]
`,
      );
      await expectReach(
        [
          [c1, srv, 80, true], // shard 1
          [c1, srv, 6379, false],
          [c3, srv, 80, false], // shard 1 too, outside the /64
          [c3, srv, 6379, false],
          [c2, srv, 6379, true], // the /63 spans two /64s: the wide set
          [c2, srv, 80, false],
        ],
        'IPv6 ipBlocks',
      );
      // The elements sit where the compiler says: the /64 in shard 1, the /63 in the wide set.
      const sets = await exec4(w);
      assert.match(sets, /^in_rng6_1: .*"addr":"fd85:0:0:1::","len":64\b/m, sets);
      assert.match(sets, /^in_rng6_w: .*"addr":"fd85:0:0:2::","len":63\b/m, sets);
    }),
);

/** A bridge's own br_netfilter switch (`nf_call_iptables`), as `ip -d -j link` reports it. */
async function bridgeNf(w: World, bridge: string): Promise<number | undefined> {
  const { exec } = await import('./harness.js');
  const r = await exec(w.hostNs, ['ip', '-d', '-j', 'link', 'show', bridge], { check: true });
  const [l] = JSON.parse(r.stdout) as { linkinfo?: { info_data?: Record<string, number> } }[];
  return l?.linkinfo?.info_data?.['nf_call_iptables'];
}

/** Packets the test's own counter on the inet forward hook has seen (table `cnmt_probe`). */
async function forwarded(w: World): Promise<number> {
  const { exec } = await import('./harness.js');
  const r = await exec(w.hostNs, ['nft', '-j', 'list', 'chain', 'inet', 'cnmt_probe', 'probe'], {
    check: true,
  });
  const items = (JSON.parse(r.stdout) as { nftables: Record<string, any>[] }).nftables;
  const rule = items.find((i) => i['rule'])?.['rule'];
  return (rule.expr as Record<string, any>[]).find((e) => e['counter'])!['counter'].packets;
}

test(
  'policy: bridged frames pass netfilter only on bridges with an isolated container',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  (t) =>
    withWorld(t, async (w) => {
      const { exec } = await import('./harness.js');
      await startDaemon(w);
      const a = api(w);
      const sysctl = async (k: string): Promise<string> =>
        (await exec(w.hostNs, ['sysctl', '-n', k], { check: true })).stdout.trim();
      assert.equal(await sysctl('net.bridge.bridge-nf-call-iptables'), '0', 'namespace switch off');
      assert.equal(await sysctl('net.bridge.bridge-nf-call-ip6tables'), '0');
      await createNetwork(a, {
        Name: 'quiet',
        Options: { 'com.docker.network.bridge.name': 'cnmbrq' },
      });
      await createNetwork(a, {
        Name: 'app',
        Options: { 'com.docker.network.bridge.name': 'cnmbra' },
      });
      const [q1, q2, backend, client] = await Promise.all([
        listener(a, 'q1', 'quiet', { app: 'q' }),
        listener(a, 'q2', 'quiet', { app: 'q' }),
        listener(a, 'backend', 'app', { app: 'backend' }),
        listener(a, 'client', 'app', { app: 'client' }),
      ]);
      assert.equal(await bridgeNf(w, 'cnmbrq'), 0);
      assert.equal(await bridgeNf(w, 'cnmbra'), 0);
      // The test's own counter on the inet forward hook (its own table, in the world's host
      // namespace): bridged frames only reach it through br_netfilter.
      await exec(
        w.hostNs,
        [
          'nft',
          'add table inet cnmt_probe; add chain inet cnmt_probe probe { type filter hook forward priority 100; }; add rule inet cnmt_probe probe counter',
        ],
        { check: true },
      );
      await expectReach(
        [
          [q1, q2, 80, true],
          [client, backend, 80, true],
        ],
        'no policy',
      );
      assert.equal(await forwarded(w), 0, 'no bridged frame passed the inet hooks');

      await apply(
        w,
        `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
          "metadata":{"name":"backend-6379"},
          "spec":{"podSelector":{"matchLabels":{"app":"backend"}},
                  "ingress":[{"ports":[{"protocol":"TCP","port":6379}]}]}}`,
      );
      assert.equal(await bridgeNf(w, 'cnmbra'), 1, 'the isolated container’s bridge');
      assert.equal(await bridgeNf(w, 'cnmbrq'), 0, 'the other bridge stays off');
      await expectReach(
        [
          [client, backend, 80, false],
          [client, backend, 6379, true],
          [q1, q2, 80, true],
        ],
        'backend isolated',
      );
      const afterApp = await forwarded(w);
      assert.ok(afterApp > 0, 'frames of the filtered bridge pass the inet hooks');
      await expectReach([[q1, q2, 6379, true]], 'quiet bridge');
      assert.equal(await forwarded(w), afterApp, 'the other bridge’s frames still do not');

      // Drift repair re-makes a deleted bridge with the switch on; the policy still holds.
      await exec(w.hostNs, ['ip', 'link', 'del', 'cnmbra'], { check: true });
      await until('the bridge re-made with br_netfilter on', async () => {
        return (await bridgeNf(w, 'cnmbra').catch(() => undefined)) === 1;
      });

      const r = await a.delete('/cnm/policies/default/backend-6379');
      assert.equal(r.status, 204, r.text);
      assert.equal(await bridgeNf(w, 'cnmbra'), 0, 'off once nothing is isolated');
      await exec(w.hostNs, ['nft', 'delete table inet cnmt_probe'], { check: true });
    }),
);
