// The seal computation (arena/seal.ts): the windowed form, which the seal
// worker uses so as not to read a 64 MiB arena whole, gives for any window
// size, including windows smaller than one record, the very section of the
// whole-buffer computation; digests known from the appends (format 2) give
// the same section as reading every record back, and only the records whose
// digests are unknown are read; a record changed before sealing is caught.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ErrorCodes } from '../../errors/index.js';
import { checksumFrames } from '../../arena/checksum.js';
import { HEADER_LENGTH, KEYTAB_ENTRY_LENGTH, KEY_LENGTH, encodeFrameUnchecked, frameLength } from '../../arena/format.js';
import { type KnownDigests, computeSealSection, computeSealSectionWindowed, noKnownDigests } from '../../arena/seal.js';

const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** A records region (the header's bytes included, zeros) with records of the given payload sizes, and their key table. */
function records(sizes: number[]): { file: Buffer; offsets: Uint32Array; dataEnd: number; keytab: Buffer } {
  const total = HEADER_LENGTH + sizes.reduce((n, s) => n + frameLength(s), 0);
  const file = Buffer.alloc(total);
  const offsets = new Uint32Array(sizes.length);
  const keytab = Buffer.alloc(sizes.length * KEYTAB_ENTRY_LENGTH);
  let at = HEADER_LENGTH;
  sizes.forEach((size, i) => {
    offsets[i] = at;
    const key = sha(Buffer.from(`key ${i}`));
    const payload = Buffer.alloc(size, i % 251);
    at += encodeFrameUnchecked(file, at, 1, key, payload);
    // The format-2 digest, written out from its definition in docs/formats.md.
    key.copy(keytab, i * KEYTAB_ENTRY_LENGTH);
    sha(file.subarray(offsets[i]!, offsets[i]! + 37), sha(payload)).copy(keytab, i * KEYTAB_ENTRY_LENGTH + KEY_LENGTH);
  });
  checksumFrames(file, HEADER_LENGTH, total);
  return { file, offsets, dataEnd: total, keytab };
}

const header = Buffer.alloc(HEADER_LENGTH, 7);
const sizes = [1, 70_000, 3, 4096, 200_000, 17, 65_536, 9, 1_000_000, 5];

test('a windowed seal equals the whole-buffer seal for every window size', () => {
  const { file, offsets, dataEnd } = records(sizes);
  const all = noKnownDigests(sizes.length);
  const whole = computeSealSection(file.subarray(HEADER_LENGTH), HEADER_LENGTH, offsets, dataEnd, header, all, 'mem');
  for (const window of [1, 100, 70_000, 300_000, 4 * 1024 * 1024]) {
    let reads = 0;
    const got = computeSealSectionWindowed((buf, position) => {
      reads++;
      file.copy(buf, 0, position, position + buf.length);
    }, offsets, dataEnd, header, all, 'mem', window);
    assert.ok(Buffer.from(got.section).equals(Buffer.from(whole.section)), `window ${window}`);
    assert.ok(got.identity.equals(whole.identity));
    assert.ok(reads >= 1 && reads <= sizes.length);
  }
});

test('records read back get the format-2 digest, head and payload hash, in the key table', () => {
  const { file, offsets, dataEnd, keytab } = records(sizes);
  const got = computeSealSection(file.subarray(HEADER_LENGTH), HEADER_LENGTH, offsets, dataEnd, header, noKnownDigests(sizes.length), 'mem');
  const keytabAt = Math.ceil(dataEnd / 8) * 8 - dataEnd;
  assert.ok(Buffer.from(got.section.subarray(keytabAt, keytabAt + keytab.length)).equals(keytab));
  assert.ok(got.identity.equals(sha(header, keytab)));
});

test('digests known from the appends give the same seal, reading only the records before them', () => {
  const { file, offsets, dataEnd, keytab } = records(sizes);
  const whole = computeSealSection(file.subarray(HEADER_LENGTH), HEADER_LENGTH, offsets, dataEnd, header, noKnownDigests(sizes.length), 'mem');
  for (const recovered of [0, 1, 4, sizes.length - 1, sizes.length]) {
    // The entries of recovered records hold only their keys; the rest is garbage that must be overwritten.
    const partial = Buffer.from(keytab);
    for (let i = 0; i < recovered; i++) partial.fill(0xee, i * KEYTAB_ENTRY_LENGTH + KEY_LENGTH, (i + 1) * KEYTAB_ENTRY_LENGTH);
    const known: KnownDigests = { keytab: partial, recovered };
    const readUpTo = recovered < sizes.length ? offsets[recovered]! : dataEnd;
    let lastByte = 0;
    const got = computeSealSectionWindowed((buf, position) => {
      lastByte = Math.max(lastByte, position + buf.length);
      file.copy(buf, 0, position, position + buf.length);
    }, offsets, dataEnd, header, known, 'mem', 100_000);
    assert.ok(Buffer.from(got.section).equals(Buffer.from(whole.section)), `recovered ${recovered}`);
    assert.ok(lastByte <= readUpTo, `recovered ${recovered}: read up to ${lastByte}, past ${readUpTo}`);
    assert.equal(lastByte === 0, recovered === 0);
    const inline = computeSealSection(file.subarray(HEADER_LENGTH, readUpTo), HEADER_LENGTH, offsets, dataEnd, header, known, 'mem');
    assert.ok(inline.identity.equals(whole.identity));
  }
});

test('a windowed seal refuses a record changed before sealing, naming its offset', () => {
  const { file, offsets, dataEnd } = records([100, 200_000, 300]);
  file[offsets[1]! + 40_000] ^= 1;
  assert.throws(
    () => computeSealSectionWindowed((buf, position) => { file.copy(buf, 0, position, position + buf.length); }, offsets, dataEnd, header, noKnownDigests(3), 'mem', 4096),
    (err: { code?: string; data?: { offset?: number } }) => err.code === ErrorCodes.CORRUPT_RECORD && err.data?.offset === offsets[1],
  );
});
