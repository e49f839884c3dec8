/**
 * The Kernel contract as one suite, run against every implementation: the real kernel (root,
 * in throwaway namespaces) in `kernel.test.ts` and the fake in `fake/fake-kernel.test.ts`.
 * Every case works inside namespaces the world creates; nothing touches the daemon's own.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { KernelError } from './kernel-error.js';
import type { Addr, Kernel } from './types.js';

/** What a suite run needs from an implementation. */
export interface KernelWorld {
  kernel: Kernel;
  /** A fresh, unused namespace path (not created yet). */
  nsPath(): string;
  /**
   * An independent oracle for a bridge port's hairpin mode (the real world asks
   * `bridge -d link show`); cases also read it back through `linkGet` either way.
   */
  hairpinOracle?(name: string, ns: string): Promise<boolean | undefined>;
  /**
   * An independent oracle for a bridge's own br_netfilter switches (the real world asks
   * `ip -d -j link show`): nf_call_iptables and nf_call_ip6tables.
   */
  bridgeNfOracle?(name: string, ns: string): Promise<{ v4: boolean; v6: boolean }>;
  /**
   * An independent oracle for a device's root qdisc (the real world asks `tc -j qdisc show`):
   * its kind and, for a tbf, rate and burst in bytes.
   */
  qdiscOracle?(dev: string, ns: string): Promise<{ kind: string; rate?: number; burst?: number }>;
  /** True for the real kernel, which also does what the fake does not model (IPv6 autoconf). */
  realKernel?: boolean;
}

/** Retries `check` until it passes: netns teardown runs asynchronously in the real kernel. */
async function eventually(check: () => Promise<void>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Asserts that `p` rejects with a KernelError of `errnoCode`. */
async function rejectsErrno(p: Promise<unknown>, errnoCode: string): Promise<KernelError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KernelError, `expected KernelError, got ${String(err)}`);
    assert.equal(err.errnoCode, errnoCode, err.message);
    assert.equal(err.code, `KERNEL_${errnoCode}`);
    assert.equal(err.kind, 'internal');
    return err;
  }
  assert.fail(`expected ${errnoCode}`);
}

/** Registers the contract cases under `label`. `getWorld` is called inside each test. */
export function runKernelCases(label: string, getWorld: () => KernelWorld): void {
  describe(`Kernel contract: ${label}`, () => {
    const made: string[] = [];
    const newNs = async (): Promise<string> => {
      const w = getWorld();
      const p = w.nsPath();
      made.push(p);
      await w.kernel.netnsAdd(p);
      return p;
    };
    afterEach(async () => {
      const k = getWorld().kernel;
      while (made.length > 0) await k.netnsDel(made.pop()!);
    });

    test('netnsAdd() creates a namespace with lo up; netnsDel() removes it, twice is fine', async () => {
      const k = getWorld().kernel;
      const ns = await newNs();
      assert.equal(await k.netnsExists(ns), true);
      const lo = await k.linkGet('lo', ns);
      assert.equal(lo?.up, true);
      await rejectsErrno(k.netnsAdd(ns), 'EEXIST');
      await k.netnsDel(ns);
      assert.equal(await k.netnsExists(ns), false);
      await k.netnsDel(ns);
    });

    test('linkAdd() veth: peer is born in its namespace under its final name', async () => {
      const k = getWorld().kernel;
      const host = await newNs();
      const sb = await newNs();
      await k.linkAdd({ kind: 'bridge', name: 'br0', up: true }, host);
      await k.linkAdd(
        {
          kind: 'veth',
          name: 'vh1',
          mtu: 1400,
          up: true,
          master: 'br0',
          alias: 'cnm:ep1',
          peer: { name: 'eth0', ns: sb, up: true, mac: '02:42:ac:11:00:02' },
        },
        host,
      );
      const br = await k.linkGet('br0', host);
      const vh = await k.linkGet('vh1', host);
      const eth0 = await k.linkGet('eth0', sb);
      assert.equal(br?.kind, 'bridge');
      assert.equal(vh?.kind, 'veth');
      assert.equal(vh?.master, br?.index);
      assert.equal(vh?.mtu, 1400);
      assert.equal(vh?.alias, 'cnm:ep1');
      assert.equal(vh?.up, true);
      assert.equal(eth0?.up, true);
      assert.equal(eth0?.mtu, 1400, 'peer inherits the MTU');
      assert.equal(eth0?.mac, '02:42:ac:11:00:02');
      assert.equal(vh?.link, eth0?.index, 'IFLA_LINK names the peer');
      assert.equal(await k.linkGet('eth0', host), undefined);
      await eventually(async () => assert.equal((await k.linkGet('vh1', host))?.lowerUp, true));
    });

    test('linkAdd() refuses a taken name with EEXIST and a message naming the link', async () => {
      const k = getWorld().kernel;
      const ns = await newNs();
      await k.linkAdd({ kind: 'bridge', name: 'd0' }, ns);
      const err = await rejectsErrno(
        k.linkAdd({ kind: 'veth', name: 'd0', peer: { name: 'p0', ns } }, ns),
        'EEXIST',
      );
      assert.match(err.message, /^Cannot add link "d0" in netns ".*": File exists \(EEXIST\)/);
    });

    test('linkAdd() with a missing master or parent fails ENODEV', async () => {
      const k = getWorld().kernel;
      const ns = await newNs();
      await rejectsErrno(k.linkAdd({ kind: 'bridge', name: 'd1', master: 'nope' }, ns), 'ENODEV');
      await rejectsErrno(
        k.linkAdd({ kind: 'macvlan', name: 'v1', parent: 'nope', mode: 'bridge' }, ns),
        'ENODEV',
      );
      assert.equal(await k.linkGet('d1', ns), undefined);
    });

    test('linkDel() of one veth end deletes the other', async () => {
      const k = getWorld().kernel;
      const a = await newNs();
      const b = await newNs();
      await k.linkAdd({ kind: 'veth', name: 'va', peer: { name: 'vb', ns: b } }, a);
      await k.linkDel('vb', b);
      assert.equal(await k.linkGet('va', a), undefined);
      assert.equal(await k.linkGet('vb', b), undefined);
    });

    test('linkDel() of a missing link is ENODEV unless ifExists', async () => {
      const k = getWorld().kernel;
      const ns = await newNs();
      await rejectsErrno(k.linkDel('ghost', ns), 'ENODEV');
      await k.linkDel('ghost', ns, { ifExists: true });
    });

    test('netnsDel() takes the namespace links with it, including veth peers elsewhere', async () => {
      const k = getWorld().kernel;
      const a = await newNs();
      const b = await newNs();
      await k.linkAdd({ kind: 'veth', name: 'va', peer: { name: 'vb', ns: b } }, a);
      await k.netnsDel(b);
      await eventually(async () => assert.equal(await k.linkGet('va', a), undefined));
    });

    test('linkSet() changes mtu, alias, mac, master, up and renames a down link', async () => {
      const k = getWorld().kernel;
      const ns = await newNs();
      await k.linkAdd({ kind: 'bridge', name: 'br0' }, ns);
      await k.linkAdd({ kind: 'veth', name: 'd0', peer: { name: 'p0', ns } }, ns);
      await k.linkAdd({ kind: 'bridge', name: 'br1' }, ns);
      await rejectsErrno(k.linkSet('br1', { master: 'br0' }, ns), 'ELOOP');
      await k.linkSet('d0', { mtu: 1300, alias: 'x', mac: '02:00:00:00:00:09', master: 'br0' }, ns);
      let d = await k.linkGet('d0', ns);
      assert.equal(d?.mtu, 1300);
      assert.equal(d?.alias, 'x');
      assert.equal(d?.mac, '02:00:00:00:00:09');
      assert.equal(d?.master, (await k.linkGet('br0', ns))?.index);
      await k.linkSet('d0', { master: null, name: 'd9' }, ns);
      d = await k.linkGet('d9', ns);
      assert.equal(d?.master, undefined);
      await k.linkSet('d9', { up: true }, ns);
      assert.equal((await k.linkGet('d9', ns))?.up, true);
      await rejectsErrno(k.linkSet('ghost', { up: true }, ns), 'ENODEV');
    });

    test("linkAdd()/linkSet() bridgeNfCall: a bridge's own br_netfilter switch, read back", async () => {
      const w = getWorld();
      const k = w.kernel;
      const ns = await newNs();
      const both = async (name: string): Promise<boolean | undefined> => {
        const got = (await k.linkGet(name, ns))?.bridgeNfCall;
        if (w.bridgeNfOracle) {
          const o = await w.bridgeNfOracle(name, ns);
          assert.deepEqual(o, { v4: got, v6: got }, 'oracle');
        }
        return got;
      };
      await k.linkAdd({ kind: 'bridge', name: 'br0', up: true }, ns);
      assert.equal(await both('br0'), false, 'a new bridge has it off');
      await k.linkAdd({ kind: 'bridge', name: 'br1', nfCall: true }, ns);
      assert.equal(await both('br1'), true, 'set at creation');
      await k.linkSet('br0', { bridgeNfCall: true }, ns);
      assert.equal(await both('br0'), true);
      const br0 = await k.linkGet('br0', ns);
      assert.equal(br0?.up, true, 'other settings are left alone');
      await k.batch([{ op: 'linkSet', args: ['br0', { bridgeNfCall: false, mtu: 1400 }, ns] }]);
      assert.equal(await both('br0'), false);
      assert.equal((await k.linkGet('br0', ns))?.mtu, 1400);
      // Only a bridge has it; the failed request changes nothing.
      await k.linkAdd({ kind: 'veth', name: 'd0', peer: { name: 'd0p', ns } }, ns);
      await rejectsErrno(k.linkSet('d0', { bridgeNfCall: true, mtu: 1300 }, ns), 'EOPNOTSUPP');
      assert.equal((await k.linkGet('d0', ns))?.bridgeNfCall, undefined);
      assert.notEqual((await k.linkGet('d0', ns))?.mtu, 1300);
    });

    test('linkSet()/linkAdd() hairpin: a bridge port in hairpin mode, read back', async () => {
      const w = getWorld();
      const k = w.kernel;
      const host = await newNs();
      const sb = await newNs();
      const both = async (name: string): Promise<boolean | undefined> => {
        const got = (await k.linkGet(name, host))?.hairpin;
        if (w.hairpinOracle) assert.equal(await w.hairpinOracle(name, host), got, 'oracle');
        return got;
      };
      await k.linkAdd({ kind: 'bridge', name: 'br0', up: true }, host);
      await k.linkAdd(
        { kind: 'veth', name: 'vh1', master: 'br0', up: true, peer: { name: 'eth0', ns: sb } },
        host,
      );
      assert.equal(await both('vh1'), false, 'a new port is not in hairpin mode');
      await k.linkSet('vh1', { hairpin: true }, host);
      assert.equal(await both('vh1'), true);
      const vh1 = await k.linkGet('vh1', host);
      assert.equal(vh1?.up, true, 'other settings are left alone');
      assert.equal(vh1?.master, (await k.linkGet('br0', host))?.index);
      await k.linkSet('vh1', { hairpin: false }, host);
      assert.equal(await both('vh1'), false);
      // At creation (a follow-up request after the link exists), and in a batch.
      await k.linkAdd(
        {
          kind: 'veth',
          name: 'vh2',
          master: 'br0',
          hairpin: true,
          peer: { name: 'eth1', ns: sb },
        },
        host,
      );
      assert.equal(await both('vh2'), true);
      await k.linkAdd({ kind: 'veth', name: 'vh3', peer: { name: 'eth2', ns: sb } }, host);
      await k.batch([{ op: 'linkSet', args: ['vh3', { master: 'br0', hairpin: true }, host] }]);
      assert.equal(await both('vh3'), true);
      // Released, it is no bridge port and has no hairpin setting; re-enslaved, it starts off.
      await k.linkSet('vh3', { master: null }, host);
      assert.equal((await k.linkGet('vh3', host))?.hairpin, undefined);
      await k.linkSet('vh3', { master: 'br0' }, host);
      assert.equal(await both('vh3'), false);
      // Only a bridge port has the setting; a failed linkAdd leaves nothing behind.
      await rejectsErrno(k.linkSet('eth0', { hairpin: true }, sb), 'EOPNOTSUPP');
      await rejectsErrno(k.linkSet('br0', { hairpin: true }, host), 'EOPNOTSUPP');
      await rejectsErrno(
        k.linkAdd(
          { kind: 'veth', name: 'vh4', hairpin: true, peer: { name: 'eth3', ns: sb } },
          host,
        ),
        'EOPNOTSUPP',
      );
      assert.equal(await k.linkGet('vh4', host), undefined);
      await rejectsErrno(k.linkSet('ghost', { hairpin: true }, host), 'ENODEV');
    });

    test('linkAdd()/linkSet() addrGenMode none: no IPv6 link-local address on either end', async () => {
      const k = getWorld().kernel;
      const host = await newNs();
      const sb = await newNs();
      await k.linkAdd({ kind: 'bridge', name: 'br0', up: true }, host);
      await k.linkAdd(
        {
          kind: 'veth',
          name: 'vh1',
          master: 'br0',
          up: true,
          hairpin: true,
          addrGenMode: 'none',
          peer: { name: 'eth0', ns: sb },
        },
        host,
      );
      // Before it comes up: with its other end up it would get its address at once.
      await k.linkSet('eth0', { addrGenMode: 'none' }, sb);
      await k.linkSet('eth0', { up: true }, sb);
      // A control pair with the default mode, brought up the same way.
      await k.linkAdd(
        { kind: 'veth', name: 'vh2', master: 'br0', up: true, peer: { name: 'eth1', ns: sb } },
        host,
      );
      await k.linkSet('eth1', { up: true }, sb);
      const vh1 = await k.linkGet('vh1', host);
      assert.equal(vh1?.addrGenMode, 'none');
      assert.equal(vh1?.hairpin, true, 'set in the same request as the mode and the alias');
      assert.equal((await k.linkGet('eth0', sb))?.addrGenMode, 'none');
      assert.notEqual((await k.linkGet('eth1', sb))?.addrGenMode, 'none');
      // The kernel adds link-local addresses asynchronously (link watch): give it time to.
      await new Promise((r) => setTimeout(r, 300));
      const v6 = async (ns: string, dev: string): Promise<Addr[]> => {
        const index = (await k.linkGet(dev, ns))!.index;
        return (await k.addrList(ns, 6)).filter((a) => a.index === index);
      };
      assert.deepEqual(await v6(host, 'vh1'), []);
      assert.deepEqual(await v6(sb, 'eth0'), []);
      if (getWorld().realKernel) {
        await eventually(async () => {
          assert.equal((await v6(sb, 'eth1')).length, 1, 'the control link has its fe80 address');
        });
      }
    });

    test('linkAdd() macvlan child is created in another namespace', async () => {
      const k = getWorld().kernel;
      const host = await newNs();
      const sb = await newNs();
      await k.linkAdd({ kind: 'bridge', name: 'up0', up: true }, host);
      await k.linkAdd(
        { kind: 'macvlan', name: 'mv0', parent: 'up0', mode: 'bridge', ns: sb, up: true },
        host,
      );
      const mv = await k.linkGet('mv0', sb);
      assert.equal(mv?.kind, 'macvlan');
      assert.equal(mv?.up, true);
      assert.equal(await k.linkGet('mv0', host), undefined);
    });

    test('linkAdd() vxlan and vlan read back with their kind', async (t) => {
      const k = getWorld().kernel;
      const ns = await newNs();
      await k.linkAdd({ kind: 'bridge', name: 'u0', up: true }, ns);
      await k.addrAdd('u0', '192.0.2.1/24', ns);
      await k.linkAdd(
        { kind: 'vxlan', name: 'vx0', vni: 42, local: '192.0.2.1', dev: 'u0', port: 4789 },
        ns,
      );
      assert.equal((await k.linkGet('vx0', ns))?.kind, 'vxlan');
      // Some kernels (this project's VMs) are built without 8021q: say so rather than fail.
      try {
        await k.linkAdd({ kind: 'vlan', name: 'u0.7', parent: 'u0', id: 7 }, ns);
      } catch (err) {
        if (err instanceof KernelError && err.errnoCode === 'EOPNOTSUPP') {
          t.skip('kernel has no vlan support');
          return;
        }
        throw err;
      }
      assert.equal((await k.linkGet('u0.7', ns))?.kind, 'vlan');
    });

    test('addrAdd()/addrDel(): EEXIST on duplicates, ENODEV on a missing device', async () => {
      const k = getWorld().kernel;
      const ns = await newNs();
      await k.linkAdd({ kind: 'bridge', name: 'd0', up: true }, ns);
      await k.addrAdd('d0', '10.88.0.2/16', ns);
      await k.addrAdd('d0', 'fd88::2/64', ns, { noDad: true });
      const addrs = (await k.addrList(ns)).filter((a) => a.scope === 0);
      assert.deepEqual(addrs.map((a) => `${a.family} ${a.address}/${a.prefixLen}`).sort(), [
        '4 10.88.0.2/16',
        '6 fd88::2/64',
      ]);
      assert.equal((await k.addrList(ns, 4)).find((a) => a.address === '10.88.0.2')?.label, 'd0');
      await rejectsErrno(k.addrAdd('d0', '10.88.0.2/16', ns), 'EEXIST');
      await rejectsErrno(k.addrAdd('ghost', '10.88.0.3/16', ns), 'ENODEV');
      await k.addrDel('d0', '10.88.0.2/16', ns);
      assert.equal(
        (await k.addrList(ns, 4)).find((a) => a.address === '10.88.0.2'),
        undefined,
      );
      await rejectsErrno(k.addrDel('d0', '10.88.0.2/16', ns), 'EADDRNOTAVAIL');
    });

    test('routeAdd(): default via an on-link gateway, ENETUNREACH otherwise', async () => {
      const k = getWorld().kernel;
      const ns = await newNs();
      await k.linkAdd({ kind: 'bridge', name: 'd0', up: true }, ns);
      await k.addrAdd('d0', '10.88.0.2/16', ns);
      await k.routeAdd({ family: 4, dst: 'default', gateway: '10.88.0.1' }, ns);
      await k.routeAdd({ family: 4, dst: '198.51.100.0/24', dev: 'd0', mtu: 1280 }, ns);
      const routes = await k.routeList(ns, 4);
      const def = routes.find((r) => r.dst === 'default');
      assert.equal(def?.gateway, '10.88.0.1');
      assert.equal(def?.dev, 'd0');
      const onLink = routes.find((r) => r.dst === '198.51.100.0/24');
      assert.equal(onLink?.scope, 253);
      assert.equal(onLink?.mtu, 1280);
      assert.ok(routes.some((r) => r.dst === '10.88.0.0/16' && r.protocol === 2));
      await rejectsErrno(
        k.routeAdd({ family: 4, dst: 'default', gateway: '10.88.0.1' }, ns),
        'EEXIST',
      );
      await k.routeAdd({ family: 4, dst: 'default', gateway: '10.88.0.9' }, ns, { replace: true });
      assert.equal(
        (await k.routeList(ns, 4)).find((r) => r.dst === 'default')?.gateway,
        '10.88.0.9',
      );
      const err = await rejectsErrno(
        k.routeAdd({ family: 4, dst: '203.0.113.0/24', gateway: '172.31.0.1' }, ns),
        'ENETUNREACH',
      );
      assert.match(err.message, /Cannot add route "203\.0\.113\.0\/24" via "172\.31\.0\.1"/);
      await k.routeDel({ family: 4, dst: 'default' }, ns);
      assert.equal(
        (await k.routeList(ns, 4)).find((r) => r.dst === 'default'),
        undefined,
      );
      await rejectsErrno(k.routeDel({ family: 4, dst: 'default' }, ns), 'ESRCH');
    });

    test('neighAdd(): permanent ARP entries and VXLAN FDB entries read back', async () => {
      const k = getWorld().kernel;
      const ns = await newNs();
      await k.linkAdd({ kind: 'bridge', name: 'u0', up: true }, ns);
      await k.addrAdd('u0', '192.0.2.1/24', ns);
      await k.linkAdd({ kind: 'vxlan', name: 'vx0', vni: 42, local: '192.0.2.1', dev: 'u0' }, ns);
      await k.neighAdd({ family: 4, dev: 'u0', dst: '192.0.2.7', mac: '02:00:00:00:00:07' }, ns);
      await rejectsErrno(
        k.neighAdd({ family: 4, dev: 'u0', dst: '192.0.2.7', mac: '02:00:00:00:00:08' }, ns),
        'EEXIST',
      );
      await k.neighAdd(
        { family: 'bridge', dev: 'vx0', mac: '02:00:00:00:00:aa', dst: '192.0.2.9', self: true },
        ns,
      );
      const arp = (await k.neighList(ns, 4)).find((n) => n.dst === '192.0.2.7');
      assert.equal(arp?.mac, '02:00:00:00:00:07');
      assert.equal(arp?.permanent, true);
      assert.equal(arp?.dev, 'u0');
      const fdb = (await k.neighList(ns, 'bridge')).find((n) => n.mac === '02:00:00:00:00:aa');
      assert.equal(fdb?.dst, '192.0.2.9');
      assert.equal(fdb?.dev, 'vx0');
      assert.equal(fdb?.self, true);
      await k.neighDel({ family: 4, dev: 'u0', dst: '192.0.2.7', mac: '' }, ns);
      assert.equal(
        (await k.neighList(ns, 4)).find((n) => n.dst === '192.0.2.7'),
        undefined,
      );
    });

    test('sysctlSet()/sysctlGet() act inside the namespace', async () => {
      const k = getWorld().kernel;
      const ns = await newNs();
      await k.linkAdd({ kind: 'bridge', name: 'd0' }, ns);
      await k.sysctlSet('net.ipv4.ip_forward', '1', ns);
      assert.equal(await k.sysctlGet('net.ipv4.ip_forward', ns), '1');
      await k.sysctlSet('net.ipv6.conf.d0.disable_ipv6', '1', ns);
      assert.equal(await k.sysctlGet('net.ipv6.conf.d0.disable_ipv6', ns), '1');
      await rejectsErrno(k.sysctlSet('net.ipv6.conf.ghost.disable_ipv6', '1', ns), 'ENOENT');
    });

    test('qdiscReplace()/qdiscDel(): a root tbf is set, changed in place, read back, removed', async () => {
      const w = getWorld();
      const k = w.kernel;
      const host = await newNs();
      const sb = await newNs();
      await k.linkAdd(
        { kind: 'veth', name: 'vh1', up: true, peer: { name: 'eth0', ns: sb, up: true } },
        host,
      );
      const root = async (dev: string, ns: string) => {
        const list = await k.qdiscList(ns, dev);
        assert.ok(list.length > 0 && list.every((q) => q.dev === dev), 'only the asked device');
        const r = list.find((q) => q.parent === 0xffffffff);
        assert.ok(r, `a root qdisc on ${dev}`);
        if (w.qdiscOracle) {
          const o = await w.qdiscOracle(dev, ns);
          assert.equal(o.kind, r.kind, 'oracle kind');
          if (r.tbf) {
            assert.equal(o.rate, r.tbf.rate, 'oracle rate');
            // tc prints the burst from the buffer time truncated to whole microseconds.
            const slack = r.tbf.rate / 1e6 + 1;
            assert.ok(Math.abs((o.burst ?? 0) - r.tbf.burst) <= slack, 'oracle burst');
          }
        }
        return r;
      };
      // The burst reads back from the kernel's time in 64 ns ticks: within one tick of rate.
      const near = (got: number, want: number, rate: number): void =>
        assert.ok(Math.abs(got - want) <= (rate * 64) / 1e9 + 1, `burst ${got} vs ${want}`);
      assert.notEqual((await root('vh1', host)).kind, 'tbf', 'a new veth has its default');
      await k.qdiscReplace(
        'vh1',
        { kind: 'tbf', rate: 1_250_000, burst: 32_768, limit: 131_072 },
        host,
      );
      let q = await root('vh1', host);
      assert.equal(q.kind, 'tbf');
      assert.equal(q.handle, 0x10000, 'handle 1:');
      assert.equal(q.tbf?.rate, 1_250_000);
      assert.equal(q.tbf?.limit, 131_072);
      near(q.tbf!.burst, 32_768, 1_250_000);
      // Changed in place: same handle, new numbers.
      await k.qdiscReplace(
        'vh1',
        { kind: 'tbf', rate: 2_500_000, burst: 65_536, limit: 262_144 },
        host,
      );
      q = await root('vh1', host);
      assert.equal(q.handle, 0x10000);
      assert.equal(q.tbf?.rate, 2_500_000);
      assert.equal(q.tbf?.limit, 262_144);
      near(q.tbf!.burst, 65_536, 2_500_000);
      // Inside the sandbox, and a rate beyond the u32 field (TCA_TBF_RATE64): 100 Gbit/s.
      await k.qdiscReplace(
        'eth0',
        { kind: 'tbf', rate: 12_500_000_000, burst: 1 << 20, limit: 1 << 22 },
        sb,
      );
      q = await root('eth0', sb);
      assert.equal(q.tbf?.rate, 12_500_000_000);
      near(q.tbf!.burst, 1 << 20, 12_500_000_000);
      assert.equal((await k.qdiscList(host, 'vh1')).filter((x) => x.kind === 'tbf').length, 1);
      await k.qdiscDel('vh1', host);
      assert.notEqual((await root('vh1', host)).kind, 'tbf');
      await rejectsErrno(k.qdiscDel('vh1', host), 'ENOENT');
      await k.qdiscDel('vh1', host, { ifExists: true });
      await rejectsErrno(
        k.qdiscReplace('vh1', { kind: 'tbf', rate: 1_250_000, burst: 0, limit: 1000 }, host),
        'EINVAL',
      );
      assert.notEqual((await root('vh1', host)).kind, 'tbf', 'a refused change leaves nothing');
      await rejectsErrno(
        k.qdiscReplace('ghost', { kind: 'tbf', rate: 1, burst: 1, limit: 1 }, host),
        'ENODEV',
      );
      await rejectsErrno(k.qdiscDel('ghost', host), 'ENODEV');
      // In a batch, like an endpoint's other steps.
      await k.batch([
        {
          op: 'qdiscReplace',
          args: ['vh1', { kind: 'tbf', rate: 125_000, burst: 16_384, limit: 65_536 }, host],
        },
      ]);
      assert.equal((await root('vh1', host)).tbf?.rate, 125_000);
      // The qdisc goes with its device.
      await k.linkDel('vh1', host);
      await eventually(async () =>
        assert.equal(
          (await k.qdiscList(sb)).some((x) => x.kind === 'tbf'),
          false,
        ),
      );
    });

    test('calls in a missing namespace fail ENOENT', async () => {
      const k = getWorld().kernel;
      const gone = getWorld().nsPath();
      await rejectsErrno(k.linkList(gone), 'ENOENT');
    });
  });
}
