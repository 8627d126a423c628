// The seal workers' slabs (src/cas/seal-pool.ts): writers share a few
// slabs, wait for one when all are taken, give them back when they fail
// part-way, and a chunk the worker remembers but the store does not hold
// is sealed by the writer itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCodes } from '../../errors/index.js';
import type { ContentStore } from '../../src/cas/content-store.js';
import { MiB, randomData, withStore } from './helpers.js';

async function readAll(store: ContentStore, root: Parameters<ContentStore['stream']>[0]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of store.stream(root)) parts.push(b);
  return Buffer.concat(parts);
}

function* pieces(data: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

/** A source that yields `data` in pieces, then fails. */
async function* failingAfter(data: Buffer, piece: number): AsyncGenerator<Buffer> {
  yield* pieces(data, piece);
  throw Object.assign(new Error('the source broke'), { code: 'EIO' });
}

test('many writers share two slabs: each waits its turn, none deadlocks, every result equals the inline one', { timeout: 60_000 }, async () => {
  const files = Array.from({ length: 6 }, (_, i) => Buffer.concat([randomData((3 + i) * MiB, 100 + i), Buffer.alloc(300 * 1024), randomData(123_457, 200 + i)]));
  const inline = await withStore((store) => Promise.all(files.map((f) => store.writeBuffer(f, { sync: false }))));
  await withStore(async (store, arenas) => {
    const pooled = await Promise.all(files.map((f, i) => store.writeStream(pieces(f, (i + 1) * 700_001), { sync: false })));
    for (let i = 0; i < files.length; i++) {
      assert.deepEqual(pooled[i]!.manifestRoot, inline[i]!.manifestRoot, `file ${i}`);
      assert.equal(pooled[i]!.holeBytes, inline[i]!.holeBytes);
      assert.ok((await readAll(store, pooled[i]!.manifestRoot)).equals(files[i]!));
    }
    await arenas.sync();
    assert.deepEqual(arenas.verify(), []);
  }, { sealWorkers: 1, sealSlabs: 2 });
});

test('writers that fail part-way give their slabs back, and a chunk sealed for one of them is still stored by the next', { timeout: 60_000 }, async () => {
  const data = randomData(9 * MiB, 7);
  await withStore(async (store, arenas) => {
    // Each failed write had a slab sealed by the worker and never appended
    // (the last one sent before its source broke): the worker now knows
    // those chunks, the store does not hold them.
    for (let i = 0; i < 5; i++) {
      await assert.rejects(store.writeStream(failingAfter(data, MiB)), /the source broke/);
    }
    // With two slabs, a leaked one would leave these waiting forever.
    const results = await Promise.all([0, 1, 2].map(() => store.writeBuffer(data)));
    for (const r of results) {
      assert.ok((await readAll(store, r.manifestRoot)).equals(data));
      assert.deepEqual(r.manifestRoot, results[0]!.manifestRoot);
    }
    // Only the last MiB was never sent to the worker: the rest of what they
    // stored are chunks the worker answered as known.
    assert.ok(results.reduce((n, r) => n + r.newBytes, 0) > 2 * MiB, 'the known chunks were sealed and stored');
    assert.deepEqual(arenas.verify(), []);
  }, { sealWorkers: 1, sealSlabs: 2 });
  const inline = await withStore((store) => store.writeBuffer(data));
  await withStore(async (store) => {
    await assert.rejects(store.writeStream(failingAfter(data, 4 * MiB)), /the source broke/);
    const r = await store.writeBuffer(data);
    assert.deepEqual(r.manifestRoot, inline.manifestRoot);
    // What the failed write appended before its source broke is not stored twice.
    assert.ok(r.newBytes <= inline.newBytes);
    assert.ok((await readAll(store, r.manifestRoot)).equals(data));
  }, { sealWorkers: 1 });
});

test('a closed store refuses writers, and a write waiting for a slab fails instead of hanging', { timeout: 30_000 }, async () => {
  await withStore(async (store) => {
    const data = randomData(6 * MiB, 9);
    const first = store.createWriter();
    await first.write(data);
    // The one slab is held by `first`: this write waits for it.
    const second = store.writeBuffer(data).then(() => null, (err: unknown) => err as { code?: string });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await store.close();
    assert.equal((await second)?.code, ErrorCodes.CLOSED);
    assert.throws(() => store.createWriter(), (err: { code?: string }) => err.code === ErrorCodes.CLOSED);
  }, { sealWorkers: 1, sealSlabs: 1 });
});

test('a seal worker reads a local file into the slab itself: a file that ended is not read again, and a read error is reported', { timeout: 60_000 }, async () => {
  const { SealPool } = await import('../../src/cas/seal-pool.js');
  const { gearTable } = await import('../../src/cas/gear.js');
  const { chunkerParams } = await import('../../src/cas/chunker.js');
  const { appendFileSync, closeSync, mkdtempSync, openSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'bazil-seal-read-'));
  const pool = new SealPool({ chunkKey: Buffer.alloc(32, 1), gear: gearTable(Buffer.alloc(32, 2)), chunking: chunkerParams(), workers: 1, slabs: 2, slabBytes: 256 * 1024 });
  const fds: number[] = [];
  try {
    const path = join(dir, 'f');
    const data = randomData(300 * 1024, 5);
    writeFileSync(path, data);
    const fd = openSync(path, 'r');
    fds.push(fd);
    const stream = pool.openStream();
    // The first slab's range is all there; the second asks past the end (the file shrank since its size was taken).
    let slab = await pool.take();
    const first = await pool.seal(stream, slab, 256 * 1024, false, { fd, at: 0, position: 0, length: 256 * 1024 });
    assert.equal(first.read, 256 * 1024);
    assert.ok(slab.input.subarray(0, 256 * 1024).equals(data.subarray(0, 256 * 1024)), 'the worker read the bytes into the slab');
    pool.release(slab);
    slab = await pool.take();
    const second = await pool.seal(stream, slab, 256 * 1024, false, { fd, at: 0, position: 256 * 1024, length: 256 * 1024 });
    assert.equal(second.read, data.length - 256 * 1024);
    pool.release(slab);
    // The file grows again: the stream's later ranges must read nothing, or its content would have a gap.
    appendFileSync(path, randomData(600 * 1024, 6));
    slab = await pool.take();
    const third = await pool.seal(stream, slab, 256 * 1024, true, { fd, at: 0, position: 512 * 1024, length: 256 * 1024 });
    assert.equal(third.read, 0);
    const chunked = [...first.items, ...second.items, ...third.items].reduce((n, x) => n + Math.abs(x), 0);
    assert.equal(chunked, data.length, 'only the bytes read were chunked');
    pool.release(slab);

    // A descriptor that cannot be read (a directory): the reply says why, nothing is chunked, the pool goes on.
    const dirFd = openSync(dir, 'r');
    fds.push(dirFd);
    slab = await pool.take();
    const failed = await pool.seal(pool.openStream(), slab, 1000, true, { fd: dirFd, at: 0, position: 0, length: 1000 });
    assert.equal(failed.readError?.code, 'EISDIR');
    assert.equal(failed.items.length, 0);
    pool.release(slab);
    slab = await pool.take();
    const after = await pool.seal(pool.openStream(), slab, 0, true, { fd, at: 0, position: 0, length: 4096 });
    assert.equal(after.read, 4096);
    pool.release(slab);
  } finally {
    for (const fd of fds) closeSync(fd);
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
