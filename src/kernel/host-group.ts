/**
 * The API socket's group (`cnm` by default, like dockerd's `docker` group): looked up in
 * /etc/group, and created when missing.
 *
 * Created by spawning `groupadd --system` once, at daemon start (never on a request path),
 * rather than by appending a line to /etc/group ourselves: groupadd takes the shadow suite's
 * locks (lckpwdf and the `/etc/group.lock` link) that other account tools honour, writes
 * /etc/gshadow alongside /etc/group, picks a free GID in the system range of
 * /etc/login.defs (also checking NSS), and flushes nscd/sssd caches. Node cannot take the
 * fcntl lock of lckpwdf, so a hand-written append could race `useradd` or `vigr`. The
 * `passwd` package (groupadd) has priority `required` on Debian: it is always there.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Where a group name was resolved. */
export interface HostGroup {
  name: string;
  gid: number;
  /** True when this call created it. */
  created: boolean;
}

/** groupadd's exit status for "group already exists" (a concurrent start made it first). */
const GROUPADD_EXISTS = 9;

/** The GID of `name` in `/etc/group` (or `file`), or undefined. */
export function lookupGroup(name: string, file = '/etc/group'): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [n, , gid] = line.split(':');
    if (n === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

/**
 * Resolves `name` (or a numeric GID) to a GID, creating a system group of that name when none
 * exists.
 * @throws Error when the name is not a valid group name or groupadd fails
 * @example const { gid } = await ensureGroup('cnm')
 */
export async function ensureGroup(name: string): Promise<HostGroup> {
  if (/^\d+$/.test(name)) return { name, gid: Number(name), created: false };
  // shadow-utils' rule (NAME_REGEX default), so that nothing odd ever reaches groupadd's argv.
  if (!/^[a-z_][a-z0-9_-]{0,30}\$?$/.test(name)) {
    throw new Error(`Invalid group "${name}": expected a group name or a numeric GID`);
  }
  const found = lookupGroup(name);
  if (found !== undefined) return { name, gid: found, created: false };
  const code = await new Promise<number>((resolve, reject) => {
    // /usr/sbin may be missing from a daemon's PATH (a unit file, sudo's secure_path).
    const env = {
      ...process.env,
      PATH: `${process.env['PATH'] ?? '/usr/bin:/bin'}:/usr/sbin:/sbin`,
    };
    execFile('groupadd', ['--system', name], { timeout: 30_000, env }, (err, _out, stderr) => {
      if (!err) return resolve(0);
      const status = (err as { code?: unknown }).code;
      if (status === GROUPADD_EXISTS) return resolve(GROUPADD_EXISTS);
      reject(new Error(`Cannot create group "${name}": ${stderr.trim() || err.message}`));
    });
  });
  const gid = lookupGroup(name);
  if (gid === undefined) throw new Error(`Cannot create group "${name}": not in /etc/group`);
  return { name, gid, created: code === 0 };
}
