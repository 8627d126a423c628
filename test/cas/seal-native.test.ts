// The ingest addon's sealing (native/ingest.c) against the JavaScript
// construction it replaces: the same keys, objects and ids, byte for byte,
// and bad arguments refused instead of writing past a buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hmacChunkKeyer } from '../../src/cas/chunk-keys.js';
import { Chunker, chunkerParams } from '../../src/cas/chunker.js';
import { openObject, sealObject } from '../../src/cas/convergent.js';
import { gearTable } from '../../src/cas/gear.js';
import { loadIngestNative, sealObjectQuick } from '../../src/cas/ingest-native.js';
import { SlabSealer } from '../../src/cas/seal-batch.js';
import { SMALL_CHUNKS, keysOf, randomData } from './helpers.js';

const native = loadIngestNative();

test('chunkKeyInto and sealInto give the bytes of sealObject, in shared memory too', { skip: native === null ? 'the ingest addon is not built' : false }, () => {
  const chunkKey = Buffer.from(keysOf('a').chunkKey);
  const out = new Uint8Array(new SharedArrayBuffer(300_000));
  for (const length of [1, 15, 16, 17, 4096, 65_537, 262_144]) {
    const plaintext = randomData(length, length);
    const expected = sealObject(chunkKey, plaintext);
    const key = Buffer.alloc(40);
    native!.chunkKeyInto(chunkKey, plaintext, 0, length, key, 8);
    assert.ok(key.subarray(8).equals(expected.key), `key of ${length} bytes`);
    const id = Buffer.alloc(32);
    native!.sealInto(expected.key, plaintext, 0, length, out, 100, id, 0);
    const sealed = Buffer.from(out.slice(100, 100 + length + 16));
    assert.ok(sealed.equals(expected.sealed), `object of ${length} bytes`);
    assert.ok(id.equals(expected.id), `id of ${length} bytes`);
    assert.ok(openObject(sealed, expected.key, { verifyId: id }).equals(plaintext));
    const quick = sealObjectQuick(hmacChunkKeyer(chunkKey), plaintext);
    assert.ok(quick.key.equals(expected.key) && quick.sealed.equals(expected.sealed) && quick.id.equals(expected.id), `sealObjectQuick, ${length} bytes`);
  }
});

test('a slab sealed with the addon equals one sealed by node:crypto', { skip: native === null ? 'the ingest addon is not built' : false }, () => {
  const keys = keysOf('b');
  const params = chunkerParams(SMALL_CHUNKS);
  const gear = gearTable(keys.gearKey);
  const data = randomData(256 * 1024, 21);
  const run = (useNative: boolean): ReturnType<SlabSealer['run']> => {
    const saved = process.env['BAZIL_NO_NATIVE'];
    // The sealer asks for the addon on every slab; the chunker once, at its creation.
    process.env['BAZIL_NO_NATIVE'] = useNative ? '0' : '1';
    try {
      const sealer = new SlabSealer(hmacChunkKeyer(keys.chunkKey), () => new Chunker(gear, params), params.maxSize, 100);
      const r = sealer.run(0, data, true, new Uint8Array(new SharedArrayBuffer(2 * data.length)));
      return { ...r, output: Buffer.from(r.output) };
    } finally {
      if (saved === undefined) delete process.env['BAZIL_NO_NATIVE'];
      else process.env['BAZIL_NO_NATIVE'] = saved;
    }
  };
  const a = run(true);
  const b = run(false);
  assert.ok(a.items.length > 50);
  assert.deepEqual([...a.items], [...b.items]);
  assert.ok(a.ids.equals(b.ids));
  assert.ok(a.keys.equals(b.keys));
  assert.ok(a.output.equals(b.output));
});

test('the addon refuses keys, ranges and outputs of the wrong size', { skip: native === null ? 'the ingest addon is not built' : false }, () => {
  const key = Buffer.alloc(32, 1);
  const src = randomData(1000, 3);
  const out = new Uint8Array(1016);
  const id = new Uint8Array(32);
  native!.sealInto(key, src, 0, 1000, out, 0, id, 0);
  assert.throws(() => native!.sealInto(key.subarray(0, 31), src, 0, 1000, out, 0, id, 0), RangeError);
  assert.throws(() => native!.sealInto(key, src, 0, 1000, out, 1, id, 0), RangeError);
  assert.throws(() => native!.sealInto(key, src, 0, 1001, out, 0, id, 0), RangeError);
  assert.throws(() => native!.sealInto(key, src, 0, 1000, out, 0, id, 1), RangeError);
  assert.throws(() => native!.sealInto(key, src, 0, 1000, out, 0, new Uint8Array(31), 0), RangeError);
  assert.throws(() => native!.chunkKeyInto(key, src, 0, 1000, new Uint8Array(32), 1), RangeError);
  assert.throws(() => native!.chunkKeyInto(key, src, 500, 400, new Uint8Array(32), 0), RangeError);
  assert.throws(() => native!.chunkKeyInto('k' as unknown as Uint8Array, src, 0, 1, new Uint8Array(32), 0), TypeError);
  assert.throws(() => native!.sealInto(key, src, 0, 1000, [] as unknown as Uint8Array, 0, id, 0), TypeError);
});
