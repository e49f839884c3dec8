/**
 * The `networking.k8s.io/v1` NetworkPolicy model as cnm keeps it (the Kubernetes field names and
 * shapes, unchanged), plus what the compiler needs to know about containers and namespaces.
 */

/** A Kubernetes label selector. Empty (`{}`) selects everything. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** One `matchExpressions` entry. */
export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  /** Non-empty for `In`/`NotIn`, absent or empty for `Exists`/`DoesNotExist`. */
  values?: string[];
}

/** Transport protocols a policy port may name. */
export type PolicyProtocol = 'TCP' | 'UDP' | 'SCTP';

/** A `ports[]` entry: a number, a named port, or (absent) every port of the protocol. */
export interface NetworkPolicyPort {
  /** Default `TCP`. */
  protocol?: PolicyProtocol;
  port?: number | string;
  /** Last port of a range starting at the numeric `port`. */
  endPort?: number;
}

/** A CIDR with holes. */
export interface IPBlock {
  cidr: string;
  except?: string[];
}

/** A `from[]`/`to[]` entry: selectors (alone or combined) or an IP block. */
export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

export interface NetworkPolicyIngressRule {
  from?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  to?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export type PolicyType = 'Ingress' | 'Egress';

/** A NetworkPolicy, with `metadata.namespace` always filled in. */
export interface NetworkPolicy {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: {
    podSelector: LabelSelector;
    policyTypes?: PolicyType[];
    ingress?: NetworkPolicyIngressRule[];
    egress?: NetworkPolicyEgressRule[];
  };
}

/** A named port a container declares (`cnm run --port-name http=8080/tcp`). */
export interface NamedPort {
  name: string;
  port: number;
  protocol: PolicyProtocol;
}

/** A container as the policy compiler sees it (a "pod"). */
export interface PolicyPod {
  id: string;
  /** The `io.cnm.namespace` label, else `default`. */
  namespace: string;
  labels: Record<string, string>;
  /** Every address of every endpoint (IPv4 and IPv6), without prefix length. */
  ips: string[];
  namedPorts: NamedPort[];
}

/** A namespace and its labels. */
export interface PolicyNamespace {
  name: string;
  labels: Record<string, string>;
}

/** The container label naming its namespace. */
export const NAMESPACE_LABEL = 'io.cnm.namespace';
/** The namespace of containers without {@link NAMESPACE_LABEL}. */
export const DEFAULT_NAMESPACE = 'default';
/** The label every namespace carries implicitly, as in Kubernetes 1.22+. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
