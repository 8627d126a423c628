// spliceAppend (src/cas/append-splice.ts) must build exactly the manifest
// spliceManifest builds for an append, through the seal workers or without
// them, and must decline everything that is not an append.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { spliceAppend, type AppendSpliceInput } from '../../src/cas/append-splice.js';
import { spliceManifest, ManifestReader, type ByteRange } from '../../src/cas/splice.js';
import { encodeManifest, type Manifest } from '../../src/cas/manifest.js';
import type { ContentStore } from '../../src/cas/content-store.js';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { SLOW, SMALL_CHUNKS, randomData, withStore } from './helpers.js';

interface Case {
  input: AppendSpliceInput;
  content: Buffer;
}

/**
 * A base of `length` bytes (with a zero run, so its manifest has a hole),
 * cut to `valid`, then written at `writes` (each at or past the cut), all
 * as the SpliceInput an open file would hand over.
 */
async function appendCase(store: ContentStore, length: number, seed: number, valid: number, writes: { offset: number; length: number; zero: boolean }[]): Promise<Case> {
  const base = randomData(length, seed);
  base.fill(0, Math.floor(length / 3), Math.floor(length / 3) + Math.min(9000, Math.floor(length / 4)));
  const old = await store.writeBuffer(base, { sync: false });
  let content = Buffer.from(base.subarray(0, valid));
  const changed: ByteRange[] = [];
  for (const [i, w] of writes.entries()) {
    const end = w.offset + w.length;
    if (end > content.length) content = Buffer.concat([content, Buffer.alloc(end - content.length)]);
    (w.zero ? Buffer.alloc(w.length) : randomData(w.length, seed + i + 1)).copy(content, w.offset);
    changed.push({ start: w.offset, end });
  }
  const merged = mergeRanges(changed);
  const frozen = Buffer.from(content);
  return {
    content: frozen,
    input: {
      base: old.manifestRoot, baseValid: valid, size: frozen.length, changed: merged,
      read: (start, n) => Buffer.from(frozen.subarray(start, start + n)),
      readInto: (start, out) => void frozen.copy(out, 0, start, start + out.length),
    },
  };
}

function mergeRanges(ranges: ByteRange[]): ByteRange[] {
  const out: { start: number; end: number }[] = [];
  for (const r of [...ranges].sort((a, b) => a.start - b.start)) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ start: r.start, end: r.end });
  }
  return out;
}

function readAll(store: ContentStore, m: Manifest | null, size: number): Buffer {
  const out = Buffer.alloc(size);
  new ManifestReader(store).readInto(m, 0, size, out, 0);
  return out;
}

function same(a: Manifest | null, b: Manifest | null): boolean {
  return (a === null) === (b === null) && (a === null || encodeManifest(a).equals(encodeManifest(b!)));
}

const appendArb = fc.record({
  length: fc.integer({ min: 0, max: 60_000 }),
  seed: fc.nat(1000),
  cutBy: fc.integer({ min: 0, max: 5000 }),
  writes: fc.array(fc.record({ gap: fc.integer({ min: 0, max: 20_000 }), length: fc.integer({ min: 1, max: 30_000 }), zero: fc.boolean() }), { minLength: 1, maxLength: 4 }),
});

for (const workers of [0, 1]) {
  test(`an append spliced ${workers === 0 ? 'in the calling thread, read piece by piece' : 'through a seal worker, read into one buffer'} is the manifest spliceManifest builds`, async () => {
    await withStore(async (store) => {
      await fc.assert(fc.asyncProperty(appendArb, async ({ length, seed, cutBy, writes }) => {
        const valid = Math.max(0, length - cutBy);
        // Writes one after another from the cut on, with gaps (holes) between them.
        let at = valid;
        const placed = writes.map((w) => {
          const offset = at + w.gap;
          at = offset + w.length;
          return { offset, length: w.length, zero: w.zero };
        });
        const c = await appendCase(store, length, seed, valid, placed);
        const expected = spliceManifest(store, c.input);
        // Without a worker, the piece-by-piece read; with one, the read into one reused buffer.
        const got = await spliceAppend(store, workers === 0 ? { ...c.input, readInto: undefined } : c.input, 0);
        assert.ok(got !== null, 'an append is taken');
        assert.equal(got.size, c.content.length);
        assert.ok(same(got.manifest, expected.manifest), 'the same manifest as spliceManifest');
        assert.ok(readAll(store, got.manifest, got.size).equals(c.content), 'reads back as the new content');
      }), { numRuns: SLOW ? 200 : 25 });
    }, { chunking: SMALL_CHUNKS, maxNodeEntries: 8, sealWorkers: workers });
  });
}

test('spliceAppend declines edits below the old end and appends smaller than its threshold', async () => {
  await withStore(async (store) => {
    const edit = await appendCase(store, 50_000, 7, 50_000, [{ offset: 1000, length: 10, zero: false }]);
    assert.equal(await spliceAppend(store, edit.input, 0), null, 'an edit inside the old content is not an append');
    const truncateOnly = await appendCase(store, 50_000, 8, 20_000, []);
    assert.equal(await spliceAppend(store, truncateOnly.input, 0), null, 'a bare truncate has nothing to append');
    const small = await appendCase(store, 50_000, 9, 50_000, [{ offset: 50_000, length: 100, zero: false }]);
    assert.equal(await spliceAppend(store, small.input), null, 'a 100-byte append stays below the default threshold');
    assert.ok(await spliceAppend(store, small.input, 0), 'and is taken with a threshold of 0');
  }, { chunking: SMALL_CHUNKS, sealWorkers: 1 });
});

test('a read that returns the wrong length fails the splice, and the store takes writes after it', async () => {
  await withStore(async (store) => {
    const c = await appendCase(store, 10_000, 3, 10_000, [{ offset: 10_000, length: 40_000, zero: false }]);
    const short: AppendSpliceInput = { ...c.input, readInto: undefined, read: (start, n) => c.input.read(start, Math.max(0, n - 1)) };
    await assert.rejects(spliceAppend(store, short, 0), (err: unknown) => isBazilError(err, ErrorCodes.INTERNAL));
    const again = await spliceAppend(store, c.input, 0);
    assert.ok(again !== null && readAll(store, again.manifest, again.size).equals(c.content));
  }, { chunking: SMALL_CHUNKS, sealWorkers: 1 });
});
