import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { VersionVector } from '../../src/log/version-vector.js';
import { encodeCanonical } from '../../src/log/canonical-cbor.js';
import { bytesOf } from './helpers.js';

const writers = [0, 1, 2, 3, 4].map((i) => bytesOf(`writer ${i}`));
const vv = fc.array(fc.tuple(fc.constantFrom(...writers), fc.bigInt({ min: 0n, max: 20n })), { maxLength: 8 }).map((p) => VersionVector.from(p));

test('merge is commutative, associative and idempotent, and an upper bound', () => {
  fc.assert(fc.property(vv, vv, vv, (a, b, c) => {
    assert.ok(a.merge(b).equals(b.merge(a)));
    assert.ok(a.merge(b).merge(c).equals(a.merge(b.merge(c))));
    assert.ok(a.merge(a).equals(a));
    assert.ok(a.isCoveredBy(a.merge(b)) && b.isCoveredBy(a.merge(b)));
  }));
});

test('compare is consistent with merge and antisymmetric', () => {
  const flip = { before: 'after', after: 'before', equal: 'equal', concurrent: 'concurrent' } as const;
  fc.assert(fc.property(vv, vv, (a, b) => {
    const o = a.compare(b);
    assert.equal(b.compare(a), flip[o]);
    const m = a.merge(b);
    if (o === 'before' || o === 'equal') assert.ok(m.equals(b));
    if (o === 'after' || o === 'equal') assert.ok(m.equals(a));
    if (o === 'concurrent') assert.ok(!m.equals(a) && !m.equals(b));
  }));
  const [w0, w1] = writers;
  const a = VersionVector.from([[w0, 2n]]);
  const b = VersionVector.from([[w0, 2n], [w1, 1n]]);
  const c = VersionVector.from([[w1, 3n]]);
  assert.equal(a.compare(b), 'before');
  assert.equal(b.compare(a), 'after');
  assert.equal(a.compare(c), 'concurrent');
  assert.equal(VersionVector.EMPTY.compare(VersionVector.from([[w0, 0n]])), 'equal');
  assert.ok(b.includes(w1, 1n) && !b.includes(w1, 2n) && b.includes(writers[4], 0n));
  assert.equal(b.without(w0).get(w0), 0n);
});

test('the encoding is canonical: sorted pairs, zeros left out, and it round-trips', () => {
  fc.assert(fc.property(vv, (a) => {
    const bytes = a.encode();
    const back = VersionVector.decode(bytes);
    assert.ok(back.equals(a));
    assert.deepEqual(back.encode(), bytes);
    const pairs = a.pairs();
    for (let i = 1; i < pairs.length; i++) assert.ok(Buffer.compare(pairs[i - 1][0], pairs[i][0]) < 0);
  }));
  // Insertion order does not matter.
  const x = VersionVector.from([[writers[3], 1n], [writers[1], 9n], [writers[2], 0n]]);
  const y = VersionVector.from([[writers[1], 9n], [writers[3], 1n]]);
  assert.deepEqual(x.encode(), y.encode());
  assert.deepEqual(x.toJSON(), { [writers[1].toString('hex')]: '9', [writers[3].toString('hex')]: '1' });
});

test('non-canonical encodings are refused', () => {
  const [w0, w1] = [...writers].sort(Buffer.compare);
  const bad = (v: Parameters<typeof encodeCanonical>[0]): void => {
    assert.throws(() => VersionVector.decode(encodeCanonical(v)), (e) => isBazilError(e, ErrorCodes.CORRUPT_EVENT));
  };
  bad([[w1, 1], [w0, 1]]);
  bad([[w0, 1], [w0, 2]]);
  bad([[w0, 0]]);
  bad([[w0.subarray(1), 1]]);
  bad([[w0, 1, 2]]);
  bad({ a: 1 });
  bad([[w0, -1]]);
  assert.throws(() => VersionVector.from([[w0, -1n]]), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
  assert.throws(() => VersionVector.from([[Buffer.alloc(3), 1n]]), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
});
