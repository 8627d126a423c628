// Read-ahead of open files (src/volume/read-ahead.ts): sequential reads
// through a handle are served from chunks opened ahead in a worker. These
// check that what they return is exactly the file's content whatever the
// reader does (in order, slightly out of order as the kernel's concurrent
// reads come, jumping, racing writes through another handle), and that a
// damaged chunk still fails the read with the same error as without
// read-ahead. Real volumes in a temporary home, reopened so reads come from
// the content store; nothing is mocked.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Volume } from '../../src/volume/volume.js';
import { readAheadCounts } from '../../src/volume/read-ahead.js';
import { arenasOf, chunkAt, damageChunk, readAt, readPastDamage, withBigFile } from '../lib/read-ahead-fixture.js';

const SLOW = process.env.BAZIL_SLOW === '1';
const SIZE = (SLOW ? 64 : 6) * 1024 * 1024;
const REQUEST = 128 * 1024;

async function withVolume<T>(homeDir: string, fn: (v: Volume) => Promise<T>): Promise<T> {
  const v = await Volume.open(homeDir, 'v');
  try {
    return await fn(v);
  } finally {
    await v.close();
  }
}

/**
 * Reads [offset, offset + length) through the handle as FUSE does: into a
 * given buffer, and a while after the last read (a kernel round trip), in
 * which the worker can get ahead of the reader.
 */
test('sequential reads return the file exactly, in order and with neighbouring requests swapped', async () => {
  await withBigFile(SIZE, async (homeDir, data) => {
    await withVolume(homeDir, async (v) => {
      const h = await v.open('/big', { read: true });
      const before = readAheadCounts();
      try {
        for (let at = 0; at < SIZE; at += REQUEST) {
          assert.ok((await readAt(h, at, REQUEST)).equals(data.subarray(at, at + REQUEST)), `bytes at ${at}`);
        }

        // Past the end: short, then nothing.
        assert.equal((await readAt(h, SIZE - 100, REQUEST)).length, 100);
        assert.equal((await readAt(h, SIZE, REQUEST)).length, 0);
      } finally {
        await h.release();
      }
      // Two requests in flight at once, answered in either order (the kernel's async reads).
      const g = await v.open('/big', { read: true });
      try {
        for (let at = 0; at < SIZE; at += 2 * REQUEST) {
          const [a, b] = await Promise.all([readAt(g, at + REQUEST, REQUEST), readAt(g, at, REQUEST)]);
          assert.ok(b.equals(data.subarray(at, at + REQUEST)), `bytes at ${at}`);
          assert.ok(a.equals(data.subarray(at + REQUEST, at + 2 * REQUEST)), `bytes at ${at + REQUEST}`);
        }
      } finally {
        await g.release();
      }
      // Not vacuous: chunks came from the worker (a 6 MiB file has about 96
      // a pass; a read does not wait for a worker that is behind, and the
      // worker starts with the first pass, so not all).
      const served = readAheadCounts().served - before.served;
      assert.ok(served >= 20, `chunks served from read-ahead: ${served}`);
    });
  });
});

test('jumps, odd sizes and two sequential readers of one file read the right bytes', async () => {
  await withBigFile(SIZE, async (homeDir, data) => {
    await withVolume(homeDir, async (v) => {
      const a = await v.open('/big', { read: true });
      const b = await v.open('/big', { read: true });
      try {
        let seed = 7;
        const next = (n: number): number => {
          seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
          return seed % n;
        };
        let pa = 0;
        let pb = Math.floor(SIZE / 2);
        for (let i = 0; i < 200; i++) {
          const len = 1 + next(3 * REQUEST);
          // Mostly sequential, with a jump now and then.
          if (next(10) === 0) pa = next(SIZE);
          const got = await readAt(a, pa, len);
          assert.ok(got.equals(data.subarray(pa, pa + len)), `a at ${pa}+${len}`);
          pa = Math.min(SIZE, pa + len);
          const gotB = await readAt(b, pb, REQUEST);
          assert.ok(gotB.equals(data.subarray(pb, pb + REQUEST)), `b at ${pb}`);
          pb = (pb + REQUEST) % SIZE;
        }
      } finally {
        await a.release();
        await b.release();
      }
    });
  });
});

test('a write through another handle is read back at once, even over chunks read ahead', async () => {
  await withBigFile(SIZE, async (homeDir, data) => {
    await withVolume(homeDir, async (v) => {
      const r = await v.open('/big', { read: true });
      const w = await v.open('/big', { write: true });
      const expect = Buffer.from(data);
      try {
        for (let at = 0; at < SIZE; at += REQUEST) {
          if (at % (8 * REQUEST) === 2 * REQUEST) {
            // Just ahead of the reader, where read-ahead has already opened the chunks.
            const patch = randomBytes(70_000);
            const where = at + REQUEST + 1000;
            await w.write(where, patch);
            patch.copy(expect, where);
          }
          if (at === 4 * REQUEST) {
            await w.truncate(SIZE - 3 * REQUEST);
            expect.fill(0, SIZE - 3 * REQUEST);
            await w.truncate(SIZE);
          }
          const got = await readAt(r, at, REQUEST);
          assert.ok(got.equals(expect.subarray(at, at + REQUEST)), `bytes at ${at}`);
        }
        await w.flush();
        // Read again after the flush made the writes the new base.
        for (let at = 0; at < SIZE; at += REQUEST) {
          assert.ok((await readAt(r, at, REQUEST)).equals(expect.subarray(at, at + REQUEST)), `bytes at ${at} after the flush`);
        }
      } finally {
        await w.release();
        await r.release();
      }
    });
  });
});

test('a released handle fails a read with EBADF, and a closed volume with its own error', async () => {
  await withBigFile(SIZE, async (homeDir) => {
    const v = await Volume.open(homeDir, 'v');
    const h = await v.open('/big', { read: true });
    await readAt(h, 0, REQUEST);
    const pending = readAt(h, REQUEST, REQUEST);
    await h.release();
    // The read started before the release may finish or fail, but never with wrong bytes or a crash.
    await pending.then(() => undefined, () => undefined);
    await assert.rejects(readAt(h, 2 * REQUEST, REQUEST), (err: unknown) => (err as { data?: { errno?: string } }).data?.errno === 'EBADF');
    const g = await v.open('/big', { read: true });
    await readAt(g, 0, REQUEST);
    await v.close();
    await assert.rejects(readAt(g, REQUEST, REQUEST));
  });
});

test('a damaged chunk ahead of a sequential reader fails its read as without read-ahead; the bytes before it are right', async () => {
  await withBigFile(SIZE, async (homeDir, data) => {
    // The chunk holding the file's middle byte.
    const victim = await withVolume(homeDir, (v) => chunkAt(v, SIZE / 2));
    // The frame checksum recomputed: only the object's tag can catch it.
    await damageChunk(arenasOf(homeDir), victim.id, 0.5, true);
    await withVolume(homeDir, async (v) => {
      const h = await v.open('/big', { read: true });
      try {
        await readPastDamage(h, data, victim.start, REQUEST, 'BAZIL_CORRUPT_OBJECT');
      } finally {
        await h.release();
      }
    });
  });
});
