import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { stderrProgress } from './bench.js';

function sink(isTTY: boolean): { stream: PassThrough & { isTTY?: boolean }; text: () => string } {
  const stream: PassThrough & { isTTY?: boolean } = new PassThrough();
  stream.isTTY = isTTY;
  let text = '';
  stream.setEncoding('utf8').on('data', (d: string) => (text += d));
  return { stream, text: () => text };
}

test('stderrProgress() writes one line per step when stderr is not a terminal', () => {
  const s = sink(false);
  const p = stderrProgress(s.stream);
  p.step(0, 20, 'rep 1/1 host cnm rr');
  p.note('skipping overlay: no driver');
  p.step(1, 20, 'rep 1/1 host ceiling rr');
  p.end();
  assert.equal(
    s.text(),
    '[ 0/20] rep 1/1 host cnm rr\nskipping overlay: no driver\n[ 1/20] rep 1/1 host ceiling rr\n',
  );
});

test('stderrProgress() rewrites one line on a terminal and clears it for notes', () => {
  const s = sink(true);
  const p = stderrProgress(s.stream);
  p.step(0, 2, 'a');
  p.note('n');
  p.step(1, 2, 'b');
  p.end();
  assert.equal(s.text(), '\r\x1b[K[0/2] a\r\x1b[Kn\n\r\x1b[K[1/2] b\n');
});
