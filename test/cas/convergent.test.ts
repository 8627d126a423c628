import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import { checkObjectId, objectId, objectIdMatches, openObject, sealObject, TAG_LENGTH } from '../../src/cas/convergent.js';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { keysOf, randomData } from './helpers.js';

const KC = keysOf('a').chunkKey;
const KC_OTHER = keysOf('b').chunkKey;

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => isBazilError(e) && e.code === code, `expected ${code}`);
}

test('seal and open round-trip; the layout is k = HMAC(Kc, P), GCM with a zero IV, id = SHA-256(sealed)', () => {
  for (const length of [0, 1, 15, 16, 17, 1000, 65536, 300_000]) {
    const p = randomData(length, length);
    const o = sealObject(KC, p);
    assert.equal(o.sealed.length, length + TAG_LENGTH);
    assert.deepEqual(o.key, createHmac('sha256', KC).update(p).digest());
    const c = createCipheriv('aes-256-gcm', o.key, Buffer.alloc(12));
    assert.deepEqual(o.sealed, Buffer.concat([c.update(p), c.final(), c.getAuthTag()]));
    assert.deepEqual(o.id, createHash('sha256').update(o.sealed).digest());
    assert.deepEqual(openObject(o.sealed, o.key), p);
    assert.deepEqual(openObject(o.sealed, o.key, { verifyId: o.id }), p);
    if (length >= 16) assert.ok(!o.sealed.subarray(0, length).equals(p), 'ciphertext differs from plaintext');
  }
});

test('convergence: equal plaintexts give equal objects within a volume, unrelated ones across volumes', () => {
  const p = randomData(5000, 1);
  const a = sealObject(KC, p);
  const b = sealObject(KC, Buffer.from(p));
  assert.deepEqual([a.id, a.key, a.sealed], [b.id, b.key, b.sealed]);
  const other = sealObject(KC_OTHER, p);
  assert.notDeepEqual(other.id, a.id);
  assert.notDeepEqual(other.key, a.key);
  throwsCode(() => openObject(a.sealed, other.key), ErrorCodes.CORRUPT_OBJECT);
});

test('a flipped bit anywhere is caught: BAZIL_CORRUPT_OBJECT by the tag, BAZIL_OBJECT_MISMATCH by the id', () => {
  const p = randomData(300, 2);
  const o = sealObject(KC, p);
  for (let i = 0; i < o.sealed.length; i++) {
    const bad = Buffer.from(o.sealed);
    bad[i] ^= 1 << (i % 8);
    throwsCode(() => openObject(bad, o.key), ErrorCodes.CORRUPT_OBJECT);
    throwsCode(() => openObject(bad, o.key, { verifyId: o.id }), ErrorCodes.OBJECT_MISMATCH);
    assert.equal(objectIdMatches(o.id, bad), false);
  }
  fc.assert(fc.property(fc.nat(o.sealed.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
    const bad = Buffer.from(o.sealed);
    bad[at] ^= xor;
    throwsCode(() => openObject(bad, o.key), ErrorCodes.CORRUPT_OBJECT);
  }));
});

test('truncated, extended, empty and wrongly keyed objects are refused with stable codes', () => {
  const o = sealObject(KC, randomData(100, 3));
  throwsCode(() => openObject(o.sealed.subarray(0, o.sealed.length - 1), o.key), ErrorCodes.CORRUPT_OBJECT);
  throwsCode(() => openObject(Buffer.concat([o.sealed, Buffer.from([0])]), o.key), ErrorCodes.CORRUPT_OBJECT);
  throwsCode(() => openObject(Buffer.alloc(0), o.key), ErrorCodes.CORRUPT_OBJECT);
  throwsCode(() => openObject(Buffer.alloc(5), o.key), ErrorCodes.CORRUPT_OBJECT);
  const wrongKey = Buffer.from(o.key);
  wrongKey[0] ^= 1;
  throwsCode(() => openObject(o.sealed, wrongKey), ErrorCodes.CORRUPT_OBJECT);
  throwsCode(() => openObject(o.sealed, o.key.subarray(0, 16)), ErrorCodes.BAD_ARGUMENT);
  throwsCode(() => sealObject(KC.subarray(0, 31), Buffer.alloc(1)), ErrorCodes.BAD_ARGUMENT);
  throwsCode(() => checkObjectId(o.id.subarray(0, 31), o.sealed), ErrorCodes.BAD_ARGUMENT);
});

test('the id check needs no key', () => {
  const o = sealObject(KC, randomData(1000, 4));
  assert.deepEqual(objectId(o.sealed), o.id);
  assert.equal(objectIdMatches(o.id, o.sealed), true);
  checkObjectId(o.id, o.sealed);
  const other = sealObject(KC, randomData(1000, 5));
  throwsCode(() => checkObjectId(o.id, other.sealed), ErrorCodes.OBJECT_MISMATCH);
});
