/**
 * resolv.conf reading: the parser the container files share, and a watcher that keeps the
 * daemon namespace's upstream servers current when the file changes.
 */
import { statSync, readFileSync } from 'node:fs';

/** The parts of a resolv.conf cnm uses. */
export interface ResolvConfFacts {
  nameservers: string[];
  search: string[];
  options: string[];
}

/** Parses resolv.conf text (`nameserver`, `search`/`domain`, `options`; comments ignored). */
export function parseResolvConf(text: string): ResolvConfFacts {
  const out: ResolvConfFacts = { nameservers: [], search: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...rest] = line.split(/\s+/);
    if (key === 'nameserver' && rest[0]) out.nameservers.push(rest[0]);
    else if (key === 'search' || key === 'domain') out.search = rest;
    else if (key === 'options') out.options.push(...rest);
  }
  return out;
}

/**
 * The nameservers of a resolv.conf file, re-read when the file changes (inode, size or mtime;
 * replacing the file by rename, as resolvconf and NetworkManager do, counts). The file is
 * checked at most once per `checkEveryMs`, so a busy forwarder does not stat it per query.
 */
export class ResolvConfWatcher {
  #path: string;
  #checkEveryMs: number;
  #lastCheck = -Infinity;
  #sig = '';
  #servers: string[] = [];
  #now: () => number;

  constructor(path: string, opts: { checkEveryMs?: number; now?: () => number } = {}) {
    this.#path = path;
    this.#checkEveryMs = opts.checkEveryMs ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  /** The file's nameservers now; empty when the file is missing or names none. */
  servers(): readonly string[] {
    const now = this.#now();
    if (now - this.#lastCheck < this.#checkEveryMs) return this.#servers;
    this.#lastCheck = now;
    let sig: string;
    try {
      const st = statSync(this.#path);
      sig = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      sig = 'missing';
    }
    if (sig !== this.#sig) {
      this.#sig = sig;
      let text = '';
      try {
        text = sig === 'missing' ? '' : readFileSync(this.#path, 'utf8');
      } catch {
        // Vanished between stat and read: treat as empty until the next check.
      }
      this.#servers = parseResolvConf(text).nameservers;
    }
    return this.#servers;
  }
}
