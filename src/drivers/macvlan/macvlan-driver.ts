/**
 * The `macvlan` and `ipvlan` drivers, as Docker's: each endpoint is a child link of a parent
 * interface in the daemon's namespace, born directly inside the sandbox under its final name
 * (never moved). The network itself has no kernel object unless the parent is an 802.1q
 * sub-interface (`eth0.10`) that does not exist yet: then the driver creates it and removes it
 * with the network. No NAT, no published ports, no firewall: the parent's segment is the
 * network, and its router is the gateway.
 */
import { BugError, ConflictError, InvalidError } from '../../errors.js';
import {
  requireFeature,
  type KernelCapabilities,
  type KernelFeature,
} from '../../kernel/capabilities.js';
import { KernelError, ignoreErrno } from '../../kernel/kernel-error.js';
import type { Kernel, LinkAdd } from '../../kernel/types.js';
import type { Driver, DriverCapabilities, DriverEndpoint, DriverNetwork } from '../types.js';
import {
  parseIpvlanOptions,
  parseMacvlanOptions,
  type IpvlanOptions,
  type MacvlanOptions,
} from './options.js';

/** Options of either driver. */
export type ParentLinkOptions = MacvlanOptions | IpvlanOptions;

/** Marks links cnm made (the 802.1q parents): IFLA_IFALIAS starts with this. */
const ALIAS_PREFIX = 'cnm:';

/** A driver whose endpoints are children (macvlan or ipvlan) of a parent link. */
class ParentLinkDriver<O extends ParentLinkOptions> implements Driver<O> {
  readonly name: O['kind'];
  readonly capabilities: DriverCapabilities = {
    scope: 'local',
    usesIpam: true,
    ownNamespace: true,
    endpointInterface: true,
    publishesPorts: false,
    singleton: false,
    exclusive: false,
    hostVeth: false,
  };
  #kernel: Kernel;
  #caps: KernelCapabilities;
  #parse: (raw: Record<string, string>) => O;

  constructor(
    kind: O['kind'],
    deps: { kernel: Kernel; capabilities: KernelCapabilities },
    parse: (raw: Record<string, string>) => O,
  ) {
    this.name = kind;
    this.#kernel = deps.kernel;
    this.#caps = deps.capabilities;
    this.#parse = parse;
  }

  async init(): Promise<void> {}

  parseOptions(raw: Record<string, string>): O {
    return this.#parse(raw);
  }

  validateNetwork(net: DriverNetwork<O>, others: readonly DriverNetwork[]): void {
    const action = `Cannot create network "${net.name}"`;
    requireFeature(this.#caps, this.name, { action, by: `driver "${this.name}"` });
    const mine = net.options;
    for (const other of others) {
      const o = other.options as Partial<ParentLinkOptions> | undefined;
      if (o?.kind !== mine.kind || o.parent?.name !== mine.parent.name) continue;
      // A sub-interface cnm creates belongs to one network (it goes with it); passthru gives
      // the parent to a single child. Plain parents are shared: IPAM keeps subnets apart.
      const passthru =
        (o.kind === 'macvlan' && o.mode === 'passthru') ||
        (mine.kind === 'macvlan' && mine.mode === 'passthru');
      if (mine.parent.vlan || passthru) {
        throw new ConflictError(
          'PARENT_IN_USE',
          `${action}: parent interface "${mine.parent.name}" is used by network "${other.name}"${passthru ? ' (passthru mode takes the parent for one network)' : ''}`,
        );
      }
    }
  }

  #alias(net: DriverNetwork<O>): string {
    return `${ALIAS_PREFIX}net:${net.id.slice(0, 12)}`;
  }

  async ensureNetwork(net: DriverNetwork<O>): Promise<void> {
    const action = `Cannot create network "${net.name}"`;
    const parent = net.options.parent;
    if (await this.#kernel.linkGet(parent.name)) return;
    if (!parent.vlan) {
      throw new InvalidError(
        'PARENT_NOT_FOUND',
        `${action}: parent interface "${parent.name}" does not exist`,
      );
    }
    requireFeature(this.#caps, 'vlan', { action, by: `parent "${parent.name}"` });
    if (!(await this.#kernel.linkGet(parent.vlan.lower))) {
      throw new InvalidError(
        'PARENT_NOT_FOUND',
        `${action}: parent interface "${parent.vlan.lower}" of "${parent.name}" does not exist`,
      );
    }
    await this.#kernel.linkAdd({
      kind: 'vlan',
      name: parent.name,
      parent: parent.vlan.lower,
      id: parent.vlan.id,
      alias: this.#alias(net),
      up: true,
    });
  }

  async deleteNetwork(net: DriverNetwork<O>): Promise<void> {
    const parent = net.options.parent;
    if (!parent.vlan) return;
    // Only the sub-interface this network created goes; one the user made stays.
    const link = await this.#kernel.linkGet(parent.name);
    if (link?.alias === this.#alias(net)) {
      await this.#kernel.linkDel(parent.name, undefined, { ifExists: true });
    }
  }

  #childLink(net: DriverNetwork<O>, ep: DriverEndpoint): LinkAdd {
    const o = net.options;
    const base = { name: ep.ifName, parent: o.parent.name, ns: ep.ns, up: true };
    // An ipvlan child always has its parent's MAC address; only macvlan takes one.
    return o.kind === 'macvlan'
      ? { ...base, kind: 'macvlan', mode: o.mode, mac: ep.mac.toString() }
      : { ...base, kind: 'ipvlan', mode: o.mode, flag: o.flag };
  }

  async ensureEndpoint(net: DriverNetwork<O>, ep: DriverEndpoint): Promise<void> {
    if (ep.ns === undefined) throw new BugError(`${this.name} endpoint without a sandbox`);
    const o = net.options;
    if (!(await this.#kernel.linkGet(ep.ifName, ep.ns))) {
      try {
        await this.#kernel.linkAdd(this.#childLink(net, ep));
      } catch (err) {
        throw this.#childError(net, err);
      }
    } else {
      await this.#kernel.linkSet(ep.ifName, { up: true }, ep.ns);
    }
    const fams = [
      { addr: ep.ipv4, fam: net.ipv4 },
      { addr: ep.ipv6, fam: net.ipv6 },
    ];
    for (const { addr, fam } of fams) {
      if (!addr) continue;
      try {
        await this.#kernel.addrAdd(
          ep.ifName,
          `${addr.address.toString()}/${addr.prefixLen}`,
          ep.ns,
          { noDad: true },
        );
      } catch (err) {
        ignoreErrno(err, 'EEXIST');
      }
      if (!ep.gatewayEndpoint || net.internal) continue;
      // ipvlan L3 routes everything through the parent's stack: the default route is the
      // device itself, as Docker sets it; the others route via the segment's gateway.
      if (o.kind === 'ipvlan' && o.mode !== 'l2') {
        await this.#kernel.routeAdd(
          { family: addr.address.family, dst: 'default', dev: ep.ifName, scope: 253 },
          ep.ns,
          { replace: true },
        );
      } else if (fam?.gateway) {
        await this.#kernel.routeAdd(
          {
            family: addr.address.family,
            dst: 'default',
            gateway: fam.gateway.toString(),
            dev: ep.ifName,
          },
          ep.ns,
          { replace: true },
        );
      }
    }
  }

  /** Turns the kernel's refusal to make a child into an error that names the cause. */
  #childError(net: DriverNetwork<O>, err: unknown): unknown {
    if (!(err instanceof KernelError)) return err;
    const parent = net.options.parent.name;
    const action = `Cannot attach to network "${net.name}"`;
    if (err.errnoCode === 'ENODEV') {
      return new InvalidError(
        'PARENT_NOT_FOUND',
        `${action}: parent interface "${parent}" does not exist`,
        { cause: err },
      );
    }
    if (err.errnoCode === 'EBUSY' || err.errnoCode === 'EEXIST') {
      return new ConflictError(
        'PARENT_IN_USE',
        `${action}: parent interface "${parent}" refuses another ${this.name} child (a passthru parent takes one; macvlan and ipvlan cannot share a parent)`,
        { cause: err },
      );
    }
    return err;
  }

  async deleteEndpoint(_net: DriverNetwork<O>, ep: DriverEndpoint): Promise<void> {
    // No sandbox (its record is gone): the child died with the namespace. Never act in the
    // daemon's own namespace here, where `eth0` may be a real NIC.
    if (ep.ns === undefined) return;
    try {
      await this.#kernel.linkDel(ep.ifName, ep.ns, { ifExists: true });
    } catch (err) {
      ignoreErrno(err, 'ENOENT'); // the sandbox file is gone, and with it the child
    }
  }

  async publishPorts(): Promise<void> {
    throw new BugError(`publishPorts() called on driver "${this.name}"`);
  }

  async unpublishPorts(): Promise<void> {}

  portInUse(): boolean {
    return false;
  }

  ownedLinks(net: DriverNetwork<O>): string[] {
    return net.options.parent.vlan ? [net.options.parent.name] : [];
  }

  kernelFeatures(net: DriverNetwork<O>): readonly KernelFeature[] {
    return net.options.parent.vlan ? [this.name, 'vlan'] : [this.name];
  }
}

/** What both drivers get from the daemon. */
export interface ParentLinkDeps {
  kernel: Kernel;
  /** The probed kernel capabilities: networks of a kind the kernel lacks are refused. */
  capabilities: KernelCapabilities;
}

/** The `macvlan` driver (`-o parent=IFACE[.VID] -o macvlan_mode=bridge|private|vepa|passthru`). */
export function macvlanDriver(deps: ParentLinkDeps): Driver<MacvlanOptions> {
  return new ParentLinkDriver<MacvlanOptions>('macvlan', deps, parseMacvlanOptions);
}

/** The `ipvlan` driver (`-o parent=IFACE[.VID] -o ipvlan_mode=l2|l3|l3s -o ipvlan_flag=…`). */
export function ipvlanDriver(deps: ParentLinkDeps): Driver<IpvlanOptions> {
  return new ParentLinkDriver<IpvlanOptions>('ipvlan', deps, parseIpvlanOptions);
}
