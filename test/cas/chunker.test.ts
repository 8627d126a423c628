import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { Chunker, chunkerParams, type ChunkerParams } from '../../src/cas/chunker.js';
import { gearTable } from '../../src/cas/gear.js';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { MiB, SLOW, SMALL_CHUNKS, keysOf, randomData, splitAt } from './helpers.js';

const GEAR = gearTable(keysOf('a').gearKey);

function chunkLengths(data: Uint8Array, parts: Uint8Array[] = [data], params: Partial<ChunkerParams> = {}, gear = GEAR): number[] {
  const c = new Chunker(gear, params);
  const lengths: number[] = [];
  const sink = (chunk: Uint8Array): void => {
    lengths.push(chunk.length);
  };
  for (const p of parts) c.push(p, sink);
  c.finish(sink);
  return lengths;
}

function chunkHashes(data: Uint8Array, params: Partial<ChunkerParams> = {}): string[] {
  const c = new Chunker(GEAR, params);
  const out: string[] = [];
  const sink = (chunk: Uint8Array): void => {
    out.push(createHash('sha256').update(chunk).digest('hex'));
  };
  c.push(data, sink);
  c.finish(sink);
  return out;
}

test('chunks cover the input exactly, in order, and are deterministic', () => {
  const data = randomData(4 * MiB, 1);
  const c = new Chunker(GEAR);
  const pieces: Buffer[] = [];
  const sink = (chunk: Uint8Array): void => {
    pieces.push(Buffer.from(chunk));
  };
  c.push(data, sink);
  c.finish(sink);
  assert.ok(Buffer.concat(pieces).equals(data));
  assert.deepEqual(chunkLengths(data), pieces.map((p) => p.length));
});

test('boundaries are identical however the input is split into buffers', () => {
  const data = randomData(256 * 1024, 2);
  const whole = chunkLengths(data, [data], SMALL_CHUNKS);
  assert.ok(whole.length > 100);
  fc.assert(fc.property(fc.array(fc.nat(data.length), { maxLength: 60 }), (cuts) => {
    assert.deepEqual(chunkLengths(data, splitAt(data, cuts), SMALL_CHUNKS), whole);
  }), { numRuns: 200 });
  // One byte at a time, the hardest split.
  const bytes = Array.from({ length: 64 * 1024 }, (_, i) => data.subarray(i, i + 1));
  assert.deepEqual(chunkLengths(data.subarray(0, 64 * 1024), bytes, SMALL_CHUNKS), chunkLengths(data.subarray(0, 64 * 1024), undefined, SMALL_CHUNKS));
});

test('default boundaries are split-invariant too, with buffers around the min/avg/max sizes', () => {
  const data = randomData(3 * MiB, 3);
  const whole = chunkLengths(data);
  for (const step of [1000, 16 * 1024, 64 * 1024 - 1, 256 * 1024 + 1, MiB]) {
    const parts: Uint8Array[] = [];
    for (let at = 0; at < data.length; at += step) parts.push(data.subarray(at, at + step));
    assert.deepEqual(chunkLengths(data, parts), whole, `step ${step}`);
  }
});

test('chunk sizes respect min and max, and average near the target', () => {
  const data = randomData(16 * MiB, 4);
  const lengths = chunkLengths(data);
  const { minSize, maxSize } = chunkerParams();
  lengths.slice(0, -1).forEach((n) => assert.ok(n >= minSize && n <= maxSize, `chunk of ${n} bytes`));
  assert.ok(lengths[lengths.length - 1] <= maxSize);
  const mean = data.length / lengths.length;
  assert.ok(mean > 48 * 1024 && mean < 96 * 1024, `mean chunk ${mean}`);
  // Data without boundaries (all zeros hash to a constant) is cut at min or max, never beyond.
  const zeros = chunkLengths(Buffer.alloc(MiB));
  zeros.slice(0, -1).forEach((n) => assert.ok(n === minSize || n === maxSize || (n > minSize && n < maxSize)));
  assert.equal(zeros.reduce((a, b) => a + b, 0), MiB);
  // Small custom parameters, property-checked.
  fc.assert(fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 64 * 1024 }), (seed, length) => {
    const ls = chunkLengths(randomData(length, seed), undefined, SMALL_CHUNKS);
    ls.slice(0, -1).forEach((n) => assert.ok(n >= SMALL_CHUNKS.minSize && n <= SMALL_CHUNKS.maxSize));
    assert.ok(ls[ls.length - 1] > 0 && ls[ls.length - 1] <= SMALL_CHUNKS.maxSize);
  }), { numRuns: 50 });
});

test('different gear keys give different boundaries', () => {
  const data = randomData(2 * MiB, 5);
  const a = chunkLengths(data, undefined, {}, gearTable(keysOf('a').gearKey));
  const b = chunkLengths(data, undefined, {}, gearTable(keysOf('b').gearKey));
  const cutsA = new Set(a.map((_, i) => a.slice(0, i + 1).reduce((x, y) => x + y, 0)));
  const shared = b.map((_, i) => b.slice(0, i + 1).reduce((x, y) => x + y, 0)).filter((c) => cutsA.has(c) && c !== data.length);
  assert.notDeepEqual(a, b);
  assert.ok(shared.length <= 1, `${shared.length} shared boundaries`);
});

test('a file with one byte inserted at the front reuses >= 95% of its chunks', () => {
  const size = SLOW ? 100 * MiB : 8 * MiB;
  const data = randomData(size, 6);
  const before = new Set(chunkHashes(data));
  const shifted = Buffer.concat([Buffer.from([0x42]), data]);
  const after = chunkHashes(shifted);
  const reused = after.filter((h) => before.has(h)).length;
  assert.ok(reused / after.length >= 0.95, `${reused} of ${after.length} chunks reused`);
});

test('bad parameters and gear tables are refused with BAZIL_BAD_ARGUMENT', () => {
  const bad: Partial<ChunkerParams>[] = [
    { minSize: 32 }, { avgSize: 60000 }, { minSize: 70000 }, { maxSize: 32 * 1024 },
    { maxSize: 128 * 1024 * 1024 }, { normalization: 4 }, { minSize: 1.5 }, { avgSize: Number.NaN },
  ];
  for (const p of bad) {
    assert.throws(() => new Chunker(GEAR, p), (e: unknown) => isBazilError(e, ErrorCodes.BAD_ARGUMENT), JSON.stringify(p));
  }
  assert.throws(() => new Chunker(new Int32Array(10)), (e: unknown) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
  assert.throws(() => gearTable(Buffer.alloc(16)), (e: unknown) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
  assert.deepEqual(chunkerParams({ normalization: 0 }).normalization, 0);
});

test('the ingest addon finds the same boundaries as the JavaScript scan, and refuses bad arguments', async () => {
  const { loadIngestNative } = await import('../../src/cas/ingest-native.js');
  const native = loadIngestNative();
  if (native === null) {
    // Without the addon the chunker runs the JavaScript scan, which the other tests cover.
    return;
  }
  const data = randomData(512 * 1024, 7);
  const lengthsWith = (useNative: boolean, parts: Uint8Array[], params: Partial<ChunkerParams>): number[] => {
    const c = new Chunker(GEAR, params);
    if (!useNative) (c as unknown as { native: null }).native = null;
    const lengths: number[] = [];
    const sink = (chunk: Uint8Array): void => {
      lengths.push(chunk.length);
    };
    for (const p of parts) c.push(p, sink);
    c.finish(sink);
    return lengths;
  };
  for (const params of [SMALL_CHUNKS, {}, { ...SMALL_CHUNKS, normalization: 0 }, { ...SMALL_CHUNKS, normalization: 3 }]) {
    assert.deepEqual(lengthsWith(true, [data], params), lengthsWith(false, [data], params));
  }
  fc.assert(fc.property(fc.array(fc.nat(data.length), { maxLength: 40 }), (cuts) => {
    const parts = splitAt(data, cuts);
    assert.deepEqual(lengthsWith(true, parts, SMALL_CHUNKS), lengthsWith(false, parts, SMALL_CHUNKS));
  }), { numRuns: 100 });
  // Shared memory (the seal slabs) reads the same.
  const shared = new Uint8Array(new SharedArrayBuffer(data.length));
  shared.set(data);
  assert.deepEqual(lengthsWith(true, [shared], SMALL_CHUNKS), lengthsWith(false, [data], SMALL_CHUNKS));

  const state = Int32Array.of(256, 1024, 4096, 0, 0, 0);
  assert.throws(() => native.gearScan(GEAR, data, 10, data.length + 1, 0, state), RangeError);
  assert.throws(() => native.gearScan(GEAR, data, 10, 5, 0, state), RangeError);
  assert.throws(() => native.gearScan(GEAR, data, -1, 5, 0, state), RangeError);
  assert.throws(() => native.gearScan(GEAR.subarray(0, 255), data, 0, 5, 0, state), RangeError);
  assert.throws(() => native.gearScan(GEAR, data, 0, 5, 0, new Int32Array(5)), RangeError);
  assert.throws(() => native.gearScan(GEAR, data as unknown as Uint8Array, 0.5, 5, 0, state), RangeError);
  assert.throws(() => native.gearScan(new Uint32Array(256) as unknown as Int32Array, data, 0, 5, 0, state), TypeError);
  const dst = new Uint8Array(new SharedArrayBuffer(16));
  native.copyInto(dst, 4, data, 100, 112);
  assert.deepEqual([...dst.subarray(4, 16)], [...data.subarray(100, 112)]);
  assert.throws(() => native.copyInto(dst, 8, data, 0, 9), RangeError);
  assert.throws(() => native.copyInto(dst, 17, data, 0, 0), RangeError);
  assert.throws(() => native.copyInto(dst, 0, data, 10, 9), RangeError);
  assert.throws(() => native.copyInto('x' as unknown as Uint8Array, 0, data, 0, 1), TypeError);
});

test('push with `last` gives the boundaries of push then finish, the last chunk as a view of the input', () => {
  const data = randomData(300 * 1024, 9);
  fc.assert(fc.property(fc.array(fc.nat(data.length), { maxLength: 8 }), (cuts) => {
    const parts = splitAt(data, cuts);
    const c = new Chunker(GEAR, SMALL_CHUNKS);
    const views: Uint8Array[] = [];
    const lengths: number[] = [];
    parts.forEach((p, i) => c.push(p, (chunk) => {
      lengths.push(chunk.length);
      views.push(chunk);
    }, i === parts.length - 1));
    assert.deepEqual(lengths, chunkLengths(data, parts, SMALL_CHUNKS));
    const lastPart = parts[parts.length - 1]!;
    const lastChunk = views[views.length - 1]!;
    // The last chunk lies inside the last part unless it began in an earlier one.
    if (lastChunk.length <= lastPart.length && lengths.reduce((a, b) => a + b, 0) - lastChunk.length >= data.length - lastPart.length) {
      assert.equal(lastChunk.buffer, lastPart.buffer);
    }
    // Finished: the chunker starts a new input from scratch.
    const again: number[] = [];
    c.push(data, (chunk) => again.push(chunk.length), true);
    assert.deepEqual(again, chunkLengths(data, [data], SMALL_CHUNKS));
  }), { numRuns: 100 });
  // An empty last push still ends the input.
  const c = new Chunker(GEAR, SMALL_CHUNKS);
  const lengths: number[] = [];
  c.push(data.subarray(0, 100), (chunk) => lengths.push(chunk.length));
  c.push(new Uint8Array(0), (chunk) => lengths.push(chunk.length), true);
  assert.deepEqual(lengths, [100]);
});
