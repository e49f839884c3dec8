/** Parsing of repeated `k=v` flags and `--filter` lists shared by the commands. */
import { CliError } from './client.js';

/** commander `argParser` collecting a repeatable flag into an array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * `["a=1", "b"]` → `{a: "1", b: ""}` (a bare key has an empty value, as docker's labels).
 * With `requireValue`, a bare key is refused naming `flag`.
 */
export function parseKeyValues(
  list: string[] | undefined,
  flag: string,
  requireValue = false,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq === 0 || (eq < 0 && requireValue)) {
      throw new CliError(`Invalid ${flag} "${item}": expected key=value`);
    }
    out[eq < 0 ? item : item.slice(0, eq)] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return out;
}

/**
 * `-f k=v` flags → the `filters` query in dockerd's map form (`{"k":{"v":true}}`), or
 * `undefined` when there are none.
 */
export function filtersQuery(list: string[] | undefined): string | undefined {
  if (list === undefined || list.length === 0) return undefined;
  const out: Record<string, Record<string, boolean>> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new CliError(`Bad format of filter (expected name=value)`);
    (out[item.slice(0, eq)] ??= {})[item.slice(eq + 1)] = true;
  }
  return JSON.stringify(out);
}
