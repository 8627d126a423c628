import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decode as cborxDecode } from 'cbor-x';
import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { decodeCanonical, encodeCanonical, type DecodedValue, type EncodableValue } from '../../src/log/canonical-cbor.js';

const int = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.constantFrom(23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -24, -25, -256, -257, -(2 ** 32), -(2 ** 32) - 1),
  fc.maxSafeInteger(),
  fc.bigInt({ min: -(1n << 64n) + 1n, max: (1n << 64n) - 1n }),
);
const leaf: fc.Arbitrary<EncodableValue> = fc.oneof(
  int,
  fc.string({ unit: 'binary', maxLength: 70 }).filter((s) => !/[\uD800-\uDFFF]/.test(s)),
  fc.uint8Array({ maxLength: 300 }),
  fc.boolean(),
  fc.constant(null),
);
const { value } = fc.letrec<{ value: EncodableValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 5 }),
  ),
}));

/** One comparable form for what went in and what came out. */
function plain(v: EncodableValue | DecodedValue): unknown {
  if (typeof v === 'number' || typeof v === 'bigint') return BigInt(v);
  if (v instanceof Uint8Array) return `bytes:${Buffer.from(v).toString('hex')}`;
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return [...v].map(([k, x]) => [k, plain(x)]);
  if (v !== null && typeof v === 'object') return Object.entries(v).map(([k, x]) => [k, plain(x)]);
  return v;
}

test('values round-trip, and what is accepted re-encodes to the same bytes', () => {
  fc.assert(fc.property(value, (v) => {
    const bytes = encodeCanonical(v);
    const back = decodeCanonical(bytes);
    assert.deepEqual(plain(back), plain(v));
    assert.deepEqual(encodeCanonical(back), bytes);
  }), { numRuns: 500 });
});

test('integers and lengths take their shortest form', () => {
  const hex = (v: EncodableValue): string => encodeCanonical(v).toString('hex');
  assert.equal(hex(23), '17');
  assert.equal(hex(24n), '1818');
  assert.equal(hex(2 ** 32 - 1), '1affffffff');
  assert.equal(hex(2 ** 32), '1b0000000100000000');
  assert.equal(hex(-(2n ** 32n)), '3affffffff');
  assert.equal(hex((1n << 64n) - 1n), '1bffffffffffffffff');
  assert.equal(hex('a'.repeat(24)), `7818${'61'.repeat(24)}`);
  assert.equal(hex(Buffer.alloc(2)), '420000');
  assert.equal(hex({ b: 1, a: 2 }), 'a2616201616102');
  assert.throws(() => encodeCanonical(1.5), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
  assert.throws(() => encodeCanonical(1n << 64n), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
});

test('everything outside the canonical subset is refused with CORRUPT_EVENT', () => {
  const refused = [
    '1805', // 5 in two bytes
    '190017', // 23 in three bytes
    '1a0000ffff', '1b00000000ffffffff', '3800', '5801ff', '7800',
    '9f01ff', '5fff', '7fff', 'bf6161 01ff'.replace(' ', ''), // indefinite lengths
    'c11a514b67b0', 'd8 2a 01'.replace(/ /g, ''), // tags
    'f93c00', 'fa3f800000', 'fb3ff0000000000000', 'f7', 'f0', 'f820', // floats, undefined, simple values
    '1c', '3e', '5d', // reserved additional information
    '0101', // trailing bytes
    '', '18', '42ff', '83 01 02'.replace(/ /g, ''), // truncated
    '5bffffffffffffffff', '5a7fffffff', '9a7fffffff', 'ba7fffffff', // huge lengths
    'a2616101616102', // duplicate key
    'a10101', // integer key
    '62c328', // invalid UTF-8
    '61ff',
  ];
  for (const h of refused) {
    assert.throws(() => decodeCanonical(Buffer.from(h, 'hex')), (e) => isBazilError(e, ErrorCodes.CORRUPT_EVENT), h);
  }
  const deep = Buffer.concat([Buffer.alloc(40, 0x81), Buffer.from([0])]);
  assert.throws(() => decodeCanonical(deep), (e) => isBazilError(e, ErrorCodes.CORRUPT_EVENT));
  assert.throws(() => decodeCanonical(Buffer.from('f7', 'hex'), ErrorCodes.CORRUPT_METADATA), (e) => isBazilError(e, ErrorCodes.CORRUPT_METADATA));
});

test('hostile bytes: only values or CORRUPT_EVENT, and what is accepted is what cbor-x reads', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    let v: DecodedValue;
    try {
      v = decodeCanonical(bytes);
    } catch (err) {
      assert.ok(isBazilError(err, ErrorCodes.CORRUPT_EVENT), String(err));
      return;
    }
    assert.deepEqual(encodeCanonical(v), Buffer.from(bytes));
    assert.deepEqual(plain(cborxDecode(Buffer.from(bytes)) as DecodedValue), plain(v));
  }), { numRuns: 5000 });
});

test('-2^64, which cbor-x would write as a bignum tag, is refused on both sides', () => {
  assert.throws(() => encodeCanonical(-(1n << 64n)), (err: unknown) => isBazilError(err, ErrorCodes.BAD_ARGUMENT));
  assert.throws(() => decodeCanonical(Buffer.from('3bffffffffffffffff', 'hex')), (err: unknown) => isBazilError(err, ErrorCodes.CORRUPT_EVENT));
  assert.equal(decodeCanonical(encodeCanonical(-(1n << 64n) + 1n)), -(1n << 64n) + 1n);
});
