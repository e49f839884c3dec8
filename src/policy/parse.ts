/**
 * Parsing and validation of NetworkPolicy documents: YAML (one or many `---` documents) or JSON,
 * exactly as `kubectl apply -f` takes them, including `List`/`NetworkPolicyList` wrappers.
 * Validation follows the API server's rules for networking.k8s.io/v1.
 */
import { parseAllDocuments } from 'yaml';
import { InvalidError } from '../errors.js';
import { Prefix } from '../netaddr/index.js';
import type {
  IPBlock,
  LabelSelector,
  NamedPort,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PolicyProtocol,
  PolicyType,
} from './types.js';

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** IANA_SVC_NAME: what a named port may be called. */
const PORT_NAME_RE = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const LABEL_KEY_RE =
  /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE_RE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

type Obj = Record<string, unknown>;

function fail(where: string, problem: string): never {
  throw new InvalidError('POLICY_INVALID', `Invalid NetworkPolicy ${where}: ${problem}`);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, where: string): Obj {
  if (!isObj(v)) fail(where, 'must be an object');
  return v;
}

function list(v: unknown, where: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(where, 'must be a list');
  return v;
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string') fail(where, 'must be a string');
  return v;
}

function checkOnly(o: Obj, where: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(where, `unknown field "${k}"`);
}

/** Returns `true` when the name is a DNS-1123 label (namespaces) of at most 63 characters. */
export function isValidNamespaceName(name: string): boolean {
  return name.length <= 63 && NAME_RE.test(name);
}

/**
 * Validates label keys and values (Kubernetes' qualified names).
 * @throws InvalidError LABEL_INVALID naming the first bad one
 */
export function validateLabels(labels: Record<string, string>, what: string): void {
  for (const [k, v] of Object.entries(labels)) {
    if (k.length > 316 || !LABEL_KEY_RE.test(k))
      throw new InvalidError('LABEL_INVALID', `Invalid label key "${k}" on ${what}`);
    if (v.length > 63 || !LABEL_VALUE_RE.test(v))
      throw new InvalidError('LABEL_INVALID', `Invalid value "${v}" of label "${k}" on ${what}`);
  }
}

function stringMap(v: unknown, where: string): Record<string, string> {
  const o = obj(v, where);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(o)) out[k] = str(val, `${where}.${k}`);
  return out;
}

function parseSelector(v: unknown, where: string): LabelSelector {
  if (v === null || v === undefined) return {};
  const o = obj(v, where);
  checkOnly(o, where, ['matchLabels', 'matchExpressions']);
  const out: LabelSelector = {};
  if (o['matchLabels'] !== undefined && o['matchLabels'] !== null) {
    out.matchLabels = stringMap(o['matchLabels'], `${where}.matchLabels`);
    validateLabels(out.matchLabels, where);
  }
  const exprs = list(o['matchExpressions'], `${where}.matchExpressions`);
  if (exprs.length > 0) {
    out.matchExpressions = exprs.map((e, i) => {
      const w = `${where}.matchExpressions[${i}]`;
      const r = obj(e, w);
      checkOnly(r, w, ['key', 'operator', 'values']);
      const key = str(r['key'], `${w}.key`);
      const operator = str(r['operator'], `${w}.operator`);
      const values = list(r['values'], `${w}.values`).map((x, j) => str(x, `${w}.values[${j}]`));
      if (operator === 'In' || operator === 'NotIn') {
        if (values.length === 0) fail(w, `operator "${operator}" needs at least one value`);
        return { key, operator, values };
      }
      if (operator === 'Exists' || operator === 'DoesNotExist') {
        if (values.length > 0) fail(w, `operator "${operator}" takes no values`);
        return { key, operator };
      }
      return fail(`${w}.operator`, `unsupported operator "${operator}"`);
    });
  }
  return out;
}

function parseProtocol(v: unknown, where: string): PolicyProtocol {
  if (v === undefined || v === null) return 'TCP';
  const p = str(v, where);
  if (p !== 'TCP' && p !== 'UDP' && p !== 'SCTP') fail(where, `unsupported protocol "${p}"`);
  return p;
}

function parsePort(v: unknown, where: string): NetworkPolicyPort {
  const o = obj(v, where);
  checkOnly(o, where, ['protocol', 'port', 'endPort']);
  const out: NetworkPolicyPort = { protocol: parseProtocol(o['protocol'], `${where}.protocol`) };
  const port = o['port'];
  if (port !== undefined && port !== null) {
    if (typeof port === 'number') {
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        fail(`${where}.port`, `${port} is not between 1 and 65535`);
      out.port = port;
    } else if (typeof port === 'string' && /^\d+$/.test(port)) {
      // kubectl sends an int-or-string; a numeric string is a number.
      const n = Number(port);
      if (n < 1 || n > 65535) fail(`${where}.port`, `${port} is not between 1 and 65535`);
      out.port = n;
    } else if (typeof port === 'string') {
      if (port.length > 15 || !PORT_NAME_RE.test(port))
        fail(`${where}.port`, `"${port}" is not a valid port name`);
      out.port = port;
    } else {
      fail(`${where}.port`, 'must be a number or a port name');
    }
  }
  if (o['endPort'] !== undefined && o['endPort'] !== null) {
    const end = o['endPort'];
    if (typeof out.port !== 'number') fail(`${where}.endPort`, 'needs a numeric port');
    if (typeof end !== 'number' || !Number.isInteger(end) || end < out.port || end > 65535)
      fail(`${where}.endPort`, `must be between port (${out.port}) and 65535`);
    out.endPort = end;
  }
  return out;
}

function parseIpBlock(v: unknown, where: string): IPBlock {
  const o = obj(v, where);
  checkOnly(o, where, ['cidr', 'except']);
  const cidr = str(o['cidr'], `${where}.cidr`);
  const p = Prefix.tryParse(cidr);
  if (!p) fail(`${where}.cidr`, `"${cidr}" is not a valid CIDR`);
  const except = list(o['except'], `${where}.except`).map((x, i) => {
    const e = str(x, `${where}.except[${i}]`);
    const ep = Prefix.tryParse(e);
    if (!ep) fail(`${where}.except[${i}]`, `"${e}" is not a valid CIDR`);
    if (ep.family !== p.family || !p.containsPrefix(ep) || ep.bits <= p.bits)
      fail(`${where}.except[${i}]`, `"${e}" must be strictly within "${cidr}"`);
    return e;
  });
  return except.length > 0 ? { cidr, except } : { cidr };
}

function parsePeer(v: unknown, where: string): NetworkPolicyPeer {
  const o = obj(v, where);
  checkOnly(o, where, ['podSelector', 'namespaceSelector', 'ipBlock']);
  const out: NetworkPolicyPeer = {};
  if (o['podSelector'] !== undefined && o['podSelector'] !== null)
    out.podSelector = parseSelector(o['podSelector'], `${where}.podSelector`);
  if (o['namespaceSelector'] !== undefined && o['namespaceSelector'] !== null)
    out.namespaceSelector = parseSelector(o['namespaceSelector'], `${where}.namespaceSelector`);
  if (o['ipBlock'] !== undefined && o['ipBlock'] !== null) {
    if (out.podSelector || out.namespaceSelector)
      fail(where, 'ipBlock cannot be combined with podSelector or namespaceSelector');
    out.ipBlock = parseIpBlock(o['ipBlock'], `${where}.ipBlock`);
  }
  if (!out.podSelector && !out.namespaceSelector && !out.ipBlock)
    fail(where, 'must set podSelector, namespaceSelector or ipBlock');
  return out;
}

/**
 * Validates one NetworkPolicy object and returns it normalised (namespace filled in with
 * `defaultNamespace`, numeric-string ports made numbers, nulls dropped).
 * @throws InvalidError POLICY_INVALID naming the first bad field
 */
export function validatePolicy(doc: unknown, defaultNamespace = 'default'): NetworkPolicy {
  const o = obj(doc, 'document');
  if (o['apiVersion'] !== 'networking.k8s.io/v1')
    fail('document', `apiVersion must be "networking.k8s.io/v1", not "${String(o['apiVersion'])}"`);
  if (o['kind'] !== 'NetworkPolicy')
    fail('document', `kind must be "NetworkPolicy", not "${String(o['kind'])}"`);
  const meta = obj(o['metadata'], 'metadata');
  const name = str(meta['name'], 'metadata.name');
  if (name.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name))
    fail('metadata.name', `"${name}" is not a valid name`);
  const namespace =
    meta['namespace'] === undefined || meta['namespace'] === null
      ? defaultNamespace
      : str(meta['namespace'], 'metadata.namespace');
  if (!isValidNamespaceName(namespace))
    fail('metadata.namespace', `"${namespace}" is not a valid namespace name`);
  const where = `"${namespace}/${name}"`;
  const spec = obj(o['spec'] ?? {}, `${where} spec`);
  checkOnly(spec, `${where} spec`, ['podSelector', 'policyTypes', 'ingress', 'egress']);
  const out: NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec: { podSelector: parseSelector(spec['podSelector'], `${where} spec.podSelector`) },
  };
  if (isObj(meta['labels'])) out.metadata.labels = stringMap(meta['labels'], 'metadata.labels');
  if (isObj(meta['annotations']))
    out.metadata.annotations = stringMap(meta['annotations'], 'metadata.annotations');
  if (spec['policyTypes'] !== undefined && spec['policyTypes'] !== null) {
    const types = list(spec['policyTypes'], `${where} spec.policyTypes`).map((t, i) => {
      const s = str(t, `${where} spec.policyTypes[${i}]`);
      if (s !== 'Ingress' && s !== 'Egress')
        fail(`${where} spec.policyTypes[${i}]`, `unsupported policy type "${s}"`);
      return s as PolicyType;
    });
    out.spec.policyTypes = [...new Set(types)];
  }
  if (spec['ingress'] !== undefined && spec['ingress'] !== null) {
    out.spec.ingress = list(spec['ingress'], `${where} spec.ingress`).map((r, i) => {
      const w = `${where} spec.ingress[${i}]`;
      const rule = obj(r ?? {}, w);
      checkOnly(rule, w, ['from', 'ports']);
      const from = list(rule['from'], `${w}.from`).map((p, j) => parsePeer(p, `${w}.from[${j}]`));
      const ports = list(rule['ports'], `${w}.ports`).map((p, j) =>
        parsePort(p, `${w}.ports[${j}]`),
      );
      return {
        ...(rule['from'] !== undefined && rule['from'] !== null ? { from } : {}),
        ...(rule['ports'] !== undefined && rule['ports'] !== null ? { ports } : {}),
      };
    });
  }
  if (spec['egress'] !== undefined && spec['egress'] !== null) {
    out.spec.egress = list(spec['egress'], `${where} spec.egress`).map((r, i) => {
      const w = `${where} spec.egress[${i}]`;
      const rule = obj(r ?? {}, w);
      checkOnly(rule, w, ['to', 'ports']);
      const to = list(rule['to'], `${w}.to`).map((p, j) => parsePeer(p, `${w}.to[${j}]`));
      const ports = list(rule['ports'], `${w}.ports`).map((p, j) =>
        parsePort(p, `${w}.ports[${j}]`),
      );
      return {
        ...(rule['to'] !== undefined && rule['to'] !== null ? { to } : {}),
        ...(rule['ports'] !== undefined && rule['ports'] !== null ? { ports } : {}),
      };
    });
  }
  return out;
}

/** The documents of a YAML or JSON text (JSON first: it is much faster for large lists). */
function documents(text: string): unknown[] {
  const t = text.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      const v: unknown = JSON.parse(t);
      return Array.isArray(v) ? v : [v];
    } catch {
      // Not JSON after all (YAML flow style): the YAML parser says what is wrong.
    }
  }
  const docs = parseAllDocuments(text, { prettyErrors: false });
  return (Array.isArray(docs) ? docs : [docs]).map((d) => {
    if (d.errors.length > 0) {
      throw new InvalidError(
        'POLICY_PARSE',
        `Cannot parse policy document: ${d.errors[0]!.message}`,
      );
    }
    return d.toJS({ maxAliasCount: 100 }) as unknown;
  });
}

/**
 * Parses YAML (multi-document) or JSON text into NetworkPolicies. Empty documents are skipped;
 * `List` and `NetworkPolicyList` documents contribute their `items`.
 * @throws InvalidError POLICY_PARSE for text that is not YAML/JSON, POLICY_INVALID for a bad policy
 * @example parsePolicies(readFileSync('policy.yaml', 'utf8'))
 */
export function parsePolicies(text: string, defaultNamespace = 'default'): NetworkPolicy[] {
  const out: NetworkPolicy[] = [];
  for (const value of documents(text)) {
    if (value === null || value === undefined) continue;
    if (isObj(value) && (value['kind'] === 'List' || value['kind'] === 'NetworkPolicyList')) {
      for (const item of list(value['items'], 'items'))
        out.push(validatePolicy(item, defaultNamespace));
    } else {
      out.push(validatePolicy(value, defaultNamespace));
    }
  }
  return out;
}

/**
 * Parses a `--port-name` value `name=port[/proto]` (protocol `tcp` by default).
 * @throws InvalidError PORT_NAME_INVALID
 * @example parseNamedPort('http=8080/tcp') // { name: 'http', port: 8080, protocol: 'TCP' }
 */
export function parseNamedPort(s: string): NamedPort {
  const m = /^([^=]+)=(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(s);
  const bad = (why: string): never => {
    throw new InvalidError('PORT_NAME_INVALID', `Invalid named port "${s}": ${why}`);
  };
  if (!m) return bad('expected name=port[/tcp|udp|sctp]');
  const name = m[1]!;
  if (name.length > 15 || !PORT_NAME_RE.test(name)) bad(`"${name}" is not a valid port name`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) bad(`${port} is not between 1 and 65535`);
  const protocol = (m[3] ?? 'tcp').toUpperCase() as PolicyProtocol;
  return { name, port, protocol };
}
