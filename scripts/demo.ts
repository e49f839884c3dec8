/**
 * The main job: cnmd on its embedded SQLite store builds a microservice topology and prints its
 * communication matrix, measured by real probes.
 *
 * Nothing happens in the machine's own network namespace: the demo builds a "host" netns (where
 * cnmd runs, with its own data-root, exec-root and socket) and an "outside" netns playing the
 * internet on 203.0.113.0/24, exactly like the integration tests, and removes both at the end.
 *
 * Topology (every container runs a small HTTP server on port 80 on the host's filesystem):
 *   gateway  frontend           published as host port 8080
 *   svc-a    frontend + backend
 *   svc-b    frontend + backend
 *   db       backend
 *
 * Usage: `npm run demo` (runs until Ctrl-C), `npm run demo -- --once` (prints and exits).
 */
import {
  cnm,
  createWorld,
  destroyWorld,
  httpGet,
  startDaemon,
  tcpConnect,
  type World,
} from '../test/integration/harness.js';

const once = process.argv.includes('--once');

async function sh(w: World, args: string[]): Promise<string> {
  process.stdout.write(`$ cnm ${args.join(' ')}\n`);
  const r = await cnm(w, args);
  if (r.code !== 0) throw new Error(`cnm ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  const out = r.stdout.trim();
  if (out)
    process.stdout.write(
      out
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n') + '\n',
    );
  return out;
}

interface Ctr {
  name: string;
  sandbox: string;
  /** network name → IPv4 address */
  ips: Record<string, string>;
}

async function inspect(w: World, name: string): Promise<Ctr> {
  const r = await cnm(w, ['inspect', name]);
  if (r.code !== 0) throw new Error(`cnm inspect ${name} failed: ${r.stderr}`);
  const [c] = JSON.parse(r.stdout) as {
    NetworkSettings: { SandboxKey: string; Networks: Record<string, { IPAddress: string }> };
  }[];
  const ips: Record<string, string> = {};
  for (const [net, s] of Object.entries(c!.NetworkSettings.Networks)) ips[net] = s.IPAddress;
  return { name, sandbox: c!.NetworkSettings.SandboxKey, ips };
}

async function main(): Promise<void> {
  const w = await createWorld({ name: 'demo' });
  let stopping = false;
  const cleanup = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nRemoving everything the demo made...\n');
    await destroyWorld(w).catch((err) => process.stderr.write(`cleanup: ${String(err)}\n`));
    process.stdout.write('Done.\n');
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(0)));
  process.on('SIGTERM', () => void cleanup().then(() => process.exit(0)));
  try {
    process.stdout.write(
      `World ${w.name}: host netns ${w.hostNsName} (uplink ${w.hostUplinkIp}), outside ${w.outsideIp}\n`,
    );
    const daemon = await startDaemon(w);
    process.stdout.write(`cnmd running (pid ${daemon.pid}), store ${w.dataRoot}/cnm.db\n\n`);
    await sh(w, ['network', 'create', '--subnet', '10.10.1.0/24', 'frontend']);
    await sh(w, ['network', 'create', '--subnet', '10.10.2.0/24', '--internal', 'backend']);
    const server = ['python3', '-m', 'http.server', '--bind', '0.0.0.0', '80'];
    await sh(w, [
      'run',
      '-d',
      '--name',
      'gateway',
      '--network',
      'frontend',
      '-p',
      '8080:80',
      '--',
      ...server,
    ]);
    for (const svc of ['svc-a', 'svc-b']) {
      await sh(w, [
        'run',
        '-d',
        '--name',
        svc,
        '--network',
        'frontend',
        '--network',
        'backend',
        '--',
        ...server,
      ]);
    }
    await sh(w, ['run', '-d', '--name', 'db', '--network', 'backend', '--', ...server]);
    await sh(w, ['network', 'ls']);
    await sh(w, ['ps']);
    await new Promise((r) => setTimeout(r, 1000));

    const ctrs = await Promise.all(['gateway', 'svc-a', 'svc-b', 'db'].map((n) => inspect(w, n)));
    process.stdout.write('\nCommunication matrix (TCP connect to port 80, real probes):\n');
    const header = ['from \\ to', ...ctrs.map((c) => c.name), 'outside (NAT)'];
    const rows: string[][] = [];
    for (const from of ctrs) {
      const row = [from.name];
      for (const to of ctrs) {
        if (to === from) {
          row.push('-');
          continue;
        }
        const shared = Object.keys(to.ips).filter((n) => n in from.ips);
        const via = shared[0] ?? Object.keys(to.ips)[0]!;
        const ok = await tcpConnect(from.sandbox, to.ips[via]!, 80, 1500);
        row.push(ok ? `yes (${via})` : 'no');
      }
      const out = await httpGet(from.sandbox, `http://${w.outsideIp}/`, 2000).catch(
        () => undefined,
      );
      row.push(out ? `yes (seen as ${String(out.json?.client ?? '?')})` : 'no');
      rows.push(row);
    }
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
    process.stdout.write(line(header) + '\n' + rows.map(line).join('\n') + '\n');
    const pub = await httpGet(w.outsideNs, `http://${w.hostUplinkIp}:8080/`, 2000).catch(
      () => undefined,
    );
    process.stdout.write(
      `\noutside → ${w.hostUplinkIp}:8080 (gateway's published port): ${pub ? `HTTP ${pub.status}` : 'no answer'}\n`,
    );
    process.stdout.write(
      'backend is --internal: db has no way out; svc-a/svc-b reach db only over backend.\n',
    );
    if (once) {
      await cleanup();
      return;
    }
    process.stdout.write('\nRunning. Press Ctrl-C to remove everything.\n');
    await new Promise(() => undefined);
  } catch (err) {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await cleanup();
    process.exit(1);
  }
}

void main();
