// The read-ahead worker reading chunks itself (docs/mount.md, "Round 4:
// reads"): it preads each chunk from its arena file on its own thread and
// decrypts it in place, skipping the arena's record checksum since the GCM
// tag authenticates what it read. These check that the reader still gets
// exactly the file, that the worker really did the preads, that damage the
// record checksum would have caught still fails the read with the same
// error as without read-ahead, and that the JavaScript fallback (no addon)
// does the same. Real volumes in a temporary home, reopened so reads come
// from the arena files; nothing is mocked.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Volume } from '../../src/volume/volume.js';
import { readAheadCounts } from '../../src/volume/read-ahead.js';
import { arenasOf, chunkAt, damageChunk, readAt, readPastDamage, withBigFile } from '../lib/read-ahead-fixture.js';

const run = promisify(execFile);
const SLOW = process.env.BAZIL_SLOW === '1';
const SIZE = (SLOW ? 64 : 6) * 1024 * 1024;
const REQUEST = 128 * 1024;
const CHILD = fileURLToPath(new URL('./read-ahead-child.js', import.meta.url));

test('after a reopen the worker preads the chunks itself and the reader gets the file exactly', async () => {
  await withBigFile(SIZE, async (homeDir, data) => {
    const v = await Volume.open(homeDir, 'v');
    try {
      const before = readAheadCounts();
      // Passes until the worker has done its share: it starts with the
      // first sequential read, and on a loaded machine may take a whole
      // pass to come up (reads never wait for it). Every pass must read the
      // file exactly.
      for (let pass = 0; pass < 10 && readAheadCounts().preads - before.preads < 20; pass++) {
        const h = await v.open('/big', { read: true });
        try {
          for (let at = 0; at < SIZE; at += REQUEST) {
            assert.ok((await readAt(h, at, REQUEST)).equals(data.subarray(at, at + REQUEST)), `bytes at ${at}`);
          }
          // Requests that straddle chunks and end short, over chunks read ahead.
          for (let at = 3 * REQUEST + 4321; at < SIZE; at += REQUEST + 777) {
            const len = Math.min(REQUEST + 999, SIZE - at);
            assert.ok((await readAt(h, at, len)).equals(data.subarray(at, at + len)), `bytes at ${at}+${len}`);
          }
        } finally {
          await h.release();
        }
      }
      const after = readAheadCounts();
      // Not vacuous: a 6 MiB file has about 96 chunks; the first few of a pass are the reader's own.
      assert.ok(after.preads - before.preads >= 20, `chunks the worker preaded: ${after.preads - before.preads}`);
      assert.ok(after.served - before.served >= 20, `reads served from its slots: ${after.served - before.served}`);
      assert.equal(after.refused, before.refused);
    } finally {
      await v.close();
    }
  });
});

test('a record damaged while the volume is open fails its read with BAZIL_CORRUPT_RECORD, as without read-ahead', async () => {
  await withBigFile(SIZE, async (homeDir, data) => {
    const arenas = arenasOf(homeDir);
    const v = await Volume.open(homeDir, 'v');
    try {
      // Damaged after the open (a failing disk under a mounted volume), so
      // the open's recovery scan does not cut it away as a torn tail; the
      // checksum left as it was: the arena's own read catches it, and the
      // worker, which skips the checksum, must still not serve it.
      const victim = await chunkAt(v, SIZE / 2);
      await damageChunk(arenas, victim.id, 0.25, false);
      const h = await v.open('/big', { read: true });
      try {
        await readPastDamage(h, data, victim.start, REQUEST, 'BAZIL_CORRUPT_RECORD');
      } finally {
        await h.release();
      }
    } finally {
      await v.close();
    }
  });
});

test('without the addon (BAZIL_NO_NATIVE=1) the worker preads and opens chunks with node:crypto, and the bytes are the same', async () => {
  await withBigFile(SIZE, async (homeDir, data) => {
    const expected = createHash('sha256').update(data).digest('hex');
    for (const noNative of ['1', '0']) {
      const { stdout } = await run(process.execPath, [CHILD, homeDir], { env: { ...process.env, BAZIL_NO_NATIVE: noNative } });
      const got = JSON.parse(stdout) as { sha256: string[]; counts: { preads: number; refused: number } };
      assert.deepEqual(got.sha256, [expected, expected], `content with BAZIL_NO_NATIVE=${noNative}`);
      assert.ok(got.counts.preads >= 20, `chunks the worker preaded with BAZIL_NO_NATIVE=${noNative}: ${got.counts.preads}`);
      assert.equal(got.counts.refused, 0);
    }
  });
});
