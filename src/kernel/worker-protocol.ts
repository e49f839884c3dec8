/**
 * Messages between `kernel.ts` (main thread) and `worker.ts` (kernel thread). Plain data only:
 * everything crosses `postMessage`'s structured clone.
 */
import type { Kernel, KernelErrorInfo } from './types.js';

/** Kernel methods the worker runs (all but `close`, which the main thread handles). */
export type KernelOp = Exclude<keyof Kernel, 'close'> | 'shutdown';

/** Main → worker. */
export interface WorkerRequest {
  id: number;
  op: KernelOp;
  args: unknown[];
}

/** Worker → main. */
export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; kernel: { action: string; info: KernelErrorInfo } }
  | { id: number; ok: false; other: { name: string; message: string; stack?: string } };

/** Options the worker gets as `workerData`. */
export interface WorkerOptions {
  /** Addon path, relative to the kernel module or absolute. */
  addonPath?: string;
}
