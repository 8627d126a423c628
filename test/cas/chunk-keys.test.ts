// Chunk keys by content format (src/cas/chunk-keys.ts): format 2's BLAKE3
// in the addon (BLAKE3's C code) against hash-wasm's, a published test
// vector, format 1 against node:crypto's HMAC, and content stores of the
// two formats: the same content, different keys and objects, both read back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createBLAKE3 } from 'hash-wasm';
import { blake3Native, chunkKeyer, chunkKeyOf, hmacChunkKeyer } from '../../src/cas/chunk-keys.js';
import { loadIngestNative } from '../../src/cas/ingest-native.js';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { keysOf, randomData, withStore, SMALL_CHUNKS } from './helpers.js';

const LENGTHS = [0, 1, 63, 64, 65, 1023, 1024, 1025, 4096, 65_536, 262_151];

/** Runs `fn` with the addon hidden (BAZIL_NO_NATIVE=1): keyers made inside take the JavaScript paths. */
async function withoutNative<T>(fn: () => Promise<T>): Promise<T> {
  const saved = process.env['BAZIL_NO_NATIVE'];
  process.env['BAZIL_NO_NATIVE'] = '1';
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env['BAZIL_NO_NATIVE'];
    else process.env['BAZIL_NO_NATIVE'] = saved;
  }
}

test('format 2 keys are keyed BLAKE3: the published vector, and hash-wasm byte for byte', async () => {
  // From BLAKE3's test vectors: the keyed hash of the empty input under this key.
  const vectorKey = Buffer.from('whats the Elvish word for friend');
  const keyer = await chunkKeyer(2, vectorKey);
  assert.equal(chunkKeyOf(keyer, Buffer.alloc(0)).toString('hex'), '92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26');
  const secret = Buffer.from(keysOf('k').chunkKey);
  const reference = await createBLAKE3(256, secret);
  const shared = new Uint8Array(new SharedArrayBuffer(300_000));
  for (const length of LENGTHS) {
    const data = randomData(length, length);
    reference.init();
    reference.update(data);
    const expected = Buffer.from(reference.digest('binary'));
    assert.ok(chunkKeyOf(await chunkKeyer(2, secret), data).equals(expected), `${length} bytes`);
    // At an offset, from shared memory, into an offset of the output.
    shared.set(data, 7);
    const out = Buffer.alloc(40);
    (await chunkKeyer(2, secret)).keyInto(shared, 7, 7 + length, out, 8);
    assert.ok(out.subarray(8).equals(expected), `${length} bytes from shared memory`);
  }
  const js = await withoutNative(() => chunkKeyer(2, secret));
  for (const length of LENGTHS) {
    const data = randomData(length, length + 1);
    reference.init();
    reference.update(data);
    assert.ok(chunkKeyOf(js, data).equals(Buffer.from(reference.digest('binary'))), `hash-wasm path, ${length} bytes`);
  }
});

test('the ingest addon has BLAKE3 where BLAKE3\'s sources were there to build it', () => {
  const addon = loadIngestNative();
  if (addon === null) return;
  // scripts/setup.sh installs the sources on Debian, so a build there has it.
  if (process.env['CI'] === 'true') assert.ok(blake3Native(), 'the addon was built without BLAKE3');
  if (addon.blake3KeyedInto === undefined) return;
  const src = randomData(100, 1);
  assert.throws(() => addon.blake3KeyedInto!(Buffer.alloc(31), src, 0, 100, new Uint8Array(32), 0), RangeError);
  assert.throws(() => addon.blake3KeyedInto!(Buffer.alloc(32), src, 0, 101, new Uint8Array(32), 0), RangeError);
  assert.throws(() => addon.blake3KeyedInto!(Buffer.alloc(32), src, 0, 100, new Uint8Array(32), 1), RangeError);
  assert.throws(() => addon.blake3KeyedInto!('k' as unknown as Uint8Array, src, 0, 1, new Uint8Array(32), 0), TypeError);
});

test('format 1 keys are HMAC-SHA256, with the addon and without', async () => {
  const secret = Buffer.from(keysOf('h').chunkKey);
  const js = await withoutNative(() => chunkKeyer(1, secret));
  for (const length of LENGTHS) {
    const data = randomData(length, length);
    const expected = createHmac('sha256', secret).update(data).digest();
    assert.ok(chunkKeyOf(hmacChunkKeyer(secret), data).equals(expected), `${length} bytes`);
    assert.ok(chunkKeyOf(js, data).equals(expected), `node:crypto path, ${length} bytes`);
  }
});

test('unknown formats and secrets of the wrong length are refused with BAZIL_BAD_ARGUMENT', async () => {
  const bad = (err: unknown): boolean => isBazilError(err) && err.code === ErrorCodes.BAD_ARGUMENT;
  await assert.rejects(chunkKeyer(3 as 1, Buffer.alloc(32)), bad);
  await assert.rejects(chunkKeyer(2, Buffer.alloc(16)), bad);
  assert.throws(() => hmacChunkKeyer(Buffer.alloc(33)), bad);
});

test('stores of the two formats: the same file gets other keys and objects, each reads back', async () => {
  const data = randomData(200_000, 9);
  const keys = keysOf('f');
  const results = [];
  for (const format of [1, 2] as const) {
    for (const sealWorkers of [0, 1]) {
      const keyer = await chunkKeyer(format, keys.chunkKey);
      results.push(await withStore(async (store) => {
        const written = await store.writeBuffer(data);
        const back = await store.read(written.manifestRoot, 0, data.length);
        assert.ok(back.equals(data), `format ${format}, ${sealWorkers} workers: read back`);
        return written.manifestRoot;
      }, { keys, keyer, sealWorkers, chunking: SMALL_CHUNKS }));
    }
  }
  const [f1, f1w, f2, f2w] = results;
  // With and without a worker, one format gives the same manifest; the two formats differ.
  assert.deepEqual(f1, f1w);
  assert.deepEqual(f2, f2w);
  assert.notDeepEqual(f1, f2);
});
