/**
 * The README's main job (`npm run demo`) runs end to end: it builds the microservice topology
 * through the real cnm CLI, prints a communication matrix measured by real probes, and removes
 * everything. Run with `--once` so it exits after printing. Needs root; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { run, skipUnlessRoot } from './harness.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test(
  'the demo builds the topology, prints the matrix and cleans up',
  { skip: skipUnlessRoot() },
  async () => {
    const r = await run(
      process.execPath,
      ['--import', 'tsx', path.join(REPO, 'scripts/demo.ts'), '--once'],
      {
        timeoutMs: 180_000,
      },
    );
    assert.equal(r.code, 0, `demo failed:\n${r.stdout}\n${r.stderr}`);
    const rows = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const m = /^(gateway|svc-a|svc-b|db)\s{2,}(.*)$/.exec(line);
      if (m) rows.set(m[1]!, m[2]!);
    }
    assert.equal(rows.size, 4, `matrix rows missing:\n${r.stdout}`);
    // gateway: frontend only — reaches svc-a/svc-b, not db, and the outside through NAT.
    assert.match(
      rows.get('gateway')!,
      /^-\s+yes \(frontend\)\s+yes \(frontend\)\s+no\s+yes \(seen as 203\.0\.113\.2\)/,
    );
    // db: internal backend only — reaches svc-a/svc-b over backend, not gateway, not outside.
    assert.match(rows.get('db')!, /^no\s+yes \(backend\)\s+yes \(backend\)\s+-\s+no\s*$/);
    // svc-a and svc-b: on both networks — reach each other and the gateway over frontend, the
    // db over backend, and the outside through NAT.
    assert.match(
      rows.get('svc-a')!,
      /^yes \(frontend\)\s+-\s+yes \(frontend\)\s+yes \(backend\)\s+yes \(seen as 203\.0\.113\.2\)/,
    );
    assert.match(
      rows.get('svc-b')!,
      /^yes \(frontend\)\s+yes \(frontend\)\s+-\s+yes \(backend\)\s+yes \(seen as 203\.0\.113\.2\)/,
    );
    assert.match(r.stdout, /gateway's published port\): HTTP 200/);
    // Nothing left: no netns of the demo's world.
    const world = /^World (cnmt-\d+-\d+):/m.exec(r.stdout)?.[1];
    assert.ok(world, 'the demo names its world');
    const left = (await readdir('/run/netns').catch(() => [] as string[])).filter((n) =>
      n.startsWith(`${world}-`),
    );
    assert.deepEqual(left, []);
    assert.deepEqual(
      (await readdir('/tmp')).filter((n) => n.startsWith(`${world}-`)),
      [],
    );
  },
);
