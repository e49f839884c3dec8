/**
 * Project lint: the layering rules of STYLE.md that the type checker cannot see.
 *
 * - Imports flow one way (main → api → cnm → drivers, ipam, dns, policy → kernel, store →
 *   netaddr); each folder lists what it may import.
 * - Pure folders import no `node:` module.
 * - Only `kernel/` touches the host: `child_process`, `worker_threads` and the addon stay there.
 * - Production code never imports test files.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
const SRC = join(ROOT, 'src');

const ALLOWED: Record<string, string[]> = {
  main: ['*'],
  api: ['cnm', 'errors', 'lifecycle', 'netaddr', 'main/version'],
  cli: ['errors', 'main/version', 'api/wire'],
  cnm: [
    'drivers',
    'ipam',
    'dns',
    'policy',
    'observe',
    'kernel',
    'store',
    'netaddr',
    'errors',
    'lifecycle',
  ],
  drivers: ['kernel', 'ipam', 'netaddr', 'errors', 'lifecycle'],
  ipam: ['netaddr', 'errors'],
  dns: ['kernel', 'store', 'netaddr', 'errors', 'lifecycle'],
  policy: ['netaddr', 'errors'],
  observe: ['kernel', 'store', 'netaddr', 'errors', 'lifecycle'],
  kernel: ['netaddr', 'errors', 'lifecycle'],
  store: ['errors', 'lifecycle'],
  netaddr: ['errors'],
  errors: [],
  lifecycle: [],
};
const PURE = ['netaddr', 'ipam', 'policy', 'kernel/rtnetlink', 'kernel/nftables'];
const HOST_MODULES = [
  'node:child_process',
  'node:worker_threads',
  'child_process',
  'worker_threads',
];

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

function area(rel: string): string {
  const parts = rel.replace(/\.ts$/, '').split('/');
  return parts.length === 1 ? parts[0]! : parts[0]!;
}

function isTest(rel: string): boolean {
  return /\.test\.ts$|\.test-helper\.ts$/.test(rel);
}

const problems: string[] = [];
const IMPORT_RE =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

for (const file of walk(SRC)) {
  const rel = relative(SRC, file);
  const from = area(rel);
  const text = readFileSync(file, 'utf8');
  const test = isTest(rel);
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2]!;
    if (spec.startsWith('.')) {
      const target = relative(SRC, resolve(dirname(file), spec)).replace(/\.js$/, '');
      if (target.startsWith('..')) {
        problems.push(`${rel}: imports "${spec}" from outside src/`);
        continue;
      }
      if (!test && /\.test(-helper)?$/.test(target))
        problems.push(`${rel}: production code imports test file "${spec}"`);
      const to = area(target);
      if (to === from || test) continue;
      const allowed = ALLOWED[from];
      if (!allowed) {
        problems.push(`${rel}: folder "${from}" has no import rule in scripts/lint.ts`);
        continue;
      }
      if (!allowed.includes('*') && !allowed.includes(to) && !allowed.includes(target)) {
        problems.push(
          `${rel}: "${from}" may not import "${target}" (allowed: ${allowed.join(', ') || 'nothing'})`,
        );
      }
    } else if (!test) {
      if (
        PURE.some((p) => rel.startsWith(p + '/') || rel === p + '.ts') &&
        spec.startsWith('node:')
      ) {
        problems.push(`${rel}: pure code imports "${spec}"`);
      }
      // `cnm bench` builds its kernel-ceiling namespaces and runs their load generators
      // client-side with ip/nft/nsenter (a root benchmark on the daemon's host, not a daemon
      // path), so src/cli/bench/ may spawn processes; the rest of cli/ still may not.
      const benchSpawn = rel.startsWith('cli/bench/') && spec.endsWith('child_process');
      if (HOST_MODULES.includes(spec) && from !== 'kernel' && !benchSpawn) {
        problems.push(
          `${rel}: only src/kernel/ may import "${spec}" (host access stays in the kernel layer)`,
        );
      }
    }
  }
}

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  console.error(`\n${problems.length} lint problem(s)`);
  process.exit(1);
}
console.log('lint: ok');
