// One stream's sealing spread over two seal workers (SealPool.sealSpread,
// WriteOptions.spreadSealing): the chunker stays in one worker, the chunks
// are sealed in both, and the result must be exactly what one thread makes
// (same objects, same manifest), across slab boundaries, holes, chunks
// carried from slab to slab, known chunks, pathological chunk sizes that
// outgrow the output slab, and a worker that dies mid-write.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCodes } from '../../errors/index.js';
import type { ContentStore, ContentStoreOptions, WriteResult } from '../../src/cas/content-store.js';
import { MiB, SMALL_CHUNKS, randomData, withStore } from './helpers.js';

async function readAll(store: ContentStore, root: WriteResult['manifestRoot']): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of store.stream(root)) parts.push(b);
  return Buffer.concat(parts);
}

/** Writes `data` in `piece`-byte writes (holes where `holes` says), spread or not. */
async function writeIn(store: ContentStore, data: Buffer, piece: number, spread: boolean, holes: Array<[number, number]> = []): Promise<WriteResult> {
  const writer = store.createWriter({ sync: false, spreadSealing: spread });
  let at = 0;
  for (const [start, length] of [...holes, [data.length, 0] as [number, number]]) {
    for (; at < start; at += piece) await writer.write(data.subarray(at, Math.min(start, at + piece)));
    if (length > 0) await writer.hole(length);
    at = start;
  }
  return writer.finish();
}

/** A file with zero runs (holes found by the chunker) and a repeated region (known chunks). */
function sample(length: number, seed: number): Buffer {
  const data = randomData(length, seed);
  data.fill(0, Math.floor(length / 5), Math.floor(length / 5) + 50_000);
  data.copy(data, Math.floor(length / 2), 0, Math.floor(length / 4));
  return data;
}

async function compare(data: Buffer, options: Partial<ContentStoreOptions>, piece: number, holes: Array<[number, number]> = []): Promise<void> {
  const inline = await withStore((store) => writeIn(store, data, piece, false, holes), { ...options, sealWorkers: 0 });
  await withStore(async (store, arenas) => {
    const spread = await writeIn(store, data, piece, true, holes);
    if (data.length > 2 * (options.sealSlabBytes ?? 2 * MiB)) {
      // Not vacuous: both workers had jobs, though a single stream's chunker lives in one.
      const pool = (store as unknown as { pool: { slots: Array<{ sent: number }> } }).pool;
      assert.ok(pool.slots.every((s) => s.sent > 0), `both workers sealed: ${pool.slots.map((s) => s.sent).join(', ')}`);
    }
    assert.deepEqual(spread.manifestRoot, inline.manifestRoot, 'the manifest one thread makes');
    assert.equal(spread.newBytes, inline.newBytes);
    assert.equal(spread.holeBytes, inline.holeBytes);
    let expected = data;
    for (const [start, length] of [...holes].reverse()) expected = Buffer.concat([expected.subarray(0, start), Buffer.alloc(length), expected.subarray(start)]);
    assert.ok((await readAll(store, spread.manifestRoot)).equals(expected), 'reads back');
    // The same content again is all known: nothing new is stored.
    const again = await writeIn(store, data, piece, true, holes);
    assert.deepEqual(again.manifestRoot, inline.manifestRoot);
    assert.equal(again.newBytes, 0);
    await arenas.sync();
    assert.deepEqual(arenas.verify(), []);
  }, { ...options, sealWorkers: 2 });
}

test('spread sealing over small slabs makes the manifest one thread makes: carried chunks, holes, known chunks', { timeout: 60_000 }, async () => {
  // 8 KiB slabs of 256 B–4 KiB chunks: most slabs start with a carried chunk and are spread.
  const data = sample(600_000, 1);
  for (const piece of [8192, 5000, 100_003]) {
    await compare(data, { chunking: SMALL_CHUNKS, sealSlabBytes: 8192, sealSlabs: 3 }, piece, [[123_456, 70_000], [400_000, 1]]);
  }
});

test('spread sealing at the default sizes makes the manifest one thread makes', { timeout: 60_000 }, async () => {
  await compare(sample(9 * MiB + 12_345, 2), {}, MiB);
});

test('chunks so small that a slab outgrows its output slab: sealed by the chunking worker alone, still the same manifest', { timeout: 60_000 }, async () => {
  // 64–256 B chunks: about 16,000 in a 2 MiB slab, past the output slab's room for tags.
  await compare(randomData(2 * MiB + 300_000, 3), { chunking: { minSize: 64, avgSize: 128, maxSize: 256 } }, MiB);
});

test('a seal worker that dies mid-write fails the write with a stable code, and the store refuses more', { timeout: 60_000 }, async () => {
  await withStore(async (store) => {
    const data = randomData(8 * MiB, 4);
    const writer = store.createWriter({ sync: false, spreadSealing: true });
    await writer.write(data.subarray(0, MiB));
    // The pool is private: reach its workers as a crash would, by ending them.
    const pool = (store as unknown as { pool: { slots: Array<{ worker: { terminate(): Promise<number> } }> } }).pool;
    // An idle worker is unref'ed: a timer keeps this process up until they have exited.
    const alive = setInterval(() => undefined, 1000);
    await Promise.all(pool.slots.map((s) => s.worker.terminate())).finally(() => clearInterval(alive));
    const err = await (async () => {
      await writer.write(data.subarray(MiB));
      return writer.finish();
    })().then(() => null, (e: unknown) => e as { code?: string });
    assert.ok(err !== null, 'the write fails');
    assert.equal(err.code, ErrorCodes.INTERNAL);
    await assert.rejects(store.writeBuffer(data, { spreadSealing: true }), (e: { code?: string }) => e.code === ErrorCodes.INTERNAL);
  }, { sealWorkers: 2, sealSlabBytes: 256 * 1024 });
});
