import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { runKernelCases } from './kernel.case.test.js';
import { createKernel } from './kernel.js';
import { KernelError } from './kernel-error.js';
import type { Kernel } from './types.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root: creates network namespaces';
const dir = `/tmp/cnmt-k-${process.pid}`;
let kernel: Kernel | undefined;
let n = 0;

describe('real kernel', { skip }, () => {
  before(async () => {
    fs.mkdirSync(dir, { recursive: true });
    kernel = await createKernel();
  });
  after(async () => {
    // Leftovers of a failed case: remove every netns file this run made.
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      await kernel?.netnsDel(`${dir}/${f}`).catch(() => {});
    }
    await kernel?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  runKernelCases('createKernel()', () => ({
    kernel: kernel!,
    nsPath: () => `${dir}/cnmt-k-${process.pid}-${++n}`,
    realKernel: true,
    // iproute2 reads the port back with an AF_BRIDGE dump (IFLA_PROTINFO), not our decoder.
    hairpinOracle: async (name, ns) => {
      const out = execFileSync(
        'nsenter',
        [`--net=${ns}`, 'bridge', '-d', '-j', 'link', 'show', 'dev', name],
        { encoding: 'utf8' },
      );
      const [port] = JSON.parse(out) as { hairpin?: boolean }[];
      return port?.hairpin;
    },
    bridgeNfOracle: async (name, ns) => {
      const out = execFileSync('nsenter', [`--net=${ns}`, 'ip', '-d', '-j', 'link', 'show', name], {
        encoding: 'utf8',
      });
      const [l] = JSON.parse(out) as {
        linkinfo?: { info_data?: { nf_call_iptables?: number; nf_call_ip6tables?: number } };
      }[];
      const d = l?.linkinfo?.info_data;
      return { v4: d?.nf_call_iptables === 1, v6: d?.nf_call_ip6tables === 1 };
    },
    // tc reads the qdisc with its own parser (and prints the burst it computes from the
    // kernel's buffer time, like our decoder does).
    qdiscOracle: async (dev, ns) => {
      const out = execFileSync(
        'nsenter',
        [`--net=${ns}`, 'tc', '-j', 'qdisc', 'show', 'dev', dev],
        {
          encoding: 'utf8',
        },
      );
      const all = JSON.parse(out) as {
        kind: string;
        root?: boolean;
        options?: { rate?: number; burst?: number };
      }[];
      const root = all.find((q) => q.root) ?? { kind: '' };
      return {
        kind: root.kind,
        ...(root.options?.rate !== undefined ? { rate: root.options.rate } : {}),
        ...(root.options?.burst !== undefined ? { burst: root.options.burst } : {}),
      };
    },
  }));

  test('netnsDirEnsure() makes a directory a shared mount of itself', async () => {
    const shared = `${dir}/shared`;
    try {
      await kernel!.netnsDirEnsure(shared);
      await kernel!.netnsDirEnsure(shared);
      const info = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
      const line = info.find((l) => l.split(' ')[4] === shared);
      assert.ok(line, 'mounted');
      assert.match(line, /shared:\d+/);
    } finally {
      // Both ensure calls may have stacked a bind mount; unmount until none is left.
      for (let i = 0; i < 4; i++) {
        try {
          execFileSync('umount', [shared], { stdio: 'ignore' });
        } catch {
          break;
        }
      }
    }
  });

  test('nftRun() reports libnftables errors as KernelError with its text', async () => {
    // Only failing or read-only scripts here: this runs in the test's own (root) namespace.
    await assert.rejects(kernel!.nftRun('add rule inet cnmt-k-none c x'), (err: unknown) => {
      assert.ok(err instanceof KernelError);
      assert.equal(err.errnoCode, 'EINVAL');
      assert.match(
        err.message,
        /^Cannot run nftables script: Invalid argument \(EINVAL\): Error: syntax error/,
      );
      return true;
    });
    await assert.rejects(kernel!.nftRun('delete table inet cnmt-k-none'), /ENOENT/);
    const out = JSON.parse(await kernel!.nftRun('list tables inet', { json: true })) as {
      nftables: unknown[];
    };
    assert.ok(Array.isArray(out.nftables));
  });

  test('nftRun() changes rules inside a namespace when the kernel runs there', async () => {
    // The worker acts in its process's namespace, so run a process inside a fresh one.
    const name = `cnmt-k-${process.pid}-nft`;
    execFileSync('ip', ['netns', 'add', name]);
    try {
      const script = `
        import { createKernel } from ${JSON.stringify(new URL('./kernel.ts', import.meta.url).href)};
        const k = await createKernel();
        await k.nftRun('add table inet cnmt\\nadd set inet cnmt s { type ipv4_addr; }\\nadd element inet cnmt s { 10.0.0.1 }');
        process.stdout.write(await k.nftRun('list set inet cnmt s', { json: true }));
        process.stdout.write('\\n--terse--\\n' + await k.nftRun('list set inet cnmt s', { terse: true }));
        await k.close();`;
      const out = execFileSync(
        'ip',
        [
          'netns',
          'exec',
          name,
          process.execPath,
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          script,
        ],
        { encoding: 'utf8' },
      );
      const [json, terse] = out.split('\n--terse--\n');
      assert.match(json!, /"elem": \["10\.0\.0\.1"\]/);
      // Terse: the set without its elements.
      assert.match(terse!, /set s \{/);
      assert.doesNotMatch(terse!, /10\.0\.0\.1/);
    } finally {
      execFileSync('ip', ['netns', 'del', name]);
    }
  });
});
