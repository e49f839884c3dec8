/**
 * What `cnm bench` measures and reports: modes, metrics, figures and the report shape written
 * by `--json`. Pure: no I/O.
 */
import { CliError } from '../client.js';

/** The data paths `cnm bench` knows, in report order. */
export const MODES = ['host', 'bridge', 'bridge-published', 'macvlan', 'overlay'] as const;
export type Mode = (typeof MODES)[number];

/** The metrics measured per path, in report order. */
export const METRIC_KEYS = [
  'rrP50Us',
  'rrP99Us',
  'tcpGbps',
  'tcp4Gbps',
  'crrPerSec',
  'udpPps',
] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];

/** How a metric is named, in which unit, and which direction is better. */
export interface MetricDef {
  key: MetricKey;
  label: string;
  unit: string;
  higherIsBetter: boolean;
  /** The tool and the exact form of its measurement. */
  tool: string;
}

/** The metric definitions, in {@link METRIC_KEYS} order. */
export const METRICS: readonly MetricDef[] = [
  {
    key: 'rrP50Us',
    label: 'TCP RR latency p50',
    unit: 'µs',
    higherIsBetter: false,
    tool: 'sockperf ping-pong --tcp -m 64 --full-rtt (round trip)',
  },
  {
    key: 'rrP99Us',
    label: 'TCP RR latency p99',
    unit: 'µs',
    higherIsBetter: false,
    tool: 'sockperf ping-pong --tcp -m 64 --full-rtt (round trip)',
  },
  {
    key: 'tcpGbps',
    label: 'TCP throughput, 1 stream',
    unit: 'Gbit/s',
    higherIsBetter: true,
    tool: 'iperf3 -J (received)',
  },
  {
    key: 'tcp4Gbps',
    label: 'TCP throughput, 4 streams',
    unit: 'Gbit/s',
    higherIsBetter: true,
    tool: 'iperf3 -P 4 -J (received)',
  },
  {
    key: 'crrPerSec',
    label: 'New TCP connections',
    unit: 'conn/s',
    higherIsBetter: true,
    tool: 'CRR loop (python3: connect, 1 B request, 1 B response, close)',
  },
  {
    key: 'udpPps',
    label: 'UDP 64 B packets',
    unit: 'pkt/s',
    higherIsBetter: true,
    tool: 'iperf3 -u -l 64 -b RATE -J (received)',
  },
];

/** Looks up a metric definition. */
export function metricDef(key: MetricKey): MetricDef {
  const def = METRICS.find((m) => m.key === key);
  if (def === undefined) throw new Error(`Unknown metric '${key}'`);
  return def;
}

/** Median of N repetitions with their min and max, plus the raw samples. */
export interface Figure {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

/** One path's figures: cnm's, or the hand-built kernel ceiling's. */
export type Figures = Partial<Record<MetricKey, Figure>>;

/** Ratios per metric, oriented so that 1 means equal and below 1 means worse. */
export type Ratios = Partial<Record<MetricKey, number>>;

/**
 * The spread of the per-repetition cnm / ceiling ratios of one metric: their lowest and
 * highest, over `n` repetitions measured on both sides.
 */
export interface RatioRange {
  min: number;
  max: number;
  n: number;
}

/** One mode's result. */
export interface ModeResult {
  mode: Mode;
  status: 'measured' | 'skipped';
  /** Why the mode was skipped. */
  reason?: string;
  /** How the cnm path and the ceiling path were built. */
  cnmPath?: string;
  ceilingPath?: string;
  cnm?: Figures;
  ceiling?: Figures;
  /** cnm against cnm's `host` mode measured in the same run. */
  vsHost?: Ratios;
  /** cnm against the kernel ceiling (target ≥ 0.95). */
  vsCeiling?: Ratios;
  /** Lowest and highest per-repetition cnm / ceiling ratio (see {@link medianCoverage}). */
  vsCeilingRange?: Partial<Record<MetricKey, RatioRange>>;
  /** Tool failures, one line each (a failed sample is left out of its figure). */
  errors?: string[];
}

/** The machine the figures come from. */
export interface MachineInfo {
  hostname: string;
  kernel: string;
  cpus: number;
  cpuModel: string;
  memGiB: number;
  node: string;
  loadAvg: number[];
  tools: Record<string, string>;
}

/** Everything `cnm bench --json` prints. */
export interface BenchReport {
  schema: 'cnm-bench/1';
  startedAt: string;
  finishedAt: string;
  command: string;
  settings: BenchSettings;
  machine: MachineInfo;
  metrics: MetricDef[];
  modes: ModeResult[];
}

/** Parsed `cnm bench` flags. */
export interface BenchSettings {
  modes: Mode[];
  durationSec: number;
  repeat: number;
  /** iperf3's `-b` cap for the UDP packet-rate test. */
  udpRate: string;
}

/** Raw `cnm bench` flags as commander hands them over. */
export interface RawBenchOptions {
  modes?: string;
  duration?: string;
  repeat?: string;
  udpRate?: string;
}

function positiveInt(flag: string, value: string | undefined, fallback: number, max: number) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n < 1 || n > max) {
    throw new CliError(`Invalid ${flag} "${value}": give a whole number from 1 to ${max}`);
  }
  return n;
}

/**
 * Validates `cnm bench` flags. Modes keep report order whatever order they were given in.
 *
 * @example parseBenchOptions({ modes: 'bridge,host' }).modes // ['host', 'bridge']
 * @throws CliError naming the bad flag
 */
export function parseBenchOptions(o: RawBenchOptions): BenchSettings {
  const given = (o.modes ?? MODES.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const m of given) {
    if (!(MODES as readonly string[]).includes(m)) {
      throw new CliError(`Invalid mode "${m}": choose from ${MODES.join(', ')}`);
    }
  }
  if (given.length === 0) throw new CliError(`Invalid --modes "": choose from ${MODES.join(', ')}`);
  const udpRate = o.udpRate ?? '1G';
  if (!/^\d+(\.\d+)?[KMG]?$/.test(udpRate)) {
    throw new CliError(`Invalid --udp-rate "${udpRate}": use iperf3's form, e.g. 500M or 1G`);
  }
  return {
    modes: MODES.filter((m) => given.includes(m)),
    // iperf3 takes whole seconds.
    durationSec: positiveInt('--duration', o.duration, 5, 3600),
    repeat: positiveInt('--repeat', o.repeat, 3, 100),
    udpRate,
  };
}
