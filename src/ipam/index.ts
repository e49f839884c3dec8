/**
 * IP address management (pure): pool validation, address allocation, subnet choice.
 * @example
 * import { buildPool, AddressAllocator } from '../ipam/index.js';
 */

export {
  type Pool,
  type PoolConfig,
  buildPool,
  isPointToPoint,
  isReservedAddress,
} from './pool.js';
export { AddressAllocator } from './allocator.js';
export {
  DEFAULT_POOLS,
  candidateSubnets,
  chooseSubnet,
  findOverlap,
  overlapError,
  ulaSubnet,
} from './subnets.js';
