/**
 * Runs HostKernel's `nftRun` / `nftElements` for 84-nft-elements.test.ts in whatever netns it
 * was started in (the test starts it under `nsenter --net` in a throwaway namespace): one JSON
 * request per stdin line (`{ op, args }`), one JSON reply per stdout line. HostKernel is the
 * synchronous class the kernel worker runs, so this exercises the daemon's code path.
 */
import readline from 'node:readline';
import { loadAddon } from '../../src/kernel/native-addon.js';
import { KernelError } from '../../src/kernel/kernel-error.js';
import { HostKernel } from '../../src/kernel/worker.js';

const host = new HostKernel(
  loadAddon(new URL('../../build/Release/cnm_native.node', import.meta.url).pathname),
);
type Method = (...args: unknown[]) => unknown;
for await (const line of readline.createInterface({ input: process.stdin })) {
  const { op, args } = JSON.parse(line) as { op: string; args: unknown[] };
  let reply: unknown;
  try {
    const value = ((host as unknown as Record<string, Method>)[op] as Method).apply(host, args);
    reply = { ok: true, value: value ?? null };
  } catch (err) {
    const e = err as Error;
    reply = {
      ok: false,
      name: e.name,
      message: e.message,
      errnoCode: err instanceof KernelError ? err.errnoCode : undefined,
    };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
host.shutdown();
