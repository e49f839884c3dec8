/**
 * What the kernel's NAT costs local traffic: loopback in a bare namespace against loopback in a
 * namespace with `cnm bench`'s host-ceiling masquerade rule (which turns on conntrack and
 * registers the NAT hooks that every local packet then passes), the two measured back to back
 * in each repetition, in a random order. This is why `cnm bench`'s host ceiling is a namespace
 * that NATs: cnm's host network is one, as is every host running containers with NAT, and a
 * bare namespace would charge the price of NAT itself to cnm.
 *
 * Metrics: TCP round trip p50 (sockperf ping-pong, 64 B) and UDP 64 B packets/s received
 * (iperf3), as `cnm bench` measures them. Builds two namespaces of its own (`cnmb-nat-<pid>-*`),
 * removes them at the end; root only.
 *
 * Run: node --import tsx bench/nat-hooks.ts [--repeat 8] [--duration 3]
 */
import { NAT_HOST_RULESET } from '../src/cli/bench/ceiling.js';
import { parseIperf3Udp, parseSockperf } from '../src/cli/bench/parse.js';
import { mustRun, runProc, startBackground, type BackgroundProc } from '../src/cli/bench/proc.js';
import { median } from './stats.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const REPEAT = arg('--repeat', 8);
const SECS = String(arg('--duration', 3));
const PREFIX = `cnmb-nat-${process.pid}`;
const SIDES = { bare: `${PREFIX}-bare`, nat: `${PREFIX}-nat` } as const;
type Side = keyof typeof SIDES;

const NAT_RULESET = `${NAT_HOST_RULESET.join('\n')}\n`;

const inNs = (side: Side, argv: string[]): string[] => [
  'nsenter',
  `--net=/run/netns/${SIDES[side]}`,
  '--',
  ...argv,
];

async function measure(side: Side): Promise<{ rrP50Us: number; udpPps: number }> {
  const rr = await runProc(
    inNs(side, [
      'sockperf',
      'ping-pong',
      '--tcp',
      '-i',
      '127.0.0.1',
      '-p',
      '21111',
      '-m',
      '64',
      '-t',
      SECS,
      '--full-rtt',
    ]),
  );
  const udp = await mustRun(
    inNs(side, [
      'iperf3',
      '-c',
      '127.0.0.1',
      '-p',
      '25201',
      '-u',
      '-l',
      '64',
      '-b',
      '1G',
      '-t',
      SECS,
      '-J',
    ]),
  );
  // sockperf writes its percentiles to stderr.
  return { rrP50Us: parseSockperf(rr.stdout + rr.stderr).p50Us, udpPps: parseIperf3Udp(udp) };
}

async function main(): Promise<void> {
  const made: string[] = [];
  const procs: BackgroundProc[] = [];
  try {
    for (const side of Object.keys(SIDES) as Side[]) {
      await mustRun(['ip', 'netns', 'add', SIDES[side]]);
      made.push(SIDES[side]);
      await mustRun(['ip', '-n', SIDES[side], 'link', 'set', 'lo', 'up']);
      procs.push(
        startBackground(
          inNs(side, ['sockperf', 'server', '--tcp', '-i', '127.0.0.1', '-p', '21111']),
        ),
        startBackground(inNs(side, ['iperf3', '-s', '-B', '127.0.0.1', '-p', '25201'])),
      );
    }
    await mustRun(inNs('nat', ['nft', '-f', '-']), { input: NAT_RULESET });
    await new Promise((r) => setTimeout(r, 1000));
    const ratios = { rrP50Us: [] as number[], udpPps: [] as number[] };
    for (let rep = 0; rep < REPEAT; rep++) {
      const order: Side[] = Math.random() < 0.5 ? ['bare', 'nat'] : ['nat', 'bare'];
      const r: Partial<Record<Side, { rrP50Us: number; udpPps: number }>> = {};
      for (const side of order) r[side] = await measure(side);
      const bare = r.bare!;
      const nat = r.nat!;
      // Oriented like cnm bench's ratios: 1 is equal, below 1 the NAT namespace is slower.
      ratios.rrP50Us.push(bare.rrP50Us / nat.rrP50Us);
      ratios.udpPps.push(nat.udpPps / bare.udpPps);
      console.log(
        `rep ${rep + 1}: RR p50 bare ${bare.rrP50Us.toFixed(1)} µs, nat ${nat.rrP50Us.toFixed(1)} µs; ` +
          `UDP bare ${(bare.udpPps / 1e3).toFixed(0)}k, nat ${(nat.udpPps / 1e3).toFixed(0)}k pkt/s`,
      );
    }
    for (const [k, v] of Object.entries(ratios)) {
      const lower = v.filter((x) => x < 1).length;
      console.log(
        `${k}: NAT namespace / bare = ${median(v).toFixed(3)} (median of ${v.length} paired ` +
          `repetitions, range ${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)}, ` +
          `NAT slower in ${lower} of ${v.length})`,
      );
    }
  } finally {
    for (const p of procs) await p.kill();
    for (const ns of made) await mustRun(['ip', 'netns', 'del', ns]).catch(() => undefined);
  }
}

await main();
