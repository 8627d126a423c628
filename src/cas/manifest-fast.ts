// The common case of decodeManifest (manifest.ts) without cbor-x: a node as
// this code encodes it (definite-length arrays, unsigned integers, 32-byte
// byte strings), read in one pass. Opening a big file decodes its root node
// (2,000 entries for 128 MiB), and through cbor-x, which hands out a view
// per byte string that decodeManifest then copied, that was tens of
// milliseconds in a freshly started daemon, in front of the file's first
// read (docs/mount.md, "Round 4: reads").
//
// It accepts only what decodeManifest would accept, with the same result;
// anything else (another shape, a tag, an indefinite length, a value out of
// range, trailing bytes, any invalid field) returns null, and decodeManifest
// then decodes the bytes the general way, which gives its usual result or
// error. The entries' ids and keys are views of one copy of the input.

import type { Manifest, ManifestEntry } from './manifest.js';

/** Heads of the items an entry starts with: an array of 2 (a hole) or 4 (a chunk or node), and a 32-byte string. */
const ARRAY_2 = 0x82;
const ARRAY_4 = 0x84;
const BYTES_1 = 0x58;
const REF_LENGTH = 32;

/** Where decoding stands: the bytes and the offset of the next item. */
interface Cursor {
  bytes: Buffer;
  at: number;
}

const MAJOR_UINT = 0;
const MAJOR_ARRAY = 4;

/**
 * The argument of the item at the cursor (any CBOR width) if it is of
 * major type `major` (an unsigned integer's value, an array's length),
 * moving past its head; -1 for anything else, or past 2^53.
 */
function argument(c: Cursor, major: number): number {
  const { bytes, at } = c;
  if (at >= bytes.length || bytes[at]! >> 5 !== major) return -1;
  const info = bytes[at]! & 0x1f;
  if (info < 24) {
    c.at = at + 1;
    return info;
  }
  if (info === 24 && at + 2 <= bytes.length) {
    c.at = at + 2;
    return bytes[at + 1]!;
  }
  if (info === 25 && at + 3 <= bytes.length) {
    c.at = at + 3;
    return bytes.readUInt16BE(at + 1);
  }
  if (info === 26 && at + 5 <= bytes.length) {
    c.at = at + 5;
    return bytes.readUInt32BE(at + 1);
  }
  if (info === 27 && at + 9 <= bytes.length) {
    const value = bytes.readUInt32BE(at + 1) * 2 ** 32 + bytes.readUInt32BE(at + 5);
    c.at = at + 9;
    return Number.isSafeInteger(value) ? value : -1;
  }
  return -1;
}

/** The node in `input`, or null when it is not in the canonical shape (see above). */
export function decodeManifestFast(input: Uint8Array, version: number): Manifest | null {
  // One copy, which the ids and keys are views of.
  const bytes = Buffer.from(input);
  const end = bytes.length;
  const c: Cursor = { bytes, at: 0 };
  if (argument(c, MAJOR_ARRAY) !== 3 || argument(c, MAJOR_UINT) !== version) return null;
  const size = argument(c, MAJOR_UINT);
  const count = argument(c, MAJOR_ARRAY);
  if (size <= 0 || count <= 0) return null;
  const entries: ManifestEntry[] = new Array<ManifestEntry>(count);
  let sum = 0;
  for (let i = 0; i < count; i++) {
    // The entry's array head and kind are single bytes in every entry this code writes.
    const at = c.at;
    if (at + 2 > end) return null;
    const head = bytes[at]!;
    const kind = bytes[at + 1]!;
    c.at = at + 2;
    const length = argument(c, MAJOR_UINT);
    if (length <= 0) return null;
    if (head === ARRAY_2 && kind === 0) {
      entries[i] = { kind: 'hole', length };
    } else if (head === ARRAY_4 && (kind === 1 || kind === 2)) {
      const idAt = c.at + 2;
      const keyAt = idAt + REF_LENGTH + 2;
      if (keyAt + REF_LENGTH > end || bytes[idAt - 2] !== BYTES_1 || bytes[idAt - 1] !== REF_LENGTH || bytes[keyAt - 2] !== BYTES_1 || bytes[keyAt - 1] !== REF_LENGTH) return null;
      entries[i] = { kind: kind === 1 ? 'chunk' : 'node', length, id: bytes.subarray(idAt, idAt + REF_LENGTH), key: bytes.subarray(keyAt, keyAt + REF_LENGTH) };
      c.at = keyAt + REF_LENGTH;
    } else {
      return null;
    }
    sum += length;
  }
  if (c.at !== end || sum !== size) return null;
  return { size, entries };
}
