/**
 * Docker's `filters` query parameter: parsing both JSON forms, and the matching rules dockerd
 * applies to networks and containers (regexp for names, prefix for ids, all-of for labels).
 */
import { InvalidError } from '../errors.js';
import type { ContainerView, NetworkView, PruneFilters } from '../cnm/types.js';

/** Filter key → the set of values given for it. */
export type FilterArgs = Map<string, Set<string>>;

function badFilter(message: string): InvalidError {
  return new InvalidError('API_FILTER_INVALID', message);
}

/**
 * Parses `filters` as the map form (`{"name":{"x":true}}`) or the pre-1.22 list form
 * (`{"name":["x"]}`), refusing keys outside `allowed` with dockerd's `invalid filter 'x'`.
 * @throws InvalidError on malformed JSON, wrong value types or unknown keys
 */
export function parseFilters(
  raw: string | null | undefined,
  allowed: readonly string[],
): FilterArgs {
  const args: FilterArgs = new Map();
  if (raw === null || raw === undefined || raw.trim() === '') return args;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw badFilter(`Invalid filters "${raw}": ${detail}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badFilter(`Invalid filters "${raw}": expected a JSON object`);
  }
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (!allowed.includes(key)) throw badFilter(`invalid filter '${key}'`);
    const set = new Set<string>();
    if (Array.isArray(value)) {
      for (const v of value) {
        if (typeof v !== 'string')
          throw badFilter(`Invalid filters: values of "${key}" must be strings`);
        set.add(v);
      }
    } else if (typeof value === 'object' && value !== null) {
      for (const [v, on] of Object.entries(value as Record<string, unknown>)) {
        if (typeof on !== 'boolean') {
          throw badFilter(`Invalid filters: values of "${key}" must map to booleans`);
        }
        set.add(v);
      }
    } else {
      throw badFilter(`Invalid filters: "${key}" must be a list or an object`);
    }
    args.set(key, set);
  }
  return args;
}

/**
 * dockerd's `Args.Match`: an exact value, or an unanchored regular expression (which is why
 * `name=web` also matches `my-web-1`). Invalid expressions are skipped, as Go does.
 */
export function matchPattern(values: Set<string>, source: string): boolean {
  if (values.has(source)) return true;
  for (const v of values) {
    try {
      if (new RegExp(v).test(source)) return true;
    } catch {
      // Not a valid regexp: dockerd ignores it too.
    }
  }
  return false;
}

/** dockerd's `FuzzyMatch` for ids: exact or prefix. */
export function matchPrefix(values: Set<string>, source: string): boolean {
  for (const v of values) if (source.startsWith(v)) return true;
  return false;
}

/** dockerd's `MatchKVList`: every `key` or `key=value` must be present in `labels`. */
export function matchLabels(values: Set<string>, labels: Record<string, string>): boolean {
  for (const v of values) {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    if (!Object.hasOwn(labels, key)) return false;
    if (eq >= 0 && labels[key] !== v.slice(eq + 1)) return false;
  }
  return true;
}

/** Keys accepted by `GET /networks`. */
export const NETWORK_FILTER_KEYS = ['name', 'id', 'driver', 'label', 'scope', 'type', 'dangling'];

function parseBoolFilter(key: string, v: string): boolean {
  const w = v.toLowerCase();
  if (w === 'true' || w === '1') return true;
  if (w === 'false' || w === '0') return false;
  throw badFilter(`Invalid filter '${key}=${v}'`);
}

/**
 * The networks that pass every filter key (keys AND, values OR; `label` values AND).
 * @throws InvalidError on a bad `type` or `dangling` value
 */
export function filterNetworks(networks: NetworkView[], args: FilterArgs): NetworkView[] {
  const type = args.get('type');
  if (type !== undefined) {
    for (const t of type) {
      if (t !== 'custom' && t !== 'builtin') throw badFilter(`invalid filter: 'type'='${t}'`);
    }
  }
  const danglingValues = args.get('dangling');
  let dangling: boolean | undefined;
  if (danglingValues !== undefined) {
    const parsed = new Set([...danglingValues].map((v) => parseBoolFilter('dangling', v)));
    if (parsed.size > 1) throw badFilter(`Invalid filter 'dangling': values conflict`);
    dangling = [...parsed][0];
  }
  return networks.filter((n) => {
    const name = args.get('name');
    if (name !== undefined && !matchPattern(name, n.name)) return false;
    const id = args.get('id');
    if (id !== undefined && !matchPrefix(id, n.id)) return false;
    const driver = args.get('driver');
    if (driver !== undefined && !driver.has(n.driver)) return false;
    const scope = args.get('scope');
    if (scope !== undefined && !scope.has(n.scope)) return false;
    const label = args.get('label');
    if (label !== undefined && !matchLabels(label, n.labels)) return false;
    if (type !== undefined && !type.has(n.predefined ? 'builtin' : 'custom')) return false;
    if (dangling !== undefined) {
      // As dockerd: predefined networks are never dangling.
      const isDangling = !n.predefined && Object.keys(n.containers).length === 0;
      if (isDangling !== dangling) return false;
    }
    return true;
  });
}

/** Keys accepted by `GET /cnm/containers/json`. */
export const CONTAINER_FILTER_KEYS = ['name', 'id', 'label', 'status', 'network'];

const CONTAINER_STATUSES = [
  'created',
  'running',
  'exited',
  'dead',
  'removing',
  'paused',
  'restarting',
];

/**
 * The containers that pass every filter key.
 * @throws InvalidError on an unknown `status` value
 */
export function filterContainers(containers: ContainerView[], args: FilterArgs): ContainerView[] {
  const status = args.get('status');
  if (status !== undefined) {
    for (const s of status) {
      if (!CONTAINER_STATUSES.includes(s)) throw badFilter(`Invalid filter 'status=${s}'`);
    }
  }
  return containers.filter((c) => {
    const name = args.get('name');
    if (name !== undefined && !matchPattern(name, c.name) && !matchPattern(name, `/${c.name}`)) {
      return false;
    }
    const id = args.get('id');
    if (id !== undefined && !matchPrefix(id, c.id)) return false;
    const label = args.get('label');
    if (label !== undefined && !matchLabels(label, c.spec.labels ?? {})) return false;
    if (status !== undefined && !status.has(c.state.status)) return false;
    const network = args.get('network');
    if (network !== undefined) {
      const hit = Object.entries(c.networks).some(
        ([netName, v]) => network.has(netName) || matchPrefix(network, v.networkId),
      );
      if (!hit) return false;
    }
    return true;
  });
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A Go duration (`24h`, `1h30m`, `90s`) in milliseconds, or `undefined` if `s` is not one. */
export function parseGoDuration(s: string): number | undefined {
  const m = /^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(s);
  if (m === null) return undefined;
  let total = 0;
  for (const part of s.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(part[1]) * (DURATION_UNITS[part[2] ?? ''] ?? 0);
  }
  return m[1] === '-' ? -total : total;
}

/**
 * dockerd's `until` timestamp: a Go duration before `now`, a unix timestamp (`1700000000.5`), or
 * an RFC 3339 / ISO date.
 * @throws InvalidError when `value` is none of these
 */
export function parseUntil(value: string, now: Date): Date {
  const d = parseGoDuration(value);
  if (d !== undefined) return new Date(now.getTime() - d);
  if (/^\d+(\.\d+)?$/.test(value)) return new Date(Number(value) * 1000);
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const t = Date.parse(value);
    if (!Number.isNaN(t)) return new Date(t);
  }
  throw badFilter(
    `Invalid filter 'until=${value}': not a duration, unix timestamp or RFC 3339 time`,
  );
}

/** Parses `POST /networks/prune` filters into the controller's form. */
export function parsePruneFilters(raw: string | null | undefined, now: Date): PruneFilters {
  const args = parseFilters(raw, ['label', 'label!', 'until']);
  const out: PruneFilters = {};
  const label = args.get('label');
  if (label !== undefined) out.label = [...label];
  const labelNot = args.get('label!');
  if (labelNot !== undefined) out.labelNot = [...labelNot];
  const until = args.get('until');
  if (until !== undefined) {
    if (until.size > 1) throw badFilter('more than one until filter specified');
    const [v] = [...until];
    if (v !== undefined) out.until = parseUntil(v, now);
  }
  return out;
}
