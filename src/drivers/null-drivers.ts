/**
 * The `host` and `none` drivers. Neither makes kernel objects: a `host` container shares the
 * daemon's network namespace; a `none` container has its own namespace with only `lo`.
 */
import { BugError, InvalidError } from '../errors.js';
import type { Driver, DriverCapabilities } from './types.js';

function base(
  name: 'host' | 'none',
  capabilities: DriverCapabilities,
): Driver<Record<string, never>> {
  return {
    name,
    capabilities,
    async init() {},
    parseOptions(raw) {
      const keys = Object.keys(raw);
      if (keys.length > 0) {
        throw new InvalidError(
          'OPTION_UNKNOWN',
          `Unknown option "${keys[0]}" for driver "${name}"`,
        );
      }
      return {};
    },
    validateNetwork() {},
    async ensureNetwork() {},
    async deleteNetwork() {},
    async ensureEndpoint() {},
    async deleteEndpoint() {},
    async publishPorts() {
      throw new BugError(`publishPorts() called on driver "${name}"`);
    },
    async unpublishPorts() {},
    portInUse() {
      return false;
    },
    ownedLinks() {
      return [];
    },
  };
}

/** The `host` driver: the container uses the daemon's own network namespace. */
export function hostDriver(): Driver<Record<string, never>> {
  return base('host', {
    scope: 'local',
    usesIpam: false,
    ownNamespace: false,
    endpointInterface: false,
    publishesPorts: false,
    singleton: true,
    exclusive: true,
    hostVeth: false,
  });
}

/** The `none` driver: a namespace with loopback only. */
export function noneDriver(): Driver<Record<string, never>> {
  return base('none', {
    scope: 'local',
    usesIpam: false,
    ownNamespace: true,
    endpointInterface: false,
    publishesPorts: false,
    singleton: true,
    exclusive: true,
    hostVeth: false,
  });
}
