/**
 * The network policy engine: owns NetworkPolicies and namespaces (intent in the store under
 * `policies/<ns>/<name>` and `namespaces/<name>`), mirrors the containers' addresses and labels
 * from the controller (`EndpointWatcher`), and keeps the `inet <table>` policy table's set
 * elements equal to what `src/policy/compile.ts` computes, through the incremental compiler
 * (`src/policy/incremental.ts`): a change recompiles only the policies it touches and becomes an
 * element delta, applied as one nf_tables transaction by `Kernel.nftElements` (netlink, no
 * libnftables); the chains are loaded through libnftables once at start (or on repair).
 */
import { ConflictError, InvalidError, NotFoundError, describeError } from '../errors.js';
import type { Kernel } from '../kernel/types.js';
import { Mutex } from '../lifecycle.js';
import { IP, Prefix } from '../netaddr/index.js';
import {
  canonicalElementText,
  compareFirewallShape,
  parseFirewallShape,
  rulesetShape,
} from '../drivers/bridge/firewall.js';
import { fullScript, policyRuleset, setNames, tenantAccs } from '../policy/compile.js';
import { IncrementalCompiler, deltaChanges, type ExtraSource } from '../policy/incremental.js';
import {
  isValidNamespaceName,
  parseNamedPort,
  parsePolicies,
  validateLabels,
} from '../policy/parse.js';
import { matchesSelector } from '../policy/selector.js';
import {
  DEFAULT_NAMESPACE,
  NAMESPACE_LABEL,
  NAMESPACE_NAME_LABEL,
  type NamedPort,
  type NetworkPolicy,
  type PolicyPod,
} from '../policy/types.js';
import type { Store } from '../store/types.js';
import type { AttachedEndpoint, EndpointWatcher } from './events.js';
import { TENANT_LABEL } from './isolation.js';

/** Store keys of the engine's records. */
export const POLICY_KEYS = {
  policies: 'policies/',
  policy: (ns: string, name: string) => `policies/${ns}/${name}`,
  namespaces: 'namespaces/',
  namespace: (name: string) => `namespaces/${name}`,
} as const;

/** A stored policy. */
export interface PolicyRecord {
  policy: NetworkPolicy;
  created: string;
  updated: string;
}

/** A stored namespace. */
export interface NamespaceRecord {
  name: string;
  labels: Record<string, string>;
  created: string;
}

/** A policy as the API shows it: the object plus which containers it selects now. */
export interface PolicyView {
  namespace: string;
  name: string;
  created: string;
  updated: string;
  policy: NetworkPolicy;
  /** Ids of the containers the policy's podSelector selects. */
  selected: string[];
}

/** A namespace as the API shows it. */
export interface NamespaceView {
  name: string;
  /** Own labels plus the implicit `kubernetes.io/metadata.name`. */
  labels: Record<string, string>;
  created: string;
  /** False for a namespace that exists only because containers name it. */
  stored: boolean;
  containers: number;
  policies: number;
}

/** Outcome of applying one policy document, as `kubectl apply` prints it. */
export interface ApplyResult {
  namespace: string;
  name: string;
  result: 'created' | 'configured' | 'unchanged';
}

/** What the API may ask of the policy engine. */
export interface PolicyApi {
  /**
   * Creates or replaces every NetworkPolicy in `text` (YAML or JSON, many documents), all in one
   * kernel transaction.
   * @throws InvalidError POLICY_PARSE / POLICY_INVALID (nothing applied)
   */
  applyPolicies(text: string, opts?: { namespace?: string }): Promise<ApplyResult[]>;
  listPolicies(namespace?: string): PolicyView[];
  /** @throws NotFoundError POLICY_NOT_FOUND */
  inspectPolicy(namespace: string, name: string): PolicyView;
  /** @throws NotFoundError POLICY_NOT_FOUND */
  removePolicy(namespace: string, name: string): Promise<void>;
  /** @throws ConflictError NAMESPACE_EXISTS, InvalidError NAMESPACE_INVALID */
  createNamespace(name: string, labels: Record<string, string>): Promise<NamespaceView>;
  /** Sets and removes labels; creates the namespace record when it has none. */
  labelNamespace(
    name: string,
    set: Record<string, string>,
    remove: readonly string[],
  ): Promise<NamespaceView>;
  listNamespaces(): NamespaceView[];
  /** @throws NotFoundError NAMESPACE_NOT_FOUND, ConflictError NAMESPACE_IN_USE */
  removeNamespace(name: string): Promise<void>;
  /** Sets and removes a container's labels; policies follow at once. */
  labelContainer(
    idOrName: string,
    set: Record<string, string>,
    remove: readonly string[],
  ): Promise<void>;
}

/** Settings of the engine. */
export interface PolicyEngineConfig {
  /** nftables table name of the policy table (`cnm_policy`). */
  table: string;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
  /**
   * Turns the br_netfilter switch of a network's bridge on or off (through the controller and
   * the network's driver). Frames bridged between two containers of one network reach the
   * policy table only while it is on; the engine keeps it on exactly for the networks with an
   * isolated container, so networks without policies pay no netfilter cost per bridged frame.
   */
  bridgedFiltering?: (networkId: string, on: boolean) => Promise<void>;
  /** Changes a container's labels through the controller (which then calls back here). */
  relabel: (
    idOrName: string,
    set: Record<string, string>,
    remove: readonly string[],
  ) => Promise<void>;
}

interface PodState {
  labels: Record<string, string>;
  namedPorts: NamedPort[];
  /** Endpoint id → its network and addresses. */
  endpoints: Map<string, { networkId: string; ips: string[] }>;
}

function now(): string {
  return new Date().toISOString();
}

function namedPortsOf(portNames: readonly string[], log: PolicyEngineConfig['log']): NamedPort[] {
  const out: NamedPort[] = [];
  for (const s of portNames) {
    try {
      out.push(parseNamedPort(s));
    } catch (err) {
      log('warn', describeError(err));
    }
  }
  return out;
}

/** The engine. `await init()` before use (before the controller's own `init`). */
export class PolicyEngine implements EndpointWatcher, PolicyApi {
  #kernel: Kernel;
  #store: Store;
  #cfg: PolicyEngineConfig;
  #lock = new Mutex();
  #policies = new Map<string, PolicyRecord>();
  #namespaces = new Map<string, NamespaceRecord>();
  #pods = new Map<string, PodState>();
  /** Endpoint id → container id. */
  #endpoints = new Map<string, string>();
  /** Tenant-isolated networks with containers: network id → subnets. */
  #tenantNets = new Map<string, string[]>();
  /** Networks whose bridge has br_netfilter on (see `PolicyEngineConfig.bridgedFiltering`). */
  #filtered = new Set<string>();
  /** True when the kernel may differ from the compiler (a reload failed): next sync reloads. */
  #stale = false;
  /** Compiled elements, kept up to date change by change; the kernel holds them after a sync. */
  #inc = new IncrementalCompiler();

  constructor(kernel: Kernel, store: Store, cfg: PolicyEngineConfig) {
    this.#kernel = kernel;
    this.#store = store;
    this.#cfg = cfg;
  }

  /** Loads policies and namespaces and (re)creates the policy table, empty of containers. */
  async init(): Promise<void> {
    for (const { value } of await this.#store.list<PolicyRecord>(POLICY_KEYS.policies)) {
      const p = value.policy.metadata;
      this.#policies.set(`${p.namespace}/${p.name}`, value);
      this.#inc.setPolicy(value.policy);
    }
    for (const { value } of await this.#store.list<NamespaceRecord>(POLICY_KEYS.namespaces)) {
      this.#namespaces.set(value.name, value);
      this.#inc.setNamespace({ name: value.name, labels: value.labels });
    }
    // Bridged traffic between containers of one network reaches the inet forward hook only with
    // br_netfilter on. The namespace-wide switch (default on) would send every bridged frame of
    // every bridge through conntrack and the inet chains; it is turned off, and each bridge gets
    // its own switch on while one of its containers is isolated (#syncFiltering).
    try {
      await this.#kernel.sysctlSet('net.bridge.bridge-nf-call-iptables', '0');
      await this.#kernel.sysctlSet('net.bridge.bridge-nf-call-ip6tables', '0');
    } catch (err) {
      this.#cfg.log(
        'warn',
        `br_netfilter is not loaded (${describeError(err)}): policies will not filter traffic between containers of one bridge`,
      );
    }
    this.#inc.flush();
    await this.#kernel.nftRun(fullScript(this.#cfg.table, this.#inc.elements()));
  }

  /** Re-loads the table with every element (repair after someone flushed the ruleset). */
  async reload(): Promise<void> {
    await this.#lock.run(async () => {
      this.#inc.flush();
      await this.#kernel.nftRun(fullScript(this.#cfg.table, this.#inc.elements()));
      this.#stale = false;
    });
  }

  // ---------------------------------------------------------------- drift check

  /** Raw element → canonical text, from the previous {@link verify} (kept only for elements still there). */
  #canonical = new Map<string, string>();
  /** The difference the last repair re-load was for (cleared once the table compares equal). */
  #reloadedFor: string | undefined;
  /** An element difference a re-load did not fix, already reported. */
  #stuckOn: string | undefined;
  /** The last listing that compared equal, with the intent then (raw elements per set, in order). */
  #lastEqual: { listed: string; intent: string[][] } | undefined;

  /**
   * The reconciler's drift check: lists the policy table and compares its chains, rules and
   * elements (canonical texts, so an element changed in place counts) with the compiled intent;
   * on any difference re-loads the whole table through {@link reload}. The listing and the
   * intent are read under the engine's lock, so a change being applied is never taken for
   * drift. Separate from how changes are applied: it only reads, and repairs by a full reload.
   * An element difference that a re-load did not remove is reported once, not re-loaded again.
   * A listing byte-identical to the last one that compared equal, with the same intent, is not
   * parsed again (3000 elements: 0.2 ms instead of 14 ms, `bench/firewall-check.ts`).
   * @returns one line per repair (empty when nothing had drifted)
   */
  async verify(): Promise<string[]> {
    const t = this.#cfg.table;
    const drift = await this.#lock.run(async (): Promise<string | undefined> => {
      let listed: string;
      try {
        listed = await this.#kernel.nftRun(`list table inet ${t}`, { json: true });
      } catch {
        return 'the table is missing';
      }
      const elems = this.#inc.elements();
      const names = setNames();
      const intent = names.map((name) => [...(elems.get(name) ?? [])]);
      const last = this.#lastEqual;
      this.#lastEqual = undefined;
      if (
        last?.listed === listed &&
        intent.every(
          (a, i) =>
            a.length === last.intent[i]!.length && a.every((e, j) => e === last.intent[i]![j]),
        )
      ) {
        this.#lastEqual = last;
        return undefined;
      }
      const want = rulesetShape(policyRuleset(t));
      want.elements = new Map();
      const memo = new Map<string, string>();
      for (const name of names) {
        const texts: string[] = [];
        for (const e of elems.get(name) ?? []) {
          const text = this.#canonical.get(e) ?? canonicalElementText(e);
          memo.set(e, text);
          texts.push(text);
        }
        want.sets.set(`inet ${name}`, texts.length);
        want.elements.set(`inet ${name}`, texts.sort());
      }
      this.#canonical = memo;
      const d = compareFirewallShape(want, parseFirewallShape([listed]));
      if (d.reload !== undefined) return d.reload;
      const s = d.short[0];
      if (!s) this.#lastEqual = { listed, intent };
      return s && `set ${s.set} is short of ${s.missing} element(s)`;
    });
    if (drift === undefined) {
      this.#reloadedFor = undefined;
      return [];
    }
    // Only an element-text difference can survive a re-load (text written and listed differ).
    if (drift === this.#reloadedFor && drift.endsWith('which cnm did not put there')) {
      if (this.#stuckOn === drift) return [];
      this.#stuckOn = drift;
      return [`not re-loading again: ${drift} (still so after a re-load)`];
    }
    await this.reload();
    this.#reloadedFor = drift;
    this.#stuckOn = undefined;
    return [`table re-loaded: ${drift}`];
  }

  // ---------------------------------------------------------------- compile and apply

  #podList(): PolicyPod[] {
    const out: PolicyPod[] = [];
    for (const [id, s] of this.#pods) {
      const ips = [...s.endpoints.values()].flatMap((e) => e.ips);
      if (ips.length === 0) continue;
      out.push({
        id,
        namespace: s.labels[NAMESPACE_LABEL] || DEFAULT_NAMESPACE,
        labels: s.labels,
        ips,
        namedPorts: s.namedPorts,
      });
    }
    return out;
  }

  /** Tells the compiler about a container's current state (gone when it has no address). */
  #updatePod(id: string): void {
    const s = this.#pods.get(id);
    const ips = s ? [...s.endpoints.values()].flatMap((e) => e.ips) : [];
    if (!s || ips.length === 0) {
      this.#inc.removePod(id);
      return;
    }
    this.#inc.setPod({
      id,
      namespace: s.labels[NAMESPACE_LABEL] || DEFAULT_NAMESPACE,
      labels: s.labels,
      ips,
      namedPorts: s.namedPorts,
    });
  }

  #onNetwork(networkId: string): boolean {
    for (const p of this.#pods.values())
      for (const e of p.endpoints.values()) if (e.networkId === networkId) return true;
    return false;
  }

  /**
   * The rules of a tenant-isolated network: each of its addresses is isolated for ingress and
   * accepts every address outside the network's subnets (published ports, routed traffic) and,
   * inside them, only the addresses of containers with the same `tenant` label (or, without
   * the label, of containers without it). One more allow source, unioned with the policies'.
   */
  #tenantSource(networkId: string): ExtraSource {
    const inNetwork = (ip: string): boolean => {
      const addr = IP.parse(ip);
      return (this.#tenantNets.get(networkId) ?? []).some((s) => {
        const p = Prefix.parse(s);
        return p.family === addr.family && p.contains(addr);
      });
    };
    return {
      touches: (pod) => pod.ips.some(inNetwork),
      compute: () => {
        const subnets = this.#tenantNets.get(networkId) ?? [];
        const members: { tenant: string; ips: string[] }[] = [];
        for (const p of this.#pods.values()) {
          const ips = [...p.endpoints.values()]
            .filter((e) => e.networkId === networkId)
            .flatMap((e) => e.ips);
          // `\0` cannot be a label value, so "no label" is a tenant of its own.
          if (ips.length > 0) members.push({ tenant: p.labels[TENANT_LABEL] ?? '\0', ips });
        }
        return tenantAccs(members, subnets);
      },
    };
  }

  /** The networks with a container isolated in either direction (its address in an iso set). */
  #wantFiltered(): Set<string> {
    const els = this.#inc.elements();
    const isolated = (ip: string): boolean => {
      const a = IP.parse(ip);
      const text = a.toString();
      return !!els.get(`in_iso${a.family}`)?.has(text) || !!els.get(`eg_iso${a.family}`)?.has(text);
    };
    const out = new Set<string>();
    for (const p of this.#pods.values())
      for (const e of p.endpoints.values()) if (e.ips.some(isolated)) out.add(e.networkId);
    return out;
  }

  /**
   * Switches br_netfilter per bridge: `phase` `on` turns it on for networks that now need it
   * (before their elements land, so no same-bridge frame slips past a new isolation), `off`
   * turns it off where no longer needed (after). Failures are logged, not thrown: the table is
   * still right for routed traffic.
   */
  async #syncFiltering(want: Set<string>, phase: 'on' | 'off'): Promise<void> {
    const set = this.#cfg.bridgedFiltering;
    if (!set) return;
    const todo =
      phase === 'on'
        ? [...want].filter((id) => !this.#filtered.has(id))
        : [...this.#filtered].filter((id) => !want.has(id));
    for (const id of todo) {
      try {
        await set(id, phase === 'on');
        if (phase === 'on') this.#filtered.add(id);
        else this.#filtered.delete(id);
      } catch (err) {
        this.#cfg.log(
          'warn',
          `Cannot turn bridge filtering ${phase} for network ${id.slice(0, 12)}: ${describeError(err)}`,
        );
      }
    }
  }

  /** Makes the kernel match the compiler's state. Caller holds the lock. */
  async #sync(): Promise<void> {
    const t0 = performance.now();
    const changes = deltaChanges(this.#inc.flush());
    if (changes.length === 0 && !this.#stale) return;
    // Only a change of who is isolated (or of their endpoints) can change the bridges to filter.
    const want = changes.some((c) => c.set.includes('_iso')) ? this.#wantFiltered() : undefined;
    if (want) await this.#syncFiltering(want, 'on');
    const t1 = performance.now();
    try {
      // After a failed reload the kernel may hold anything: only a whole table is safe then.
      // Otherwise the delta goes as one nfnetlink batch (no nft text, nothing read back).
      if (this.#stale) await this.#kernel.nftRun(fullScript(this.#cfg.table, this.#inc.elements()));
      else await this.#kernel.nftElements('inet', this.#cfg.table, changes);
      this.#stale = false;
      const n = changes.reduce((k, c) => k + c.elements.length, 0);
      this.#cfg.log(
        'debug',
        `Policy sync: ${n} element change(s), compile ${(t1 - t0).toFixed(2)} ms, kernel ${(performance.now() - t1).toFixed(2)} ms`,
      );
    } catch (err) {
      // The table may have been flushed or changed behind our back: load it whole.
      this.#cfg.log(
        'warn',
        `Policy element update failed, reloading the table: ${describeError(err)}`,
      );
      this.#stale = true;
      await this.#kernel.nftRun(fullScript(this.#cfg.table, this.#inc.elements()));
      this.#stale = false;
    }
    if (want) await this.#syncFiltering(want, 'off');
  }

  async #syncQuietly(what: string): Promise<void> {
    try {
      await this.#sync();
    } catch (err) {
      this.#cfg.log('error', `Cannot apply network policy after ${what}: ${describeError(err)}`);
    }
  }

  // ---------------------------------------------------------------- EndpointWatcher

  endpointAttached(e: AttachedEndpoint): Promise<void> {
    return this.#lock.run(async () => {
      let pod = this.#pods.get(e.containerId);
      if (!pod) {
        pod = {
          labels: { ...e.labels },
          namedPorts: namedPortsOf(e.portNames, this.#cfg.log),
          endpoints: new Map(),
        };
        this.#pods.set(e.containerId, pod);
      }
      pod.endpoints.set(e.endpointId, {
        networkId: e.networkId,
        ips: [e.ipv4, e.ipv6].filter((x): x is string => !!x),
      });
      this.#endpoints.set(e.endpointId, e.containerId);
      if (e.tenantIsolation && !this.#tenantNets.has(e.networkId)) {
        this.#tenantNets.set(e.networkId, e.tenantIsolation);
        this.#inc.setExtra(`tenant:${e.networkId}`, this.#tenantSource(e.networkId));
      }
      this.#updatePod(e.containerId);
      await this.#syncQuietly('an endpoint came up');
    });
  }

  endpointDetached(endpointId: string): Promise<void> {
    return this.#lock.run(async () => {
      const id = this.#endpoints.get(endpointId);
      if (id === undefined) return;
      this.#endpoints.delete(endpointId);
      const pod = this.#pods.get(id);
      const netId = pod?.endpoints.get(endpointId)?.networkId;
      pod?.endpoints.delete(endpointId);
      if (pod && pod.endpoints.size === 0) this.#pods.delete(id);
      if (netId !== undefined && this.#tenantNets.has(netId) && !this.#onNetwork(netId)) {
        this.#tenantNets.delete(netId);
        this.#inc.removeExtra(`tenant:${netId}`);
      }
      this.#updatePod(id);
      await this.#syncQuietly('an endpoint went down');
    });
  }

  containerLabelsChanged(containerId: string, labels: Record<string, string>): Promise<void> {
    return this.#lock.run(async () => {
      const pod = this.#pods.get(containerId);
      if (!pod) return;
      pod.labels = { ...labels };
      this.#updatePod(containerId);
      await this.#syncQuietly('a label change');
    });
  }

  // ---------------------------------------------------------------- policies

  #view(r: PolicyRecord): PolicyView {
    const m = r.policy.metadata;
    const selected = this.#podList()
      .filter(
        (p) => p.namespace === m.namespace && matchesSelector(r.policy.spec.podSelector, p.labels),
      )
      .map((p) => p.id);
    return {
      namespace: m.namespace,
      name: m.name,
      created: r.created,
      updated: r.updated,
      policy: structuredClone(r.policy),
      selected,
    };
  }

  async applyPolicies(text: string, opts: { namespace?: string } = {}): Promise<ApplyResult[]> {
    const docs = parsePolicies(text, opts.namespace ?? DEFAULT_NAMESPACE);
    if (docs.length === 0) throw new InvalidError('POLICY_INVALID', 'No NetworkPolicy to apply');
    return this.#lock.run(async () => {
      const results: ApplyResult[] = [];
      // What the written keys held before (undefined: absent), for the rollback. Not a copy of
      // the whole map: at 10,000 policies that alone cost more than the rest of an apply.
      const before = new Map<string, PolicyRecord | undefined>();
      const writes = new Map<string, PolicyRecord>();
      for (const policy of docs) {
        const { namespace, name } = policy.metadata;
        const key = `${namespace}/${name}`;
        const cur = this.#policies.get(key);
        if (!before.has(key)) before.set(key, cur);
        const same = cur && JSON.stringify(cur.policy) === JSON.stringify(policy);
        const rec: PolicyRecord = same
          ? cur
          : { policy, created: cur?.created ?? now(), updated: now() };
        this.#policies.set(key, rec);
        if (!same) writes.set(key, rec);
        results.push({
          namespace,
          name,
          result: same ? 'unchanged' : cur ? 'configured' : 'created',
        });
      }
      try {
        await this.#store.txn(
          [],
          [...writes.values()].map((r) => ({
            op: 'put' as const,
            key: POLICY_KEYS.policy(r.policy.metadata.namespace, r.policy.metadata.name),
            value: r,
          })),
        );
        for (const r of writes.values()) this.#inc.setPolicy(r.policy);
        await this.#sync();
      } catch (err) {
        for (const [key, old] of before) {
          if (old) this.#policies.set(key, old);
          else this.#policies.delete(key);
          if (old) this.#inc.setPolicy(old.policy);
          else this.#inc.removePolicy(...(key.split('/') as [string, string]));
        }
        await this.#syncQuietly('a failed policy apply');
        throw err;
      }
      return results;
    });
  }

  listPolicies(namespace?: string): PolicyView[] {
    return [...this.#policies.values()]
      .filter((r) => namespace === undefined || r.policy.metadata.namespace === namespace)
      .sort((a, b) =>
        `${a.policy.metadata.namespace}/${a.policy.metadata.name}`.localeCompare(
          `${b.policy.metadata.namespace}/${b.policy.metadata.name}`,
        ),
      )
      .map((r) => this.#view(r));
  }

  inspectPolicy(namespace: string, name: string): PolicyView {
    const r = this.#policies.get(`${namespace}/${name}`);
    if (!r)
      throw new NotFoundError(
        'POLICY_NOT_FOUND',
        `networkpolicy "${name}" not found in namespace "${namespace}"`,
      );
    return this.#view(r);
  }

  async removePolicy(namespace: string, name: string): Promise<void> {
    await this.#lock.run(async () => {
      const key = `${namespace}/${name}`;
      if (!this.#policies.has(key))
        throw new NotFoundError(
          'POLICY_NOT_FOUND',
          `networkpolicy "${name}" not found in namespace "${namespace}"`,
        );
      await this.#store.delete(POLICY_KEYS.policy(namespace, name));
      this.#policies.delete(key);
      this.#inc.removePolicy(namespace, name);
      await this.#sync();
    });
  }

  // ---------------------------------------------------------------- namespaces

  #nsView(name: string): NamespaceView {
    const rec = this.#namespaces.get(name);
    const pods = this.#podList();
    return {
      name,
      labels: { ...(rec?.labels ?? {}), [NAMESPACE_NAME_LABEL]: name },
      created: rec?.created ?? '',
      stored: rec !== undefined,
      containers: pods.filter((p) => p.namespace === name).length,
      policies: [...this.#policies.values()].filter((r) => r.policy.metadata.namespace === name)
        .length,
    };
  }

  #checkNamespace(name: string, labels: Record<string, string>): void {
    if (!isValidNamespaceName(name))
      throw new InvalidError(
        'NAMESPACE_INVALID',
        `Invalid namespace name "${name}": must be a DNS-1123 label`,
      );
    validateLabels(labels, `namespace "${name}"`);
  }

  async createNamespace(name: string, labels: Record<string, string>): Promise<NamespaceView> {
    this.#checkNamespace(name, labels);
    return this.#lock.run(async () => {
      if (this.#namespaces.has(name))
        throw new ConflictError('NAMESPACE_EXISTS', `namespace "${name}" already exists`);
      const rec: NamespaceRecord = { name, labels: { ...labels }, created: now() };
      await this.#store.put(POLICY_KEYS.namespace(name), rec, { expectRevision: 0 });
      this.#namespaces.set(name, rec);
      this.#inc.setNamespace({ name, labels: rec.labels });
      await this.#sync();
      return this.#nsView(name);
    });
  }

  async labelNamespace(
    name: string,
    set: Record<string, string>,
    remove: readonly string[],
  ): Promise<NamespaceView> {
    this.#checkNamespace(name, set);
    return this.#lock.run(async () => {
      const cur = this.#namespaces.get(name);
      const labels = { ...(cur?.labels ?? {}), ...set };
      for (const k of remove) delete labels[k];
      const rec: NamespaceRecord = { name, labels, created: cur?.created ?? now() };
      await this.#store.put(POLICY_KEYS.namespace(name), rec);
      this.#namespaces.set(name, rec);
      this.#inc.setNamespace({ name, labels: rec.labels });
      await this.#sync();
      return this.#nsView(name);
    });
  }

  listNamespaces(): NamespaceView[] {
    const names = new Set([...this.#namespaces.keys(), DEFAULT_NAMESPACE]);
    for (const p of this.#podList()) names.add(p.namespace);
    for (const r of this.#policies.values()) names.add(r.policy.metadata.namespace);
    return [...names].sort().map((n) => this.#nsView(n));
  }

  async removeNamespace(name: string): Promise<void> {
    await this.#lock.run(async () => {
      if (!this.#namespaces.has(name))
        throw new NotFoundError('NAMESPACE_NOT_FOUND', `namespace "${name}" not found`);
      const v = this.#nsView(name);
      if (v.containers > 0 || v.policies > 0) {
        throw new ConflictError(
          'NAMESPACE_IN_USE',
          `Cannot remove namespace "${name}": ${v.containers} container(s) and ${v.policies} policy(ies) are in it`,
        );
      }
      await this.#store.delete(POLICY_KEYS.namespace(name));
      this.#namespaces.delete(name);
      this.#inc.removeNamespace(name);
      await this.#sync();
    });
  }

  labelContainer(
    idOrName: string,
    set: Record<string, string>,
    remove: readonly string[],
  ): Promise<void> {
    return this.#cfg.relabel(idOrName, set, remove);
  }
}
