import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CliError } from '../client.js';
import { MODES, parseBenchOptions } from './model.js';

test('parseBenchOptions() defaults to every mode, 5 s, 3 repetitions, 1G UDP cap', () => {
  assert.deepEqual(parseBenchOptions({}), {
    modes: [...MODES],
    durationSec: 5,
    repeat: 3,
    udpRate: '1G',
  });
});

test('parseBenchOptions() keeps report order and drops empty entries', () => {
  const s = parseBenchOptions({ modes: 'bridge, host,,', duration: '1', repeat: '1' });
  assert.deepEqual(s.modes, ['host', 'bridge']);
  assert.equal(s.durationSec, 1);
  assert.equal(s.repeat, 1);
});

test('parseBenchOptions() refuses unknown modes and bad numbers', () => {
  assert.throws(() => parseBenchOptions({ modes: 'host,ipvlan' }), /Invalid mode "ipvlan"/);
  assert.throws(() => parseBenchOptions({ modes: ',' }), CliError);
  assert.throws(() => parseBenchOptions({ duration: '0.5' }), /Invalid --duration "0.5"/);
  assert.throws(() => parseBenchOptions({ repeat: '0' }), /Invalid --repeat "0"/);
  assert.throws(() => parseBenchOptions({ udpRate: 'fast' }), /Invalid --udp-rate "fast"/);
});
