// Sealing: turning a full active arena into an immutable, indexed one.
//
// The seal section is appended after the last record, the header gets its
// last sequence number, the file is fsynced, then renamed to its identity
// and the directory fsynced. A crash before the rename is durable leaves an
// active arena whose tail (the half-written seal section) fails as a frame
// and is cut off at the next open, so sealing simply runs again.

import { endianness } from 'node:os';
import { BazilError, ErrorCodes } from '../errors/index.js';
import type { FileSystem } from './file-system.js';
import type { ActiveArena } from './active-arena.js';
import { dirOf } from './active-arena.js';
import {
  FOOTER_LENGTH, FRAME_HEAD_LENGTH, KEYTAB_ENTRY_LENGTH, KEY_LENGTH, align8, encodeFooter, readPayloadLength, setHeaderLastSeq,
} from './format.js';
import { checksumMatches, digest } from './checksum.js';
import { Mph } from './mph.js';
import { computeIdentity, fingerprintOf } from './sealed-arena.js';

if (endianness() !== 'LE') {
  // Slot and fingerprint tables are copied as typed arrays, which use the host's byte order.
  throw new Error('Bazil arenas need a little-endian host');
}

const READ_CHUNK = 8 * 1024 * 1024;

export interface PreparedSeal {
  /** Where the sealed arena will live. */
  path: string;
  identity: Buffer;
  /** fsync, rename into place, fsync the directory; the arena is sealed when this resolves. */
  commit(): Promise<void>;
}

export function sealedName(identity: Uint8Array): string {
  return `${Buffer.from(identity).toString('hex')}.arena`;
}

/**
 * Writes the seal section synchronously, so the identity is known at once
 * (the writer's next arena names it as its predecessor), and returns the
 * durable part as commit().
 */
export function prepareSeal(fs: FileSystem, active: ActiveArena): PreparedSeal {
  const n = active.count;
  if (n === 0) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `${active.path}: an empty arena is not sealed`, { path: active.path });
  const file = active.fileForSealing();
  const offsets = active.frameOffsets();
  const dataEnd = active.dataEnd;
  const keys = Buffer.allocUnsafe(n * KEY_LENGTH);
  const keytab = Buffer.allocUnsafe(n * KEYTAB_ENTRY_LENGTH);

  // One sequential pass over the records: re-check each checksum (so a
  // record damaged in memory or on disk is never given a valid digest),
  // collect keys and digest each frame.
  let chunk = Buffer.allocUnsafe(READ_CHUNK);
  let chunkStart = 0;
  let chunkLen = 0;
  for (let i = 0; i < n; i++) {
    const at = offsets[i];
    const end = i + 1 < n ? offsets[i + 1] : dataEnd;
    if (at < chunkStart || end > chunkStart + chunkLen) {
      if (end - at > chunk.length) chunk = Buffer.allocUnsafe(end - at);
      chunkStart = at;
      chunkLen = file.read(chunk, 0, Math.min(chunk.length, dataEnd - at), at);
    }
    const rel = at - chunkStart;
    const len = end - at;
    const payloadEnd = rel + len - 8;
    if (readPayloadLength(chunk, rel) !== len - FRAME_HEAD_LENGTH - 8 || !checksumMatches(chunk, rel, payloadEnd, payloadEnd)) {
      throw new BazilError(ErrorCodes.CORRUPT_RECORD, `${active.path}: record at offset ${at} changed before sealing`, { path: active.path, offset: at });
    }
    chunk.copy(keys, i * KEY_LENGTH, rel + 5, rel + FRAME_HEAD_LENGTH);
    chunk.copy(keytab, i * KEYTAB_ENTRY_LENGTH, rel + 5, rel + FRAME_HEAD_LENGTH);
    digest(chunk, rel, rel + len).copy(keytab, i * KEYTAB_ENTRY_LENGTH + KEY_LENGTH);
  }

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
  const lastSeq = active.header.firstSeq + BigInt(n - 1);
  const header = Buffer.from(active.headerBytes);
  setHeaderLastSeq(header, lastSeq);
  const identity = computeIdentity(header, keytab);

  const section = Buffer.alloc(footerOffset + FOOTER_LENGTH - dataEnd);
  const put = (bytes: Uint8Array, at: number): void => section.set(bytes, at - dataEnd);
  put(keytab, keytabOffset);
  put(new Uint8Array(slots.buffer), slotsOffset);
  put(new Uint8Array(fingerprints.buffer), fingerprintsOffset);
  put(mphBytes, mphOffset);
  put(encodeFooter({
    count: n, dataEnd, keytabOffset, slotsOffset, fingerprintsOffset, mphOffset, mphLength: mphBytes.length, lastSeq, identity,
  }), footerOffset);
  file.write(section, 0, section.length, dataEnd);
  file.write(header, 0, header.length, 0);
  const path = `${dirOf(active.path)}/${sealedName(identity)}`;
  active.retire();
  const from = active.path;
  // The active arena keeps serving reads from its open descriptor until the
  // caller swaps in the sealed arena and closes it.
  const commit = async (): Promise<void> => {
    await file.sync();
    fs.rename(from, path);
    await fs.syncDir(dirOf(path));
  };
  return { path, identity, commit };
}
