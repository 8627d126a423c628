// Sealing: turning a full active arena into an immutable, indexed one.
//
// The seal section is computed from the key table the active arena built as
// records were appended (each record's key and digest, format version 2),
// so sealing reads back only the records an earlier process appended (found
// by the scan at open, their digests unknown). That and the perfect hash run
// in a worker thread when the file layer can name the file on disk, so the
// main thread keeps taking appends. The section is appended after the last
// record; the header gets its last sequence number and the current format
// version; the file is fsynced, renamed to its identity and the directory
// fsynced. A crash before the rename is durable leaves an active
// arena whose tail (the half-written seal section) fails as a frame and is
// cut off at the next open, so sealing simply runs again.

import { endianness } from 'node:os';
import { BazilError, ErrorCodes } from '../errors/index.js';
import type { ArenaFile, FileSystem } from './file-system.js';
import type { ActiveArena } from './active-arena.js';
import { dirOf } from './active-arena.js';
import {
  FOOTER_LENGTH, FORMAT_VERSION, FRAME_HEAD_LENGTH, HEADER_LENGTH, KEYTAB_ENTRY_LENGTH, KEY_LENGTH, align8, digestOfFrame, encodeFooter,
  encodeHeader, readPayloadLength,
} from './format.js';
import { checksumMatches } from './checksum.js';
import { Mph } from './mph.js';
import { computeIdentity, fingerprintOf } from './sealed-arena.js';
import { sealInWorker } from './seal-pool.js';

if (endianness() !== 'LE') {
  // Slot and fingerprint tables are copied as typed arrays, which use the host's byte order.
  throw new Error('Bazil arenas need a little-endian host');
}

export interface PreparedSeal {
  /** Where the sealed arena will live. */
  path: string;
  identity: Buffer;
  /** fsync, rename into place, fsync the directory; the arena is sealed when this resolves. */
  commit(): Promise<void>;
}

export interface SealSection {
  /** Bytes from the end of the records to the end of the footer. */
  section: Uint8Array;
  identity: Buffer;
}

export function sealedName(identity: Uint8Array): string {
  return `${Buffer.from(identity).toString('hex')}.arena`;
}

/**
 * Where the records' digests come from: `keytab` holds every record's key
 * and digest in record order (SealingTable in active-arena.ts), except that
 * the first `recovered` entries hold only keys, their records to be read
 * back and digested.
 */
export interface KnownDigests {
  keytab: Uint8Array;
  recovered: number;
}

/** Every record read back and digested: what sealing records another process appended costs. */
export function noKnownDigests(n: number): KnownDigests {
  return { keytab: new Uint8Array(n * KEYTAB_ENTRY_LENGTH), recovered: n };
}

/**
 * Computes the seal section of records held in `data`, where data[0] is
 * file offset `base` and the records end at `dataEnd` (only the records
 * [0, known.recovered) need be in `data`). A record read back has its
 * checksum re-checked first, so a record damaged in memory or on disk is
 * never given a valid digest. Pure: runs on the main thread or in a worker.
 */
export function computeSealSection(
  data: Uint8Array, base: number, offsets: Uint32Array, dataEnd: number, sealedHeader: Uint8Array, known: KnownDigests, path: string,
): SealSection {
  const keytab = Buffer.from(known.keytab);
  digestRecords(data, base, offsets, 0, known.recovered, dataEnd, keytab, path);
  return finishSealSection(keytab, offsets, dataEnd, sealedHeader);
}

/**
 * computeSealSection with the records to digest read a window at a time by
 * `read` (which fills `buf` from file offset `position`): memory stays at
 * one window of about `windowBytes` (or one record, if larger) however large
 * the arena.
 */
export function computeSealSectionWindowed(
  read: (buf: Buffer, position: number) => void, offsets: Uint32Array, dataEnd: number, sealedHeader: Uint8Array, known: KnownDigests,
  path: string, windowBytes: number,
): SealSection {
  const n = offsets.length;
  const keytab = Buffer.from(known.keytab);
  const recordEnd = (i: number): number => (i + 1 < n ? offsets[i + 1] : dataEnd);
  let window = Buffer.allocUnsafe(known.recovered === 0 ? 0 : windowBytes);
  for (let from = 0; from < known.recovered;) {
    const base = offsets[from];
    // At least one record; as many more as end inside the window.
    let to = from + 1;
    while (to < known.recovered && recordEnd(to) - base <= windowBytes) to++;
    const end = recordEnd(to - 1);
    if (end - base > window.length) window = Buffer.allocUnsafe(end - base);
    const view = window.subarray(0, end - base);
    read(view, base);
    digestRecords(view, base, offsets, from, to, dataEnd, keytab, path);
    from = to;
  }
  return finishSealSection(keytab, offsets, dataEnd, sealedHeader);
}

/** Checks records [from, to) held in `data` (data[0] is file offset `base`) and fills their key-table entries. */
function digestRecords(
  data: Uint8Array, base: number, offsets: Uint32Array, from: number, to: number, dataEnd: number, keytab: Buffer, path: string,
): void {
  const n = offsets.length;
  for (let i = from; i < to; i++) {
    const at = offsets[i] - base;
    const end = (i + 1 < n ? offsets[i + 1] : dataEnd) - base;
    const payloadEnd = end - 8;
    if (at < 0 || end > data.length || readPayloadLength(data, at) !== payloadEnd - at - FRAME_HEAD_LENGTH ||
        !checksumMatches(data, at, payloadEnd, payloadEnd)) {
      throw new BazilError(ErrorCodes.CORRUPT_RECORD, `${path}: record at offset ${at + base} changed before sealing`, { path, offset: at + base });
    }
    const t = i * KEYTAB_ENTRY_LENGTH;
    keytab.set(data.subarray(at + 5, at + FRAME_HEAD_LENGTH), t);
    keytab.set(digestOfFrame(FORMAT_VERSION, data, at, end), t + KEY_LENGTH);
  }
}

/** The index, key table and footer, from every record's key and digest. */
function finishSealSection(keytab: Buffer, offsets: Uint32Array, dataEnd: number, sealedHeader: Uint8Array): SealSection {
  const n = offsets.length;
  if (keytab.length !== n * KEYTAB_ENTRY_LENGTH) throw new Error(`seal: a key table of ${keytab.length} bytes for ${n} records`);
  const keys = Buffer.allocUnsafe(n * KEY_LENGTH);
  for (let i = 0; i < n; i++) keytab.copy(keys, i * KEY_LENGTH, i * KEYTAB_ENTRY_LENGTH, i * KEYTAB_ENTRY_LENGTH + KEY_LENGTH);
  const mph = Mph.build(keys, n, KEY_LENGTH);
  const mphBytes = mph.serialize();
  const slots = new Uint32Array(n);
  const fingerprints = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const slot = mph.lookup(keys, i * KEY_LENGTH);
    slots[slot] = offsets[i];
    fingerprints[slot] = fingerprintOf(keys, i * KEY_LENGTH);
  }

  const keytabOffset = align8(dataEnd);
  const slotsOffset = keytabOffset + keytab.length;
  const fingerprintsOffset = slotsOffset + n * 4;
  const mphOffset = align8(fingerprintsOffset + n * 2);
  const footerOffset = align8(mphOffset + mphBytes.length);
  const lastSeq = Buffer.from(sealedHeader.buffer, sealedHeader.byteOffset, HEADER_LENGTH).readBigUInt64LE(72);
  const identity = computeIdentity(sealedHeader, keytab);
  const section = Buffer.alloc(footerOffset + FOOTER_LENGTH - dataEnd);
  const put = (bytes: Uint8Array, at: number): void => section.set(bytes, at - dataEnd);
  put(keytab, keytabOffset);
  put(new Uint8Array(slots.buffer), slotsOffset);
  put(new Uint8Array(fingerprints.buffer), fingerprintsOffset);
  put(mphBytes, mphOffset);
  put(encodeFooter({
    count: n, dataEnd, keytabOffset, slotsOffset, fingerprintsOffset, mphOffset, mphLength: mphBytes.length, lastSeq, identity,
  }), footerOffset);
  return { section, identity };
}

/** Reads the records region [HEADER_LENGTH, end) of an arena file through the file layer. */
function readRecords(file: ArenaFile, end: number, path: string): Buffer {
  const data = Buffer.allocUnsafe(end - HEADER_LENGTH);
  const n = file.read(data, 0, data.length, HEADER_LENGTH);
  if (n !== data.length) {
    throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: short read of the records while sealing`, { path, offset: HEADER_LENGTH + n });
  }
  return data;
}

/**
 * Computes and writes the seal section of an active arena (which stops
 * taking appends at once) and returns the durable part as commit().
 * `prevIdentity` is the identity of the stream's previous arena. The
 * computation runs in a worker thread when the file layer can name the file
 * on disk; a layer that cannot (the fault-injecting one) seals inline, so
 * every byte still goes through it.
 */
export async function prepareSeal(fs: FileSystem, active: ActiveArena, prevIdentity: Promise<Buffer>): Promise<PreparedSeal> {
  const n = active.count;
  if (n === 0) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `${active.path}: an empty arena is not sealed`, { path: active.path });
  // Everything up to the first await runs at once: the arena stops taking
  // appends in the same tick the seal is decided.
  const file = active.fileForSealing();
  active.retire();
  const offsets = active.frameOffsets().slice();
  const dataEnd = active.dataEnd;
  const known = active.sealingTable();
  // The sealed header names the stream's previous arena, whose own seal
  // (and identity) may still be in progress. An arena begun by an earlier
  // build in version 1 is sealed in the current version: the records are
  // the same, only the key table's digests differ.
  const prev = await prevIdentity;
  const header = encodeHeader({ ...active.header, version: FORMAT_VERSION, prev, lastSeq: active.header.firstSeq + BigInt(n - 1) });
  const from = active.path;
  const local = fs.localPath?.(from) ?? null;
  const readEnd = known.recovered < n ? offsets[known.recovered] : dataEnd;
  const { section, identity } = local !== null
    ? await sealInWorker(local, offsets, dataEnd, header, known)
    : computeSealSection(readRecords(file, readEnd, from), HEADER_LENGTH, offsets, dataEnd, header, known, from);
  file.write(section, 0, section.length, dataEnd);
  file.write(header, 0, header.length, 0);
  const path = `${dirOf(from)}/${sealedName(identity)}`;
  // The active arena keeps serving reads from its open descriptor until the
  // caller swaps in the sealed arena and closes it.
  const commit = async (): Promise<void> => {
    await file.sync();
    fs.rename(from, path);
    await fs.syncDir(dirOf(path));
  };
  return { path, identity, commit };
}
