/**
 * The real `Kernel`: a main-thread proxy that posts each call to the kernel worker thread
 * (`worker.ts`) and resolves when it answers. Calls run one at a time, in the order made.
 */
import { Worker } from 'node:worker_threads';
import { KernelError } from './kernel-error.js';
import type {
  Addr,
  Kernel,
  KernelStep,
  Link,
  LinkAdd,
  LinkSet,
  Neigh,
  NftElementChange,
  NsRef,
  Qdisc,
  Route,
  Tbf,
} from './types.js';
import type { KernelOp, WorkerOptions, WorkerReply, WorkerRequest } from './worker-protocol.js';

/** Options for `createKernel`. */
export interface KernelOptions {
  /** The addon file, relative to src/kernel (or dist/kernel), or absolute. */
  addonPath?: string;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  /** Kept so errors point at the caller, not at the message handler. */
  stack: Error;
}

/** Rebuilds a worker-side failure on this thread. */
function rebuildError(reply: Extract<WorkerReply, { ok: false }>, origin: Error): Error {
  if ('kernel' in reply) {
    const err = new KernelError(reply.kernel.action, reply.kernel.info);
    err.stack = `${err.name}: ${err.message}\n${origin.stack?.split('\n').slice(1).join('\n') ?? ''}`;
    return err;
  }
  const err =
    reply.other.name === 'TypeError'
      ? new TypeError(reply.other.message)
      : new Error(reply.other.message);
  if (reply.other.stack) err.stack = reply.other.stack;
  return err;
}

class WorkerKernel implements Kernel {
  #worker: Worker;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #dead: Error | undefined;

  constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', (reply: WorkerReply) => this.#settle(reply));
    worker.on('error', (err) => this.#fail(err));
    worker.on('exit', (code) => this.#fail(new Error(`Kernel worker exited with code ${code}`)));
    // Only keep the process alive while requests are in flight: an idle kernel must not stop
    // a daemon (or a test run) from exiting.
    worker.unref();
  }

  #settle(reply: WorkerReply): void {
    const p = this.#pending.get(reply.id);
    if (!p) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#worker.unref();
    if (reply.ok) p.resolve(reply.value);
    else p.reject(rebuildError(reply, p.stack));
  }

  #fail(err: Error): void {
    this.#dead ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  #call<T>(op: KernelOp, ...args: unknown[]): Promise<T> {
    if (this.#dead) return Promise.reject(new Error('Kernel is closed', { cause: this.#dead }));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(id, {
        resolve: resolve as (v: unknown) => void,
        reject,
        stack: new Error(),
      });
      const req: WorkerRequest = { id, op, args };
      this.#worker.postMessage(req);
    });
  }

  batch(steps: readonly KernelStep[]): Promise<void> {
    return this.#call('batch', steps);
  }

  netnsAdd(path: string): Promise<void> {
    return this.#call('netnsAdd', path);
  }
  netnsDel(path: string): Promise<void> {
    return this.#call('netnsDel', path);
  }
  netnsExists(path: string): Promise<boolean> {
    return this.#call('netnsExists', path);
  }
  netnsDirEnsure(dir: string): Promise<void> {
    return this.#call('netnsDirEnsure', dir);
  }
  linkAdd(link: LinkAdd, ns?: NsRef): Promise<void> {
    return this.#call('linkAdd', link, ns);
  }
  linkSet(name: string, changes: LinkSet, ns?: NsRef): Promise<void> {
    return this.#call('linkSet', name, changes, ns);
  }
  linkDel(name: string, ns?: NsRef, opts?: { ifExists?: boolean }): Promise<void> {
    return this.#call('linkDel', name, ns, opts);
  }
  linkGet(name: string, ns?: NsRef): Promise<Link | undefined> {
    return this.#call('linkGet', name, ns);
  }
  linkList(ns?: NsRef): Promise<Link[]> {
    return this.#call('linkList', ns);
  }
  addrAdd(dev: string, cidr: string, ns?: NsRef, opts?: { noDad?: boolean }): Promise<void> {
    return this.#call('addrAdd', dev, cidr, ns, opts);
  }
  addrDel(dev: string, cidr: string, ns?: NsRef): Promise<void> {
    return this.#call('addrDel', dev, cidr, ns);
  }
  addrList(ns?: NsRef, family?: 4 | 6): Promise<Addr[]> {
    return this.#call('addrList', ns, family);
  }
  routeAdd(route: Route, ns?: NsRef, opts?: { replace?: boolean }): Promise<void> {
    return this.#call('routeAdd', route, ns, opts);
  }
  routeDel(route: Route, ns?: NsRef): Promise<void> {
    return this.#call('routeDel', route, ns);
  }
  routeList(ns?: NsRef, family?: 4 | 6, opts?: { table?: number | 'all' }): Promise<Route[]> {
    return this.#call('routeList', ns, family, opts);
  }
  neighAdd(
    neigh: Neigh,
    ns?: NsRef,
    opts?: { replace?: boolean; append?: boolean },
  ): Promise<void> {
    return this.#call('neighAdd', neigh, ns, opts);
  }
  neighDel(neigh: Neigh, ns?: NsRef): Promise<void> {
    return this.#call('neighDel', neigh, ns);
  }
  neighList(ns?: NsRef, family?: 4 | 6 | 'bridge'): Promise<Neigh[]> {
    return this.#call('neighList', ns, family);
  }
  qdiscReplace(dev: string, qdisc: Tbf, ns?: NsRef): Promise<void> {
    return this.#call('qdiscReplace', dev, qdisc, ns);
  }
  qdiscDel(dev: string, ns?: NsRef, opts?: { ifExists?: boolean }): Promise<void> {
    return this.#call('qdiscDel', dev, ns, opts);
  }
  qdiscList(ns?: NsRef, dev?: string): Promise<Qdisc[]> {
    return this.#call('qdiscList', ns, dev);
  }
  sysctlSet(key: string, value: string, ns?: NsRef): Promise<void> {
    return this.#call('sysctlSet', key, value, ns);
  }
  sysctlGet(key: string, ns?: NsRef): Promise<string> {
    return this.#call('sysctlGet', key, ns);
  }
  nftRun(script: string, opts?: { json?: boolean; terse?: boolean }): Promise<string> {
    return this.#call('nftRun', script, opts);
  }

  nftElements(family: string, table: string, changes: readonly NftElementChange[]): Promise<void> {
    return this.#call('nftElements', family, table, changes);
  }

  async close(): Promise<void> {
    if (this.#dead) return;
    await this.#call('shutdown');
    this.#dead = new Error('Kernel is closed');
    await this.#worker.terminate();
  }
}

/**
 * Starts worker.js (tsc output in dist/) or, when running the TypeScript sources (tests via
 * `node --import tsx`), worker.ts. Node 20 does not apply `--import` hooks to worker threads,
 * so the .ts worker is started from a tiny bootstrap that loads it through tsx's `tsImport`.
 */
function startWorker(workerData: WorkerOptions): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./worker.js', import.meta.url), { workerData });
  }
  const url = new URL('./worker.ts', import.meta.url).href;
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then((m) => m.tsImport(${JSON.stringify(url)}, ${JSON.stringify(url)}));`;
  return new Worker(boot, { eval: true, workerData });
}

/**
 * Starts the kernel worker thread and returns the real `Kernel`. Resolves once the worker has
 * loaded the native addon.
 *
 * @throws Error when the worker cannot start or the addon is not built (`npm run install`)
 * @example
 * const kernel = await createKernel();
 * try { await kernel.linkAdd({ kind: 'bridge', name: 'cnm0', up: true }); } finally { await kernel.close(); }
 */
export async function createKernel(opts: KernelOptions = {}): Promise<Kernel> {
  const workerData: WorkerOptions = opts.addonPath ? { addonPath: opts.addonPath } : {};
  const worker = startWorker(workerData);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      worker.off('message', onMessage);
      reject(new Error('Cannot start the kernel worker', { cause: err }));
    };
    const onMessage = (reply: WorkerReply): void => {
      if (reply.id !== 0) return;
      worker.off('error', onError);
      worker.off('message', onMessage);
      resolve();
    };
    worker.on('error', onError);
    worker.on('message', onMessage);
  });
  return new WorkerKernel(worker);
}
