// Opening sealed objects where they lie (src/cas/open-in-place.ts, the
// ingest addon's openInto): the plaintext of convergent.ts openObject, byte
// for byte, in shared memory too; any damage caught by the tag with
// BAZIL_CORRUPT_OBJECT, as openObject does; bad arguments refused instead of
// writing past a buffer or over the ciphertext.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openObject, sealObject } from '../../src/cas/convergent.js';
import { loadIngestNative } from '../../src/cas/ingest-native.js';
import { openObjectInPlace, opensInPlace } from '../../src/cas/open-in-place.js';
import { keysOf, randomData } from './helpers.js';

const native = loadIngestNative();
const nativeOpen = typeof native?.openInto === 'function' ? native : null;
const SIZES = [0, 1, 15, 16, 17, 4096, 65_537, 262_144];

function sealedIn(buf: Buffer, at: number, length: number, seed: number): { plain: Buffer; key: Buffer; end: number } {
  const plain = randomData(length, seed);
  const sealed = sealObject(Buffer.from(keysOf('o').chunkKey), plain);
  sealed.sealed.copy(buf, at);
  return { plain, key: sealed.key, end: at + sealed.sealed.length };
}

test('openObjectInPlace gives openObject\'s plaintext, in shared memory, at any offset', () => {
  const buf = Buffer.from(new SharedArrayBuffer(600_000));
  for (const length of SIZES) {
    const at = 7 + length % 13;
    const { plain, key, end } = sealedIn(buf, at, length, length + 1);
    const before = Buffer.from(buf.subarray(at, end));
    assert.ok(openObject(before, key).equals(plain), `openObject, ${length} bytes`);
    const got = openObjectInPlace(buf, at, end, key);
    assert.ok(got.equals(plain), `${length} bytes`);
    if (opensInPlace()) {
      // The plaintext is the slab's own bytes: nothing was allocated for it.
      assert.equal(got.buffer, buf.buffer);
      assert.equal(got.byteOffset, buf.byteOffset + at);
    } else {
      assert.ok(buf.subarray(at, end).equals(before), 'without the addon the sealed bytes stay');
    }
  }
});

test('a changed byte, a wrong key or a short object is BAZIL_CORRUPT_OBJECT; a bad key length BAZIL_BAD_ARGUMENT', () => {
  const buf = Buffer.alloc(100_000);
  const length = 70_000;
  for (const flip of [0, 1, 16, length - 1, length, length + 15]) {
    const { key, end } = sealedIn(buf, 3, length, 9);
    buf[3 + flip]! ^= 0x20;
    assert.throws(() => openObjectInPlace(buf, 3, end, key), { code: 'BAZIL_CORRUPT_OBJECT' }, `flip at ${flip}`);
  }
  const { key, end } = sealedIn(buf, 0, 100, 10);
  const wrong = Buffer.from(key);
  wrong[5]! ^= 1;
  assert.throws(() => openObjectInPlace(buf, 0, end, wrong), { code: 'BAZIL_CORRUPT_OBJECT' });
  const again = sealedIn(buf, 0, 100, 10);
  assert.throws(() => openObjectInPlace(buf, 0, again.end - 1, again.key), { code: 'BAZIL_CORRUPT_OBJECT' }, 'truncated');
  assert.throws(() => openObjectInPlace(buf, 0, 15, again.key), { code: 'BAZIL_CORRUPT_OBJECT' }, 'shorter than a tag');
  assert.throws(() => openObjectInPlace(buf, 0, again.end, again.key.subarray(0, 31)), { code: 'BAZIL_BAD_ARGUMENT' });
});

test('openInto refuses ranges past a buffer and a shifted overlap, and opens into another buffer', { skip: nativeOpen === null ? 'the ingest addon (with openInto) is not built' : false }, () => {
  const open = nativeOpen!.openInto!.bind(nativeOpen);
  const buf = Buffer.alloc(10_000);
  const { plain, key, end } = sealedIn(buf, 100, 5000, 11);
  const other = Buffer.alloc(6000);
  assert.equal(open(key, buf, 100, end, other, 1000), true);
  assert.ok(other.subarray(1000, 6000).equals(plain));
  assert.throws(() => open(key, buf, 100, end, other, 1001), RangeError, 'the plaintext runs past its buffer');
  assert.throws(() => open(key, buf, 100, buf.length + 1, buf, 100), RangeError, 'the object runs past its buffer');
  assert.throws(() => open(key, buf, 100, end, buf, 101), RangeError, 'shifted over the ciphertext');
  assert.throws(() => open(key, buf, 100, end, buf, 99), RangeError, 'shifted over the ciphertext');
  assert.throws(() => open(key, buf, 100, 110, buf, 100), RangeError, 'shorter than a tag');
  assert.throws(() => open(key.subarray(1), buf, 100, end, buf, 100), RangeError, 'a 31-byte key');
  // Nothing above touched the object: it still opens in place.
  assert.equal(open(key, buf, 100, end, buf, 100), true);
  assert.ok(buf.subarray(100, 5100).equals(plain));
  // A damaged tag: false, not an exception.
  const again = sealedIn(buf, 100, 5000, 11);
  buf[again.end - 1]! ^= 1;
  assert.equal(open(again.key, buf, 100, again.end, buf, 100), false);
});

test('without the addon (BAZIL_NO_NATIVE=1) objects are opened into new buffers, with the same checks', () => {
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', `
    const { openObjectInPlace, opensInPlace } = await import(${JSON.stringify(new URL('../../src/cas/open-in-place.js', import.meta.url).href)});
    const { sealObject } = await import(${JSON.stringify(new URL('../../src/cas/convergent.js', import.meta.url).href)});
    const plain = Buffer.from('a chunk of plaintext '.repeat(500));
    const s = sealObject(Buffer.alloc(32, 7), plain);
    const buf = Buffer.concat([Buffer.alloc(5), s.sealed]);
    const got = openObjectInPlace(buf, 5, buf.length, s.key);
    let code = null;
    buf[9] ^= 1;
    try { openObjectInPlace(buf, 5, buf.length, s.key); } catch (err) { code = err.code; }
    console.log(JSON.stringify({ inPlace: opensInPlace(), equal: got.equals(plain), shared: got.buffer === buf.buffer, code }));
  `], { env: { ...process.env, BAZIL_NO_NATIVE: '1' }, encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) });
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), { inPlace: false, equal: true, shared: false, code: 'BAZIL_CORRUPT_OBJECT' });
});
