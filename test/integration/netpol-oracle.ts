/**
 * A reachability oracle for Kubernetes `networking.k8s.io/v1` NetworkPolicy, written straight
 * from the API reference (NetworkPolicySpec, NetworkPolicyPeer, NetworkPolicyPort, IPBlock,
 * LabelSelector) and the "Network Policies" concept page, for the truth-table suite
 * (86-policy-truth). It shares no code with cnm's compiler (`src/policy/`): it evaluates one
 * connection attempt at a time, by the rules as the spec words them, with no addresses sets,
 * ranges or elements. Pure: no `node:` module.
 *
 * The rules it encodes:
 * - A connection from S to D on (protocol, port) is allowed when S's egress allows it and D's
 *   ingress allows it. Traffic that never leaves a pod (S = D, over loopback) is not subject to
 *   policy. A non-pod end (the outside world) has no policies of its own.
 * - A pod is isolated for a direction when some policy in its namespace selects it
 *   (`podSelector`) and has that type in `policyTypes`; `policyTypes` defaults to `["Ingress"]`
 *   plus `"Egress"` when the policy has an `egress` section. A pod that no such policy selects
 *   allows everything in that direction; an isolated pod allows the union of the rules of every
 *   selecting policy of that type.
 * - A rule matches when one of its peers matches the other end (`from`/`to` absent or empty:
 *   any end) and one of its ports matches (`ports` absent or empty: any port and protocol).
 * - Peer: `ipBlock` matches addresses in `cidr` and in no `except` CIDR (cnm lets it match pod
 *   addresses too, which the spec leaves to the implementation); `podSelector` alone selects pods
 *   of the policy's own namespace; `namespaceSelector` alone every pod of the namespaces whose
 *   labels match; both in one peer, the pods matching the pod selector in those namespaces.
 *   Namespaces carry the implicit label `kubernetes.io/metadata.name`.
 * - Port: `protocol` defaults to TCP; no `port` = every port of the protocol; a number up to
 *   `endPort` when given; a name = a container port of the destination pod with that name and
 *   protocol (never matches a non-pod destination).
 * - Selectors: `matchLabels` and `matchExpressions` ANDed; `In`/`NotIn`/`Exists`/`DoesNotExist`;
 *   `NotIn` holds when the key is absent; `{}` selects everything.
 */

/** A label selector as the spec defines it. */
export interface OSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** A NetworkPolicy peer. */
export interface OPeer {
  podSelector?: OSelector;
  namespaceSelector?: OSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

/** A NetworkPolicy port. */
export interface OPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}

/** A NetworkPolicy (only the fields that decide reachability). */
export interface OPolicy {
  metadata: { name: string; namespace?: string };
  spec: {
    podSelector: OSelector;
    policyTypes?: string[];
    ingress?: { from?: OPeer[]; ports?: OPort[] }[];
    egress?: { to?: OPeer[]; ports?: OPort[] }[];
  };
}

/** A pod: where it lives, its labels, its address and its named container ports. */
export interface OPod {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  ip: string;
  namedPorts: { name: string; port: number; protocol: string }[];
}

/** The cluster: pods, namespace labels (without the implicit name label) and policies. */
export interface OCluster {
  pods: readonly OPod[];
  namespaces: Readonly<Record<string, Record<string, string>>>;
  policies: readonly OPolicy[];
}

/** One end of a connection: a pod, or an address outside the cluster. */
export type OEnd = { pod: OPod } | { ip: string };

/** Does `labels` satisfy `sel`? */
export function selects(sel: OSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    const ok =
      e.operator === 'In'
        ? inValues
        : e.operator === 'NotIn'
          ? !inValues
          : e.operator === 'Exists'
            ? has
            : e.operator === 'DoesNotExist'
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

function ipv4(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255)))
    throw new Error(`oracle: not an IPv4 address: ${ip}`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** Is `ip` inside `cidr`? (IPv4: the suite's world has no IPv6.) */
export function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const n = Number(bits);
  const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return (ipv4(ip) & mask) >>> 0 === (ipv4(base!) & mask) >>> 0;
}

function namespaceLabels(c: OCluster, ns: string): Record<string, string> {
  return { ...(c.namespaces[ns] ?? {}), 'kubernetes.io/metadata.name': ns };
}

function types(p: OPolicy): string[] {
  if (p.spec.policyTypes && p.spec.policyTypes.length > 0) return p.spec.policyTypes;
  return p.spec.egress && p.spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
}

function peerMatches(c: OCluster, policyNs: string, peer: OPeer, end: OEnd): boolean {
  if (peer.ipBlock) {
    const ip = 'pod' in end ? end.pod.ip : end.ip;
    return inCidr(ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((x) => inCidr(ip, x));
  }
  if (!('pod' in end)) return false;
  const pod = end.pod;
  if (peer.namespaceSelector) {
    if (!selects(peer.namespaceSelector, namespaceLabels(c, pod.namespace))) return false;
  } else if (pod.namespace !== policyNs) {
    return false;
  }
  return peer.podSelector ? selects(peer.podSelector, pod.labels) : true;
}

function portMatches(p: OPort, dst: OEnd, proto: string, port: number): boolean {
  if ((p.protocol ?? 'TCP') !== proto) return false;
  if (p.port === undefined) return true;
  if (typeof p.port === 'number') return port >= p.port && port <= (p.endPort ?? p.port);
  if (!('pod' in dst)) return false;
  return dst.pod.namedPorts.some(
    (n) => n.name === p.port && n.protocol === proto && n.port === port,
  );
}

function ruleMatches(
  c: OCluster,
  policyNs: string,
  rule: { peers?: OPeer[]; ports?: OPort[] },
  other: OEnd,
  dst: OEnd,
  proto: string,
  port: number,
): boolean {
  const peerOk =
    !rule.peers ||
    rule.peers.length === 0 ||
    rule.peers.some((x) => peerMatches(c, policyNs, x, other));
  const portOk =
    !rule.ports ||
    rule.ports.length === 0 ||
    rule.ports.some((x) => portMatches(x, dst, proto, port));
  return peerOk && portOk;
}

function directionAllows(
  c: OCluster,
  type: 'Ingress' | 'Egress',
  self: OPod,
  other: OEnd,
  dst: OEnd,
  proto: string,
  port: number,
): boolean {
  let isolated = false;
  for (const p of c.policies) {
    const ns = p.metadata.namespace ?? 'default';
    if (ns !== self.namespace || !selects(p.spec.podSelector, self.labels)) continue;
    if (!types(p).includes(type)) continue;
    isolated = true;
    const rules =
      type === 'Ingress'
        ? (p.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports }))
        : (p.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
    if (rules.some((r) => ruleMatches(c, ns, r, other, dst, proto, port))) return true;
  }
  return !isolated;
}

/**
 * Whether a new connection (TCP) or datagram exchange (UDP) from `src` to `dst` on `port` is
 * allowed. `proto` is `TCP`, `UDP` or `SCTP`.
 * @example allowed(cluster, { pod: xa }, { pod: yb }, 'TCP', 80)
 */
export function allowed(c: OCluster, src: OEnd, dst: OEnd, proto: string, port: number): boolean {
  if ('pod' in src && 'pod' in dst && src.pod === dst.pod) return true;
  const egress = 'pod' in src ? directionAllows(c, 'Egress', src.pod, dst, dst, proto, port) : true;
  const ingress =
    'pod' in dst ? directionAllows(c, 'Ingress', dst.pod, src, dst, proto, port) : true;
  return egress && ingress;
}
