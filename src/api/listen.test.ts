import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { peerCredentials } from '../kernel/peer-credentials.js';
import { AuditLog } from './audit.js';
import { ApiListeners, checkApiAccess, parseApiHost } from './listen.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnm-listen-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const opts = { tls: false, defaultSocket: '/run/cnm/cnm.sock' };

test('parseApiHost() reads dockerd’s -H forms', () => {
  assert.deepEqual(parseApiHost('unix:///tmp/x.sock', opts), { kind: 'unix', path: '/tmp/x.sock' });
  assert.deepEqual(parseApiHost('unix://', opts), { kind: 'unix', path: '/run/cnm/cnm.sock' });
  assert.deepEqual(parseApiHost('tcp://127.0.0.1:2376', opts), {
    kind: 'tcp',
    host: '127.0.0.1',
    port: 2376,
  });
  assert.deepEqual(parseApiHost('tcp://10.0.0.1', opts), {
    kind: 'tcp',
    host: '10.0.0.1',
    port: 2375,
  });
  assert.deepEqual(parseApiHost('tcp://10.0.0.1', { ...opts, tls: true }), {
    kind: 'tcp',
    host: '10.0.0.1',
    port: 2376,
  });
  assert.deepEqual(parseApiHost('tcp://:2380', opts), {
    kind: 'tcp',
    host: '127.0.0.1',
    port: 2380,
  });
  assert.deepEqual(parseApiHost('tcp://[::1]:2376', opts), {
    kind: 'tcp',
    host: '::1',
    port: 2376,
  });
  for (const bad of [
    '/tmp/x.sock',
    'unix://rel.sock',
    'fd://',
    'tcp://h:1/path',
    'http://h:1',
    'tcp://h:99999',
  ]) {
    assert.throws(() => parseApiHost(bad, opts), /Invalid host/, bad);
  }
});

test('checkApiAccess() refuses TCP without TLS unless told --insecure-tcp', () => {
  const unix = parseApiHost('unix:///tmp/x.sock', opts);
  const tcp = parseApiHost('tcp://0.0.0.0:2375', opts);
  checkApiAccess([unix], { tls: false, insecureTcp: false });
  checkApiAccess([unix, tcp], { tls: true, insecureTcp: false });
  checkApiAccess([unix, tcp], { tls: false, insecureTcp: true });
  assert.throws(
    () => checkApiAccess([unix, tcp], { tls: false, insecureTcp: false }),
    /Refusing to listen on "tcp:\/\/0\.0\.0\.0:2375" without TLS.*--tlsverify.*--insecure-tcp/,
  );
});

function request(
  socketPath: string,
  method: string,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('ApiListeners: socket 0660, audit of state changes with SO_PEERCRED, graceful shutdown', async () => {
  const socketPath = join(dir, 'api.sock');
  const audit = await AuditLog.open(join(dir, 'audit.log'));
  let release: () => void = () => {};
  const slow = new Promise<void>((r) => (release = r));
  const handler: http.RequestListener = (req, res) => {
    if (req.url === '/slow') {
      void slow.then(() => res.end('done'));
    } else if (req.url === '/stream') {
      res.writeHead(200);
      res.flushHeaders();
    } else if (req.url === '/bad') {
      res.writeHead(409);
      res.end('{"message":"x"}');
    } else {
      res.end('ok');
    }
  };
  const l = await ApiListeners.listen(handler, {
    addresses: [{ kind: 'unix', path: socketPath }],
    insecureTcp: false,
    audit,
    unixPeer: peerCredentials,
    log: () => {},
  });
  assert.equal((await stat(socketPath)).mode & 0o777, 0o660);
  assert.equal((await request(socketPath, 'GET', '/read')).status, 200);
  assert.equal((await request(socketPath, 'POST', '/write')).status, 200);
  assert.equal((await request(socketPath, 'DELETE', '/bad')).status, 409);

  const inFlight = request(socketPath, 'POST', '/slow');
  const stream = request(socketPath, 'GET', '/stream').catch((err: Error) => err);
  await new Promise((r) => setTimeout(r, 50));
  const shutdown = l.shutdown(5000);
  await new Promise((r) => setTimeout(r, 50));
  await assert.rejects(request(socketPath, 'POST', '/late'), /ENOENT|ECONNREFUSED/);
  release();
  assert.deepEqual(await inFlight, { status: 200, body: 'done' });
  assert.ok((await stream) instanceof Error, 'a stream is cut');
  assert.deepEqual(await shutdown, { inFlight: 1, streamsCut: 1, cut: 0 });
  await audit.close();

  const lines = (await readFile(join(dir, 'audit.log'), 'utf8'))
    .trim()
    .split('\n')
    .map((x) => JSON.parse(x));
  assert.deepEqual(
    lines.map((e) => `${e.method} ${e.path} ${e.status} ${e.result}`),
    ['POST /write 200 ok', 'DELETE /bad 409 error', 'POST /slow 200 ok'],
  );
  // The client is this process: SO_PEERCRED names it.
  assert.deepEqual(lines[0].who, {
    transport: 'unix',
    uid: process.getuid!(),
    gid: process.getgid!(),
    pid: process.pid,
  });
  assert.equal(lines[1].error, 'HTTP 409');
});
