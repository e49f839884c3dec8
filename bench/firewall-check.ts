/**
 * Cost of one pass of the bridge driver's nftables drift check at N endpoints: the two JSON
 * listings on the kernel thread (as `BridgeDriver.repairFirewall()` does them) and, on the
 * event loop, parsing them into element texts and comparing with the mirror's intended shape.
 * Also checks that an intact ruleset compares equal (no reload loop from a text mismatch) and
 * that an element changed in place is found. Then the same for the policy table (`inet
 * cnm_policy`, `PolicyEngine.verify()`'s steps) with 3N elements as a policy over N endpoints
 * makes them (N isolated, N peer-port pairs, N address-range elements in an interval set), and
 * the cost of both checks' fast path (a listing byte-identical to the last equal one).
 *
 * Runs itself in a fresh network namespace (`unshare -n`); root only.
 * Run: node --import tsx bench/firewall-check.ts [N]
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import {
  FirewallState,
  canonicalElementText,
  compareFirewallShape,
  formatElementChanges,
  parseFirewallShape,
  rulesetShape,
} from '../src/drivers/bridge/firewall.js';
import { createKernel } from '../src/kernel/kernel.js';
import type { Kernel } from '../src/kernel/types.js';
import { fullScript, policyRuleset, setNames } from '../src/policy/compile.js';

const N = Number(process.argv[2] ?? 1000);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** `PolicyEngine.verify()`'s steps over a policy table with 3N elements. */
async function policyPass(k: Kernel): Promise<Record<string, unknown>> {
  const ip = (i: number): string => `10.${100 + (i % 10)}.${(i >> 7) & 255}.${(i & 127) + 1}`;
  const elems = new Map<string, Set<string>>([
    ['in_iso4', new Set(Array.from({ length: N }, (_, i) => ip(i)))],
    [
      'in_port4',
      new Set(Array.from({ length: N }, (_, i) => `${ip(i)} . ${ip(i + 1)} . tcp . 80`)),
    ],
    ['in_net4_w', new Set(Array.from({ length: N }, (_, i) => `${ip(i)} . 192.168.0.0/16`))],
  ]);
  await k.nftRun(fullScript('cnm_policy', elems));
  const listMs: number[] = [];
  const compareMs: number[] = [];
  const fastMs: number[] = [];
  let memo = new Map<string, string>();
  let prev: { listed: string; intent: string[][] } | undefined;
  for (let r = 0; r < 15; r++) {
    const t0 = performance.now();
    const listed = await k.nftRun('list table inet cnm_policy', { json: true });
    const t1 = performance.now();
    const intent = setNames().map((n) => [...(elems.get(n) ?? [])]);
    const same =
      prev?.listed === listed &&
      intent.every(
        (a, i) =>
          a.length === prev!.intent[i]!.length && a.every((e, j) => e === prev!.intent[i]![j]),
      );
    const t2 = performance.now();
    if (r > 0 && !same) throw new Error('policy listing changed between passes');
    prev = { listed, intent };
    const want = rulesetShape(policyRuleset('cnm_policy'));
    want.elements = new Map();
    const next = new Map<string, string>();
    for (const name of setNames()) {
      const texts = [...(elems.get(name) ?? [])].map((e) => {
        const text = memo.get(e) ?? canonicalElementText(e);
        next.set(e, text);
        return text;
      });
      want.sets.set(`inet ${name}`, texts.length);
      want.elements.set(`inet ${name}`, texts.sort());
    }
    memo = next;
    const drift = compareFirewallShape(want, parseFirewallShape([listed]));
    const t3 = performance.now();
    if (drift.reload !== undefined || drift.short.length > 0) {
      throw new Error(`intact policy table compared unequal: ${JSON.stringify(drift)}`);
    }
    listMs.push(t1 - t0);
    fastMs.push(t2 - t1);
    compareMs.push(t3 - t2);
  }
  return {
    policyElements: 3 * N,
    policyListMsMedian: +median(listMs).toFixed(1),
    policyParseCompareMsMedian: +median(compareMs).toFixed(1),
    policyUnchangedCheckMsMedian: +median(fastMs.slice(1)).toFixed(2),
  };
}

async function main(): Promise<void> {
  if (process.env['CNM_BENCH_NETNS'] !== '1') {
    execFileSync(
      'unshare',
      ['-n', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
      {
        stdio: 'inherit',
        env: { ...process.env, CNM_BENCH_NETNS: '1' },
      },
    );
    return;
  }
  const k = await createKernel();
  try {
    const fw = new FirewallState('cnm');
    const script = [fw.fullScript()];
    const nets = 10;
    for (let n = 0; n < nets; n++) {
      script.push(
        fw.addNetwork({
          bridge: `cnmbr-${n}`,
          subnet4: `10.${100 + n}.0.0/16`,
          subnet6: `fd00:${n + 1}::/64`,
          internal: false,
          icc: n % 2 === 0,
          masquerade: true,
        }),
      );
    }
    for (let i = 0; i < N; i++) {
      const n = i % nets;
      const ip = `10.${100 + n}.${(i >> 7) & 255}.${(i & 127) + 1}`;
      const port = `cnmv${i.toString(16).padStart(6, '0')}`;
      script.push(
        ...formatElementChanges(
          'bridge',
          fw.table,
          fw.addEndpoint({
            port,
            mac: `02:42:0a:${n.toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
            ipv4: ip,
            ...(i % 4 === 0 ? { ipv6: `fd00:${n + 1}::${(i + 2).toString(16)}` } : {}),
          }),
        ),
      );
      if (i % 2 === 0) {
        script.push(
          fw.addPorts([
            { hostIp: '', hostPort: 10000 + i, proto: 'tcp', containerIp: ip, containerPort: 80 },
          ]),
        );
      }
    }
    await k.nftRun(script.filter((l) => l !== '').join('\n'));
    const list = (): Promise<string[]> =>
      Promise.all([
        k.nftRun('list table inet cnm', { json: true }),
        k.nftRun('list table bridge cnm', { json: true }),
      ]);
    const listMs: number[] = [];
    const compareMs: number[] = [];
    const sameMs: number[] = [];
    let prev: string[] | undefined;
    let identical = 0;
    let elements = 0;
    for (let r = 0; r < 15; r++) {
      const t0 = performance.now();
      const outs = await list();
      const t1 = performance.now();
      const want = fw.expectedShape();
      const tw = performance.now();
      const have = parseFirewallShape(outs);
      const th = performance.now();
      const drift = compareFirewallShape(want, have);
      const t2 = performance.now();
      if (process.env['CNM_BENCH_SPLIT'])
        console.log({ want: tw - t1, have: th - tw, cmp: t2 - th });
      if (drift.reload !== undefined || drift.short.length > 0) {
        throw new Error(`intact ruleset compared unequal: ${JSON.stringify(drift)}`);
      }
      // The driver's fast path: a listing byte-identical to the last one that compared equal,
      // with the mirror unchanged, needs no parse.
      const ts = performance.now();
      const same = prev !== undefined && outs.every((o, i) => o === prev![i]);
      sameMs.push(performance.now() - ts);
      if (same) identical++;
      prev = outs;
      listMs.push(t1 - t0);
      compareMs.push(t2 - t1);
      elements = [...parseFirewallShape(outs).sets.values()].reduce((a, b) => a + b, 0);
    }
    // An element changed in place: same key, other value, same count.
    await k.nftRun(
      'delete element inet cnm pm4any { tcp . 10000 }\nadd element inet cnm pm4any { tcp . 10000 : 10.99.99.99 . 80 }',
    );
    const changed = compareFirewallShape(fw.expectedShape(), parseFirewallShape(await list()));
    console.log(
      JSON.stringify({
        endpoints: N,
        elements,
        listMsMedian: +median(listMs).toFixed(1),
        parseCompareMsMedian: +median(compareMs).toFixed(1),
        unchangedListingCheckMsMedian: +median(sameMs.slice(1)).toFixed(2),
        identicalListings: `${identical} of ${listMs.length - 1}`,
        changedInPlace: changed.reload ?? 'NOT FOUND',
        ...(await policyPass(k)),
      }),
    );
  } finally {
    await k.close();
  }
}

await main();
