/**
 * The tenant isolation shortcut: `-o io.cnm.isolation=tenant` on a bridge network. Containers on
 * such a network accept connections from other containers of the network only when both carry
 * the same `tenant` label (containers without one only from each other). The controller checks
 * the option at create and takes it out before the driver parses the rest; the policy engine
 * enforces it with the same element sets as NetworkPolicies.
 */
import { InvalidError } from '../errors.js';

/** The network option. */
export const ISOLATION_OPTION = 'io.cnm.isolation';
/** The container label naming a container's tenant. */
export const TENANT_LABEL = 'tenant';

/** Isolation modes a network may ask for. */
export type IsolationMode = 'tenant';

/**
 * The isolation mode of a network's options, checked.
 * @throws InvalidError NET_ISOLATION_INVALID for a value other than `tenant`, or a driver other
 *   than `bridge` (only bridged and routed traffic crosses the policy table)
 * @example isolationOf({ 'io.cnm.isolation': 'tenant' }, 'bridge') // 'tenant'
 */
export function isolationOf(
  options: Readonly<Record<string, string>>,
  driver?: string,
): IsolationMode | undefined {
  const v = options[ISOLATION_OPTION];
  if (v === undefined) return undefined;
  if (v !== 'tenant') {
    throw new InvalidError(
      'NET_ISOLATION_INVALID',
      `Invalid value "${v}" for option "${ISOLATION_OPTION}": the only mode is "tenant"`,
    );
  }
  if (driver !== undefined && driver !== 'bridge') {
    throw new InvalidError(
      'NET_ISOLATION_INVALID',
      `Option "${ISOLATION_OPTION}" needs the bridge driver, not "${driver}"`,
    );
  }
  return v;
}

/** The options without cnm's isolation option: what the driver parses. */
export function withoutIsolation(
  options: Readonly<Record<string, string>>,
): Record<string, string> {
  const out = { ...options };
  delete out[ISOLATION_OPTION];
  return out;
}
