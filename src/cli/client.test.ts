import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiClient, CliError, parseHost, resolveHost, resolveTls } from './client.js';

test('parseHost() reads unix and tcp addresses and refuses the rest', () => {
  assert.deepEqual(parseHost('unix:///run/cnm/cnm.sock'), {
    kind: 'unix',
    socketPath: '/run/cnm/cnm.sock',
  });
  assert.deepEqual(parseHost('tcp://127.0.0.1:2376'), {
    kind: 'tcp',
    host: '127.0.0.1',
    port: 2376,
  });
  assert.deepEqual(parseHost('tcp://[::1]:2376'), { kind: 'tcp', host: '::1', port: 2376 });
  assert.deepEqual(parseHost('tcp://cnm.example'), {
    kind: 'tcp',
    host: 'cnm.example',
    port: undefined,
  });
  for (const bad of ['unix://', 'http://x:1', 'tcp://x:0', 'tcp://x:70000', 'tcp://', '/run/x']) {
    assert.throws(() => parseHost(bad), CliError, bad);
  }
});

test('resolveHost() prefers -H, then CNM_HOST, and never DOCKER_HOST', () => {
  assert.equal(resolveHost('tcp://a:1', 'unix:///b'), 'tcp://a:1');
  assert.equal(resolveHost(undefined, 'unix:///b'), 'unix:///b');
  assert.equal(resolveHost(undefined, undefined), 'unix:///run/cnm/cnm.sock');
});

test('resolveTls() follows docker: --tlsverify implies TLS, files default to the cert path', () => {
  const files: Record<string, string> = {
    '/c/ca.pem': 'CA',
    '/c/cert.pem': 'CERT',
    '/c/key.pem': 'KEY',
    '/x/only-ca.pem': 'CA2',
  };
  const read = (f: string): Buffer => {
    if (files[f] === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
    return Buffer.from(files[f]);
  };
  const str = (t: ReturnType<typeof resolveTls>) =>
    t && {
      verify: t.verify,
      ca: t.ca?.toString(),
      cert: t.cert?.toString(),
      key: t.key?.toString(),
    };
  assert.equal(resolveTls({}, {}, read), undefined, 'off by default');
  assert.deepEqual(str(resolveTls({}, { CNM_TLS_VERIFY: '1', CNM_CERT_PATH: '/c' }, read)), {
    verify: true,
    ca: 'CA',
    cert: 'CERT',
    key: 'KEY',
  });
  // --tls alone: no verification, default client files only when present.
  assert.deepEqual(str(resolveTls({ tls: true }, { CNM_CERT_PATH: '/none' }, read)), {
    verify: false,
    ca: undefined,
    cert: undefined,
    key: undefined,
  });
  // A flag's file must exist; verifying needs a CA.
  assert.throws(
    () => resolveTls({ tlsverify: true, tlscacert: '/x/missing.pem' }, {}, read),
    /Cannot read the CA certificate "\/x\/missing\.pem": ENOENT/,
  );
  assert.throws(
    () => resolveTls({ tlsverify: true }, { CNM_CERT_PATH: '/none' }, read),
    /Cannot read the CA certificate "\/none\/ca\.pem"/,
  );
  assert.throws(
    () => resolveTls({ tls: true, tlscert: '/c/cert.pem' }, { CNM_CERT_PATH: '/none' }, read),
    /Cannot read the client key "\/none\/key\.pem"/,
  );
  assert.deepEqual(
    str(resolveTls({ tlsverify: true, tlscacert: '/x/only-ca.pem' }, { HOME: '/none' }, read)),
    { verify: true, ca: 'CA2', cert: undefined, key: undefined },
  );
});

test('ApiClient turns a refused TCP connection into a CliError', async () => {
  // Port 1 on loopback: nothing listens there in the unit-test environment.
  const c = new ApiClient('tcp://127.0.0.1:1');
  await assert.rejects(
    c.json({ method: 'GET', path: '/_ping' }),
    (err: unknown) =>
      err instanceof CliError &&
      /^Cannot connect to the cnm daemon at tcp:\/\/127\.0\.0\.1:1\. Is cnmd running\?$/.test(
        err.message,
      ),
  );
});
