/**
 * Consistency checks between cnmd's records (read through its API) and the kernel (read with
 * `ip`, `nft` and /proc/self/mountinfo as oracles), shared by the crash, drift and concurrency
 * tests. {@link checkConsistency} returns every violation as one line; empty means consistent.
 *
 * What "consistent" means here:
 * - no IPv4 address is held by two endpoints of one network;
 * - every cnm-owned link (IFLA_IFALIAS `cnm:…`) is claimed by a record: a network's bridge
 *   (`cnm:net:<id>`) or an endpoint's host veth (`cnm:ep:<id>`); its IPv4 addresses are only the
 *   network gateway (bridges) or none (veths);
 * - every record has its kernel objects: each bridge network's bridge, each endpoint's host veth
 *   (enslaved to that bridge), each sandbox's netns mount;
 * - nftables holds exactly the elements the records imply (`bridges`, `pm4any`/`pm4`,
 *   `icc_off`, anti-spoofing `ep_ports`/`ep_ip4`), and nothing for networks or ports that no
 *   record has;
 * - sandbox files and nsfs mounts under the exec root are exactly the containers' sandbox keys;
 * - every running container answers TCP on its port from the host netns (optional).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { mountsUnder } from '../../scripts/sweep.js';
import { exec, type ApiClient, type World } from './harness.js';

/** What the records say, as read through the API. */
export interface RecordView {
  networks: any[];
  containers: any[];
}

/** Reads every network (inspected) and container (inspected) through the API. */
export async function readRecords(a: ApiClient): Promise<RecordView> {
  const nl = await a.get('/networks');
  if (nl.status !== 200) throw new Error(`GET /networks: ${nl.status} ${nl.text}`);
  const networks: any[] = [];
  for (const n of nl.body as any[]) {
    const r = await a.get(`/networks/${n.Id}`);
    if (r.status === 200) networks.push(r.body);
  }
  const cl = await a.get('/cnm/containers/json?all=1');
  if (cl.status !== 200) throw new Error(`GET /cnm/containers/json: ${cl.status} ${cl.text}`);
  const containers: any[] = [];
  for (const c of cl.body as any[]) {
    const r = await a.get(`/cnm/containers/${c.Id}/json`);
    if (r.status === 200) containers.push(r.body);
  }
  return { networks, containers };
}

async function ipJson(ns: string, args: string[]): Promise<any[]> {
  const r = await exec(ns, ['ip', '-j', ...args], { check: true });
  return r.stdout.trim() === '' ? [] : (JSON.parse(r.stdout) as any[]);
}

/** The nft elements of one set or map in the world's host netns, as JSON strings. */
function nftSets(ruleset: any[]): Map<string, unknown[]> {
  const out = new Map<string, unknown[]>();
  for (const o of ruleset) {
    const s = o.set ?? o.map;
    if (s) out.set(`${s.family} ${s.table} ${s.name}`, s.elem ?? []);
  }
  return out;
}

/** Options for {@link checkConsistency}. */
export interface ConsistencyOptions {
  /** TCP port every running container serves on; omit to skip the reachability check. */
  servePort?: number;
  /** nftables table name (default `cnm`). */
  table?: string;
}

/**
 * Compares the records with the kernel of the world's host netns and returns one line per
 * violation (empty when consistent).
 */
export async function checkConsistency(
  w: World,
  a: ApiClient,
  opts: ConsistencyOptions = {},
): Promise<{ problems: string[]; records: RecordView }> {
  const t = opts.table ?? 'cnm';
  const records = await readRecords(a);
  const problems: string[] = [];
  const links = await ipJson(w.hostNs, ['-d', 'addr', 'show']);
  const byName = new Map<string, any>(links.map((l) => [l.ifname, l]));

  // Claims: network id prefix → bridge network; endpoint id prefix → endpoint.
  const netClaims = new Map<string, any>();
  for (const n of records.networks) if (n.Driver === 'bridge') netClaims.set(n.Id.slice(0, 12), n);
  const epClaims = new Map<string, { net: any; ctr: string; ip: string }>();
  for (const n of records.networks) {
    const seen = new Map<string, string>();
    for (const [cid, c] of Object.entries<any>(n.Containers ?? {})) {
      epClaims.set(String(c.EndpointID).slice(0, 12), { net: n, ctr: cid, ip: c.IPv4Address });
      const ip = String(c.IPv4Address ?? '').split('/')[0];
      if (!ip) continue;
      if (seen.has(ip))
        problems.push(`duplicate address ${ip} in ${n.Name}: ${seen.get(ip)} and ${cid}`);
      seen.set(ip, cid);
    }
  }

  // Kernel → records: every cnm link claimed, with only its own addresses.
  const bridgeOf = new Map<string, string>(); // network id prefix → bridge name
  const vethOf = new Map<string, any>(); // endpoint id prefix → link
  for (const l of links) {
    const alias: string | undefined = l.ifalias;
    if (!alias?.startsWith('cnm:')) continue;
    const v4 = (l.addr_info ?? []).filter((x: any) => x.family === 'inet');
    const m = /^cnm:(net|ep):([0-9a-f]{12})$/.exec(alias);
    if (m?.[1] === 'net' && netClaims.has(m[2]!)) {
      bridgeOf.set(m[2]!, l.ifname);
      const n = netClaims.get(m[2]!);
      const gws = new Set((n.IPAM?.Config ?? []).map((c: any) => c.Gateway));
      for (const x of v4)
        if (!gws.has(x.local)) problems.push(`bridge ${l.ifname} has foreign address ${x.local}`);
    } else if (m?.[1] === 'ep' && epClaims.has(m[2]!)) {
      vethOf.set(m[2]!, l);
      for (const x of v4) problems.push(`veth ${l.ifname} has address ${x.local}`);
    } else {
      problems.push(`orphan link ${l.ifname} (${alias})`);
    }
  }

  // Records → kernel.
  for (const [idp, n] of netClaims) {
    if (!bridgeOf.has(idp)) problems.push(`network ${n.Name}: bridge missing`);
  }
  for (const [idp, ep] of epClaims) {
    if (ep.net.Driver !== 'bridge') continue;
    const l = vethOf.get(idp);
    if (!l) {
      problems.push(`endpoint ${idp} (${ep.net.Name}/${ep.ctr.slice(0, 12)}): host veth missing`);
      continue;
    }
    const master: string | undefined = l.master;
    const want = bridgeOf.get(ep.net.Id.slice(0, 12));
    if (want && master !== want) problems.push(`veth ${l.ifname} on ${master}, not ${want}`);
    if (!(l.flags ?? []).includes('UP')) problems.push(`veth ${l.ifname} is down`);
  }
  void byName;

  // nftables elements against records.
  const nftOut = await exec(w.hostNs, ['nft', '-j', 'list', 'ruleset'], { check: true });
  const sets = nftSets((JSON.parse(nftOut.stdout || '{"nftables":[]}').nftables ?? []) as any[]);
  if (!sets.has(`inet ${t} bridges`)) problems.push(`nft: table inet ${t} missing`);
  else {
    const got = new Set((sets.get(`inet ${t} bridges`) ?? []).map(String));
    const want = new Set(bridgeOf.values());
    for (const b of got) if (!want.has(b)) problems.push(`nft: orphan bridges element ${b}`);
    for (const b of want) if (!got.has(b)) problems.push(`nft: bridges element ${b} missing`);
    const ports =
      (sets.get(`inet ${t} pm4any`) ?? []).length + (sets.get(`inet ${t} pm4`) ?? []).length;
    let wantPorts = 0;
    for (const c of records.containers) {
      for (const bs of Object.values<any>(c.NetworkSettings?.Ports ?? {})) {
        wantPorts += (bs ?? []).length;
      }
    }
    if (ports !== wantPorts)
      problems.push(`nft: ${ports} port elements, records have ${wantPorts}`);
  }
  // Anti-spoofing: exactly the bridge endpoints' host veths are pinned, each to its address.
  const pinned = new Set((sets.get(`bridge ${t} ep_ports`) ?? []).map(String));
  const ip4 = (sets.get(`bridge ${t} ep_ip4`) ?? []).map((e) => JSON.stringify(e));
  const wantPinned = new Set<string>();
  for (const [idp, ep] of epClaims) {
    const l = vethOf.get(idp);
    if (ep.net.Driver !== 'bridge' || !l) continue;
    wantPinned.add(l.ifname);
    if (!pinned.has(l.ifname)) problems.push(`nft: ep_ports element ${l.ifname} missing`);
    const addr = String(ep.ip ?? '').split('/')[0];
    if (addr && !ip4.some((e) => e.includes(`"${l.ifname}"`) && e.includes(`"${addr}"`))) {
      problems.push(`nft: ep_ip4 element ${l.ifname} . ${addr} missing`);
    }
  }
  for (const p of pinned)
    if (!wantPinned.has(p)) problems.push(`nft: orphan ep_ports element ${p}`);

  // Sandboxes: files and nsfs mounts under the exec root are exactly the containers' keys.
  const keys = new Set<string>(
    records.containers.map((c) => c.NetworkSettings?.SandboxKey).filter((k: string) => !!k),
  );
  const nsDir = path.join(w.execRoot, 'netns');
  const files = new Set(
    (await readdir(nsDir).catch(() => [] as string[])).map((f) => path.join(nsDir, f)),
  );
  // The netns dir itself is a shared bind mount of itself (`netnsDirEnsure`).
  const mounts = new Set((await mountsUnder(w.execRoot)).filter((m) => m !== nsDir));
  for (const f of files) if (!keys.has(f)) problems.push(`orphan sandbox file ${f}`);
  for (const m of mounts) if (!keys.has(m)) problems.push(`orphan mount ${m}`);
  for (const k of keys) if (!mounts.has(k)) problems.push(`sandbox ${k} not mounted`);

  // Processes: only running containers have any (found by cnm's environment marker).
  const running = new Set(
    records.containers.filter((c) => c.State?.Status === 'running').map((c) => c.Id as string),
  );
  for (const [id, pids] of await markedProcesses(w.execRoot)) {
    if (!running.has(id)) problems.push(`stray processes ${pids.join(',')} of container ${id}`);
  }

  // Running containers answer TCP from the host netns (one probe process for all).
  if (opts.servePort !== undefined) {
    const targets: { id: string; ip: string }[] = [];
    for (const c of records.containers) {
      if (c.State?.Status !== 'running') continue;
      const ep = Object.values<any>(c.NetworkSettings?.Networks ?? {}).find((e) => e.IPAddress);
      if (ep) targets.push({ id: c.Id.slice(0, 12), ip: ep.IPAddress });
    }
    if (targets.length > 0) {
      const bad = await unreachable(w, targets, opts.servePort);
      for (const b of bad) problems.push(`running container ${b.id} (${b.ip}) unreachable`);
    }
  }
  return { problems, records };
}

/** Container id → PIDs carrying cnm's markers for this exec root (see kernel/process.ts). */
async function markedProcesses(execRoot: string): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const env = await readFile(`/proc/${e}/environ`, 'latin1').catch(() => '');
    const vars = env.split('\0');
    if (!vars.includes(`CNM_EXEC_ROOT=${execRoot}`)) continue;
    const id = vars.find((v) => v.startsWith('CNM_CONTAINER_ID='))?.slice(17);
    if (!id) continue;
    // A zombie still has /proc/PID until its parent reaps it.
    const st = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
    if (/\) Z /.test(st) || st === '') continue;
    out.set(id, [...(out.get(id) ?? []), Number(e)]);
  }
  return out;
}

// Retries each target for up to 4 s: a container started just before the crash may not
// listen yet.
const REACH_PY = String.raw`
import json, socket, sys, time
targets, port = json.loads(sys.argv[1]), int(sys.argv[2])
bad = []
for t in targets:
    deadline = time.time() + 4
    while True:
        try:
            socket.create_connection((t["ip"], port), timeout=0.5).close(); break
        except Exception:
            if time.time() > deadline:
                bad.append(t); break
            time.sleep(0.05)
print(json.dumps(bad))
`;

async function unreachable(
  w: World,
  targets: { id: string; ip: string }[],
  port: number,
): Promise<{ id: string; ip: string }[]> {
  const r = await exec(
    w.hostNs,
    ['/usr/bin/python3', '-c', REACH_PY, JSON.stringify(targets), String(port)],
    { timeoutMs: 10_000 + targets.length * 5000 },
  );
  try {
    return JSON.parse(r.stdout.trim()) as { id: string; ip: string }[];
  } catch {
    return targets;
  }
}

/** A tiny seeded PRNG (mulberry32): the same seed replays the same choices. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** A container command serving TCP on `port` (accept and close), cheap to start. */
export function tinyServerCmd(port: number): string[] {
  return [
    '/usr/bin/python3',
    '-S',
    '-c',
    `import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(("0.0.0.0",${port}))\ns.listen(64)\nwhile True:\n c,_=s.accept()\n c.close()`,
  ];
}
