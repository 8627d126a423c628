// The boundary between the projection's records as the code reads and
// writes them (keys with names in the clear, plain values) and as LevelDB
// and checkpoints store them (names hashed, values sealed), driven by the
// table layouts of schema.ts so that every table, including ones added
// later, is protected without per-field code (docs/projection.md,
// "Encryption").

import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { ProjectionCipher } from './cipher.js';
import { TABLE_LAYOUTS, type TableLayout } from './schema.js';

export interface RecordCodec {
  /** The stored form of a key, or of a range bound (a bound that stops before the name is kept). */
  storedKey(key: Buffer): Buffer;
  /** A record as stored. */
  encode(key: Buffer, value: Buffer): [Buffer, Buffer];
  /** A stored record as the code sees it; CORRUPT_METADATA when it does not open. */
  decode(storedKey: Buffer, storedValue: Buffer): [Buffer, Buffer];
}

/** Records stored as they are: the schema before encryption (projection versions 1 and 2, read by migrations). */
export const PLAIN_CODEC: RecordCodec = {
  storedKey: (key) => key,
  encode: (key, value) => [key, value],
  decode: (key, value) => [key, value],
};

const SEALED_UNKNOWN: TableLayout = { nameAt: null, clear: false };
/** Names of files and xattrs are at most 255 bytes; a u16 length leaves room. */
const NAME_LENGTH_BYTES = 2;

export class SealingCodec implements RecordCodec {
  constructor(readonly cipher: ProjectionCipher) {}

  storedKey(key: Buffer): Buffer {
    const { nameAt } = layout(key);
    if (nameAt === null || key.length <= nameAt) return key;
    return Buffer.concat([key.subarray(0, nameAt), this.cipher.nameTag(key.subarray(nameAt - 32, nameAt), key.subarray(nameAt))]);
  }

  encode(key: Buffer, value: Buffer): [Buffer, Buffer] {
    const l = layout(key);
    if (l.keepName === false) return [this.storedKey(key), value];
    if (l.clear) return [key, value];
    if (l.nameAt === null || key.length <= l.nameAt) return [key, this.cipher.seal(key, value)];
    const stored = this.storedKey(key);
    const name = key.subarray(l.nameAt);
    if (name.length > 0xffff) throw new BazilError(ErrorCodes.INTERNAL, 'a name longer than 65535 bytes in a projection key');
    const len = Buffer.alloc(NAME_LENGTH_BYTES);
    len.writeUInt16BE(name.length);
    return [stored, this.cipher.seal(stored, Buffer.concat([len, name, value]))];
  }

  decode(storedKey: Buffer, storedValue: Buffer): [Buffer, Buffer] {
    const l = layout(storedKey);
    if (l.clear) return [storedKey, storedValue];
    const plain = this.cipher.open(storedKey, storedValue);
    if (l.nameAt === null || storedKey.length <= l.nameAt) return [storedKey, plain];
    if (plain.length < NAME_LENGTH_BYTES) throw corrupt('a sealed named record is too short');
    const end = NAME_LENGTH_BYTES + plain.readUInt16BE(0);
    if (end > plain.length) throw corrupt('a sealed named record is truncated');
    return [Buffer.concat([storedKey.subarray(0, l.nameAt), plain.subarray(NAME_LENGTH_BYTES, end)]), plain.subarray(end)];
  }
}

function layout(key: Buffer): TableLayout {
  return key.length === 0 ? SEALED_UNKNOWN : TABLE_LAYOUTS.get(key[0]!) ?? SEALED_UNKNOWN;
}

function corrupt(why: string): BazilError {
  return new BazilError(ErrorCodes.CORRUPT_METADATA, `projection: ${why}`);
}
