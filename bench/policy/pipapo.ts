/**
 * Kernel cost of one element change in a concatenated interval (pipapo) set of the policy
 * `rng` shape (self . peer range . l4proto . port range), against the set's size N. Uses the
 * daemon's own code path (HostKernel.nftElements: one nfnetlink batch) in the netns it runs in.
 *
 * Run as root in a throwaway netns:
 *   ip netns add cnmt-pipapo
 *   nsenter --net=/run/netns/cnmt-pipapo npx tsx bench/policy/pipapo.ts [N,N,…] [sets]
 *   ip netns del cnmt-pipapo
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { loadAddon } from '../../src/kernel/native-addon.js';
import { HostKernel } from '../../src/kernel/worker.js';
import type { NftSetShape } from '../../src/kernel/types.js';

const SIZES = (process.argv[2] ?? '0,500,1000,2000,5000,10000').split(',').map(Number);
/** The N elements are spread over this many sets of the same shape (as the policy shards). */
const SETS = Number(process.argv[3] ?? '1');
const REPS = 21;
const shape: NftSetShape = {
  key: ['ipv4_addr', 'ipv4_addr', 'inet_proto', 'inet_service'],
  interval: true,
};
const host = new HostKernel(
  loadAddon(new URL('../../build/Release/cnm_native.node', import.meta.url).pathname),
);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function filler(i: number): string {
  return `10.1.0.3 . 10.${(i >> 8) & 255}.${i & 255}.0/24 . tcp . ${1000 + i}`;
}

console.log(`${SETS} set(s); one element added to and deleted from the first`);
console.log('N        add ms (median, min-max)   delete ms (median, min-max)');
for (const n of SIZES) {
  const decls = Array.from(
    { length: SETS },
    (_, j) => `  set s${j} { type ${shape.key.join(' . ')}; flags interval; }\n`,
  );
  host.nftRun(
    `table inet cnmt_pipapo {}\ndelete table inet cnmt_pipapo\ntable inet cnmt_pipapo {\n${decls.join('')}}\n`,
  );
  for (let j = 0; j < SETS; j++) {
    const mine = Array.from({ length: n }, (_, i) => i).filter((i) => i % SETS === j);
    for (let i = 0; i < mine.length; i += 2000)
      host.nftElements('inet', 'cnmt_pipapo', [
        { op: 'add', set: `s${j}`, shape, elements: mine.slice(i, i + 2000).map(filler) },
      ]);
  }
  const adds: number[] = [];
  const dels: number[] = [];
  for (let k = 0; k < REPS; k++) {
    const e = `10.1.0.4 . 172.16.${k}.0/24 . tcp . 80`;
    let t0 = performance.now();
    host.nftElements('inet', 'cnmt_pipapo', [{ op: 'add', set: 's0', shape, elements: [e] }]);
    adds.push(performance.now() - t0);
    t0 = performance.now();
    host.nftElements('inet', 'cnmt_pipapo', [{ op: 'delete', set: 's0', shape, elements: [e] }]);
    dels.push(performance.now() - t0);
  }
  const f = (xs: number[]) =>
    `${median(xs).toFixed(3)} (${Math.min(...xs).toFixed(3)}-${Math.max(...xs).toFixed(3)})`;
  console.log(`${String(n).padEnd(8)} ${f(adds).padEnd(26)} ${f(dels)}`);
}
host.nftRun('delete table inet cnmt_pipapo\n');
host.shutdown();
console.log(
  `load average: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' / ')}`,
);
