import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ComposeError, interpolate, loadCompose, projectNameOf, splitCommand } from './model.js';
import { LABELS, containerCreateBody, networkCreateBody, serviceCreateBody } from './requests.js';

const opts = { projectDir: '/srv/My App', env: {} as Record<string, string | undefined> };
const load = (text: string, env: Record<string, string | undefined> = {}) =>
  loadCompose(text, { ...opts, env });
const refuses = (text: string, re: RegExp): void => {
  assert.throws(
    () => load(text),
    (err: unknown) => {
      assert.ok(err instanceof ComposeError);
      assert.match(err.message, re);
      return true;
    },
  );
};

describe('splitCommand()', () => {
  it('splits on whitespace and honours quotes and backslashes like go-shellwords', () => {
    assert.deepEqual(splitCommand(`sh -c 'echo "a  b"; exit 3'`), [
      'sh',
      '-c',
      'echo "a  b"; exit 3',
    ]);
    assert.deepEqual(splitCommand(`a "b c" d\\ e '' "x'y"`), ['a', 'b c', 'd e', '', "x'y"]);
    assert.deepEqual(splitCommand('  sleep   600  '), ['sleep', '600']);
  });
  it('refuses an unterminated quote', () => {
    assert.throws(() => splitCommand(`echo 'oops`), /unterminated '/);
  });
});

describe('interpolate()', () => {
  it('supports $$, $VAR, ${VAR}, defaults, alternatives and required forms', () => {
    const env = { A: 'x', E: '' };
    const unset = new Set<string>();
    const i = (s: string): string => interpolate(s, env, unset, 'k');
    assert.equal(i('$$A $A ${A}'), '$A x x');
    assert.equal(i('${E:-d} ${E-d} ${N:-d}'), 'd  d');
    assert.equal(i('${A:+alt} ${N:+alt}'), 'alt ');
    assert.equal(i('${N}'), '');
    assert.deepEqual([...unset], ['N']);
    assert.throws(() => i('${N:?needs N}'), /required variable N is missing a value: needs N/);
  });
});

describe('projectNameOf()', () => {
  it('normalises a directory name and refuses a bad explicit one', () => {
    assert.equal(projectNameOf(undefined, '/srv/My App.v2/'), 'myappv2');
    assert.equal(projectNameOf('demo_1', '/x'), 'demo_1');
    assert.throws(() => projectNameOf('Demo', '/x'), /Invalid project name "Demo"/);
  });
});

describe('loadCompose()', () => {
  it('resolves services, networks, defaults and start order', () => {
    const p = load(
      `
name: shop
services:
  web:
    command: ["python3", "-m", "http.server", "80"]
    networks:
      front: { aliases: [www], ipv4_address: 10.1.0.5 }
      back: { priority: 5 }
    ports: ["8080:80", 9090, { target: 53, published: 5353, protocol: udp, host_ip: 127.0.0.1 }]
    environment: { A: 1, B: "two", FROM_SHELL: null }
    depends_on: { db: { condition: service_started } }
    dns: 1.1.1.1
    dns_search: [example.com]
    dns_opt: [ndots:2]
    sysctls: [net.ipv4.ip_forward=1]
    labels: [team=a]
    hostname: web
    working_dir: /tmp
  db:
    command: sleep 600
  tool:
    command: sleep 1
    network_mode: host
networks:
  front:
    ipam:
      config: [{ subnet: 10.1.0.0/24, gateway: 10.1.0.1, ip_range: 10.1.0.0/25, aux_addresses: { r: 10.1.0.2 } }]
  back:
    internal: true
    driver_opts: { com.docker.network.driver.mtu: 1400 }
  unused: {}
  ext:
    external: true
    name: shared
`,
      { FROM_SHELL: 'yes' },
    );
    assert.equal(p.name, 'shop');
    assert.deepEqual(
      p.services.map((s) => s.name),
      ['db', 'web', 'tool'],
    );
    const web = p.services[1]!;
    assert.equal(web.containerName, 'shop-web-1');
    assert.deepEqual(
      web.networks.map((n) => n.key),
      ['back', 'front'],
    );
    assert.deepEqual(web.networks[1], { key: 'front', aliases: ['www'], ipv4Address: '10.1.0.5' });
    assert.deepEqual(web.ports, ['8080:80', '9090', '127.0.0.1:5353:53/udp']);
    assert.deepEqual(web.environment, ['A=1', 'B=two', 'FROM_SHELL=yes']);
    assert.deepEqual(web.dns, ['1.1.1.1']);
    assert.deepEqual(web.sysctls, { 'net.ipv4.ip_forward': '1' });
    assert.deepEqual(p.services[0]!.command, ['sleep', '600']);
    assert.deepEqual(p.services[0]!.networks, [{ key: 'default', aliases: [] }]);
    assert.equal(p.services[2]!.networkMode, 'host');
    // Only used networks; default first; names prefixed with the project.
    assert.deepEqual(
      p.networks.map((n) => n.name),
      ['shop_default', 'shop_front', 'shop_back'],
    );
    assert.deepEqual(p.networks[2]!.driverOpts, { 'com.docker.network.driver.mtu': '1400' });
  });

  it('takes -p over COMPOSE_PROJECT_NAME over name: over the directory', () => {
    const text = 'name: fromfile\nservices: { a: { command: "true" } }\n';
    assert.equal(loadCompose(text, { ...opts, projectName: 'cli' }).name, 'cli');
    assert.equal(load(text, { COMPOSE_PROJECT_NAME: 'envname' }).name, 'envname');
    assert.equal(load(text).name, 'fromfile');
    assert.equal(load('services: { a: { command: "true" } }').name, 'myapp');
  });

  it('ignores image/build and x- keys with a notice, interpolates variables', () => {
    const p = load(
      'version: "3.9"\nx-common: &c { labels: { a: b } }\nservices:\n  a:\n    image: nginx\n    build: .\n    command: echo ${WHO:-world} $$HOME ${MISSING}\n',
      {},
    );
    assert.deepEqual(p.services[0]!.command, ['echo', 'world', '$HOME']);
    assert.ok(p.notices.some((n) => /services\.a\.image ignored/.test(n)));
    assert.ok(p.notices.some((n) => /services\.a\.build ignored/.test(n)));
    assert.ok(p.notices.some((n) => /"MISSING" variable is not set/.test(n)));
    assert.ok(p.notices.some((n) => /"version" is obsolete/.test(n)));
  });

  it('external networks keep their name and refuse other settings', () => {
    const p = load(
      'services: { a: { command: x, networks: [e] } }\nnetworks: { e: { external: true } }',
    );
    assert.deepEqual(
      p.networks.map((n) => [n.name, n.external]),
      [['e', true]],
    );
    refuses(
      'services: { a: { command: x, networks: [e] } }\nnetworks: { e: { external: true, driver: bridge } }',
      /networks\.e: conflicting parameters "external" and "driver"/,
    );
  });

  it('refuses what matters, naming the key', () => {
    refuses(
      'services: { a: { command: x, volumes: [./d:/d] } }',
      /services\.a\.volumes: .*no volumes/,
    );
    refuses('services: { a: { command: x, foo: 1 } }', /services\.a\.foo: unknown key/);
    refuses('services: { a: { image: nginx } }', /services\.a: has no command/);
    refuses(
      'services: { a: { command: x, networks: [nope] } }',
      /refers to undefined network "nope"/,
    );
    refuses('services: { a: { command: x, depends_on: [b] } }', /undefined service "b"/);
    refuses(
      'services: { a: { command: x, depends_on: [b] }, b: { command: x, depends_on: [a] } }',
      /dependency cycle: a -> b -> a/,
    );
    refuses(
      'services: { a: { command: x, network_mode: "service:b" } }',
      /network_mode: "service:b" is not supported/,
    );
    refuses(
      'services: { a: { command: x, network_mode: host, networks: [n] } }',
      /cannot be combined/,
    );
    refuses('services: { a: { command: x } }\nvolumes: { v: {} }', /top level\.volumes/);
    refuses(
      'services: { a: { command: x } }\nnetworks: { n: { ipam: { config: [{ subnet: 1, bogus: 2 }] } } }',
      /ipam\.config\[0\]\.bogus/,
    );
    refuses('services: { a: { command: [1, {}] } }', /command\[1\]: must be a string/);
    refuses('services: {}', /at least one service/);
    refuses('services: [a]', /services: must be a mapping/);
    refuses(
      'services:\n  a: {command: x}\n  a: {command: y}\n',
      /Invalid compose file "compose.yaml": .*[Uu]nique/,
    );
  });
});

describe('compose requests', () => {
  it('label what they create and name per Compose v2', () => {
    const p = load(
      'services:\n  web:\n    command: sleep 1\n    networks: { n: { aliases: [w] } }\n    mac_address: 02:42:00:00:00:09\nnetworks:\n  n: { enable_ipv6: true, attachable: true, labels: { x: y }, ipam: { driver: default, config: [{ subnet: 10.9.0.0/24 }] } }\n',
    );
    const net = networkCreateBody(p.name, p.networks[0]!);
    assert.deepEqual(net, {
      Name: 'myapp_n',
      Driver: 'bridge',
      Options: {},
      Labels: { x: 'y', [LABELS.project]: 'myapp', [LABELS.network]: 'n' },
      Internal: false,
      Attachable: true,
      EnableIPv6: true,
      IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: '10.9.0.0/24' }] },
    });
    const ctr = containerCreateBody(p, p.services[0]!, {
      configFile: '/srv/My App/compose.yaml',
      workingDir: '/srv/My App',
    });
    assert.equal(ctr['Name'], 'myapp-web-1');
    assert.deepEqual(ctr['Networks'], [
      { Name: 'myapp_n', Aliases: ['web', 'w'], MacAddress: '02:42:00:00:00:09' },
    ]);
    const labels = ctr['Labels'] as Record<string, string>;
    assert.equal(labels[LABELS.project], 'myapp');
    assert.equal(labels[LABELS.service], 'web');
  });

  it('the microservices example loads as the demo topology', () => {
    const text = readFileSync(
      new URL('../../../examples/microservices/compose.yaml', import.meta.url),
      'utf8',
    );
    const p = load(text);
    assert.equal(p.name, 'microservices');
    assert.deepEqual(
      p.services.map((s) => s.name),
      ['db', 'svc-a', 'svc-b', 'gateway'],
    );
    const svcA = p.services.find((s) => s.name === 'svc-a')!;
    assert.deepEqual(
      svcA.networks.map((n) => n.key),
      ['frontend', 'backend'],
    );
    assert.deepEqual(p.services.find((s) => s.name === 'gateway')!.ports, ['8080:80']);
    assert.equal(p.networks.find((n) => n.key === 'backend')!.internal, true);
  });

  it('deploy.replicas makes a cnm service: vip by default, dnsrr on request', () => {
    const p = load(
      [
        'name: shop',
        'services:',
        '  api:',
        '    command: sleep 600',
        '    labels: { tier: back }',
        '    deploy: { replicas: 3, resources: { limits: { cpus: "1" } } }',
        '  web:',
        '    command: sleep 600',
        '    networks: { front: { aliases: [www] } }',
        '    deploy: { replicas: 2, endpoint_mode: dnsrr }',
        '  one:',
        '    command: sleep 600',
        '    deploy: { restart_policy: { condition: any } }',
        'networks: { front: {} }',
      ].join('\n'),
    );
    const by = (n: string) => p.services.find((s) => s.name === n)!;
    assert.deepEqual(by('api').deploy, { replicas: 3, endpointMode: 'vip' });
    assert.deepEqual(by('web').deploy, { replicas: 2, endpointMode: 'dnsrr' });
    assert.equal(by('one').deploy, undefined, 'no replicas: a plain container');
    assert.ok(p.notices.some((n) => /deploy\.resources ignored/.test(n)));
    const src = { configFile: '/srv/compose.yaml', workingDir: '/srv' };
    const api = serviceCreateBody(p, by('api'), src);
    assert.equal(api['Name'], 'shop_api');
    assert.equal(api['Network'], 'shop_default');
    assert.equal(api['Replicas'], 3);
    assert.equal(api['EndpointMode'], 'vip');
    assert.deepEqual(api['Aliases'], ['api']);
    const labels = api['Labels'] as Record<string, string>;
    assert.equal(labels[LABELS.project], 'shop');
    assert.equal(labels['tier'], 'back');
    const web = serviceCreateBody(p, by('web'), src);
    assert.deepEqual([web['Network'], web['EndpointMode']], ['shop_front', 'dnsrr']);
    assert.deepEqual(web['Aliases'], ['web', 'www']);
  });

  it('deploy.replicas refuses what replicas cannot share', () => {
    const svc = (extra: string) =>
      `services:\n  a:\n    command: sleep 1\n    deploy: { replicas: 2 }\n${extra}networks: { x: {}, y: {} }\n`;
    refuses(
      svc('    ports: ["80:80"]\n'),
      /services\.a\.ports: cannot be combined with deploy\.replicas/,
    );
    refuses(svc('    container_name: c\n'), /container_name: cannot be combined/);
    refuses(svc('    networks: [x, y]\n'), /deploy\.replicas needs exactly one network/);
    refuses(
      'services:\n  a:\n    command: sleep 1\n    deploy: { replicas: -1 }\n',
      /deploy\.replicas: must be an integer from 0 to 256/,
    );
    refuses(
      'services:\n  a:\n    command: sleep 1\n    deploy: { replicas: 1, endpoint_mode: lb }\n',
      /endpoint_mode: "lb" is not supported/,
    );
    refuses(
      'services:\n  a:\n    command: sleep 1\n    deploy: { mode: global }\n',
      /deploy\.mode: "global" is not supported/,
    );
  });
});
