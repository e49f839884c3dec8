import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ToolOutputError,
  parseCrr,
  parseIperf3Tcp,
  parseIperf3Udp,
  parseSockperf,
} from './parse.js';

const TCP_JSON = JSON.stringify({
  start: { version: 'iperf 3.12' },
  end: {
    sum_sent: { seconds: 1.02, bytes: 3110338560, bits_per_second: 24385679559.2, retransmits: 0 },
    sum_received: { seconds: 1.021, bytes: 3109355467, bits_per_second: 24363908216.8 },
  },
});

const UDP_JSON = JSON.stringify({
  end: {
    sum: { seconds: 1.014288, packets: 198434, lost_packets: 92197 },
    sum_sent: { seconds: 1.014155, packets: 198434, lost_packets: 0 },
    sum_received: { seconds: 1.014288, packets: 198434, lost_packets: 92197, bytes: 6799168 },
  },
});

const SOCKPERF = `sockperf: \x1b[2;35m== version #3.7-no.git == \x1b[0m
sockperf: [Valid Duration] RunTime=0.544 sec; SentMessages=31308; ReceivedMessages=31308
sockperf: Summary: Round trip is 17.319 usec
sockperf: \x1b[2;35mTotal 31308 observations\x1b[0m; each percentile contains 313.08 observations
sockperf: ---> <MAX> observation = 20638.486
sockperf: ---> percentile 99.999 = 20638.486
sockperf: ---> percentile 99.000 =   21.455
sockperf: ---> percentile 90.000 =   11.029
sockperf: ---> percentile 50.000 =    7.239
sockperf: ---> <MIN> observation =    6.628
`;

test('parseIperf3Tcp() reads the received sum in Gbit/s', () => {
  assert.equal(parseIperf3Tcp(TCP_JSON), 24.3639082168);
});

test('parseIperf3Tcp() skips text before the JSON document', () => {
  assert.equal(parseIperf3Tcp(`warning: something\n${TCP_JSON}`), 24.3639082168);
});

test("parseIperf3Tcp() reports iperf3's own error", () => {
  const text = JSON.stringify({
    end: {},
    error: 'unable to connect to server: Connection refused',
  });
  assert.throws(() => parseIperf3Tcp(text), /iperf3 failed: unable to connect/);
  assert.throws(() => parseIperf3Tcp(text), ToolOutputError);
});

test('parseIperf3Tcp() refuses output without JSON or without a received sum', () => {
  assert.throws(() => parseIperf3Tcp('iperf3: error'), /printed no JSON/);
  assert.throws(() => parseIperf3Tcp('{"end": {}}'), /sum_received/);
});

test('parseIperf3Udp() counts datagrams that arrived per receiver second', () => {
  const pps = parseIperf3Udp(UDP_JSON);
  assert.ok(Math.abs(pps - (198434 - 92197) / 1.014288) < 1e-6);
});

test('parseIperf3Udp() falls back to end.sum when there is no sum_received', () => {
  const text = JSON.stringify({ end: { sum: { seconds: 2, packets: 100, lost_packets: 20 } } });
  assert.equal(parseIperf3Udp(text), 40);
});

test('parseSockperf() reads p50 and p99 through colour escapes', () => {
  assert.deepEqual(parseSockperf(SOCKPERF), { p50Us: 7.239, p99Us: 21.455, observations: 31308 });
});

test("parseSockperf() names the missing percentile and sockperf's error", () => {
  assert.throws(
    () => parseSockperf('sockperf: ERROR: Failed to connect\n'),
    /percentile 50.000: sockperf: ERROR: Failed to connect/,
  );
});

test('parseCrr() divides connections by seconds and keeps the error count', () => {
  assert.deepEqual(parseCrr('{"connections": 5000, "errors": 2, "seconds": 2.0}\n'), {
    perSec: 2500,
    errors: 2,
  });
});

test('parseCrr() refuses a run without a completed connection or without a result', () => {
  assert.throws(() => parseCrr('{"connections": 0, "errors": 9, "seconds": 1}'), /9 errors/);
  assert.throws(() => parseCrr('Traceback ...'), /printed no result/);
});
