/**
 * Network policy benchmark: TCP throughput (iperf3, one stream) and new TCP connections per
 * second between two containers with 0, 1,000 and 10,000 NetworkPolicies installed, measured in
 * one run in one world. The server is isolated for ingress and allowed by one policy, so every
 * SYN goes through the policy chain's lookups; the other policies select an idle container with
 * their own ipBlock and port, so their elements exist (interval set of 1k / 10k elements) but do
 * not match (their /24s spread over the interval set's 16 shards, ≈ 625 elements each at 10,000,
 * see docs/policy.md). Also: the time to add one more policy with 10,000 installed, and to remove it
 * (API round trip: parse, store, incremental compile, nfnetlink element batch), median of 20.
 *
 * Run as root after `npm run build`: `npx tsx bench/policy/run.ts`. Prints ratios against 0.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  api,
  createWorld,
  destroyWorld,
  exec,
  startDaemon,
  tcpConnect,
  type World,
} from '../../test/integration/harness.js';
import { PY, createNetwork, runContainer, served, until } from '../../test/integration/workload.js';

const ADDS = 20;

const LISTEN_PY = String.raw`
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()
`;

/** Connects (and resets: SO_LINGER 0 leaves no TIME_WAIT) in a loop; prints connections/s. */
const CONNECT_PY = String.raw`
import socket, struct, sys, time
ip, port, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
n = 0; t0 = time.monotonic(); end = t0 + dur
while time.monotonic() < end:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.connect((ip, port)); s.close(); n += 1
print(n / (time.monotonic() - t0))
`;

function policy(name: string, spec: unknown): unknown {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name }, spec };
}

function filler(i: number): unknown {
  return policy(`filler-${i}`, {
    podSelector: { matchLabels: { app: 'idle' } },
    ingress: [
      {
        from: [{ ipBlock: { cidr: `10.${(i >> 8) & 255}.${i & 255}.0/24` } }],
        ports: [{ protocol: 'TCP', port: 1000 + (i % 60000) }],
      },
    ],
  });
}

async function remove(w: World, name: string): Promise<void> {
  const r = await api(w).delete(`/cnm/policies/default/${name}`);
  if (r.status !== 204) throw new Error(`remove ${name}: ${r.status} ${r.text}`);
}

async function post(w: World, items: unknown[]): Promise<void> {
  const body = JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
  await new Promise<void>((resolve, reject) => {
    const req = http.request(
      { socketPath: w.socketPath, method: 'POST', path: '/cnm/policies', headers: { Host: 'cnm' } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve()
            : reject(new Error(`apply: ${res.statusCode} ${text}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The compile and kernel times of cnmd's "Policy sync" debug lines in `log` (the kernel part is
 * the nfnetlink element batch), and how often cnmd fell back to reloading the whole table.
 */
function syncTimes(log: string): { compile: number[]; nft: number[]; reloads: number } {
  const out = { compile: [] as number[], nft: [] as number[], reloads: 0 };
  for (const m of log.matchAll(/Policy sync: .*compile ([\d.]+) ms, kernel ([\d.]+) ms/g)) {
    out.compile.push(Number(m[1]));
    out.nft.push(Number(m[2]));
  }
  out.reloads = (log.match(/Policy element update failed/g) ?? []).length;
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const w = await createWorld({ name: 'bench-policy', noServers: true });
  try {
    await startDaemon(w, ['--log-level', 'debug']);
    const a = api(w);
    await createNetwork(a, { Name: 'bench', Driver: 'bridge' });
    const srv = served(
      await runContainer(a, {
        Name: 'srv',
        // The connect-rate listener, and an iperf3 server for throughput.
        Cmd: ['sh', '-c', `iperf3 -s -D -p 5201 && exec ${PY} -c '${LISTEN_PY}' 80`],
        Networks: [{ Name: 'bench' }],
        Labels: { app: 'srv' },
      }),
    );
    const cli = served(
      await runContainer(a, {
        Name: 'cli',
        Cmd: ['sleep', '3600'],
        Networks: [{ Name: 'bench' }],
        Labels: { app: 'cli' },
      }),
    );
    await runContainer(a, {
      Name: 'idle',
      Cmd: ['sleep', '3600'],
      Networks: [{ Name: 'bench' }],
      Labels: { app: 'idle' },
    });
    await until('srv to listen', () => tcpConnect(srv.ns, '127.0.0.1', 80, 1000));
    await post(w, [
      policy('srv-from-cli', {
        podSelector: { matchLabels: { app: 'srv' } },
        ingress: [
          {
            from: [{ podSelector: { matchLabels: { app: 'cli' } } }],
            ports: [{ port: 80 }, { port: 5201 }],
          },
        ],
      }),
    ]);
    const rate = async (): Promise<number> => {
      const r = await exec(cli.ns, [PY, '-c', CONNECT_PY, srv.ip['bench']!, '80', '2'], {
        timeoutMs: 20_000,
        check: true,
      });
      return Number(r.stdout.trim());
    };
    const throughput = async (): Promise<number> => {
      const r = await exec(
        cli.ns,
        ['iperf3', '-c', srv.ip['bench']!, '-p', '5201', '-t', '2', '-J'],
        {
          timeoutMs: 20_000,
          check: true,
        },
      );
      return (JSON.parse(r.stdout) as any).end.sum_received.bits_per_second / 1e9;
    };
    await until('iperf3 server', async () => tcpConnect(cli.ns, srv.ip['bench']!, 5201, 1000));
    await rate(); // warm-up
    const results: { n: number; rates: number[]; gbps: number[] }[] = [];
    let installed = 0;
    for (const n of [0, 1000, 10000]) {
      const t0 = performance.now();
      if (n > installed) {
        const items = [];
        for (let i = installed; i < n; i++) items.push(filler(i));
        await post(w, items);
        installed = n;
      }
      const applyMs = performance.now() - t0;
      const rates: number[] = [];
      const gbps: number[] = [];
      // Interleaved, so drift in the machine's load hits both measures alike.
      for (let i = 0; i < 5; i++) {
        rates.push(await rate());
        gbps.push(await throughput());
      }
      results.push({ n, rates, gbps });
      console.log(
        `${n} policies: installed in ${applyMs.toFixed(0)} ms; connect/s ${rates.map((r) => r.toFixed(0)).join(' ')}; Gbit/s ${gbps.map((g) => g.toFixed(2)).join(' ')}`,
      );
    }
    // One more policy at 10,000, and its removal: API round trip + incremental compile + nft.
    const adds: number[] = [];
    const dels: number[] = [];
    let logAt = (await readFile(w.logFile)).length;
    for (let i = 0; i < ADDS; i++) {
      const t0 = performance.now();
      await post(w, [filler(20000 + i)]);
      adds.push(performance.now() - t0);
    }
    const addSyncs = syncTimes((await readFile(w.logFile)).subarray(logAt).toString());
    logAt = (await readFile(w.logFile)).length;
    for (let i = 0; i < ADDS; i++) {
      const t0 = performance.now();
      await remove(w, `filler-${20000 + i}`);
      dels.push(performance.now() - t0);
    }
    const delSyncs = syncTimes((await readFile(w.logFile)).subarray(logAt).toString());
    const base = median(results[0]!.rates);
    const baseT = median(results[0]!.gbps);
    console.log('\npolicies  connect/s  ratio  Gbit/s  ratio   (medians of 5 x 2 s each)');
    for (const r of results) {
      const m = median(r.rates);
      const g = median(r.gbps);
      console.log(
        `${String(r.n).padStart(8)}  ${m.toFixed(0).padStart(9)}  ${(m / base).toFixed(3)}  ${g.toFixed(2).padStart(6)}  ${(g / baseT).toFixed(3)}`,
      );
    }
    console.log(
      `\nadd one policy at 10,000: median ${median(adds).toFixed(2)} ms over ${ADDS} (min ${Math.min(...adds).toFixed(2)}, max ${Math.max(...adds).toFixed(2)})`,
    );
    console.log(
      `remove one policy at 10,001: median ${median(dels).toFixed(2)} ms over ${ADDS} (min ${Math.min(...dels).toFixed(2)}, max ${Math.max(...dels).toFixed(2)})`,
    );
    console.log(
      `  inside cnmd (its debug log): compile median ${median(addSyncs.compile).toFixed(2)} ms, netlink batch median ${median(addSyncs.nft).toFixed(2)} ms, full reloads ${addSyncs.reloads}`,
    );
    console.log(
      `  removal inside cnmd: compile median ${median(delSyncs.compile).toFixed(2)} ms, netlink batch median ${median(delSyncs.nft).toFixed(2)} ms, full reloads ${delSyncs.reloads}`,
    );
    console.log(
      `load average at the end: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' / ')}`,
    );
    // The filler elements, per set: the shards of in_rng4 (and its wide set, empty here).
    const listed = await exec(w.hostNs, ['nft', '-j', 'list', 'table', 'inet', 'cnm_policy'], {
      check: true,
    });
    const sizes: string[] = [];
    for (const item of (JSON.parse(listed.stdout) as { nftables: Record<string, any>[] })
      .nftables) {
      const set = item['set'];
      if (typeof set?.name === 'string' && set.name.startsWith('in_rng4_'))
        sizes.push(`${set.name.slice(8)}:${(set.elem ?? []).length}`);
    }
    console.log(`in_rng4 elements per shard (w = wide): ${sizes.join(' ')}`);
  } finally {
    await destroyWorld(w);
  }
}

await main();
