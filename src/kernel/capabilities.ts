/**
 * Kernel capability detection and host tuning reads, for drivers (refuse what the kernel lacks)
 * and `cnm doctor`.
 *
 * Detection works by trying, once at daemon start: links of each kind are created and deleted
 * inside a temporary network namespace the probe makes and removes; nftables expressions are
 * tried in the daemon's own namespace as one transaction that adds a throwaway table
 * (`cnm_probe`) with a regular (hook-less) chain holding the expression and deletes the table
 * again, so the ruleset never shows it and no packet ever meets it. Nothing here touches a
 * namespace other than the daemon's and the probe's own.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { UnavailableError } from '../errors.js';
import { KernelError } from './kernel-error.js';
import type { Kernel, LinkAdd, NsRef } from './types.js';

/** Every feature the probe reports, in report order. */
export const KERNEL_FEATURES = [
  'netns',
  'veth',
  'bridge',
  'vxlan',
  'macvlan',
  'ipvlan',
  'vlan',
  'dummy',
  'ifb',
  'nftables',
  'nft-inet',
  'nft-bridge',
  'nft-numgen',
  'nft-fib',
  'nft-ct',
  'nft-meta-ibrname',
  'conntrack-events',
  'ipv6',
  'tc',
] as const;

/** A kernel feature cnm can use. */
export type KernelFeature = (typeof KERNEL_FEATURES)[number];

/** What the kernel's support for a feature is, as probed. */
export interface FeatureState {
  /** `true`/`false` as probed; `undefined` when it could not be probed. */
  present: boolean | undefined;
  /** How it was decided: the kernel's error, or why it was not probed. */
  detail: string;
}

/** The probe's result: one state per feature. Plain data, injected into drivers. */
export type KernelCapabilities = Readonly<Record<KernelFeature, FeatureState>>;

/** Human names used in messages: "needs the kernel's <label>". */
export const FEATURE_LABELS: Readonly<Record<KernelFeature, string>> = {
  netns: 'network namespace support',
  veth: 'veth support',
  bridge: 'bridge support',
  vxlan: 'VXLAN support',
  macvlan: 'macvlan support',
  ipvlan: 'ipvlan support',
  vlan: '802.1q VLAN support',
  dummy: 'dummy link support',
  ifb: 'ifb support',
  nftables: 'nftables support',
  'nft-inet': 'nftables inet family',
  'nft-bridge': 'nftables bridge family',
  'nft-numgen': 'nftables numgen expression',
  'nft-fib': 'nftables fib expression',
  'nft-ct': 'nftables ct expression (conntrack)',
  'nft-meta-ibrname': 'nftables "meta ibrname" expression',
  'conntrack-events': 'conntrack event support',
  ipv6: 'IPv6 support',
  tc: 'traffic control (tc)',
};

/** Capabilities with every feature present: for tests and callers that do not probe. */
export function allFeatures(detail = 'assumed'): KernelCapabilities {
  const out = {} as Record<KernelFeature, FeatureState>;
  for (const f of KERNEL_FEATURES) out[f] = { present: true, detail };
  return out;
}

/**
 * Refuses an action when the kernel is known to lack `feature`. A feature that could not be
 * probed (`present: undefined`) is not refused: the kernel itself will answer.
 *
 * @example requireFeature(caps, 'ipvlan', { action: 'Cannot create network "x"', by: 'driver "ipvlan"' })
 * @throws UnavailableError KERNEL_FEATURE_MISSING naming the feature
 */
export function requireFeature(
  caps: KernelCapabilities,
  feature: KernelFeature,
  ctx: { action: string; by: string },
): void {
  if (caps[feature].present !== false) return;
  throw new UnavailableError(
    'KERNEL_FEATURE_MISSING',
    `${ctx.action}: ${ctx.by} needs the kernel's ${FEATURE_LABELS[feature]}, which this kernel does not have`,
  );
}

/** Throwaway links made inside the probe namespace, in the order they are tried. */
const LINK_PROBES: readonly { feature: KernelFeature; link: LinkAdd }[] = [
  { feature: 'bridge', link: { kind: 'bridge', name: 'probe-br' } },
  { feature: 'vxlan', link: { kind: 'vxlan', name: 'probe-vx', vni: 42, port: 4789 } },
  {
    feature: 'macvlan',
    link: { kind: 'macvlan', name: 'probe-mv', parent: 'probe-p0', mode: 'bridge' },
  },
  { feature: 'ipvlan', link: { kind: 'ipvlan', name: 'probe-iv', parent: 'probe-p0', mode: 'l2' } },
  { feature: 'vlan', link: { kind: 'vlan', name: 'probe-p0.42', parent: 'probe-p0', id: 42 } },
  { feature: 'dummy', link: { kind: 'dummy', name: 'probe-dm' } },
  // `LinkAdd` has no `ifb` member: the kernel layer sends any other kind without kind data,
  // which is all an ifb needs.
  { feature: 'ifb', link: { kind: 'ifb', name: 'probe-ifb' } as unknown as LinkAdd },
];

/** nftables probes: family and a rule body, each loaded and removed in one transaction. */
const NFT_PROBES: readonly { feature: KernelFeature; family: string; rule: string }[] = [
  { feature: 'nft-inet', family: 'inet', rule: 'meta l4proto tcp accept' },
  { feature: 'nft-bridge', family: 'bridge', rule: 'meta l4proto tcp accept' },
  { feature: 'nft-numgen', family: 'inet', rule: 'numgen inc mod 2 0 accept' },
  { feature: 'nft-fib', family: 'inet', rule: 'fib daddr type local accept' },
  { feature: 'nft-ct', family: 'inet', rule: 'ct state established accept' },
  { feature: 'nft-meta-ibrname', family: 'bridge', rule: 'meta ibrname "cnm0" accept' },
];

/** The nftables script of one probe: add table, chain and rule, then delete the table. */
export function nftProbeScript(family: string, rule: string): string {
  const t = `${family} cnm_probe`;
  return [
    `add table ${t}`,
    `add chain ${t} c`,
    `add rule ${t} c ${rule}`,
    `delete table ${t}`,
    '',
  ].join('\n');
}

function why(err: unknown): string {
  if (err instanceof KernelError) {
    return `${err.errnoCode}${err.extack ? `: ${err.extack.split('\n')[0]}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Options of {@link detectCapabilities}. */
export interface DetectOptions {
  /**
   * Path for the temporary probe namespace (created and removed here), e.g.
   * `/run/cnm/probe-<pid>`. Must not exist.
   */
  probeNs: string;
}

/**
 * Probes the kernel by trying each feature; see the module comment. Never throws for a missing
 * feature; the probe namespace is removed on every path.
 *
 * @example const caps = await detectCapabilities(kernel, { probeNs: '/run/cnm/probe-123' })
 */
export async function detectCapabilities(
  kernel: Kernel,
  opts: DetectOptions,
): Promise<KernelCapabilities> {
  const out = {} as Record<KernelFeature, FeatureState>;
  const yes = (detail: string): FeatureState => ({ present: true, detail });
  const no = (detail: string): FeatureState => ({ present: false, detail });
  const unknown = (detail: string): FeatureState => ({ present: undefined, detail });
  const ns: NsRef = opts.probeNs;

  let haveNs = false;
  try {
    await kernel.netnsAdd(opts.probeNs);
    haveNs = true;
    out.netns = yes('created a namespace');
  } catch (err) {
    out.netns = no(why(err));
  }
  try {
    if (haveNs) {
      // The veth pair doubles as the ethernet parent of the macvlan/ipvlan/vlan probes.
      try {
        await kernel.linkAdd(
          { kind: 'veth', name: 'probe-p0', peer: { name: 'probe-p1', ns } },
          ns,
        );
        out.veth = yes('created a link');
      } catch (err) {
        out.veth = no(why(err));
      }
      for (const { feature, link } of LINK_PROBES) {
        const needsParent = 'parent' in link;
        if (needsParent && !out.veth.present) {
          out[feature] = unknown('not probed: no parent link (veth failed)');
          continue;
        }
        try {
          await kernel.linkAdd(link, ns);
        } catch (err) {
          out[feature] = no(why(err));
          continue;
        }
        out[feature] = yes('created a link');
        await kernel.linkDel(link.name, ns, { ifExists: true }).catch(() => undefined);
      }
      try {
        await kernel.addrAdd('lo', 'fd00:cafe::1/128', ns, { noDad: true });
        out.ipv6 = yes('added an IPv6 address');
      } catch (err) {
        out.ipv6 = no(why(err));
      }
    } else {
      const reason = 'not probed: no probe namespace';
      for (const f of ['veth', ...LINK_PROBES.map((p) => p.feature), 'ipv6'] as const) {
        out[f] = unknown(reason);
      }
    }
  } finally {
    // Deleting the namespace deletes every link still in it.
    if (haveNs) await kernel.netnsDel(opts.probeNs).catch(() => undefined);
  }

  try {
    await kernel.nftRun('list tables\n');
    out.nftables = yes('listed tables');
  } catch (err) {
    out.nftables = no(why(err));
  }
  for (const { feature, family, rule } of NFT_PROBES) {
    if (!out.nftables.present) {
      out[feature] = no('no nftables');
      continue;
    }
    try {
      await kernel.nftRun(nftProbeScript(family, rule));
      out[feature] = yes('loaded a rule');
    } catch (err) {
      out[feature] = no(why(err));
    }
  }
  // The ct probe has loaded conntrack (when there is one): its events switch is readable now.
  try {
    const v = await kernel.sysctlGet('net.netfilter.nf_conntrack_events');
    out['conntrack-events'] =
      v.trim() === '0'
        ? no('net.netfilter.nf_conntrack_events = 0')
        : yes(`nf_conntrack_events = ${v.trim()}`);
  } catch (err) {
    out['conntrack-events'] = no(why(err));
  }
  out.tc = unknown('not probed: the kernel layer has no tc calls');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Host tuning

/** A tuning value as read, with advice when it is below a sensible value. */
export interface TuningItem {
  key: string;
  /** The value as the kernel prints it, or `undefined` when not visible in this namespace. */
  value: string | undefined;
  /** What the check wants, e.g. `>= 4194304`. */
  want: string;
  ok: boolean;
  /** What to do about it (empty when ok). */
  advice: string;
}

/** One NIC's queues and IRQ affinity as visible under /sys and /proc. */
export interface NicInfo {
  name: string;
  rxQueues: number;
  txQueues: number;
  /** IRQs whose /proc/interrupts name mentions the NIC or its device, with their CPU list. */
  irqs: { irq: number; name: string; affinity: string }[];
}

/** Host tuning as seen from the daemon's namespace. */
export interface HostTuning {
  sysctls: TuningItem[];
  nics: NicInfo[];
}

/** The sysctls `cnm doctor` reads and the minimum it advises. */
const TUNING_CHECKS: readonly {
  key: string;
  check: (v: string) => boolean;
  want: string;
  advice: string;
}[] = [
  {
    key: 'net.core.rmem_max',
    check: (v) => Number(v) >= 4194304,
    want: '>= 4194304',
    advice: 'raise it (e.g. 4194304 or more) for high-rate UDP and VXLAN receive buffers',
  },
  {
    key: 'net.core.wmem_max',
    check: (v) => Number(v) >= 4194304,
    want: '>= 4194304',
    advice: 'raise it (e.g. 4194304 or more) for large socket send buffers',
  },
  {
    key: 'net.core.somaxconn',
    check: (v) => Number(v) >= 4096,
    want: '>= 4096',
    advice: 'raise it to 4096 or more so busy servers do not drop connections',
  },
  {
    key: 'net.core.netdev_max_backlog',
    check: (v) => Number(v) >= 5000,
    want: '>= 5000',
    advice: 'raise it (e.g. 5000-16384) so bursts on veth/bridge paths are not dropped',
  },
  {
    key: 'net.ipv4.tcp_rmem',
    check: (v) => Number(v.trim().split(/\s+/)[2]) >= 6291456,
    want: 'max >= 6291456',
    advice: 'raise the third value (e.g. 6291456 or more) for fast TCP receive windows',
  },
  {
    key: 'net.ipv4.tcp_wmem',
    check: (v) => Number(v.trim().split(/\s+/)[2]) >= 4194304,
    want: 'max >= 4194304',
    advice: 'raise the third value (e.g. 4194304 or more) for fast TCP sends',
  },
  {
    key: 'net.ipv4.ip_local_port_range',
    check: (v) => {
      const [lo = 0, hi = 0] = v.trim().split(/\s+/).map(Number);
      return hi - lo + 1 >= 28232;
    },
    want: '>= 28232 ports',
    advice: 'widen it (e.g. "32768 60999" or "1024 65535") for many outgoing connections',
  },
  {
    key: 'net.ipv4.ip_forward',
    check: (v) => v.trim() === '1',
    want: '1',
    advice:
      'cnmd sets it to 1 for bridge networks; 0 here means bridge containers cannot route out',
  },
  {
    key: 'net.bridge.bridge-nf-call-iptables',
    check: (v) => v.trim() === '0',
    want: '0 or absent',
    advice:
      'bridged frames of every bridge pass iptables/nftables inet hooks (br_netfilter); cnmd sets it to 0 at start and turns it on per bridge where a policy needs it',
  },
];

/**
 * Pure: judges sysctl values read by {@link readHostTuning}. A key that is not visible in the
 * namespace is not judged (ok), except that the advice says so.
 */
export function judgeTuning(values: ReadonlyMap<string, string | undefined>): TuningItem[] {
  return TUNING_CHECKS.map((c) => {
    const value = values.get(c.key);
    if (value === undefined) {
      return {
        key: c.key,
        value,
        want: c.want,
        ok: true,
        advice:
          c.key === 'net.bridge.bridge-nf-call-iptables'
            ? ''
            : "not visible in the daemon's namespace (a host-wide key: check it in the root namespace)",
      };
    }
    const ok = c.check(value);
    return { key: c.key, value, want: c.want, ok, advice: ok ? '' : c.advice };
  });
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // not there on this kernel or in this mount: the caller reports absence
  }
}

/**
 * Reads the tuning sysctls inside the daemon's namespace and the NIC queues and IRQ affinity
 * visible under /sys/class/net and /proc/interrupts. Only reads.
 */
export async function readHostTuning(kernel: Kernel): Promise<HostTuning> {
  const values = new Map<string, string | undefined>();
  for (const c of TUNING_CHECKS) {
    try {
      values.set(c.key, (await kernel.sysctlGet(c.key)).replace(/\s+/g, ' ').trim());
    } catch {
      values.set(c.key, undefined); // ENOENT: the key is not per-namespace or the module is absent
    }
  }
  // /sys shows the namespace of whoever mounted it; only links that also exist in the daemon's
  // namespace under the same index are reported, so a test world does not report the machine's.
  const own = new Map((await kernel.linkList()).map((l) => [l.name, l.index]));
  const interrupts = (readText('/proc/interrupts') ?? '').split('\n');
  const nics: NicInfo[] = [];
  let names: string[] = [];
  try {
    names = readdirSync('/sys/class/net');
  } catch {
    names = []; // no sysfs: nothing to report
  }
  for (const name of names) {
    const dir = `/sys/class/net/${name}`;
    if (Number(readText(`${dir}/ifindex`)) !== own.get(name)) continue;
    let device: string | undefined;
    try {
      device = basename(readlinkSync(`${dir}/device`));
    } catch {
      continue; // virtual links (veth, bridge, lo) have no device and no IRQs
    }
    let queues: string[] = [];
    try {
      queues = readdirSync(`${dir}/queues`);
    } catch {
      queues = [];
    }
    const irqs: NicInfo['irqs'] = [];
    for (const line of interrupts) {
      const m = /^\s*(\d+):.*\s(\S+)\s*$/.exec(line);
      if (!m) continue;
      const irqName = m[2]!;
      if (!irqName.includes(name) && !irqName.startsWith(`${device}-`)) continue;
      const affinity = (readText(`/proc/irq/${m[1]}/smp_affinity_list`) ?? '?').trim();
      irqs.push({ irq: Number(m[1]), name: irqName, affinity });
    }
    nics.push({
      name,
      rxQueues: queues.filter((q) => q.startsWith('rx-')).length,
      txQueues: queues.filter((q) => q.startsWith('tx-')).length,
      irqs,
    });
  }
  return { sysctls: judgeTuning(values), nics };
}

// ---------------------------------------------------------------------------------------------
// Assessment

/** A feature some part of the configuration needs. */
export interface Requirement {
  /** Who needs it: `cnmd`, `network "x" (driver ipvlan)`. */
  by: string;
  features: readonly KernelFeature[];
}

/** What `cnm doctor` shows. */
export interface HostReport {
  features: { name: KernelFeature; label: string; present: boolean | null; detail: string }[];
  missing: { by: string; feature: KernelFeature; label: string }[];
  tuning: HostTuning;
  /** False when a needed feature is missing. */
  ok: boolean;
}

/** Pure: combines capabilities, tuning and requirements into the doctor's report. */
export function assessHost(input: {
  capabilities: KernelCapabilities;
  tuning: HostTuning;
  requirements: readonly Requirement[];
}): HostReport {
  const features = KERNEL_FEATURES.map((name) => ({
    name,
    label: FEATURE_LABELS[name],
    present: input.capabilities[name].present ?? null,
    detail: input.capabilities[name].detail,
  }));
  const missing: HostReport['missing'] = [];
  for (const r of input.requirements) {
    for (const f of r.features) {
      if (input.capabilities[f].present === false) {
        missing.push({ by: r.by, feature: f, label: FEATURE_LABELS[f] });
      }
    }
  }
  return { features, missing, tuning: input.tuning, ok: missing.length === 0 };
}
