import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Decoder } from 'cbor-x';
import { createHash } from 'node:crypto';
import {
  ManifestBuilder, decodeManifest, encodeManifest, extentsIn, objectsOf,
  type Extent, type Manifest, type NodeLoader,
} from '../../src/cas/manifest.js';
import { openObject, sealObject } from '../../src/cas/convergent.js';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { keysOf } from './helpers.js';

const KC = keysOf('a').chunkKey;

function ref(i: number): Buffer {
  return createHash('sha256').update(`ref ${i}`).digest();
}

/** Nodes sealed for real and kept in a map, as the content store would keep them in arenas. */
function memoryNodes(): { seal: (encoded: Buffer) => { id: Buffer; key: Buffer }; load: NodeLoader; count: () => number } {
  const objects = new Map<string, Buffer>();
  return {
    seal: (encoded) => {
      const o = sealObject(KC, encoded);
      objects.set(o.id.toString('hex'), o.sealed);
      return { id: o.id, key: o.key };
    },
    load: (r) => decodeManifest(openObject(objects.get(r.id.toString('hex'))!, r.key, { verifyId: r.id })),
    count: () => objects.size,
  };
}

type Item = { hole: boolean; length: number };

function build(items: Item[], maxEntries: number, nodes = memoryNodes()): Manifest | null {
  const b = new ManifestBuilder(nodes.seal, maxEntries);
  items.forEach((it, i) => (it.hole ? b.addHole(it.length) : b.addChunk(it.length, ref(i), ref(-i))));
  return b.finish();
}

/** The extents of the items, with adjacent holes merged, as the manifest should list them. */
function expectedExtents(items: Item[]): Extent[] {
  const out: Extent[] = [];
  items.forEach((it, i) => {
    const last = out[out.length - 1];
    if (it.hole && last?.kind === 'hole') out[out.length - 1] = { kind: 'hole', length: last.length + it.length };
    else if (it.hole) out.push({ kind: 'hole', length: it.length });
    else out.push({ kind: 'chunk', length: it.length, id: ref(i), key: ref(-i) });
  });
  return out.filter((e) => e.length > 0);
}

const items = fc.array(fc.record({ hole: fc.boolean(), length: fc.integer({ min: 1, max: 5000 }) }), { maxLength: 300 });

test('encode/decode round-trips, including sizes past 2^32, without floats', () => {
  const big = 2 ** 40 + 3;
  const m: Manifest = {
    size: big + 1000,
    entries: [{ kind: 'hole', length: big }, { kind: 'chunk', length: 600, id: ref(1), key: ref(2) }, { kind: 'node', length: 400, id: ref(3), key: ref(4) }],
  };
  const bytes = encodeManifest(m);
  assert.deepEqual(decodeManifest(bytes), m);
  // Integers past 32 bits are CBOR uint64 (major type 0, 0x1b), not float64 (0xfb).
  const raw = new Decoder({ useRecords: false }).decode(bytes) as unknown[];
  assert.equal(typeof raw[1], 'bigint');
  assert.equal(bytes[2], 0x1b);
  assert.ok(encodeManifest(decodeManifest(bytes)).equals(bytes), 'deterministic');
});

test('malformed manifests get BAZIL_CORRUPT_MANIFEST, newer versions BAZIL_UNSUPPORTED_FORMAT, never a crash', () => {
  const good = encodeManifest({ size: 10, entries: [{ kind: 'chunk', length: 10, id: ref(1), key: ref(2) }] });
  const isCode = (code: string) => (e: unknown) => isBazilError(e) && e.code === code;
  assert.throws(() => decodeManifest(Buffer.from([0xff, 0x00])), isCode(ErrorCodes.CORRUPT_MANIFEST));
  assert.throws(() => decodeManifest(encodeManifest({ size: 11, entries: [{ kind: 'hole', length: 10 }] })), isCode(ErrorCodes.CORRUPT_MANIFEST));
  assert.throws(() => decodeManifest(encodeManifest({ size: 0, entries: [] })), isCode(ErrorCodes.CORRUPT_MANIFEST));
  const newer = Buffer.from(good);
  newer[1] = 0x02;
  assert.throws(() => decodeManifest(newer), isCode(ErrorCodes.UNSUPPORTED_FORMAT));
  fc.assert(fc.property(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
    const bad = Buffer.from(good);
    bad[at] ^= xor;
    try {
      const m = decodeManifest(bad);
      assert.equal(m.entries.reduce((a, e) => a + e.length, 0), m.size);
    } catch (e) {
      assert.ok(isBazilError(e), String(e));
    }
  }), { numRuns: 500 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
    try {
      decodeManifest(bytes);
    } catch (e) {
      assert.ok(isBazilError(e), String(e));
    }
  }), { numRuns: 500 });
});

test('an empty file has no manifest; holes merge; a small file is one flat node', () => {
  assert.equal(build([], 4), null);
  const m = build([{ hole: true, length: 5 }, { hole: true, length: 7 }, { hole: false, length: 3 }], 4)!;
  assert.deepEqual(m.entries.map((e) => [e.kind, e.length]), [['hole', 12], ['chunk', 3]]);
  assert.equal(m.size, 15);
  assert.throws(() => new ManifestBuilder(() => ({ id: ref(0), key: ref(0) }), 1), (e: unknown) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
});

test('big extent lists become trees whose leaves, in order, are the extents', () => {
  fc.assert(fc.property(items, fc.integer({ min: 2, max: 6 }), (list, maxEntries) => {
    const nodes = memoryNodes();
    const root = build(list, maxEntries, nodes);
    const expected = expectedExtents(list);
    if (expected.length === 0) {
      assert.equal(root, null);
      return;
    }
    assert.ok(root!.entries.length <= maxEntries);
    const leaves = [...extentsIn(root, 0, root!.size, nodes.load)];
    assert.deepEqual(leaves.map((l) => l.extent), expected);
    let at = 0;
    for (const l of leaves) {
      assert.equal(l.start, at);
      at += l.extent.length;
    }
    assert.equal(at, root!.size);
    // objectsOf lists every node sealed for this tree and every chunk.
    const objects = [...objectsOf(root, nodes.load)];
    assert.equal(objects.filter((o) => o.kind === 'node').length, nodes.count());
    assert.equal(objects.filter((o) => o.kind === 'chunk').length, expected.filter((e) => e.kind === 'chunk').length);
  }), { numRuns: 150 });
});

test('a range maps to exactly the extents that overlap it, descending only where needed', () => {
  fc.assert(fc.property(items, fc.integer({ min: 2, max: 5 }), fc.nat(), fc.nat(), (list, maxEntries, a, b) => {
    const nodes = memoryNodes();
    const root = build(list, maxEntries, nodes);
    if (root === null) return;
    const offset = a % (root.size + 10);
    const length = b % (root.size + 10);
    const all = [...extentsIn(root, 0, root.size, nodes.load)];
    const want = all.filter((s) => s.start < offset + length && s.start + s.extent.length > offset && length > 0);
    let loads = 0;
    const got = [...extentsIn(root, offset, length, (r) => (loads++, nodes.load(r)))];
    assert.deepEqual(got, want);
    // A leaf-sized read of a deep tree loads one node per level, not the whole tree.
    if (length === 1 && want.length === 1) assert.ok(loads <= Math.ceil(Math.log(all.length) / Math.log(maxEntries)) + 1, `${loads} loads`);
  }), { numRuns: 300 });
});

test('a node that covers a different length than its reference claims is refused', () => {
  const nodes = memoryNodes();
  const list = Array.from({ length: 10 }, () => ({ hole: false, length: 100 }));
  const root = build(list, 3, nodes)!;
  const lying: NodeLoader = (r) => {
    const n = nodes.load(r);
    return { size: n.size + 1, entries: [...n.entries, { kind: 'hole', length: 1 }] };
  };
  assert.throws(() => [...extentsIn(root, 0, 1, lying)], (e: unknown) => isBazilError(e, ErrorCodes.CORRUPT_MANIFEST));
});
