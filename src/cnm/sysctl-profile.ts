/**
 * Per-network sysctl profiles: `-o io.cnm.sysctl.<key>=<value>` on a network sets `<key>` inside
 * the namespace of every container on that network, once its interface there exists. The
 * controller takes these options out before the driver parses the rest, so every driver with
 * its own namespace gets them. `IFNAME` in a key stands for the endpoint's interface name
 * (`net.ipv4.conf.IFNAME.arp_notify`), as in Docker's endpoint sysctls.
 */
import { InvalidError } from '../errors.js';

/** The option prefix of a profile entry. */
export const SYSCTL_OPTION_PREFIX = 'io.cnm.sysctl.';

const KEY = /^net\.[A-Za-z0-9_.-]+$/;

/**
 * Splits a network's options into the driver's and the sysctl profile, checking the profile.
 * @throws InvalidError SYSCTL_INVALID for a key outside the per-namespace `net.*` tree or a bad value
 */
export function splitSysctlProfile(options: Readonly<Record<string, string>>): {
  driverOptions: Record<string, string>;
  sysctls: Record<string, string>;
} {
  const driverOptions: Record<string, string> = {};
  const sysctls: Record<string, string> = {};
  for (const [k, v] of Object.entries(options)) {
    if (!k.startsWith(SYSCTL_OPTION_PREFIX)) {
      driverOptions[k] = v;
      continue;
    }
    const key = k.slice(SYSCTL_OPTION_PREFIX.length);
    if (!KEY.test(key) || key.includes('..') || key.endsWith('.')) {
      throw new InvalidError(
        'SYSCTL_INVALID',
        `Invalid option "${k}": only per-namespace "net.*" sysctls can be set for a network`,
      );
    }
    if (!/^[\x20-\x7e]*$/.test(v)) {
      throw new InvalidError('SYSCTL_INVALID', `Invalid value for option "${k}"`);
    }
    sysctls[key] = v;
  }
  return { driverOptions, sysctls };
}

/** The profile's keys for one endpoint: `IFNAME` replaced by its interface name. */
export function sysctlsForEndpoint(
  sysctls: Readonly<Record<string, string>>,
  ifName: string,
): [string, string][] {
  return Object.entries(sysctls).map(([k, v]) => [
    k
      .split('.')
      .map((part) => (part === 'IFNAME' ? ifName : part))
      .join('.'),
    v,
  ]);
}
