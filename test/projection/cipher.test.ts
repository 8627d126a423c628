// The projection cipher computes AES-CTR through a reused AES-ECB object and
// remembers opened values (src/projection/cipher.ts): the stored bytes must
// stay exactly what the straightforward construction gives, and the cache
// must never answer for bytes it did not open.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { ProjectionCipher, SEAL_OVERHEAD } from '../../src/projection/cipher.js';
import { isBazilError, ErrorCodes } from '../../errors/index.js';

/** The construction docs/projection.md describes, written the plain way (one node:crypto call each). */
function referenceSeal(projectionKey: Buffer, ad: Buffer, plain: Buffer): Buffer {
  const sub = (label: string): Buffer => Buffer.from(hkdfSync('sha256', projectionKey, Buffer.alloc(0), `bazil/v1/projection/${label}`, 32));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(ad.length);
  const iv = createHmac('sha256', sub('mac')).update(len).update(ad).update(plain).digest().subarray(0, SEAL_OVERHEAD);
  const c = createCipheriv('aes-256-ctr', sub('enc'), iv);
  return Buffer.concat([iv, c.update(plain), c.final()]);
}

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (err) {
    if (!isBazilError(err)) throw err;
    return err.code;
  }
}

test('seal gives the bytes of the plain construction, for every length, and open returns the plaintext', () => {
  const key = randomBytes(32);
  const cipher = new ProjectionCipher(key);
  // Enough values that many IVs carry across their low bytes within a value.
  for (let i = 0; i < 600; i++) {
    const length = i < 70 ? i : Math.floor(Math.random() * 3000);
    const ad = randomBytes(1 + Math.floor(Math.random() * 80));
    const plain = randomBytes(length);
    const sealed = cipher.seal(ad, plain);
    assert.deepEqual(sealed, referenceSeal(key, ad, plain), `length ${length}`);
    assert.deepEqual(cipher.open(ad, sealed), plain);
    assert.deepEqual(cipher.open(ad, sealed), plain, 'a second open (from the cache) agrees');
  }
});

test('a fixed key and value seal to frozen bytes', () => {
  const cipher = new ProjectionCipher(Buffer.alloc(32, 7));
  const sealed = cipher.seal(Buffer.from('record key'), Buffer.from('a value longer than one AES block, so the counter steps'));
  assert.equal(sealed.toString('hex'), referenceSeal(Buffer.alloc(32, 7), Buffer.from('record key'), Buffer.from('a value longer than one AES block, so the counter steps')).toString('hex'));
  assert.equal(sealed.toString('hex'), FROZEN);
});

// Computed with the code before this change (createCipheriv per value).
const FROZEN = '7a40c20a6f4ecc392531a943960339d46914afc1abdc6cedfb22cc301301d97c9a72896ccfe86b481d35ae470df8d92ce0f2dd81eb121d7b81187a9671966024b9a58f2006c1b2';

test('open refuses altered bytes, another record key and another key, also after a good open was remembered', () => {
  const key = randomBytes(32);
  const cipher = new ProjectionCipher(key);
  const ad = Buffer.from('entry key');
  const plain = Buffer.from('child id and mode');
  const sealed = cipher.seal(ad, plain);
  assert.deepEqual(cipher.open(ad, sealed), plain);
  for (let i = 0; i < sealed.length; i++) {
    const bad = Buffer.from(sealed);
    bad[i]! ^= 1 << (i % 8);
    assert.equal(codeOf(() => cipher.open(ad, bad)), ErrorCodes.CORRUPT_METADATA, `byte ${i} flipped`);
  }
  assert.equal(codeOf(() => cipher.open(Buffer.from('entry kez'), sealed)), ErrorCodes.CORRUPT_METADATA);
  assert.equal(codeOf(() => cipher.open(Buffer.alloc(0), sealed)), ErrorCodes.CORRUPT_METADATA);
  assert.equal(codeOf(() => new ProjectionCipher(randomBytes(32)).open(ad, sealed)), ErrorCodes.CORRUPT_METADATA);
  assert.equal(codeOf(() => cipher.open(ad, sealed.subarray(0, 15))), ErrorCodes.CORRUPT_METADATA);
  assert.deepEqual(cipher.open(ad, sealed), plain, 'the good value still opens');
});

test('an (ad, value) split differently is not taken for a remembered one', () => {
  const cipher = new ProjectionCipher(randomBytes(32));
  const ad = Buffer.from('abc');
  const sealed = cipher.seal(ad, Buffer.from('value'));
  cipher.open(ad, sealed);
  // The same concatenated bytes, with the boundary moved by one.
  const shifted = Buffer.concat([ad, sealed]);
  assert.equal(codeOf(() => cipher.open(shifted.subarray(0, 4), shifted.subarray(4))), ErrorCodes.CORRUPT_METADATA);
});

test('what open returns is the caller\'s: writing into it changes no later open', () => {
  const cipher = new ProjectionCipher(randomBytes(32));
  const ad = Buffer.from('inode key');
  const plain = Buffer.from('size and times');
  const sealed = cipher.seal(ad, plain);
  const first = cipher.open(ad, sealed);
  first.fill(0);
  const second = cipher.open(ad, sealed);
  assert.deepEqual(second, plain);
  second.fill(1);
  assert.deepEqual(cipher.open(ad, sealed), plain);
});

test('more values than the cache holds still open correctly, old and new', () => {
  const cipher = new ProjectionCipher(randomBytes(32));
  const n = 40_000;
  const sealed: Buffer[] = [];
  for (let i = 0; i < n; i++) sealed.push(cipher.seal(Buffer.from(`k${i}`), Buffer.from(`v${i}`)));
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < n; i += 7) assert.equal(cipher.open(Buffer.from(`k${i}`), sealed[i]!).toString(), `v${i}`);
  }
});

test('name tags are the keyed hash of scope and name, remembered or not', () => {
  const key = randomBytes(32);
  const cipher = new ProjectionCipher(key);
  const nameKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'bazil/v1/projection/name', 32));
  const scopes = [randomBytes(32), randomBytes(32)];
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 3000; i++) {
      const scope = scopes[i % 2]!;
      const name = Buffer.from(`name-${i}`);
      const expected = createHmac('sha256', nameKey).update(scope).update(name).digest().subarray(0, 16);
      assert.deepEqual(cipher.nameTag(scope, name), expected);
    }
  }
});
