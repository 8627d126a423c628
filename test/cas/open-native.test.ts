// The ingest addon's openInto (native/ingest.c), which the read-ahead worker
// uses to decrypt a chunk in place in its slot: the plaintext openObject
// gives, in place in shared memory or into another buffer; a tag that does
// not verify (any flipped byte, a wrong key) is false, never plaintext
// taken as good; bad arguments are refused instead of writing past a
// buffer or decrypting over bytes not yet read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openObject, sealObject } from '../../src/cas/convergent.js';
import { loadIngestNative } from '../../src/cas/ingest-native.js';
import { keysOf, randomData } from './helpers.js';

const native = loadIngestNative();
const skip = native?.openInto === undefined ? 'the ingest addon (with openInto) is not built' : false;

test('openInto gives openObject\'s plaintext, in place in shared memory and into another buffer', { skip }, () => {
  const chunkKey = Buffer.from(keysOf('open').chunkKey);
  const slot = Buffer.from(new SharedArrayBuffer(300_000));
  for (const length of [0, 1, 15, 16, 17, 4096, 65_537, 262_144]) {
    const plaintext = randomData(length, length + 1);
    const { key, sealed } = sealObject(chunkKey, plaintext);
    sealed.copy(slot, 0);
    assert.equal(native!.openInto!(key, slot, 0, sealed.length, slot, 0), true, `${length} bytes in place`);
    assert.ok(slot.subarray(0, length).equals(openObject(sealed, key)), `${length} bytes in place`);
    // The tag after the plaintext is left as it was.
    assert.ok(slot.subarray(length, length + 16).equals(sealed.subarray(length)), 'the tag is untouched');
    const out = Buffer.alloc(length + 20, 0xaa);
    assert.equal(native!.openInto!(key, sealed, 0, sealed.length, out, 10), true);
    assert.ok(out.subarray(10, 10 + length).equals(plaintext), `${length} bytes elsewhere`);
    assert.ok(out.subarray(0, 10).every((b) => b === 0xaa) && out.subarray(10 + length).every((b) => b === 0xaa), 'nothing written outside');
  }
});

test('openInto is false for a flipped byte anywhere, a wrong key or a cut object', { skip }, () => {
  const chunkKey = Buffer.from(keysOf('flip').chunkKey);
  const plaintext = randomData(10_000, 3);
  const { key, sealed } = sealObject(chunkKey, plaintext);
  const slot = Buffer.from(new SharedArrayBuffer(sealed.length));
  for (const at of [0, 1, 5000, sealed.length - 17, sealed.length - 16, sealed.length - 1]) {
    sealed.copy(slot, 0);
    slot[at]! ^= 0x01;
    assert.equal(native!.openInto!(key, slot, 0, sealed.length, slot, 0), false, `byte ${at} flipped`);
  }
  sealed.copy(slot, 0);
  const otherKey = Buffer.from(key);
  otherKey[0]! ^= 0x80;
  assert.equal(native!.openInto!(otherKey, slot, 0, sealed.length, slot, 0), false, 'wrong key');
  sealed.copy(slot, 0);
  assert.equal(native!.openInto!(key, slot, 0, sealed.length - 1, slot, 0), false, 'one byte short');
});

test('openInto refuses bad arguments: key length, ranges, a too short output, a partial overlap', { skip }, () => {
  const chunkKey = Buffer.from(keysOf('args').chunkKey);
  const { key, sealed } = sealObject(chunkKey, randomData(1000, 4));
  const buf = Buffer.alloc(4000);
  sealed.copy(buf, 100);
  const end = 100 + sealed.length;
  assert.throws(() => native!.openInto!(key.subarray(0, 16), buf, 100, end, buf, 100), RangeError);
  assert.throws(() => native!.openInto!(key, buf, 100, 100 + 15, buf, 100), RangeError);
  assert.throws(() => native!.openInto!(key, buf, 100, buf.length + 1, buf, 100), RangeError);
  assert.throws(() => native!.openInto!(key, buf, end, 100, buf, 100), RangeError);
  assert.throws(() => native!.openInto!(key, buf, 100, end, Buffer.alloc(999), 0), RangeError);
  assert.throws(() => native!.openInto!(key, buf, 100, end, buf, -1), RangeError);
  // Plaintext that would start inside the ciphertext, or run into it, would overwrite bytes not yet decrypted.
  assert.throws(() => native!.openInto!(key, buf, 100, end, buf, 50), RangeError);
  assert.throws(() => native!.openInto!(key, buf, 100, end, buf, 150), RangeError);
  assert.throws(() => native!.openInto!(key, buf, 100, end, Buffer.alloc(2000) as unknown as Uint8Array, 0.5), RangeError);
  // Untouched by every refusal, and still opens.
  assert.equal(native!.openInto!(key, buf, 100, end, buf, 100), true);
});
