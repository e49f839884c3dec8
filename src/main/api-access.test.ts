import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { addApiAccessOptions, readApiAccessConfig } from './api-access.js';

function read(argv: string[], file: Record<string, unknown> = {}) {
  const program = addApiAccessOptions(new Command('cnmd')).exitOverride();
  program.parse(['node', 'cnmd', ...argv]);
  return readApiAccessConfig(program, file, '/var/lib/cnm');
}

test('readApiAccessConfig(): defaults are the unix socket, group cnm, no TLS, audit in data root', () => {
  const c = read([]);
  assert.deepEqual(c.addresses, [{ kind: 'unix', path: '/run/cnm/cnm.sock' }]);
  assert.equal(c.group, 'cnm');
  assert.equal(c.tls, false);
  assert.equal(c.auditLog, '/var/lib/cnm/audit.log');
});

test('readApiAccessConfig(): several -H, --tlsverify implies --tls, TCP port from TLS', () => {
  const c = read(['-H', 'unix:///tmp/a.sock', '-H', 'tcp://127.0.0.1', '--tlsverify']);
  assert.deepEqual(c.addresses, [
    { kind: 'unix', path: '/tmp/a.sock' },
    { kind: 'tcp', host: '127.0.0.1', port: 2376 },
  ]);
  assert.equal(c.tls, true);
  assert.equal(c.tlsVerify, true);
  assert.equal(read(['--tls=false']).tls, false);
});

test('readApiAccessConfig(): TCP without TLS is refused unless --insecure-tcp', () => {
  assert.throws(() => read(['-H', 'tcp://0.0.0.0:2375']), /Refusing to listen.*--insecure-tcp/);
  assert.equal(read(['-H', 'tcp://0.0.0.0:2375', '--insecure-tcp']).insecureTcp, true);
  assert.equal(read(['-H', 'tcp://0.0.0.0:2376', '--tls']).tls, true);
});

test('readApiAccessConfig(): daemon.json keys apply, flags win', () => {
  const file = {
    hosts: ['unix:///tmp/f.sock', 'tcp://10.0.0.1:2376'],
    tlsverify: true,
    tlscacert: '/etc/x/ca.pem',
    group: 'docker',
    'audit-log': '/var/log/cnm-audit.log',
  };
  const c = read([], file);
  assert.deepEqual(
    c.addresses.map((a) => a.kind),
    ['unix', 'tcp'],
  );
  assert.equal(c.tlsVerify, true);
  assert.equal(c.tlsCaCert, '/etc/x/ca.pem');
  assert.equal(c.group, 'docker');
  assert.equal(c.auditLog, '/var/log/cnm-audit.log');
  const f = read(['-H', 'unix:///tmp/g.sock', '-G', 'wheel'], file);
  assert.deepEqual(f.addresses, [{ kind: 'unix', path: '/tmp/g.sock' }]);
  assert.equal(f.group, 'wheel');
  assert.throws(() => read([], { hosts: 'unix:///x' }), /Invalid "hosts"/);
  assert.throws(() => read([], { tls: 'yes' }), /Invalid "tls"/);
});
