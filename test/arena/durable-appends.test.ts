// ArenaSet.appends and durableAppends: what the content rule of
// src/volume/write-batch.ts relies on. durableAppends is the append count
// at the start of the latest completed sync(), so a record appended while a
// sync runs is not counted durable by it (even when the sync ends after),
// a failed sync counts nothing, and an arena being sealed counts once its
// records are durable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultFileSystem } from '../../arena/fault-fs.js';
import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { keyOf, payloadOf, withTempDir, openSet } from './helpers.js';

test('durableAppends covers what was appended before a completed sync began, not what came during it', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    try {
      assert.equal(set.appends, 0);
      assert.equal(set.durableAppends, 0);
      for (let i = 0; i < 3; i++) set.append('content', 1, keyOf(i), payloadOf(i));
      set.append('log', 1, keyOf(3), payloadOf(3));
      assert.equal(set.appends, 4);
      assert.equal(set.durableAppends, 0, 'nothing is durable before a sync');
      const syncing = set.sync();
      // Appended while the sync runs: the sync handed its buffers to the file before these.
      set.append('content', 1, keyOf(4), payloadOf(4));
      set.append('content', 1, keyOf(5), payloadOf(5));
      await syncing;
      assert.equal(set.durableAppends, 4, 'the records appended during the sync are not counted durable by it');
      await set.sync();
      assert.equal(set.durableAppends, 6);
      // Never goes back: a sync that began earlier and ends later does not lower it.
      const early = set.sync();
      set.append('content', 1, keyOf(6), payloadOf(6));
      const late = set.sync();
      await Promise.all([late, early]);
      assert.equal(set.durableAppends, 7);
    } finally {
      await set.close();
    }
  });
});

test('durableAppends counts an arena being sealed once its records are durable', async () => {
  await withTempDir(async (dir) => {
    // Small arenas: the appends below start background seals.
    const set = await openSet(dir, { sealBytes: 4096 });
    try {
      for (let i = 0; i < 200; i++) set.append('content', 1, keyOf(i), payloadOf(i, 200));
      await set.sync();
      assert.equal(set.durableAppends, 200);
      await set.waitForSeals();
    } finally {
      await set.close();
    }
    const again = await openSet(dir);
    try {
      for (let i = 0; i < 200; i++) assert.ok(again.has(keyOf(i)), `record ${i} after reopening`);
    } finally {
      await again.close();
    }
  });
});

test('a failed sync counts nothing durable', async () => {
  await withTempDir(async (dir) => {
    const fs = new FaultFileSystem();
    const set = await openSet(dir, { fs });
    for (let i = 0; i < 5; i++) set.append('content', 1, keyOf(i), payloadOf(i));
    fs.failAt(fs.ops + 1, { ops: ['sync'] });
    await assert.rejects(set.sync(), (err: unknown) => isBazilError(err, ErrorCodes.IO));
    assert.equal(set.durableAppends, 0);
    // The arena refuses further use after a failed fsync; the set is closed without counting anything.
    await set.close().catch(() => undefined);
    assert.equal(set.durableAppends, 0);
  });
});
