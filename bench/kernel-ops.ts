/**
 * Endpoint setup cost through createKernel() against iproute2 in the same run.
 *
 * Per endpoint: veth (host end up on a bridge in a "host" netns, peer eth0 born in the sandbox
 * netns) + peer up + address + default route. Sandboxes are created outside the timed section.
 * Everything happens in namespaces made here and removed at the end; root only.
 *
 * Run: node --import tsx bench/kernel-ops.ts [N]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createKernel } from '../src/kernel/kernel.js';

const N = Number(process.argv[2] ?? 50);
const tag = `cnmt-k-${process.pid}`;
const dir = `/tmp/${tag}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('skipped: needs root (creates network namespaces)');
    return;
  }
  fs.mkdirSync(dir, { recursive: true });
  const k = await createKernel();
  const made: string[] = [];
  const ipNs: string[] = [];
  try {
    const host = `${dir}/${tag}-host`;
    await k.netnsAdd(host);
    made.push(host);
    await k.linkAdd({ kind: 'bridge', name: 'br0', up: true }, host);
    await k.addrAdd('br0', '10.88.0.1/16', host);

    // cnm: kernel API.
    const cnm: number[] = [];
    for (let i = 0; i < N; i++) {
      const sb = `${dir}/${tag}-s${i}`;
      await k.netnsAdd(sb);
      made.push(sb);
      const t0 = performance.now();
      await k.linkAdd(
        {
          kind: 'veth',
          name: `vh${i}`,
          up: true,
          master: 'br0',
          peer: { name: 'eth0', ns: sb, up: true },
        },
        host,
      );
      await k.addrAdd('eth0', `10.88.${1 + (i >> 8)}.${i & 255}/16`, sb);
      await k.routeAdd({ family: 4, dst: 'default', gateway: '10.88.0.1' }, sb);
      cnm.push(performance.now() - t0);
    }

    // Baseline: iproute2, best non-batched form (2 processes per endpoint).
    const ipHost = `${tag}-iphost`;
    execFileSync('ip', ['netns', 'add', ipHost]);
    ipNs.push(ipHost);
    execFileSync('ip', ['-n', ipHost, 'link', 'add', 'br0', 'up', 'type', 'bridge']);
    execFileSync('ip', ['-n', ipHost, 'addr', 'add', '10.88.0.1/16', 'dev', 'br0']);
    const ip: number[] = [];
    for (let i = 0; i < N; i++) {
      const sb = `${tag}-i${i}`;
      execFileSync('ip', ['netns', 'add', sb]);
      ipNs.push(sb);
      const t0 = performance.now();
      execFileSync('ip', [
        '-n',
        ipHost,
        'link',
        'add',
        `vh${i}`,
        'up',
        'master',
        'br0',
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        sb,
      ]);
      execFileSync('ip', ['-n', sb, '-batch', '-'], {
        input: [
          'link set eth0 up',
          `addr add 10.88.${1 + (i >> 8)}.${i & 255}/16 dev eth0`,
          'route add default via 10.88.0.1',
        ].join('\n'),
      });
      ip.push(performance.now() - t0);
    }

    const m = median(cnm);
    const mi = median(ip);
    console.log(`endpoint setup, N=${N} (veth+peer in netns, peer up, addr, default route)`);
    console.log(
      `  createKernel(): median ${m.toFixed(2)} ms (p10 ${pct(cnm, 0.1).toFixed(2)}, p90 ${pct(cnm, 0.9).toFixed(2)})`,
    );
    console.log(
      `  ip (2 execs):   median ${mi.toFixed(2)} ms (p10 ${pct(ip, 0.1).toFixed(2)}, p90 ${pct(ip, 0.9).toFixed(2)})`,
    );
    console.log(`  ratio ip / cnm: ${(mi / m).toFixed(1)}x`);
  } finally {
    for (const p of made.reverse()) await k.netnsDel(p).catch(() => {});
    for (const n of ipNs) {
      try {
        execFileSync('ip', ['netns', 'del', n]);
      } catch {
        // Already gone: nothing to clean.
      }
    }
    await k.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
