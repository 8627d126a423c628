// The seal workers are booted when a file first holds enough dirty pages to
// spill through them (OpenFileTable.bound → ContentStore.warmSealPool), not
// by small files, and a big write through a handle then spreads its
// sealing over them and reads back whole, before and after a reopen.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, createCipheriv } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { Volume } from '../../src/volume/volume.js';

const MiB = 1024 * 1024;

function randomData(length: number, seed: number): Buffer {
  const key = createHash('sha256').update(`warm ${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

/** The volume's seal pool, if started: private, read as a test may. */
function poolOf(volume: Volume): { slots: Array<{ sent: number }> } | null {
  return (volume as unknown as { content: { pool: { slots: Array<{ sent: number }> } | null } }).content.pool;
}

// One core has no seal workers (sealing stays on the calling thread).
test('small files never boot the seal workers; a big write boots them before its first spill and spreads over both', { timeout: 60_000, skip: availableParallelism() < 2 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-seal-warm-test-'));
  try {
    const homeDir = join(dir, 'home');
    const { home } = await initHome(homeDir);
    await createVolume(home, 'v').finally(() => home.close());
    const big = randomData(20 * MiB + 4321, 1);
    let volume = await Volume.open(homeDir, 'v');
    try {
      for (let i = 0; i < 20; i++) {
        const h = await volume.create(`/small-${i}`, { write: true });
        await h.write(0, randomData(100 * 1024, 100 + i));
        await h.release();
      }
      assert.equal(poolOf(volume), null, 'no seal worker for small files');
      const h = await volume.create('/big', { read: true, write: true });
      await h.write(0, big.subarray(0, 300 * 1024));
      assert.notEqual(poolOf(volume), null, 'booted at 256 KiB of dirty pages, ahead of any spill');
      assert.ok(poolOf(volume)!.slots.every((s) => s.sent === 0), 'and nothing sent to it yet');
      for (let at = 300 * 1024; at < big.length; at += 128 * 1024) await h.write(at, big.subarray(at, Math.min(big.length, at + 128 * 1024)));
      await h.fsync();
      const slots = poolOf(volume)!.slots;
      if (slots.length > 1) assert.ok(slots.every((s) => s.sent > 0), `both workers sealed the one file: ${slots.map((s) => s.sent).join(', ')}`);
      assert.ok((await h.read(0, big.length)).equals(big));
      await h.release();
    } finally {
      await volume.close();
    }
    volume = await Volume.open(homeDir, 'v');
    try {
      const h = await volume.open('/big', { read: true });
      assert.ok((await h.read(0, big.length)).equals(big), 'reads back after a reopen');
      await h.release();
    } finally {
      await volume.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
