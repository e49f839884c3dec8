/**
 * Test doubles for the API tests: an in-memory `ControllerApi` that records its calls, and an
 * in-process request runner that drives the handler with duck-typed req/res objects (no socket).
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import type {
  ContainerSpec,
  ContainerUpdateRequest,
  ContainerView,
  ControllerApi,
  EndpointRequest,
  EngineInfo,
  ExecHandle,
  NetworkCreateRequest,
  NetworkView,
  PruneFilters,
} from '../cnm/types.js';
import { ConflictError, NotFoundError } from '../errors.js';

/** A network view with defaults, for seeding the fake. */
export function makeNetwork(
  over: Partial<NetworkView> & { name: string; id: string },
): NetworkView {
  return {
    created: '2024-01-02T03:04:05.123456789Z',
    scope: 'local',
    driver: 'bridge',
    enableIPv4: true,
    enableIPv6: false,
    ipam: {
      driver: 'default',
      options: {},
      config: [{ subnet: '172.18.0.0/16', gateway: '172.18.0.1' }],
    },
    internal: false,
    attachable: false,
    ingress: false,
    configOnly: false,
    containers: {},
    options: {},
    labels: {},
    predefined: false,
    ...over,
  };
}

/** A container view with defaults, for seeding the fake. */
export function makeContainer(
  over: Partial<ContainerView> & { name: string; id: string },
): ContainerView {
  return {
    created: '2024-01-02T03:04:05.000000000Z',
    spec: { cmd: ['sleep', '100'] },
    state: {
      status: 'running',
      running: true,
      pid: 4242,
      exitCode: null,
      startedAt: '2024-01-02T03:04:06.000000000Z',
      finishedAt: '',
      error: '',
    },
    networkMode: 'bridge',
    sandboxKey: `/run/cnm/netns/${over.id.slice(0, 12)}`,
    hostname: over.id.slice(0, 12),
    networks: {},
    ports: [],
    logPath: '',
    resolvConfPath: '/run/cnm/c/resolv.conf',
    hostsPath: '/run/cnm/c/hosts',
    hostnamePath: '/run/cnm/c/hostname',
    ...over,
  };
}

/** An in-memory controller that records every call. */
export class FakeController implements ControllerApi {
  readonly calls: { method: string; args: unknown[] }[] = [];
  readonly networks: NetworkView[] = [];
  readonly containers: ContainerView[] = [];
  /** When set, the next call throws it. */
  failNext: Error | undefined;
  /** What `execContainer` writes and exits with. */
  execScript: { stdout: string[]; stderr: string[]; code: number } = {
    stdout: [],
    stderr: [],
    code: 0,
  };
  /** Exit code `waitContainer` resolves with. */
  waitCode = 0;

  #record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const err = this.failNext;
    if (err !== undefined) {
      this.failNext = undefined;
      throw err;
    }
  }

  #net(idOrName: string): NetworkView {
    const n =
      this.networks.find((x) => x.id === idOrName || x.name === idOrName) ??
      this.networks.find((x) => x.id.startsWith(idOrName));
    if (n === undefined) throw new NotFoundError('NET_NOT_FOUND', `network ${idOrName} not found`);
    return n;
  }

  #ctr(idOrName: string): ContainerView {
    const c =
      this.containers.find((x) => x.id === idOrName || x.name === idOrName) ??
      this.containers.find((x) => x.id.startsWith(idOrName));
    if (c === undefined)
      throw new NotFoundError('CONTAINER_NOT_FOUND', `No such container: ${idOrName}`);
    return c;
  }

  info(): EngineInfo {
    this.#record('info');
    return {
      version: '0.1.0',
      apiVersion: '1.47',
      minApiVersion: '1.24',
      os: 'linux',
      arch: 'x64',
      kernelVersion: '6.8.0',
      name: 'host1',
      id: 'ENGINE-ID',
      containers: { total: this.containers.length, running: 0, stopped: 0 },
      dataRoot: '/var/lib/cnm',
      execRoot: '/run/cnm',
      drivers: ['bridge', 'host', 'none'],
    };
  }

  async createNetwork(req: NetworkCreateRequest): Promise<{ id: string; warning: string }> {
    this.#record('createNetwork', req);
    if (this.networks.some((n) => n.name === req.name)) {
      throw new ConflictError('NET_EXISTS', `network with name ${req.name} already exists`);
    }
    const id = (this.networks.length + 1).toString(16).padStart(64, 'a');
    this.networks.push(makeNetwork({ name: req.name, id }));
    return { id, warning: '' };
  }

  listNetworks(): NetworkView[] {
    this.#record('listNetworks');
    return [...this.networks];
  }

  inspectNetwork(idOrName: string): NetworkView {
    this.#record('inspectNetwork', idOrName);
    return this.#net(idOrName);
  }

  async removeNetwork(idOrName: string): Promise<void> {
    this.#record('removeNetwork', idOrName);
    const n = this.#net(idOrName);
    this.networks.splice(this.networks.indexOf(n), 1);
  }

  async pruneNetworks(filters: PruneFilters): Promise<string[]> {
    this.#record('pruneNetworks', filters);
    return ['old1'];
  }

  async connect(network: string, container: string, req?: EndpointRequest): Promise<void> {
    this.#record('connect', network, container, req);
    this.#net(network);
  }

  async disconnect(network: string, container: string, opts?: { force?: boolean }): Promise<void> {
    this.#record('disconnect', network, container, opts);
    this.#net(network);
  }

  async createContainer(spec: ContainerSpec): Promise<ContainerView> {
    this.#record('createContainer', spec);
    const id = (this.containers.length + 1).toString(16).padStart(64, 'c');
    const c = makeContainer({
      id,
      name: spec.name ?? `c${this.containers.length + 1}`,
      spec,
      state: {
        status: 'created',
        running: false,
        pid: 0,
        exitCode: null,
        startedAt: '',
        finishedAt: '',
        error: '',
      },
    });
    this.containers.push(c);
    return c;
  }

  async startContainer(idOrName: string): Promise<void> {
    this.#record('startContainer', idOrName);
    this.#ctr(idOrName);
  }

  listContainers(opts?: { all?: boolean }): ContainerView[] {
    this.#record('listContainers', opts);
    return this.containers.filter((c) => opts?.all === true || c.state.running);
  }

  inspectContainer(idOrName: string): ContainerView {
    this.#record('inspectContainer', idOrName);
    return this.#ctr(idOrName);
  }

  async updateContainer(idOrName: string, req: ContainerUpdateRequest): Promise<ContainerView> {
    this.#record('updateContainer', idOrName, req);
    return this.#ctr(idOrName);
  }

  async stopContainer(idOrName: string, opts?: { timeoutSec?: number }): Promise<void> {
    this.#record('stopContainer', idOrName, opts);
    this.#ctr(idOrName);
  }

  async removeContainer(idOrName: string, opts?: { force?: boolean }): Promise<void> {
    this.#record('removeContainer', idOrName, opts);
    const c = this.#ctr(idOrName);
    this.containers.splice(this.containers.indexOf(c), 1);
  }

  async waitContainer(idOrName: string): Promise<{ exitCode: number }> {
    this.#record('waitContainer', idOrName);
    this.#ctr(idOrName);
    return { exitCode: this.waitCode };
  }

  async execContainer(
    idOrName: string,
    cmd: string[],
    opts?: { env?: string[] },
  ): Promise<ExecHandle> {
    this.#record('execContainer', idOrName, cmd, opts);
    this.#ctr(idOrName);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const script = this.execScript;
    setImmediate(() => {
      for (const s of script.stdout) stdout.write(s);
      for (const s of script.stderr) stderr.write(s);
      stdout.end();
      stderr.end();
    });
    return { stdout, stderr, exit: Promise.resolve(script.code), kill: () => {} };
  }
}

/** The response a handler produced. */
export interface FakeResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  text(): string;
  json(): unknown;
}

class FakeRes extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  readonly headers: Record<string, string> = {};
  readonly chunks: Buffer[] = [];
  readonly done: Promise<void>;
  #resolve!: () => void;

  constructor() {
    super();
    this.done = new Promise((r) => (this.#resolve = r));
  }
  setHeader(k: string, v: unknown): this {
    this.headers[k.toLowerCase()] = String(v);
    return this;
  }
  getHeader(k: string): string | undefined {
    return this.headers[k.toLowerCase()];
  }
  writeHead(status: number, headers?: Record<string, unknown>): this {
    this.statusCode = status;
    for (const [k, v] of Object.entries(headers ?? {})) this.setHeader(k, v);
    this.headersSent = true;
    return this;
  }
  flushHeaders(): void {
    this.headersSent = true;
  }
  write(chunk: Buffer | string): boolean {
    this.headersSent = true;
    this.chunks.push(Buffer.from(chunk));
    return true;
  }
  end(chunk?: Buffer | string): this {
    if (chunk !== undefined) this.write(chunk);
    this.headersSent = true;
    this.writableEnded = true;
    this.writableFinished = true;
    this.emit('finish');
    this.emit('close');
    this.#resolve();
    return this;
  }
  destroy(): this {
    this.emit('close');
    this.#resolve();
    return this;
  }
}

/**
 * Runs one request through `handler` in-process.
 * @example await invoke(handler, 'GET', '/v1.41/networks')
 */
export async function invoke(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<FakeResponse> {
  const raw =
    body === undefined
      ? Buffer.alloc(0)
      : Buffer.isBuffer(body)
        ? body
        : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const req = Readable.from(raw.length > 0 ? [raw] : []) as unknown as IncomingMessage;
  Object.assign(req, {
    method,
    url,
    headers: {
      'content-length': String(raw.length),
      'content-type': 'application/json',
      ...headers,
    },
  });
  const res = new FakeRes();
  handler(req, res as unknown as ServerResponse);
  await res.done;
  const buf = Buffer.concat(res.chunks);
  return {
    status: res.statusCode,
    headers: res.headers,
    body: buf,
    text: () => buf.toString('utf8'),
    json: () => JSON.parse(buf.toString('utf8')) as unknown,
  };
}
