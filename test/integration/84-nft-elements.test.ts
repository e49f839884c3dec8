/**
 * Kernel contract of `nftElements` (element deltas as raw nfnetlink batches, no libnftables):
 * in a throwaway netns, every set shape of ELEMENT_CASES is changed through our path in one
 * table and through the `nft` CLI in a twin table, and `nft -j list` must show the same
 * elements in both. Plus: failures are atomic and name the set, large batches split and apply.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';
import {
  CASE_SETS,
  CASE_TABLE,
  ELEMENT_CASES,
  caseTableScript,
} from '../../src/kernel/nftables/setelem-cases.js';
import type { NftElementChange } from '../../src/kernel/types.js';
import { REPO_ROOT, exec, run, skipUnlessRoot } from './harness.js';

const NS_NAME = `cnmt-nfe-${process.pid}`;
const NS = `/run/netns/${NS_NAME}`;
const REF = 'cnmt_ref';

interface Reply {
  ok: boolean;
  value?: unknown;
  message?: string;
  errnoCode?: string;
}

/** The runner (HostKernel inside NS) behind a request/reply line protocol. */
class Runner {
  #child: ChildProcessWithoutNullStreams;
  #lines: AsyncIterator<string>;

  constructor() {
    this.#child = spawn(
      'nsenter',
      [
        `--net=${NS}`,
        '--',
        process.execPath,
        '--import',
        'tsx',
        'test/integration/nft-elements-runner.ts',
      ],
      { cwd: REPO_ROOT, stdio: 'pipe' },
    );
    this.#lines = readline.createInterface({ input: this.#child.stdout })[Symbol.asyncIterator]();
  }

  async call(op: string, ...args: unknown[]): Promise<Reply> {
    this.#child.stdin.write(JSON.stringify({ op, args }) + '\n');
    const line = await this.#lines.next();
    if (line.done) throw new Error('runner exited');
    return JSON.parse(line.value) as Reply;
  }

  async elements(changes: NftElementChange[], table = CASE_TABLE): Promise<Reply> {
    return this.call('nftElements', 'inet', table, changes);
  }

  async close(): Promise<void> {
    this.#child.stdin.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    if (this.#child.exitCode === null) await once(this.#child, 'exit');
    clearTimeout(timer);
  }
}

async function nft(args: string[], input?: string): Promise<string> {
  const r = await exec(NS, ['nft', ...args], { check: true, ...(input ? { input } : {}) });
  return r.stdout;
}

/** The elements of a set or map as `nft -j list` shows them ([] when empty). */
async function listed(table: string, set: string): Promise<unknown[]> {
  const kind = CASE_SETS[set]?.shape.data ? 'map' : 'set';
  const json = JSON.parse(await nft(['-j', 'list', kind, 'inet', table, set])) as {
    nftables: Record<string, { elem?: unknown[] }>[];
  };
  const obj = json.nftables.find((o) => o[kind])![kind]!;
  return obj.elem ?? [];
}

describe('Kernel.nftElements on the real kernel', { skip: skipUnlessRoot() }, () => {
  let runner: Runner;

  before(async () => {
    await run('ip', ['netns', 'add', NS_NAME], { check: true });
    runner = new Runner();
    const load = await runner.call('nftRun', caseTableScript());
    assert.ok(load.ok, load.message);
    await nft(['-f', '-'], caseTableScript().replace(CASE_TABLE, REF));
  });

  after(async () => {
    await runner?.close();
    await run('ip', ['netns', 'del', NS_NAME]);
  });

  test('every set shape reads back as the same change made by nft', async () => {
    for (const { name, change } of ELEMENT_CASES) {
      const r = await runner.elements([change]);
      assert.ok(r.ok, `${name}: ${r.message}`);
      await nft([
        change.op,
        'element',
        'inet',
        REF,
        change.set,
        `{ ${change.elements.join(', ')} }`,
      ]);
      const ours = await listed(CASE_TABLE, change.set);
      assert.deepEqual(ours, await listed(REF, change.set), name);
      assert.ok(ours.length > 0 || change.op === 'delete', `${name}: set is empty`);
    }
    // Spot checks in nft's own words, beyond "same as nft".
    assert.deepEqual(await listed(CASE_TABLE, 'iso4'), ['10.0.0.2']);
    const rng4 = JSON.stringify(await listed(CASE_TABLE, 'rng4'));
    assert.match(rng4, /"prefix":\{"addr":"10\.1\.0\.0","len":16\}/);
    assert.match(rng4, /"range":\[80,90\]/);
    assert.deepEqual(await listed(CASE_TABLE, 'rng6'), []);
  });

  test('a failed batch changes nothing and the error names the set', async () => {
    const iso4 = CASE_SETS.iso4!.shape;
    const r = await runner.elements([
      { op: 'add', set: 'iso4', shape: iso4, elements: ['10.0.0.9'] },
      { op: 'delete', set: 'iso4', shape: iso4, elements: ['10.0.0.77'] },
    ]);
    assert.equal(r.ok, false);
    assert.equal(r.errnoCode, 'ENOENT');
    assert.match(r.message!, /^Cannot delete elements from set "iso4" of table inet cnmt_elems/);
    assert.deepEqual(await listed(CASE_TABLE, 'iso4'), ['10.0.0.2']);
  });

  test('an overlapping interval is refused (EEXIST) and an unknown set is ENOENT', async () => {
    const net4 = CASE_SETS.net4!.shape;
    const before = await listed(CASE_TABLE, 'net4');
    const overlap = await runner.elements([
      { op: 'add', set: 'net4', shape: net4, elements: ['10.0.0.2 . 10.1.2.0/24'] },
    ]);
    assert.equal(overlap.errnoCode, 'EEXIST', overlap.message);
    assert.deepEqual(await listed(CASE_TABLE, 'net4'), before);
    const missing = await runner.elements([
      { op: 'add', set: 'nosuch', shape: net4, elements: ['10.0.0.2 . 10.1.2.0/24'] },
    ]);
    assert.equal(missing.errnoCode, 'ENOENT', missing.message);
    assert.match(missing.message!, /set "nosuch"/);
  });

  test('thousands of elements go in one batch of several messages, and out again', async () => {
    const rng6 = CASE_SETS.rng6!.shape;
    const iv4 = CASE_SETS.iv4!.shape;
    const peers = Array.from(
      { length: 5000 },
      (_, i) => `fd00::1 . fd01:${i.toString(16)}::/48 . tcp . 80-81`,
    );
    const ivs = Array.from({ length: 2000 }, (_, i) => `10.200.${i >> 4}.${(i & 15) * 16}/29`);
    const add = await runner.elements([
      { op: 'add', set: 'rng6', shape: rng6, elements: peers },
      { op: 'add', set: 'iv4', shape: iv4, elements: ivs },
    ]);
    assert.ok(add.ok, add.message);
    assert.equal((await listed(CASE_TABLE, 'rng6')).length, 5000);
    const before = (await listed(CASE_TABLE, 'iv4')).length;
    assert.ok(before >= 2000, `${before}`);
    const del = await runner.elements([
      { op: 'delete', set: 'rng6', shape: rng6, elements: peers },
      { op: 'delete', set: 'iv4', shape: iv4, elements: ivs },
    ]);
    assert.ok(del.ok, del.message);
    assert.deepEqual(await listed(CASE_TABLE, 'rng6'), []);
    assert.equal((await listed(CASE_TABLE, 'iv4')).length, before - 2000);
  });
});
