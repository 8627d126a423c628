import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { Mph } from '../../arena/mph.js';
import { BazilError, ErrorCodes, isBazilError } from '../../errors/index.js';

const KEY = 32;

/** Reproducible pseudo-random bytes (SplitMix32), so failures can be replayed. */
function randomKeys(count: number, keyLength = KEY, seed = 1): Uint8Array {
  const out = new Uint8Array(count * keyLength);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i += 4) {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    for (let b = 0; b < 4 && i + b < out.length; b++) out[i + b] = z >>> (8 * b);
  }
  return out;
}

/** Keys that differ only in a little-endian counter in their first bytes. */
function counterKeys(count: number, keyLength = KEY): Uint8Array {
  const out = new Uint8Array(count * keyLength);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < count; i++) dv.setUint32(i * keyLength, i, true);
  return out;
}

function assertBijection(mph: Mph, keys: Uint8Array, count: number, keyLength = KEY): void {
  assert.equal(mph.count, count);
  const seen = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const slot = mph.lookup(keys, i * keyLength);
    assert.ok(Number.isInteger(slot) && slot >= 0 && slot < count, `slot ${slot} of key ${i} outside [0, ${count})`);
    assert.equal(seen[slot], 0, `slot ${slot} given twice`);
    seen[slot] = 1;
  }
}

function assertCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BazilError, `expected a BazilError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

test('maps every key set onto [0, n) without collisions', () => {
  for (const count of [0, 1, 2, 3, 10, 100, 1000, 100_000]) {
    const keys = randomKeys(count, KEY, count);
    assertBijection(Mph.build(keys, count, KEY), keys, count);
  }
});

test('structured keys (a counter, all other bytes zero) still hash perfectly', () => {
  for (const count of [2, 1000, 100_000]) {
    const keys = counterKeys(count);
    assertBijection(Mph.build(keys, count, KEY), keys, count);
  }
});

test('keys of other lengths, including ones not a multiple of four', () => {
  for (const keyLength of [0, 1, 4, 7, 8, 13, 33, 100]) {
    const count = keyLength === 0 ? 1 : keyLength === 1 ? 256 : 500;
    // One-byte keys: all 256 of them, since random ones would repeat.
    const keys =
      keyLength === 1 ? Uint8Array.from({ length: 256 }, (_, i) => i) : randomKeys(count, keyLength, keyLength + 7);
    const mph = Mph.build(keys, count, keyLength);
    assertBijection(mph, keys, count, keyLength);
    assertBijection(Mph.deserialize(mph.serialize()), keys, count, keyLength);
  }
});

test('a bijection for any set of distinct keys (property)', () => {
  const key = fc.uint8Array({ minLength: 12, maxLength: 12 });
  const keySets = fc.uniqueArray(key, { maxLength: 300, selector: (k) => Buffer.from(k).toString('hex') });
  fc.assert(
    fc.property(keySets, fc.nat(), (list, seed) => {
      const keys = new Uint8Array(list.length * 12);
      list.forEach((k, i) => keys.set(k, i * 12));
      assertBijection(Mph.build(keys, list.length, 12, { seed }), keys, list.length, 12);
    }),
    { numRuns: 100 },
  );
});

test('the same keys and seed give identical bytes; another seed other bytes', () => {
  const keys = randomKeys(20_000);
  const a = Mph.build(keys, 20_000, KEY, { seed: 7 }).serialize();
  const b = Mph.build(keys, 20_000, KEY, { seed: 7 }).serialize();
  assert.deepEqual(a, b);
  const c = Mph.build(keys, 20_000, KEY, { seed: 8 });
  assert.notDeepEqual(c.serialize(), a);
  assertBijection(c, keys, 20_000);
});

test('is compact: under 2.5 bits per key at 100k keys', () => {
  const keys = randomKeys(100_000, KEY, 3);
  const mph = Mph.build(keys, 100_000, KEY);
  assert.ok(mph.bitsPerKey() < 2.5, `bits/key ${mph.bitsPerKey()}`);
  assert.equal(mph.bitsPerKey(), (mph.serialize().length * 8) / 100_000);
});

test('round-trips through bytes at an unaligned offset of a larger buffer', () => {
  const count = 50_000;
  const keys = randomKeys(count, KEY, 11);
  const built = Mph.build(keys, count, KEY);
  const bytes = built.serialize();
  assert.deepEqual([...bytes.subarray(0, 5)], [0x42, 0x5a, 0x4d, 0x48, 1]);
  assert.equal(new DataView(bytes.buffer).getUint32(8, true), bytes.length);
  for (const offset of [0, 1, 2, 3, 5]) {
    const host = new Uint8Array(bytes.length + 16).fill(0xa5);
    host.set(bytes, offset);
    const loaded = Mph.deserialize(host.subarray(offset, offset + bytes.length));
    assert.equal(loaded.count, count);
    assert.equal(loaded.bitsPerKey(), built.bitsPerKey());
    assert.deepEqual(loaded.serialize(), bytes);
    for (let i = 0; i < count; i++) assert.equal(loaded.lookup(keys, i * KEY), built.lookup(keys, i * KEY));
  }
});

test('lookup honours the offset and answers inside [0, n) for absent keys', () => {
  const count = 1000;
  const keys = randomKeys(count, KEY, 5);
  const mph = Mph.build(keys, count, KEY);
  const shifted = new Uint8Array(KEY + 9);
  shifted.set(keys.subarray(17 * KEY, 18 * KEY), 9);
  assert.equal(mph.lookup(shifted, 9), mph.lookup(keys, 17 * KEY));
  const absent = randomKeys(10_000, KEY, 999);
  for (let i = 0; i < 10_000; i++) {
    const slot = mph.lookup(absent, i * KEY);
    assert.ok(slot >= 0 && slot < count);
  }
  assert.equal(Mph.build(new Uint8Array(0), 0, KEY).lookup(absent), 0);
});

test('duplicate keys are rejected with DUPLICATE_KEY', () => {
  const keys = randomKeys(1000, KEY, 21);
  keys.copyWithin(700 * KEY, 300 * KEY, 301 * KEY);
  assertCode(() => Mph.build(keys, 1000, KEY), ErrorCodes.DUPLICATE_KEY);
  assertCode(() => Mph.build(new Uint8Array(2 * KEY), 2, KEY), ErrorCodes.DUPLICATE_KEY);
});

test('bad arguments are rejected with BAD_ARGUMENT', () => {
  const keys = randomKeys(10);
  assertCode(() => Mph.build(keys, 11, KEY), ErrorCodes.BAD_ARGUMENT);
  assertCode(() => Mph.build(keys, -1, KEY), ErrorCodes.BAD_ARGUMENT);
  assertCode(() => Mph.build(keys, 1.5, KEY), ErrorCodes.BAD_ARGUMENT);
  assertCode(() => Mph.build(keys, 10, KEY, { seed: -1 }), ErrorCodes.BAD_ARGUMENT);
  assertCode(() => Mph.build(keys, 10, KEY, { lambda: 0 }), ErrorCodes.BAD_ARGUMENT);
  assertCode(() => Mph.build(keys, 10, KEY, { alpha: 1.5 }), ErrorCodes.BAD_ARGUMENT);
});

test('every truncation is CORRUPT_ARENA', () => {
  const bytes = Mph.build(randomKeys(3000), 3000, KEY).serialize();
  for (let len = 0; len < bytes.length; len++) {
    assertCode(() => Mph.deserialize(bytes.subarray(0, len)), ErrorCodes.CORRUPT_ARENA);
  }
  const longer = new Uint8Array(bytes.length + 4);
  longer.set(bytes);
  assertCode(() => Mph.deserialize(longer), ErrorCodes.CORRUPT_ARENA);
});

test('a wrong magic is CORRUPT_ARENA, an unknown version UNSUPPORTED_FORMAT', () => {
  const bytes = Mph.build(randomKeys(100), 100, KEY).serialize();
  const magic = bytes.slice();
  magic[0] ^= 1;
  assertCode(() => Mph.deserialize(magic), ErrorCodes.CORRUPT_ARENA);
  const version = bytes.slice();
  version[4] = 2;
  assertCode(() => Mph.deserialize(version), ErrorCodes.UNSUPPORTED_FORMAT);
});

test('every flipped bit is rejected or still answers inside [0, n), never hangs', () => {
  const count = 2000;
  const keys = randomKeys(count, KEY, 77);
  const bytes = Mph.build(keys, count, KEY).serialize();
  let rejected = 0;
  for (let bit = 0; bit < bytes.length * 8; bit++) {
    const damaged = bytes.slice();
    damaged[bit >>> 3] ^= 1 << (bit & 7);
    let mph: Mph;
    try {
      mph = Mph.deserialize(damaged);
    } catch (err) {
      const expected = bit >>> 3 === 4 ? ErrorCodes.UNSUPPORTED_FORMAT : ErrorCodes.CORRUPT_ARENA;
      assert.ok(isBazilError(err, expected), `bit ${bit}: ${String(err)}`);
      rejected++;
      continue;
    }
    for (let i = 0; i < count; i += 7) {
      const slot = mph.lookup(keys, i * KEY);
      assert.ok(Number.isInteger(slot) && slot >= 0 && slot < mph.count, `bit ${bit}: slot ${slot}`);
    }
  }
  assert.ok(rejected > 0);
});

test('a hostile header cannot make the loader allocate for keys it does not hold', () => {
  const bytes = Mph.build(randomKeys(100), 100, KEY).serialize();
  for (const [at, value] of [
    [12, 0x7fffffff], // count
    [16, 0xffffffff], // key length
    [24, 0xffffffff], // table size
    [28, 0x7fffffff], // buckets
    [32, 0xffffffff], // pilot high bits
    [36, 0xffffffff], // remap high bits
  ] as const) {
    const damaged = bytes.slice();
    new DataView(damaged.buffer).setUint32(at, value, true);
    assertCode(() => Mph.deserialize(damaged), ErrorCodes.CORRUPT_ARENA);
  }
});

// Format 1 as first written (commit b50faae, the builder that produced
// test/fixtures/arena-v1): Mph.build(randomKeys(3000, 32, 2024), 3000, 32).
// Sealed arenas keep these bytes forever, so every later reader must give
// the same slots.
const FORMAT_1 = [
  '425a4d48010406003c030000b80b00002000000000000000d70b0000ee0200005b0600004d0000000302040404050505',
  '05050504050505050505050505060506060505050606060505060605050607070607070607070600005e207f0a6e31c2',
  '10dc0a00b8ed05e31b3ed685f8a813a268530578f89546c91685c96132972a699eb152b3125ca483dc198f03e1c4cf20',
  '925a7ad8518e675704aaa2344be004d2d504c4812642c230b10b9693a38bd53f9ef304276a39f4fca7b5654f7bb6a4d7',
  'd3c1ad07e539ba24806ea2400ba52a7032318c1b85c0651afc2c3d751f8ca6282f577460bcc94b42100b568e79418e2d',
  'c58691f4968302f9051500047f884ad88dbc999941108b4043c1385c2f6490e490e51d5d0b29c0a6f18b30c19e09cf9f',
  '8536f91c622c51dcb75456ffc1258e40fdc5a42efbfdb68b7d46002f39aa85b8582900617e630968d0904608489a2db3',
  '0400d642cd1e8d4a900809baa80f98f1d5b66a1867b209287000e89bbe80030005fc5f788047d1a802bef100122e02e4',
  '0a2c61dd011fb3b13c2c0a0228130000c2220788b005010ea8a1e131cc038f4034b0c0b0a300b033c0617585dd03fb64',
  '50d637857b76a9da52dd810534021a20c37b1102a10100192158fc34ca08af33066b6fc5c14649003d60019ce6b7bbd8',
  '008680f045391591301c402390f5066e171c82c0c74900b6ec00001ded2f5f5405002696b09c445b936f94dbc50838fc',
  '1a0855f10b28cc45a03434c3bf40cc357cdb113b63b8665f01000e008002b058aa84ad6ef665885f5001050e076083d6',
  '05a03e2d90001ee0c2470700f76190e6cf8045b4eb7612bb87eca03d9d6fd8a3408fdb9285ed41a430de1c08f0a2a18f',
  'e90928fd465f7d214a423a10d2897110d189e68ce2b87188dae0a588c1dc14cd30363caf106cf96c0802686355a2c3c5',
  'ec0114633072c8c281b55c6bba064f0f69d91416c59fe652da98d638f3e28c2611ddbc60c4f50f880ce0b0aefa133f96',
  '1b1263930f0e4309fcb1c17f3b80070660f3d545a4f1013e2142c800fb21c338424c3a04dfb76930fc7d9fc7012706df',
  'cbe76b005c04cc549cb1c1f27e01060591b8de07cf03d0040e6e0cb5c706ce27bed7b01ebc3fd5189cf5a59a7ee96202',
  'ab00b6d544452bb012120000',
].join('');
const FORMAT_1_SLOTS_SHA256 = '6523eea4b59cee5f6021d80fe1878d5670ff424d96520f3040aa6630be53ca93';

test('reads the frozen format 1 bytes to the same slots', () => {
  const keys = randomKeys(3000, KEY, 2024);
  const mph = Mph.deserialize(Buffer.from(FORMAT_1, 'hex'));
  assertBijection(mph, keys, 3000);
  const slots = new Uint32Array(3000);
  for (let i = 0; i < 3000; i++) slots[i] = mph.lookup(keys, i * KEY);
  assert.equal(createHash('sha256').update(slots).digest('hex'), FORMAT_1_SLOTS_SHA256);
});
