// The on-disk format of arena files, versions 1 and 2. docs/formats.md
// gives the same layout byte for byte; the two must change together, and a
// released version is never changed: sealed arenas are read forever.

import { createHash, hash } from 'node:crypto';
import { BazilError, ErrorCodes } from '../errors/index.js';
import { CHECKSUM_LENGTH, checksumInto, checksumMatches } from './checksum.js';
import { copyBytes } from './shared-copy.js';

/**
 * The version new arenas are written in. Version 2 differs from 1 only in
 * the key table's record digest (recordDigest), which lets an arena be
 * sealed without reading its records back.
 */
export const FORMAT_VERSION = 2;

export const HEADER_MAGIC = Buffer.from('BAZILARN', 'latin1');
export const FOOTER_MAGIC = Buffer.from('BZSEALED', 'latin1');
export const HEADER_LENGTH = 128;
export const FOOTER_LENGTH = 128;
export const KEY_LENGTH = 32;
export const ID_LENGTH = 32;

/** len u32 | type u8 | key 32 bytes, then payload, then the checksum. */
export const FRAME_HEAD_LENGTH = 4 + 1 + KEY_LENGTH;
export const FRAME_OVERHEAD = FRAME_HEAD_LENGTH + CHECKSUM_LENGTH;

/**
 * Record offsets are stored as u32, so an arena's records must end below
 * 4 GiB. The size bound (default 64 MiB) keeps arenas far smaller; this cap
 * only stops a pathological single record.
 */
export const MAX_PAYLOAD_LENGTH = 256 * 1024 * 1024;
export const MAX_DATA_END = 0xffff_ffff;

export const DIGEST_LENGTH = 32;
/** Key table entry: the record's key, then its digest (recordDigest). */
export const KEYTAB_ENTRY_LENGTH = KEY_LENGTH + DIGEST_LENGTH;

/**
 * The key table's digest of a record in a version-2 arena:
 * SHA-256(frame head (len, type, key) ‖ SHA-256(payload)). Its input is
 * 69 bytes once the payload's hash is known, and writers usually know it
 * already (a content object's id is that hash), so sealing hashes no
 * payload twice and reads nothing back. Version 1 digested the whole frame
 * (frameDigestV1).
 */
export function recordDigest(head: Uint8Array, headAt: number, payloadHash: Uint8Array): Buffer {
  return createHash('sha256').update(head.subarray(headAt, headAt + FRAME_HEAD_LENGTH)).update(payloadHash).digest();
}

/** The version-1 key table digest: SHA-256 of the record's whole frame, checksum included. */
function frameDigestV1(frame: Uint8Array, at: number, end: number): Buffer {
  return hash('sha256', frame.subarray(at, end), 'buffer');
}

/** The key table digest of the whole frame frame[at, end) in an arena of `version`. */
export function digestOfFrame(version: number, frame: Uint8Array, at: number, end: number): Buffer {
  if (version === 1) return frameDigestV1(frame, at, end);
  return recordDigest(frame, at, hash('sha256', frame.subarray(at + FRAME_HEAD_LENGTH, end - CHECKSUM_LENGTH), 'buffer'));
}

const OPEN_LAST_SEQ = 0xffff_ffff_ffff_ffffn;
const KIND_LENGTH = 16;
const KIND_PATTERN = /^[a-z][a-z0-9-]{0,15}$/;

export interface ArenaHeader {
  version: number;
  kind: string;
  /** 32 bytes identifying the writer whose stream this arena continues. */
  writer: Buffer;
  /** Sequence number of the first record; record i has firstSeq + i. */
  firstSeq: bigint;
  /** Sequence number of the last record once sealed; null while active. */
  lastSeq: bigint | null;
  /** Identity of the writer's previous sealed arena of this kind; zeros for the first. */
  prev: Buffer;
}

export function validateKind(kind: string): void {
  if (!KIND_PATTERN.test(kind)) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `arena kind must match ${KIND_PATTERN}: ${JSON.stringify(kind)}`, { kind });
  }
}

// Header layout (all integers little-endian):
//   0   magic "BAZILARN"        8
//   8   format version u16      2
//   10  header length u16       2
//   12  flags u32 (zero)        4
//   16  kind, ASCII, NUL-padded 16
//   32  writer id               32
//   64  first seq u64           8
//   72  last seq u64            8   all ones while active; set when sealed
//   80  previous identity       32
//   112 reserved (zero)         8
//   120 XXH3-64 of [0,72)+[80,120) 8
// The last sequence number is left out of the header checksum because
// sealing writes it in place; the seal footer repeats it and the identity
// covers it.
export function encodeHeader(h: ArenaHeader): Buffer {
  validateKind(h.kind);
  if (h.writer.length !== ID_LENGTH || h.prev.length !== ID_LENGTH) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'writer and previous identity must be 32 bytes');
  }
  const b = Buffer.alloc(HEADER_LENGTH);
  HEADER_MAGIC.copy(b, 0);
  b.writeUInt16LE(h.version, 8);
  b.writeUInt16LE(HEADER_LENGTH, 10);
  b.write(h.kind, 16, KIND_LENGTH, 'latin1');
  h.writer.copy(b, 32);
  b.writeBigUInt64LE(h.firstSeq, 64);
  b.writeBigUInt64LE(h.lastSeq ?? OPEN_LAST_SEQ, 72);
  h.prev.copy(b, 80);
  writeHeaderChecksum(b);
  return b;
}

function writeHeaderChecksum(b: Buffer): void {
  const covered = Buffer.concat([b.subarray(0, 72), b.subarray(80, 120)]);
  checksumInto(covered, 0, covered.length, b, 120);
}

export function decodeHeader(bytes: Uint8Array, path: string): ArenaHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < HEADER_LENGTH || !b.subarray(0, 8).equals(HEADER_MAGIC)) {
    throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: not an arena (bad magic)`, { path, offset: 0 });
  }
  const version = b.readUInt16LE(8);
  if (version > FORMAT_VERSION || version === 0) {
    throw new BazilError(ErrorCodes.UNSUPPORTED_FORMAT, `${path}: arena format version ${version} is not supported by this build (newest known: ${FORMAT_VERSION}); upgrade Bazil`, { path, version });
  }
  const covered = Buffer.concat([b.subarray(0, 72), b.subarray(80, 120)]);
  if (b.readUInt16LE(10) !== HEADER_LENGTH || !checksumMatches(Buffer.concat([covered, b.subarray(120, 128)]), 0, covered.length, covered.length)) {
    throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: arena header checksum mismatch`, { path, offset: 0 });
  }
  const kindBytes = b.subarray(16, 16 + KIND_LENGTH);
  const nul = kindBytes.indexOf(0);
  const kind = kindBytes.subarray(0, nul < 0 ? KIND_LENGTH : nul).toString('latin1');
  const last = b.readBigUInt64LE(72);
  return {
    version,
    kind,
    writer: Buffer.from(b.subarray(32, 64)),
    firstSeq: b.readBigUInt64LE(64),
    lastSeq: last === OPEN_LAST_SEQ ? null : last,
    prev: Buffer.from(b.subarray(80, 112)),
  };
}

export interface ArenaFooter {
  count: number;
  /** End of the last record; the seal section starts at the next multiple of 8. */
  dataEnd: number;
  keytabOffset: number;
  slotsOffset: number;
  fingerprintsOffset: number;
  mphOffset: number;
  mphLength: number;
  lastSeq: bigint;
  identity: Buffer;
}

// Footer layout, the last 128 bytes of a sealed arena:
//   0   magic "BZSEALED"   8
//   8   record count u64   8
//   16  data end u64       8
//   24  key table offset   8
//   32  slot table offset  8
//   40  fingerprints offset 8
//   48  MPH offset         8
//   56  MPH length         8
//   64  last seq u64       8
//   72  identity           32
//   104 reserved (zero)    16
//   120 XXH3-64 of [0,120) 8
export function encodeFooter(f: ArenaFooter): Buffer {
  const b = Buffer.alloc(FOOTER_LENGTH);
  FOOTER_MAGIC.copy(b, 0);
  b.writeBigUInt64LE(BigInt(f.count), 8);
  b.writeBigUInt64LE(BigInt(f.dataEnd), 16);
  b.writeBigUInt64LE(BigInt(f.keytabOffset), 24);
  b.writeBigUInt64LE(BigInt(f.slotsOffset), 32);
  b.writeBigUInt64LE(BigInt(f.fingerprintsOffset), 40);
  b.writeBigUInt64LE(BigInt(f.mphOffset), 48);
  b.writeBigUInt64LE(BigInt(f.mphLength), 56);
  b.writeBigUInt64LE(f.lastSeq, 64);
  f.identity.copy(b, 72);
  checksumInto(b, 0, 120, b, 120);
  return b;
}

export function decodeFooter(bytes: Uint8Array, fileSize: number, path: string): ArenaFooter {
  const at = fileSize - FOOTER_LENGTH;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const corrupt = (why: string, offset = at): BazilError =>
    new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: ${why}`, { path, offset });
  if (b.length !== FOOTER_LENGTH || !b.subarray(0, 8).equals(FOOTER_MAGIC)) throw corrupt('no seal footer');
  if (!checksumMatches(b, 0, 120, 120)) throw corrupt('seal footer checksum mismatch');
  const num = (o: number): number => {
    const v = b.readBigUInt64LE(o);
    if (v > BigInt(fileSize)) throw corrupt(`footer field at ${o} out of range`);
    return Number(v);
  };
  const f: ArenaFooter = {
    count: num(8),
    dataEnd: num(16),
    keytabOffset: num(24),
    slotsOffset: num(32),
    fingerprintsOffset: num(40),
    mphOffset: num(48),
    mphLength: num(56),
    lastSeq: b.readBigUInt64LE(64),
    identity: Buffer.from(b.subarray(72, 104)),
  };
  const n = f.count;
  const expectKeytab = align8(f.dataEnd);
  const ok =
    f.dataEnd >= HEADER_LENGTH && f.dataEnd <= MAX_DATA_END &&
    f.keytabOffset === expectKeytab &&
    f.slotsOffset === f.keytabOffset + n * KEYTAB_ENTRY_LENGTH &&
    f.fingerprintsOffset === f.slotsOffset + n * 4 &&
    f.mphOffset === align8(f.fingerprintsOffset + n * 2) &&
    align8(f.mphOffset + f.mphLength) === at;
  if (!ok) throw corrupt('seal footer offsets are inconsistent');
  return f;
}

export function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/**
 * Encodes one record frame into `out` at `at`, leaving its 8 checksum
 * bytes for checksumFrames() to fill (a whole buffer of frames at once);
 * returns the frame's length.
 */
export function encodeFrameUnchecked(out: Uint8Array, at: number, type: number, key: Uint8Array, payload: Uint8Array): number {
  const len = payload.length;
  out[at] = len & 0xff;
  out[at + 1] = (len >>> 8) & 0xff;
  out[at + 2] = (len >>> 16) & 0xff;
  out[at + 3] = (len >>> 24) & 0xff;
  out[at + 4] = type;
  out.set(key, at + 5);
  copyBytes(out, at + FRAME_HEAD_LENGTH, payload);
  return FRAME_OVERHEAD + len;
}

export function frameLength(payloadLength: number): number {
  return FRAME_OVERHEAD + payloadLength;
}

export function readPayloadLength(buf: Uint8Array, at: number): number {
  return (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
}

export function validateRecord(type: number, key: Uint8Array, payload: Uint8Array): void {
  if (!Number.isInteger(type) || type < 1 || type > 255) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `record type must be an integer in 1..255, got ${type}`, { type });
  }
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `record key must be ${KEY_LENGTH} bytes`);
  }
  if (!(payload instanceof Uint8Array)) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'record payload must be a Uint8Array');
  }
  if (payload.length > MAX_PAYLOAD_LENGTH) {
    throw new BazilError(ErrorCodes.RECORD_TOO_LARGE, `record payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD_LENGTH}`, { length: payload.length });
  }
}

/** Parsed view of a frame; `payload` is a view into the buffer it was read from. */
export interface Frame {
  type: number;
  key: Uint8Array;
  payload: Uint8Array;
  /** Total frame length including head and checksum. */
  length: number;
}

/**
 * Parses and checks the frame at `buf[at]`. Returns null when the bytes are
 * not a whole, valid frame (short, zero type, oversized or checksum
 * mismatch): at the tail of an active arena that means a torn write.
 */
export function tryParseFrame(buf: Uint8Array, at: number, end: number): Frame | null {
  if (end - at < FRAME_OVERHEAD) return null;
  const len = readPayloadLength(buf, at);
  if (len > MAX_PAYLOAD_LENGTH || end - at < FRAME_OVERHEAD + len) return null;
  const type = buf[at + 4];
  if (type === 0) return null;
  const payloadEnd = at + FRAME_HEAD_LENGTH + len;
  if (!checksumMatches(buf, at, payloadEnd, payloadEnd)) return null;
  return {
    type,
    key: buf.subarray(at + 5, at + FRAME_HEAD_LENGTH),
    payload: buf.subarray(at + FRAME_HEAD_LENGTH, payloadEnd),
    length: FRAME_OVERHEAD + len,
  };
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
