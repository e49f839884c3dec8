import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLIENT_TESTS, PORTS, PUBLISHED_PORTS, clientArgv, serverArgv, targetAt } from './tools.js';

test('clientArgv() builds the same tool command lines for every path', () => {
  const t = targetAt('10.0.0.2');
  const o = { secs: 2, udpRate: '500M' };
  assert.deepEqual(clientArgv('tcp', t, o), [
    'iperf3',
    '-c',
    '10.0.0.2',
    '-p',
    '25201',
    '-t',
    '2',
    '-J',
  ]);
  assert.deepEqual(clientArgv('tcp4', t, o).slice(-3), ['-P', '4', '-J']);
  assert.deepEqual(clientArgv('udp', t, o).slice(-7), ['2', '-u', '-l', '64', '-b', '500M', '-J']);
  assert.deepEqual(clientArgv('rr', t, o), [
    'sockperf',
    'ping-pong',
    '--tcp',
    '-i',
    '10.0.0.2',
    '-p',
    '21111',
    '-m',
    '64',
    '-t',
    '2',
    '--full-rtt',
  ]);
  const crr = clientArgv('crr', t, o);
  assert.deepEqual([crr[0], ...crr.slice(3)], ['python3', 'client', '10.0.0.2', '22865', '2']);
  assert.equal(CLIENT_TESTS.length, 5);
});

test('targetAt() points every server kind at one address and port set', () => {
  assert.deepEqual(targetAt('10.1.0.1', PUBLISHED_PORTS).iperf3, { ip: '10.1.0.1', port: 35201 });
  assert.deepEqual(targetAt('127.0.0.1').crr, { ip: '127.0.0.1', port: PORTS.crr });
});

test('serverArgv() binds each server to the given address', () => {
  assert.deepEqual(serverArgv('iperf3', '127.0.0.1'), [
    'iperf3',
    '-s',
    '-B',
    '127.0.0.1',
    '-p',
    '25201',
  ]);
  assert.deepEqual(serverArgv('sockperf', '0.0.0.0').slice(-4), ['-i', '0.0.0.0', '-p', '21111']);
  assert.deepEqual(serverArgv('crr', '0.0.0.0').slice(-3), ['server', '0.0.0.0', '22865']);
});
