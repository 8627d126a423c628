import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManifestReader, spliceManifest, type ByteRange } from '../../src/cas/splice.js';
import { extentsIn, type ChunkExtent, type Manifest } from '../../src/cas/manifest.js';
import type { ContentStore } from '../../src/cas/content-store.js';
import { SLOW, SMALL_CHUNKS, randomData, withStore } from './helpers.js';

type Edit = { kind: 'write'; offset: number; data: Buffer } | { kind: 'truncate'; size: number };

/** Applies edits to a copy of `base`, returning the new content, the changed ranges and how much of the base survived. */
function applyEdits(base: Buffer, edits: readonly Edit[]): { content: Buffer; changed: ByteRange[]; baseValid: number } {
  let content = Buffer.from(base);
  let baseValid = base.length;
  const written: ByteRange[] = [];
  for (const e of edits) {
    if (e.kind === 'truncate') {
      if (e.size < content.length) {
        content = content.subarray(0, e.size);
        baseValid = Math.min(baseValid, e.size);
      } else {
        content = Buffer.concat([content, Buffer.alloc(e.size - content.length)]);
      }
    } else {
      const end = e.offset + e.data.length;
      if (end > content.length) content = Buffer.concat([content, Buffer.alloc(end - content.length)]);
      e.data.copy(content, e.offset);
      written.push({ start: e.offset, end });
    }
  }
  // A write later cut by a truncate changes nothing past the new end.
  const clipped = written.map((r) => ({ start: r.start, end: Math.min(r.end, content.length) })).filter((r) => r.end > r.start);
  return { content: Buffer.from(content), changed: merge(clipped), baseValid };
}

function merge(ranges: ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const out: { start: number; end: number }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ start: r.start, end: r.end });
  }
  return out;
}

function chunks(store: ContentStore, m: Manifest | null): { start: number; extent: ChunkExtent }[] {
  const out: { start: number; extent: ChunkExtent }[] = [];
  for (const { extent, start } of extentsIn(m, 0, m?.size ?? 0, (ref) => store.loadNode(ref))) {
    if (extent.kind === 'chunk') out.push({ start, extent });
  }
  return out;
}

/** Base content with zero runs, so the old manifest has holes too. */
function baseContent(length: number, seed: number, zeroRuns: [number, number][]): Buffer {
  const b = randomData(length, seed);
  for (const [at, len] of zeroRuns) b.fill(0, Math.min(at, length), Math.min(at + len, length));
  return b;
}

const editArb = (max: number): fc.Arbitrary<Edit> => fc.oneof(
  { weight: 4, arbitrary: fc.record({ offset: fc.nat(max), len: fc.integer({ min: 1, max: 6000 }), seed: fc.nat(), zero: fc.boolean() }).map((w): Edit => ({
    kind: 'write', offset: w.offset, data: w.zero && w.len > 3000 ? Buffer.alloc(w.len) : randomData(w.len, w.seed),
  })) },
  { weight: 1, arbitrary: fc.nat(max + 10_000).map((size): Edit => ({ kind: 'truncate', size })) },
);

test('spliced manifests read back as the edited content and keep the chunks before the first edit', async () => {
  await withStore(async (store) => {
    const runs = SLOW ? 300 : 60;
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 0, max: 120_000 }), fc.nat(), fc.array(fc.tuple(fc.nat(120_000), fc.nat(9000)), { maxLength: 3 }),
      fc.array(editArb(130_000), { minLength: 1, maxLength: 8 }),
      async (length, seed, zeroRuns, edits) => {
        const base = baseContent(length, seed, zeroRuns);
        const old = await store.writeBuffer(base, { sync: false });
        const { content, changed, baseValid } = applyEdits(base, edits);
        const r = spliceManifest(store, {
          base: old.manifestRoot, baseValid, size: content.length, changed,
          read: (start, n) => content.subarray(start, start + n),
        });
        assert.equal(r.size, content.length);
        assert.equal(r.manifest?.size ?? 0, content.length);
        const back = await store.read(r.manifest, 0, content.length);
        assert.ok(back.equals(content), 'the spliced manifest reads back as the edited content');
        // Every old chunk that ends before the first change (and before the cut) keeps its reference at its offset.
        const firstChange = Math.min(changed[0]?.start ?? Infinity, baseValid);
        const kept = new Map(chunks(store, r.manifest).map((c) => [c.start, c.extent.id.toString('hex')]));
        for (const c of chunks(store, old.manifestRoot)) {
          if (c.start + c.extent.length > firstChange) break;
          // The last chunk before an append is re-fed, so it may not be kept when the change starts right at its end.
          if (c.start + c.extent.length === firstChange && firstChange === baseValid) continue;
          assert.equal(kept.get(c.start), c.extent.id.toString('hex'), `old chunk at ${c.start} is reused`);
        }
      }), { numRuns: runs });
  }, { chunking: SMALL_CHUNKS, maxNodeEntries: 8 });
});

test('a small write in a big file re-chunks only a few chunks around it', async () => {
  await withStore(async (store) => {
    const size = SLOW ? 4 << 20 : 1 << 20;
    const base = randomData(size, 7);
    const old = await store.writeBuffer(base, { sync: false });
    const oldChunks = chunks(store, old.manifestRoot);
    for (const at of [0, 1, Math.floor(size / 3), Math.floor(size / 2) + 17, size - 1]) {
      const content = Buffer.from(base);
      content[at] ^= 0xff;
      const r = spliceManifest(store, {
        base: old.manifestRoot, baseValid: size, size, changed: [{ start: at, end: at + 1 }],
        read: (start, n) => content.subarray(start, start + n),
      });
      assert.ok((await store.read(r.manifest, 0, size)).equals(content));
      // At most the chunk with the byte, the resync run (8 chunks) and one more are new.
      assert.ok(r.reusedChunks >= oldChunks.length - 10, `${r.reusedChunks} of ${oldChunks.length} chunks reused for a write at ${at}`);
      assert.ok(r.rechunkedBytes <= 10 * 4096, `${r.rechunkedBytes} bytes re-chunked for a write at ${at}`);
    }
  }, { chunking: SMALL_CHUNKS, maxNodeEntries: 64 });
});

test('appending in steps chunks exactly as one pass over the whole content', async () => {
  await withStore(async (store) => {
    const whole = randomData(300_000, 3);
    const once = await store.writeBuffer(whole, { sync: false });
    let manifest: Manifest | null = null;
    let size = 0;
    for (const step of [1, 777, 5000, 40_000, 123_456, 300_000]) {
      const r = spliceManifest(store, {
        base: manifest, baseValid: size, size: step, changed: [{ start: size, end: step }],
        read: (start, n) => whole.subarray(start, start + n),
      });
      manifest = r.manifest;
      size = step;
    }
    assert.deepEqual(chunks(store, manifest).map((c) => c.extent.id.toString('hex')), chunks(store, once.manifestRoot).map((c) => c.extent.id.toString('hex')));
  }, { chunking: SMALL_CHUNKS, maxNodeEntries: 16 });
});

test('a sparse write far past the end stores one chunk and a hole, and a truncate to 0 gives no manifest', async () => {
  await withStore(async (store) => {
    const far = 2 ** 40;
    const data = randomData(100, 1);
    const r = spliceManifest(store, {
      base: null, baseValid: 0, size: far + 100, changed: [{ start: far, end: far + 100 }],
      read: (start, n) => {
        assert.equal(start, far);
        return data.subarray(0, n);
      },
    });
    assert.ok(r.newBytes < 1000, `${r.newBytes} new bytes`);
    assert.equal(r.manifest?.size, far + 100);
    assert.ok((await store.read(r.manifest, far - 10, 200)).equals(Buffer.concat([Buffer.alloc(10), data])));
    const reader = new ManifestReader(store);
    const out = Buffer.alloc(50, 0xaa);
    reader.readInto(r.manifest, far + 50, 50, out, 0);
    assert.ok(out.equals(data.subarray(50)));
    const empty = spliceManifest(store, { base: r.manifest, baseValid: 0, size: 0, changed: [], read: () => Buffer.alloc(0) });
    assert.equal(empty.manifest, null);
  });
});

test('bad splice input is refused with BAZIL_BAD_ARGUMENT', async () => {
  await withStore(async (store) => {
    const read = (): Buffer => Buffer.alloc(0);
    const bad = [
      { base: null, baseValid: 0, size: -1, changed: [], read },
      { base: null, baseValid: -5, size: 10, changed: [], read },
      { base: null, baseValid: 0, size: 10, changed: [{ start: 5, end: 20 }], read },
      { base: null, baseValid: 0, size: 10, changed: [{ start: 5, end: 6 }, { start: 2, end: 3 }], read },
      { base: null, baseValid: 0, size: 10, changed: [{ start: 4, end: 4 }], read },
    ];
    for (const input of bad) assert.throws(() => spliceManifest(store, input), { code: 'BAZIL_BAD_ARGUMENT' });
    // A read that returns the wrong length is a bug, caught rather than stored.
    assert.throws(() => spliceManifest(store, { base: null, baseValid: 0, size: 10, changed: [{ start: 0, end: 10 }], read }), { code: 'BAZIL_INTERNAL' });
  });
});
