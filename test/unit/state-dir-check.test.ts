// Tests of check's state_dir probe and makeDirs' clean-up: concurrent checks (and an agent) never remove a directory under one another's files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkStateDir } from '../../src/config/file-checks.js';
import { makeDirs, removeCreatedDirs } from '../../src/state/make-dirs.js';

test('checks of the same missing state_dir run at once all pass and leave no probe file', { timeout: 30_000 }, async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'p2m-statedir-'));
  try {
    for (let round = 0; round < 10; round++) {
      const dir = path.join(root, `r${round}`, 'state');
      const results = await Promise.all(Array.from({ length: 12 }, () => checkStateDir(dir)));
      assert.deepEqual(results, Array(12).fill(null), `round ${round}`);
      if (existsSync(dir)) assert.deepEqual(await readdir(dir), [], 'no probe left');
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a directory makeDirs created is removed only while empty: files another process wrote there stay', { timeout: 10_000 }, async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'p2m-makedirs-'));
  try {
    const dir = path.join(root, 'a', 'b');
    const created = await makeDirs(dir);
    assert.deepEqual(created, [path.join(root, 'a'), dir]);
    await writeFile(path.join(dir, 'mailbox.json'), '{}'); // e.g. the agent, started meanwhile
    await removeCreatedDirs(created);
    assert.ok(existsSync(path.join(dir, 'mailbox.json')), 'the other process\'s file is kept');
    await rm(path.join(dir, 'mailbox.json'));
    await removeCreatedDirs(created);
    assert.equal(existsSync(path.join(root, 'a')), false, 'empty created directories removed, innermost first');
    assert.deepEqual(await makeDirs(root), [], 'an existing directory: nothing created');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
