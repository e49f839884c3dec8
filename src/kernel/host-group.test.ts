import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureGroup, lookupGroup } from './host-group.js';

test('lookupGroup() finds a group’s GID by exact name', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cnm-group-'));
  try {
    const file = join(dir, 'group');
    await writeFile(file, 'root:x:0:\ncnmx:x:998:\ncnm:x:997:alice,bob\nbroken:x:\n');
    assert.equal(lookupGroup('cnm', file), 997);
    assert.equal(lookupGroup('cnmx', file), 998);
    assert.equal(lookupGroup('cn', file), undefined);
    assert.equal(lookupGroup('broken', file), undefined);
    assert.equal(lookupGroup('cnm', join(dir, 'missing')), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('ensureGroup() takes a numeric GID as is and refuses odd names before any spawn', async () => {
  assert.deepEqual(await ensureGroup('1234'), { name: '1234', gid: 1234, created: false });
  for (const bad of ['-rf', 'a b', 'Root', 'x/y', '', 'a'.repeat(40)]) {
    await assert.rejects(ensureGroup(bad), /Invalid group/, bad);
  }
});
