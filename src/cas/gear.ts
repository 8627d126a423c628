// The chunker's gear table: 256 pseudo-random 32-bit words, one per byte
// value, derived from the volume's gear key.
//
// Content-defined chunk boundaries are a function of the content and of
// this table. A public table would let anyone who sees object sizes (a
// store) recognise a known file by its sequence of chunk lengths; a table
// derived from a per-volume secret makes the lengths of one volume
// unpredictable without that secret (docs/crypto.md).

import { hkdfSync } from 'node:crypto';
import { BazilError, ErrorCodes } from '../../errors/index.js';

export const GEAR_KEY_LENGTH = 32;
const TABLE_INFO = 'bazil/v1/gear-table';

/**
 * A gear table. Held as signed 32-bit words: the chunker's rolling hash then
 * stays in V8's small-integer range, which keeps its inner loop fast. The
 * bits are the same as the unsigned words of docs/crypto.md.
 */
export type GearTable = Int32Array;

/**
 * Derives the table from a 32-byte gear key: HKDF-SHA256(ikm = key, empty
 * salt, info = "bazil/v1/gear-table") expanded to 1,024 bytes, read as 256
 * little-endian u32 words. The key is already uniformly random (itself an
 * HKDF output), so this only stretches it, under a label of its own.
 */
export function gearTable(gearKey: Uint8Array): GearTable {
  if (!(gearKey instanceof Uint8Array) || gearKey.length !== GEAR_KEY_LENGTH) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `a gear key is ${GEAR_KEY_LENGTH} bytes`);
  }
  const bytes = Buffer.from(hkdfSync('sha256', gearKey, Buffer.alloc(0), TABLE_INFO, 1024));
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = bytes.readInt32LE(i * 4);
  return table;
}
