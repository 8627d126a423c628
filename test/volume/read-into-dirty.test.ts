// readInto / readIntoNow no longer clear the caller's buffer before filling
// it (the mount hands them libfuse's buffers, reused from request to
// request): every byte of the answer must be written by the layers below,
// zeros for holes, truncated tails and ranges past what was committed. Each
// read here goes into a buffer full of 0xAA and is compared with a model of
// the file. Real volumes in a temporary home; nothing is mocked.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { Volume, type FileHandle } from '../../src/volume/volume.js';

const KIB = 1024;

async function withHome(fn: (homeDir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-read-dirty-test-'));
  try {
    const homeDir = join(dir, 'home');
    const { home } = await initHome(homeDir);
    await createVolume(home, 'v').finally(() => home.close());
    await fn(homeDir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function withVolume(homeDir: string, fn: (volume: Volume) => Promise<void>): Promise<void> {
  const volume = await Volume.open(homeDir, 'v');
  try {
    await fn(volume);
  } finally {
    await volume.close();
  }
}

/** Reads [offset, offset + length) into a dirty buffer, synchronously, and checks it against `model`. */
function checkRead(h: FileHandle, model: Buffer, offset: number, length: number, what: string): void {
  const out = Buffer.alloc(length, 0xaa);
  const n = h.readIntoNow(out, offset);
  const want = model.subarray(Math.min(offset, model.length), Math.min(model.length, offset + length));
  assert.equal(n, want.length, `${what}: byte count at ${offset}+${length}`);
  assert.ok(out.subarray(0, n).equals(want), `${what}: bytes at ${offset}+${length}`);
}

/** Ranges that cross every boundary a file of `size` bytes is likely to have. */
function ranges(size: number): Array<[number, number]> {
  const r: Array<[number, number]> = [];
  for (let at = 0; at < size + 64 * KIB; at += 40 * KIB + 123) r.push([at, 128 * KIB]);
  r.push([0, size + 5000], [size - 1, 10], [size, 10], [size + 10, 10]);
  return r;
}

test('truncated tails, grown files and live pages read as the model into a dirty buffer', async () => {
  await withHome(async (homeDir) => {
    await withVolume(homeDir, async (v) => {
      const h = await v.create('/f', { mode: 0o644, read: true, write: true });
      const model = Buffer.alloc(600 * KIB);
      const data = randomBytes(300 * KIB);
      await h.write(0, data);
      data.copy(model, 0);
      await h.flush();
      // Cut (the committed base stays valid only to 100 KiB), then grow: zeros past the cut.
      await h.truncate(100 * KIB);
      model.fill(0, 100 * KIB);
      await h.truncate(600 * KIB);
      const page = randomBytes(4 * KIB + 17);
      await h.write(500 * KIB + 3, page);
      page.copy(model, 500 * KIB + 3);
      for (const [o, l] of ranges(model.length)) checkRead(h, model, o, l, 'unflushed');
      // While the flush is under way (pages frozen), and after it.
      const flushing = h.flush();
      let settled = false;
      void flushing.then(() => (settled = true), () => (settled = true));
      for (let i = 0; i < 50 && !settled; i++) {
        checkRead(h, model, 90 * KIB, 128 * KIB, `flushing, step ${i}`);
        checkRead(h, model, 480 * KIB, 128 * KIB, `flushing, step ${i}`);
        await tick();
      }
      await flushing;
      for (const [o, l] of ranges(model.length)) checkRead(h, model, o, l, 'flushed');
      await h.release();
    });
  });
});

test('a sparse file read back after a reopen: its holes read as zeros into a dirty buffer, read ahead or not', async () => {
  await withHome(async (homeDir) => {
    const model = Buffer.alloc(3 * 1024 * KIB);
    await withVolume(homeDir, async (v) => {
      const h = await v.create('/sparse', { mode: 0o644, read: true, write: true });
      const a = randomBytes(200 * KIB);
      const b = randomBytes(700 * KIB);
      await h.write(0, a);
      await h.write(2 * 1024 * KIB, b);
      a.copy(model, 0);
      b.copy(model, 2 * 1024 * KIB);
      await h.truncate(model.length);
      await h.release();
    });
    await withVolume(homeDir, async (v) => {
      const h = await v.open('/sparse', { read: true });
      // Sequentially with one reused buffer, as the mount does (read-ahead starts on the second read).
      const out = Buffer.alloc(128 * KIB, 0xaa);
      for (let at = 0; at < model.length; at += out.length) {
        out.fill(0xaa);
        const n = h.readIntoNow(out, at);
        assert.equal(n, Math.min(out.length, model.length - at));
        assert.ok(out.subarray(0, n).equals(model.subarray(at, at + n)), `sequential read at ${at}`);
        // Let the deferred read-ahead run between requests.
        await tick();
      }
      for (const [o, l] of ranges(model.length)) checkRead(h, model, o, l, 'random');
      // The async form answers the same.
      const out2 = Buffer.alloc(64 * KIB, 0x55);
      assert.equal(await h.readInto(out2, 150 * KIB), 64 * KIB);
      assert.ok(out2.equals(model.subarray(150 * KIB, 214 * KIB)));
      await h.release();
    });
  });
});

test('readIntoNow refuses bad calls synchronously, with the errno readInto rejects with', async () => {
  await withHome(async (homeDir) => {
    await withVolume(homeDir, async (v) => {
      const w = await v.create('/w', { mode: 0o644, write: true });
      await w.write(0, Buffer.from('hello'));
      const errnoOf = (fn: () => unknown): string | undefined => {
        try {
          fn();
        } catch (err) {
          return (err as { data?: { errno?: string } }).data?.errno;
        }
        return 'no error';
      };
      assert.equal(errnoOf(() => w.readIntoNow(Buffer.alloc(4), 0)), 'EBADF');
      await assert.rejects(w.readInto(Buffer.alloc(4), 0), (e: { data?: { errno?: string } }) => e.data?.errno === 'EBADF');
      const r = await v.open('/w', { read: true });
      assert.equal(errnoOf(() => r.readIntoNow(Buffer.alloc(4), -1)), 'EINVAL');
      const aborted = AbortSignal.abort();
      assert.notEqual(errnoOf(() => r.readIntoNow(Buffer.alloc(4), 0, aborted)), 'no error');
      // Past the end: nothing, and the buffer is left alone.
      const out = Buffer.alloc(4, 0xaa);
      assert.equal(r.readIntoNow(out, 100), 0);
      assert.ok(out.equals(Buffer.alloc(4, 0xaa)));
      await r.release();
      assert.equal(errnoOf(() => r.readIntoNow(Buffer.alloc(4), 0)), 'EBADF');
      await w.release();
    });
  });
});
