/**
 * The kernel layer's public API: the contract, the real implementation, its error and the fake.
 */
export type * from './types.js';
export { createKernel, type KernelOptions } from './kernel.js';
export { KernelError } from './kernel-error.js';
export { FakeKernel, type FakeKernelMethod } from './fake/fake-kernel.js';
