// decodeManifestFast (src/cas/manifest-fast.ts), the canonical-shape reader
// decodeManifest tries first: for every node this code encodes it gives
// exactly what the general cbor-x path gives, and for everything else it
// steps aside (null), so decodeManifest's results and errors are those of
// the general path: malformed nodes still fail with BAZIL_CORRUPT_MANIFEST,
// a newer version with BAZIL_UNSUPPORTED_FORMAT, and valid but unusual
// encodings (wider integers) still decode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Encoder } from 'cbor-x';
import { createHash } from 'node:crypto';
import { MANIFEST_VERSION, decodeManifest, encodeManifest, type Manifest, type ManifestEntry } from '../../src/cas/manifest.js';
import { decodeManifestFast } from '../../src/cas/manifest-fast.js';
import { ErrorCodes, isBazilError } from '../../errors/index.js';

const cbor = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: false });

function ref(i: number): Buffer {
  return createHash('sha256').update(`ref ${i}`).digest();
}

/** A manifest object with plain-Buffer ids, comparable with deepEqual whatever buffer the views are of. */
function plain(m: Manifest | null): unknown {
  return m === null ? null : { size: m.size, entries: m.entries.map((e) => (e.kind === 'hole' ? { ...e } : { ...e, id: Buffer.from(e.id), key: Buffer.from(e.key) })) };
}

const entryArb = fc.oneof(
  fc.record({ kind: fc.constant('hole' as const), length: fc.integer({ min: 1, max: 2 ** 40 }) }),
  fc.record({ kind: fc.constantFrom('chunk' as const, 'node' as const), length: fc.oneof(fc.integer({ min: 1, max: 300_000 }), fc.integer({ min: 1, max: 2 ** 45 })), n: fc.integer() }),
);

test('every node this code encodes is read by the fast path, with exactly the general path\'s result', () => {
  fc.assert(fc.property(fc.array(entryArb, { minLength: 1, maxLength: 40 }), (raw) => {
    const entries: ManifestEntry[] = raw.map((e) => (e.kind === 'hole' ? e : { kind: e.kind, length: e.length, id: ref(e.n), key: ref(-e.n) }));
    const node: Manifest = { size: entries.reduce((s, e) => s + e.length, 0), entries };
    const bytes = encodeManifest(node);
    const fast = decodeManifestFast(bytes, MANIFEST_VERSION);
    assert.notEqual(fast, null, 'the fast path read it');
    assert.deepEqual(plain(fast), plain(node));
    assert.deepEqual(plain(decodeManifest(bytes)), plain(node));
    // The views are of the fast path's own copy: the caller's bytes may be reused.
    bytes.fill(0);
    assert.deepEqual(plain(fast), plain(node));
  }), { numRuns: 200 });
});

/** A node written by hand: [version, size, entries] with any CBOR the encoder gives for these values. */
function raw(version: unknown, size: unknown, entries: unknown): Buffer {
  return Buffer.from(cbor.encode([version, size, entries]));
}

test('unusual but valid encodings (wider integers than needed, longer heads) decode the same on both paths', () => {
  const id = ref(1);
  const key = ref(2);
  // Lengths as 64-bit integers where fewer bytes would do.
  const wide = Buffer.concat([
    Buffer.from([0x83, 0x01, 0x1b, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x81, 0x84, 0x01, 0x1b, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x58, 0x20]),
    id, Buffer.from([0x58, 0x20]), key,
  ]);
  const got = decodeManifest(wide);
  assert.deepEqual(plain(got), plain({ size: 256, entries: [{ kind: 'chunk', length: 256, id, key }] }));
  assert.deepEqual(plain(decodeManifestFast(wide, MANIFEST_VERSION)), plain(got));
  // An entry array with a two-byte head (24 entries or more are written that way): still the fast path.
  const many: ManifestEntry[] = Array.from({ length: 30 }, (_, i) => ({ kind: 'chunk', length: 1000 + i, id: ref(i), key: ref(-i) }));
  const node = { size: many.reduce((s, e) => s + e.length, 0), entries: many };
  assert.deepEqual(plain(decodeManifestFast(encodeManifest(node), MANIFEST_VERSION)), plain(node));
});

test('malformed nodes are left to the general path and fail as before', () => {
  const id = ref(1);
  const key = ref(2);
  const good = encodeManifest({ size: 100, entries: [{ kind: 'chunk', length: 60, id, key }, { kind: 'hole', length: 40 }] });
  const corrupt = (b: Uint8Array): boolean => {
    assert.equal(decodeManifestFast(b, MANIFEST_VERSION), null);
    assert.throws(() => decodeManifest(b), (e) => isBazilError(e, ErrorCodes.CORRUPT_MANIFEST));
    return true;
  };
  for (let cut = 0; cut < good.length; cut++) corrupt(good.subarray(0, cut));
  corrupt(Buffer.concat([good, Buffer.from([0x00])]));
  corrupt(raw(1, 101, [[1, 60, id, key], [0, 40]]));
  corrupt(raw(1, 100, [[1, 0, id, key], [0, 100]]));
  corrupt(raw(1, 100, [[1, 100, id.subarray(1), key]]));
  corrupt(raw(1, 100, [[3, 100, id, key]]));
  corrupt(raw(1, 100, [[0, 100, id]]));
  corrupt(raw(1, 100, [[1, 100, id]]));
  corrupt(raw(1, 100, []));
  corrupt(raw(1, 0, [[0, 1]]));
  corrupt(raw(1, 100, [[1, -5, id, key]]));
  corrupt(raw(1, 100.5, [[0, 100.5]]));
  corrupt(raw(1, '100', [[0, 100]]));
  const newer = raw(MANIFEST_VERSION + 1, 100, [[0, 100]]);
  assert.equal(decodeManifestFast(newer, MANIFEST_VERSION), null);
  assert.throws(() => decodeManifest(newer), (e) => isBazilError(e, ErrorCodes.UNSUPPORTED_FORMAT));
});
