/**
 * API access (issue 4, item 6): the unix socket is root:GROUP 0660 with the group created when
 * missing; `-H tcp://` without TLS is refused unless `--insecure-tcp`; with `--tlsverify` the
 * real docker CLI works over mutual TLS (from inside the world's host netns, against cnmd on
 * that netns's loopback) and a client without a certificate, or with one from another CA, is
 * refused; the cnm CLI does the same with its docker-style `--tlsverify`/`-H tcp://` flags and
 * `CNM_HOST`/`CNM_TLS_VERIFY`/`CNM_CERT_PATH`, and when refused prints why (no stack trace);
 * every state-changing request — and no read — is in the audit log with who sent it
 * (SO_PEERCRED on the unix socket, the certificate subject over TLS, the address over plain
 * TCP), the status and the error message. Certificates are made with openssl in the world's
 * temp dir. The test creates a throwaway group `cnmt<pid>` and deletes it afterwards. Needs root
 * and the docker CLI (skipped without it).
 */
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import {
  REPO_ROOT,
  cnm,
  exec,
  run,
  skipUnlessRoot,
  startDaemon,
  withWorld,
  type ExecResult,
  type World,
} from './harness.js';

const DOCKER = ['/usr/local/bin/docker', '/usr/bin/docker'].find((p) => existsSync(p));
const TLS_PORT = 2376;
const PLAIN_PORT = 2375;

function skip(): string | false {
  return (
    skipUnlessRoot() ||
    (DOCKER === undefined ? 'needs the docker CLI' : false) ||
    (!existsSync('/usr/bin/openssl') ? 'needs openssl' : false)
  );
}

interface Certs {
  ca: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
  rogueCert: string;
  rogueKey: string;
}

/** A throwaway CA, a server certificate for 127.0.0.1, a client one, and one from another CA. */
async function makeCerts(dir: string): Promise<Certs> {
  await mkdir(dir, { recursive: true });
  const f = (n: string): string => path.join(dir, n);
  const ssl = (args: string[]): Promise<ExecResult> =>
    run('openssl', args, { check: true, timeoutMs: 30_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = async (name: string): Promise<void> => {
    await ssl(
      ['req', '-x509', ...ec, '-keyout', f(`${name}-key.pem`), '-out', f(`${name}.pem`)].concat([
        '-days',
        '1',
        '-subj',
        `/CN=${name}`,
      ]),
    );
  };
  const leaf = async (name: string, caName: string, cn: string, ext: string): Promise<void> => {
    await writeFile(f(`${name}.ext`), ext);
    await ssl([
      'req',
      ...ec,
      '-keyout',
      f(`${name}-key.pem`),
      '-out',
      f(`${name}.csr`),
      '-subj',
      `/CN=${cn}/O=cnm-tests`,
    ]);
    await ssl([
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f(`${caName}.pem`),
      '-CAkey',
      f(`${caName}-key.pem`),
      '-CAcreateserial',
      '-out',
      f(`${name}.pem`),
      '-days',
      '1',
      '-extfile',
      f(`${name}.ext`),
    ]);
  };
  await ca('ca');
  await ca('rogue-ca');
  await leaf('server', 'ca', 'cnmd', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await leaf('client', 'ca', 'cnm-test-client', 'extendedKeyUsage=clientAuth\n');
  await leaf('rogue', 'rogue-ca', 'cnm-rogue-client', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: f('ca.pem'),
    cert: f('server.pem'),
    key: f('server-key.pem'),
    clientCert: f('client.pem'),
    clientKey: f('client-key.pem'),
    rogueCert: f('rogue.pem'),
    rogueKey: f('rogue-key.pem'),
  };
}

/** The docker CLI inside the world's host netns, with a private config dir and no DOCKER_HOST. */
async function docker(w: World, args: string[]): Promise<ExecResult & { code: number }> {
  const config = path.join(w.dir, 'docker-config');
  await mkdir(config, { recursive: true });
  const r = await exec(w.hostNs, [DOCKER ?? 'docker', ...args], {
    timeoutMs: 30_000,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: w.dir, DOCKER_CONFIG: config },
  });
  return { ...r, code: r.code ?? -1 };
}

async function audit(file: string): Promise<any[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

/**
 * The audit log once `want` holds: a line is written when its response is complete, which can
 * be just after the client has its answer (and exited).
 */
async function auditOnce(file: string, want: (entries: any[]) => boolean): Promise<any[]> {
  const t0 = Date.now();
  for (;;) {
    const entries = await audit(file);
    if (want(entries) || Date.now() - t0 > 5000) return entries;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** cnmd's log tail once it matches `re` (the log line can land just after the client gave up). */
async function logOnce(
  d: { logTail(lines?: number): Promise<string> },
  re: RegExp,
): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const tail = await d.logTail(200);
    if (re.test(tail) || Date.now() - t0 > 5000) return tail;
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function groupGid(name: string): Promise<number | undefined> {
  const r = await run('getent', ['group', name]);
  return r.code === 0 ? Number(r.stdout.split(':')[2]) : undefined;
}

test(
  'API access: socket root:group 0660, TCP needs TLS, docker CLI over mTLS, audit log',
  { skip: skip(), timeout: 180_000 },
  (t) =>
    withWorld(t, async (w) => {
      const group = `cnmt${process.pid}`;
      assert.equal(await groupGid(group), undefined, `group ${group} must not exist yet`);
      try {
        const certs = await makeCerts(path.join(w.dir, 'certs'));
        const auditLog = path.join(w.dir, 'audit.jsonl');
        const daemonJs = path.join(REPO_ROOT, 'dist/main/daemon.js');

        // TCP without TLS: refused at once, with the flags that fix it, before touching anything.
        const refused = await exec(
          w.hostNs,
          [
            process.execPath,
            daemonJs,
            '-H',
            `tcp://127.0.0.1:${PLAIN_PORT}`,
            '--data-root',
            path.join(w.dir, 'x-lib'),
            '--exec-root',
            path.join(w.dir, 'x-run'),
            '--pidfile',
            path.join(w.dir, 'x.pid'),
          ],
          { timeoutMs: 30_000 },
        );
        assert.notEqual(refused.code, 0, 'cnmd must not start on plain TCP');
        assert.match(
          refused.stderr,
          /Refusing to listen on "tcp:\/\/127\.0\.0\.1:2375" without TLS/,
        );
        assert.match(refused.stderr, /--tlsverify .*--insecure-tcp/);
        assert.ok(!existsSync(path.join(w.dir, 'x.pid')), 'refused before writing a pid file');

        const d = await startDaemon(w, [
          '-G',
          group,
          '-H',
          `tcp://127.0.0.1:${TLS_PORT}`,
          '--tlsverify',
          '--tlscacert',
          certs.ca,
          '--tlscert',
          certs.cert,
          '--tlskey',
          certs.key,
          '--audit-log',
          auditLog,
        ]);

        // The unix socket: root:<group> 0660; the group was created.
        const gid = await groupGid(group);
        assert.ok(gid !== undefined, `cnmd created group ${group}`);
        const st = statSync(w.socketPath);
        assert.equal(st.mode & 0o777, 0o660, 'socket mode 0660');
        assert.equal(st.uid, 0, 'socket owner root');
        assert.equal(st.gid, gid, `socket group ${group}`);
        assert.match(await d.logTail(200), new RegExp(`Created group "${group}"`));

        // docker CLI over mutual TLS.
        const tlsArgs = [
          '--tlsverify',
          '--tlscacert',
          certs.ca,
          '--tlscert',
          certs.clientCert,
          '--tlskey',
          certs.clientKey,
          '-H',
          `tcp://127.0.0.1:${TLS_PORT}`,
        ];
        const ok = async (args: string[]): Promise<string> => {
          const r = await docker(w, [...tlsArgs, ...args]);
          assert.equal(r.code, 0, `docker ${args.join(' ')} failed:\n${r.stderr}`);
          return r.stdout;
        };
        assert.match(await ok(['version', '--format', '{{.Server.APIVersion}}']), /^1\.\d+/);
        const id = (await ok(['network', 'create', '--subnet', '10.77.0.0/24', 'tlsnet'])).trim();
        assert.match(id, /^[0-9a-f]{64}$/);
        assert.match(await ok(['network', 'ls', '--format', '{{.Name}}']), /^tlsnet$/m);
        const rmMissing = await docker(w, [...tlsArgs, 'network', 'rm', 'no-such-net']);
        assert.equal(rmMissing.code, 1, 'removing a missing network fails');
        assert.match(await ok(['network', 'rm', 'tlsnet']), /tlsnet/);

        // Refused: no client certificate, a certificate from another CA, plain HTTP.
        const before = (
          await auditOnce(auditLog, (es) =>
            es.some((e) => e.method === 'DELETE' && e.path.endsWith('/networks/tlsnet')),
          )
        ).length;
        for (const [what, args] of [
          ['no client certificate', ['--tls', '--tlscacert', certs.ca]],
          [
            'a certificate from another CA',
            [
              '--tlsverify',
              '--tlscacert',
              certs.ca,
              '--tlscert',
              certs.rogueCert,
              '--tlskey',
              certs.rogueKey,
            ],
          ],
          ['plain HTTP', []],
        ] as const) {
          const r = await docker(w, [
            ...args,
            '-H',
            `tcp://127.0.0.1:${TLS_PORT}`,
            'network',
            'create',
            'evil',
          ]);
          assert.notEqual(r.code, 0, `${what}: refused (got ${r.stdout})`);
          t.diagnostic(`${what}: ${r.stderr.trim().split('\n').pop()}`);
        }
        // The Go client only offers a certificate the server's CA list names; curl offers its
        // certificate regardless, so a foreign CA's certificate really reaches the handshake.
        const curl = (cert: string, key: string): Promise<ExecResult> =>
          exec(
            w.hostNs,
            [
              'curl',
              '-sS',
              '--max-time',
              '10',
              '--cacert',
              certs.ca,
              '--cert',
              cert,
              '--key',
              key,
              '-X',
              'POST',
              '-H',
              'Content-Type: application/json',
              '-d',
              '{"Name":"evil"}',
              `https://127.0.0.1:${TLS_PORT}/networks/create`,
            ],
            { timeoutMs: 20_000 },
          );
        const rogue = await curl(certs.rogueCert, certs.rogueKey);
        assert.notEqual(rogue.code, 0, `a foreign CA's certificate is refused: ${rogue.stdout}`);
        t.diagnostic(`curl with a foreign CA's certificate: ${rogue.stderr.trim()}`);
        const handshakeRefused = /TLS handshake from 127\.0\.0\.1:\d+ refused/;
        assert.match(await logOnce(d, handshakeRefused), handshakeRefused);
        // Control: the same request with the right certificate gets through (and is refused
        // only by the API: "evil" needs no refusal, it is deleted below).
        const good = await curl(certs.clientCert, certs.clientKey);
        assert.equal(good.code, 0, good.stderr);
        assert.match(good.stdout, /"Id"/);
        assert.equal((await docker(w, [...tlsArgs, 'network', 'rm', 'evil'])).code, 0);

        // The cnm CLI over the unix socket still works.
        const c = await cnm(w, ['network', 'create', 'unixnet']);
        assert.equal(c.code, 0, c.stderr);
        const ls = await cnm(w, ['network', 'ls']);
        assert.match(ls.stdout, /unixnet/);
        const lsTls = await ok(['network', 'ls', '--format', '{{.Name}}']);
        assert.doesNotMatch(lsTls, /evil/, 'no refused client created anything');
        assert.match(lsTls, /^unixnet$/m, 'one API, whatever the transport');

        // The audit log: every state change, with who; no reads; nothing from refused clients.
        const entries = await auditOnce(auditLog, (es) =>
          es.some((e) => e.method === 'DELETE' && e.path.endsWith('/networks/evil')),
        );
        assert.ok(
          entries.every((e) => e.method !== 'GET' && e.method !== 'HEAD'),
          'reads are not logged',
        );
        // After the refused attempts, the only TLS state change is the certified curl's create
        // and the rm that undid it: the refused clients never reached the API.
        const tlsAfter = entries.slice(before).filter((e) => e.who.transport === 'tls');
        assert.deepEqual(
          tlsAfter.map((e) => `${e.method} ${e.path.replace(/^\/v[\d.]+/, '')} ${e.status}`),
          ['POST /networks/create 201', 'DELETE /networks/evil 204'],
        );
        assert.match(tlsAfter[0].who.subject, /CN=cnm-test-client/);
        const create = entries.find(
          (e) =>
            e.method === 'POST' && /\/networks\/create$/.test(e.path) && e.who.transport === 'tls',
        );
        assert.ok(create, `TLS create logged: ${JSON.stringify(entries)}`);
        assert.equal(create.status, 201);
        assert.equal(create.result, 'ok');
        assert.match(create.who.subject, /CN=cnm-test-client/);
        assert.match(create.who.issuer, /CN=ca/);
        assert.match(create.who.remote, /^127\.0\.0\.1:\d+$/);
        assert.ok(!Number.isNaN(Date.parse(create.time)));
        const missing = entries.find((e) => e.method === 'DELETE' && /no-such-net/.test(e.path));
        assert.ok(missing, 'failed delete logged');
        assert.equal(missing.status, 404);
        assert.equal(missing.result, 'error');
        assert.match(missing.error, /no-such-net/);
        const del = entries.find(
          (e) => e.method === 'DELETE' && /tlsnet|[0-9a-f]{12}/.test(e.path) && e.status === 204,
        );
        assert.ok(del, 'delete logged');
        const unix = entries.find(
          (e) => e.who.transport === 'unix' && /\/networks\/create$/.test(e.path),
        );
        assert.ok(unix, 'unix create logged');
        assert.equal(unix.who.uid, 0);
        assert.equal(unix.who.gid, 0);
        assert.ok(unix.who.pid > 0, 'peer pid from SO_PEERCRED');
        assert.equal(unix.status, 201);
        t.diagnostic(`audit: ${entries.length} entries, e.g. ${JSON.stringify(create)}`);

        // The cnm CLI over mutual TLS, from the world's host netns: flags, then the environment
        // (CNM_HOST, CNM_TLS_VERIFY, CNM_CERT_PATH with ca.pem/cert.pem/key.pem).
        const cli = async (
          args: string[],
          env: Record<string, string> = {},
        ): Promise<ExecResult & { code: number }> => {
          const r = await exec(
            w.hostNs,
            [process.execPath, path.join(REPO_ROOT, 'dist/main/cli.js'), ...args],
            {
              timeoutMs: 30_000,
              env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: w.dir, ...env },
            },
          );
          return { ...r, code: r.code ?? -1 };
        };
        const cnmTls = [
          '--tlsverify',
          '--tlscacert',
          certs.ca,
          '--tlscert',
          certs.clientCert,
          '--tlskey',
          certs.clientKey,
          '-H',
          `tcp://127.0.0.1:${TLS_PORT}`,
        ];
        const cliOk = async (args: string[], env?: Record<string, string>): Promise<string> => {
          const r = await cli(args, env);
          assert.equal(r.code, 0, `cnm ${args.join(' ')} failed:\n${r.stderr}`);
          return r.stdout;
        };
        const auditMark = (await audit(auditLog)).length;
        const cliId = (await cliOk([...cnmTls, 'network', 'create', 'clinet'])).trim();
        assert.match(cliId, /^[0-9a-f]{64}$/);
        assert.match(await cliOk([...cnmTls, 'network', 'ls']), /clinet/);
        const certDir = path.join(w.dir, 'cnm-certs');
        await mkdir(certDir, { recursive: true });
        for (const [from, to] of [
          [certs.ca, 'ca.pem'],
          [certs.clientCert, 'cert.pem'],
          [certs.clientKey, 'key.pem'],
        ] as const) {
          await writeFile(path.join(certDir, to), await readFile(from));
        }
        const byEnv = {
          CNM_HOST: `tcp://127.0.0.1:${TLS_PORT}`,
          CNM_TLS_VERIFY: '1',
          CNM_CERT_PATH: certDir,
        };
        assert.match(
          await cliOk(['network', 'ls', '--format', '{{.Name}}'], byEnv),
          /^clinet$/m,
          'CNM_HOST + CNM_TLS_VERIFY + CNM_CERT_PATH',
        );
        assert.match(await cliOk([...cnmTls, 'network', 'rm', 'clinet']), /clinet/);
        const cliAudit = (
          await auditOnce(auditLog, (es) =>
            es.some((e) => e.method === 'DELETE' && e.path.endsWith('/networks/clinet')),
          )
        )
          .slice(auditMark)
          .filter((e) => e.who.transport === 'tls' && /\/networks\/(create|clinet)$/.test(e.path));
        assert.deepEqual(
          cliAudit.map(
            (e) => `${e.method} ${e.status} ${/CN=cnm-test-client/.test(e.who.subject)}`,
          ),
          ['POST 201 true', 'DELETE 204 true'],
          'the CLI is audited under its certificate',
        );
        // Refused, with a message and no stack trace: no client certificate (HOME has none),
        // a certificate from another CA, plain HTTP to the TLS port, an unknown CA for the daemon.
        for (const [what, args, msg] of [
          [
            'cnm without a client certificate',
            ['--tlsverify', '--tlscacert', certs.ca],
            /client certificate/,
          ],
          [
            "cnm with a foreign CA's certificate",
            [
              '--tlsverify',
              '--tlscacert',
              certs.ca,
              '--tlscert',
              certs.rogueCert,
              '--tlskey',
              certs.rogueKey,
            ],
            /client certificate/,
          ],
          ['cnm over plain TCP', [], /does it require TLS\?/],
          [
            "cnm not trusting the daemon's CA",
            [
              '--tlsverify',
              '--tlscacert',
              path.join(w.dir, 'certs', 'rogue-ca.pem'),
              '--tlscert',
              certs.clientCert,
              '--tlskey',
              certs.clientKey,
            ],
            /not trusted/,
          ],
        ] as const) {
          const r = await cli([
            ...args,
            '-H',
            `tcp://127.0.0.1:${TLS_PORT}`,
            'network',
            'create',
            'evil2',
          ]);
          t.diagnostic(`${what}: ${r.stderr.trim()}`);
          assert.equal(r.code, 1, `${what}: exit 1 (got ${r.code}: ${r.stdout})`);
          assert.match(r.stderr, /^Cannot connect to the cnm daemon at tcp:\/\/127\.0\.0\.1:2376/);
          assert.match(r.stderr, msg, what);
          assert.doesNotMatch(r.stderr, /unexpected error|\n\s+at /, `${what}: no stack trace`);
        }
        const missingCa = await cli([
          ...cnmTls.slice(0, 1),
          '--tlscacert',
          '/nonexistent/ca.pem',
          '-H',
          `tcp://127.0.0.1:${TLS_PORT}`,
          'network',
          'ls',
        ]);
        assert.equal(missingCa.code, 1);
        assert.match(
          missingCa.stderr,
          /Cannot read the CA certificate "\/nonexistent\/ca\.pem": ENOENT/,
        );
        const lsAfter = await cliOk(['network', 'ls', '--format', '{{.Name}}'], byEnv);
        assert.doesNotMatch(lsAfter, /evil2|clinet/, 'refused CLI calls changed nothing');

        // Plain TCP when told --insecure-tcp (here through daemon.json, which also names the
        // group); the audit names the remote address.
        await d.stop();
        const config = path.join(w.dir, 'daemon.json');
        await writeFile(
          config,
          JSON.stringify({ 'insecure-tcp': true, group, 'audit-log': auditLog }),
        );
        const d2 = await startDaemon(w, [
          '-H',
          `tcp://127.0.0.1:${PLAIN_PORT}`,
          '--config-file',
          config,
        ]);
        assert.match(
          await d2.logTail(50),
          /API listening on tcp:\/\/127\.0\.0\.1:2375 \(plain TCP/,
        );
        assert.equal(statSync(w.socketPath).gid, gid, 'group from daemon.json');
        const plain = await docker(w, [
          '-H',
          `tcp://127.0.0.1:${PLAIN_PORT}`,
          'network',
          'create',
          'plainnet',
        ]);
        assert.equal(plain.code, 0, plain.stderr);
        const last = (
          await auditOnce(auditLog, (es) => es.some((e) => e.who.transport === 'tcp'))
        ).filter((e) => e.who.transport === 'tcp');
        assert.equal(last.length, 1, JSON.stringify(last));
        assert.match(last[0].who.remote, /^127\.0\.0\.1:\d+$/);
        assert.equal(last[0].status, 201);
      } finally {
        if ((await groupGid(group)) !== undefined) await run('groupdel', [group]);
      }
    }),
);
