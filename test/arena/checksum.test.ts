import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checksumInto, checksumMatches, loadPortableChecksum, portableChecksumInto } from '../../arena/checksum.js';
import { loadNative } from '../../arena/native.js';

test('the native XXH3 and hash-wasm agree on every input (property)', async () => {
  assert.ok(loadNative(), 'the native addon must be built for this test');
  await loadPortableChecksum();
  fc.assert(fc.property(fc.uint8Array({ maxLength: 5000 }), fc.nat(), fc.nat(), (bytes, a, b) => {
    const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
    const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
    const n = Buffer.alloc(8);
    const w = Buffer.alloc(8);
    checksumInto(bytes, start, end, n, 0);
    portableChecksumInto(bytes, start, end, w, 0);
    assert.deepEqual(n, w);
    const framed = Buffer.concat([Buffer.from(bytes.subarray(start, end)), n]);
    assert.ok(checksumMatches(framed, 0, end - start, end - start));
    framed[framed.length - 1] ^= 1;
    assert.ok(!checksumMatches(framed, 0, end - start, end - start));
  }), { numRuns: 300 });
});

test('the known XXH3-64 of the empty input and of "a"', () => {
  const out = Buffer.alloc(8);
  checksumInto(new Uint8Array(0), 0, 0, out, 0);
  assert.equal(out.toString('hex'), '2d06800538d394c2');
  checksumInto(Buffer.from('a'), 0, 1, out, 0);
  assert.equal(out.toString('hex'), 'e6c632b61e964e1f');
});

test('native checksum calls reject out-of-range arguments instead of reading past a buffer', () => {
  const native = loadNative()!;
  const buf = Buffer.alloc(16);
  assert.throws(() => native.xxh3Into(buf, 0, 17, buf, 0), RangeError);
  assert.throws(() => native.xxh3Into(buf, 0, 4, buf, 9), RangeError);
  assert.throws(() => native.xxh3Matches(buf, 5, 4, 0), RangeError);
  assert.throws(() => native.xxh3Matches(buf, 0, 4, 9), RangeError);
  assert.throws(() => native.xxh3Into('x' as unknown as Uint8Array, 0, 0, buf, 0), TypeError);
});
