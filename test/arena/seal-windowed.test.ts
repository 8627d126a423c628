// The windowed seal computation (arena/seal.ts computeSealSectionWindowed),
// which the seal worker uses so as not to read a 64 MiB arena whole: for
// any window size, including windows smaller than one record, it gives the
// very section of the whole-buffer computation, and it still catches a
// record changed before sealing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ErrorCodes } from '../../errors/index.js';
import { checksumFrames } from '../../arena/checksum.js';
import { HEADER_LENGTH, encodeFrameUnchecked, frameLength } from '../../arena/format.js';
import { computeSealSection, computeSealSectionWindowed } from '../../arena/seal.js';

/** A records region (the header's bytes included, zeros) with records of the given payload sizes. */
function records(sizes: number[]): { file: Buffer; offsets: Uint32Array; dataEnd: number } {
  const total = HEADER_LENGTH + sizes.reduce((n, s) => n + frameLength(s), 0);
  const file = Buffer.alloc(total);
  const offsets = new Uint32Array(sizes.length);
  let at = HEADER_LENGTH;
  sizes.forEach((size, i) => {
    offsets[i] = at;
    const key = createHash('sha256').update(`key ${i}`).digest();
    const payload = Buffer.alloc(size, i % 251);
    at += encodeFrameUnchecked(file, at, 1, key, payload);
  });
  checksumFrames(file, HEADER_LENGTH, total);
  return { file, offsets, dataEnd: total };
}

const header = Buffer.alloc(HEADER_LENGTH, 7);

test('a windowed seal equals the whole-buffer seal for every window size', () => {
  const sizes = [1, 70_000, 3, 4096, 200_000, 17, 65_536, 9, 1_000_000, 5];
  const { file, offsets, dataEnd } = records(sizes);
  const whole = computeSealSection(file.subarray(HEADER_LENGTH), HEADER_LENGTH, offsets, dataEnd, header, 'mem');
  for (const window of [1, 100, 70_000, 300_000, 4 * 1024 * 1024]) {
    let reads = 0;
    const got = computeSealSectionWindowed((buf, position) => {
      reads++;
      file.copy(buf, 0, position, position + buf.length);
    }, offsets, dataEnd, header, 'mem', window);
    assert.ok(Buffer.from(got.section).equals(Buffer.from(whole.section)), `window ${window}`);
    assert.ok(got.identity.equals(whole.identity));
    assert.ok(reads >= 1 && reads <= sizes.length);
  }
});

test('a windowed seal refuses a record changed before sealing, naming its offset', () => {
  const { file, offsets, dataEnd } = records([100, 200_000, 300]);
  file[offsets[1]! + 40_000] ^= 1;
  assert.throws(
    () => computeSealSectionWindowed((buf, position) => { file.copy(buf, 0, position, position + buf.length); }, offsets, dataEnd, header, 'mem', 4096),
    (err: { code?: string; data?: { offset?: number } }) => err.code === ErrorCodes.CORRUPT_RECORD && err.data?.offset === offsets[1],
  );
});
