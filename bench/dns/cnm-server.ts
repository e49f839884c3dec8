/**
 * The cnm side of the DNS benchmark: a DnsService (the daemon's own code, without the rest of
 * cnmd) serving one network whose names match the aardvark-dns config of `run.ts`. Runs inside
 * the bench's server netns; prints READY once bound; exits on SIGTERM.
 *
 * argv: JSON `{ gateway, subnet, entries: [{ id, ipv4, ipv6, names }], dgram? }`; UDP is served
 * by the addon's native listeners as in the daemon, or by `node:dgram` with `dgram: true`.
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The daemon runs tsc's output; tsx's transform adds a `__name()` call per closure created on
// the hot path. Use dist/ when it is at least as new as the sources (`npm run build`).
function newer(a: string, b: string): boolean {
  try {
    return (
      statSync(fileURLToPath(new URL(a, import.meta.url))).mtimeMs >=
      statSync(fileURLToPath(new URL(b, import.meta.url))).mtimeMs
    );
  } catch {
    return false;
  }
}
const fromDist =
  ['server', 'names', 'wire', 'service'].every((f) =>
    newer(`../../dist/dns/${f}.js`, `../../src/dns/${f}.ts`),
  ) && newer('../../dist/kernel/dns-udp.js', '../../src/kernel/dns-udp.ts');
const { DnsService } = (await import(
  fromDist ? '../../dist/dns/service.js' : '../../src/dns/service.js'
)) as typeof import('../../src/dns/service.js');
const { openDnsUdp } = (await import(
  fromDist ? '../../dist/kernel/dns-udp.js' : '../../src/kernel/dns-udp.js'
)) as typeof import('../../src/kernel/dns-udp.js');

interface Spec {
  gateway: string;
  subnet: string;
  entries: { id: string; ipv4: string; ipv6: string; names: string[] }[];
  dgram?: boolean;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
process.stderr.write(
  `bench/dns: cnm server from ${fromDist ? 'dist/' : 'src/ (tsx)'}, UDP via ${spec.dgram === true ? 'node:dgram' : 'native listeners'}\n`,
);
const dns = new DnsService({
  servers: [],
  resolvConfPath: '/nonexistent',
  log: () => undefined,
  ...(spec.dgram === true ? {} : { udp: openDnsUdp }),
});
await dns.networkUp({
  id: 'benchnet',
  name: 'benchnet',
  internal: false,
  gateways: [spec.gateway],
  subnets: [spec.subnet],
});
for (const e of spec.entries) {
  dns.endpointUp({
    endpointId: e.id,
    networkId: 'benchnet',
    containerId: e.id,
    containerName: e.names[0]!,
    aliases: e.names.slice(1),
    ipv4: e.ipv4,
    ipv6: e.ipv6,
    dns: [],
  });
}
process.on('SIGTERM', () => void dns.close().then(() => process.exit(0)));
process.stdout.write('READY\n');
