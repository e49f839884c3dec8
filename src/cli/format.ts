/** Output helpers shared by the commands: ids, ages, JSON like the docker CLI prints it. */

/** Docker's short id: the first 12 characters. */
export function shortId(id: string): string {
  return id.slice(0, 12);
}

/** go-units `HumanDuration`, as the docker CLI prints ages ("About a minute"). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

/** `docker inspect`'s output: a JSON array with 4-space indentation and a final newline. */
export function inspectJson(items: unknown[]): string {
  return `${JSON.stringify(items, null, 4)}\n`;
}

/** Labels as the docker CLI lists them: `k=v,k2=v2`, sorted. */
export function labelList(labels: Record<string, string> | null | undefined): string {
  return Object.entries(labels ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** Shortens `s` to `n` characters with a trailing ellipsis, as `docker ps` does. */
export function ellipsis(s: string, n: number): string {
  const chars = [...s];
  return chars.length <= n ? s : `${chars.slice(0, n - 1).join('')}…`;
}
