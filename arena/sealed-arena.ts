// A sealed arena: immutable records plus the seal section (key table with
// record digests, perfect-hash slot table, fingerprints, the hash function
// itself) and a footer. Lookups cost one hash evaluation and, for a present
// key, one record read; an absent key is rejected by its fingerprint in all
// but 1 case in 65,536 without touching a record.
//
// The file is memory-mapped when the native addon is available (reads are
// then plain memory accesses); otherwise index sections are read into memory
// and records are read with pread.

import { BazilError, ErrorCodes } from '../errors/index.js';
import type { ArenaFile, FileSystem } from './file-system.js';
import {
  type ArenaFooter, type ArenaHeader, FOOTER_LENGTH, FRAME_HEAD_LENGTH, FRAME_OVERHEAD, HEADER_LENGTH,
  KEYTAB_ENTRY_LENGTH, KEY_LENGTH, decodeFooter, decodeHeader, digestOfFrame, readPayloadLength, toHex,
} from './format.js';
import { Mph } from './mph.js';
import { checksumMatches } from './checksum.js';
import { hashKey, keyHash2 } from './key-table.js';
import type { ArenaRecord, SequencedRecord } from './active-arena.js';
import { DeadSet } from './dead-set.js';
import { createHash } from 'node:crypto';

/** Frames up to this size are read through the file's mapping; larger ones with pread (see recordAtOrdinal). */
const MAPPED_FRAME_MAX = 4096;

/** Seed of the key hash whose low 16 bits are a slot's fingerprint. */
export const FINGERPRINT_SEED = 0x0f1a9e;

export function fingerprintOf(key: Uint8Array, off: number): number {
  hashKey(key, off, FINGERPRINT_SEED);
  return keyHash2() & 0xffff;
}

/** Identity: SHA-256 over the 128-byte header and the key table. */
export function computeIdentity(headerBytes: Uint8Array, keytab: Uint8Array): Buffer {
  return createHash('sha256').update(headerBytes).update(keytab).digest();
}

export interface VerifyProblem {
  code: string;
  message: string;
  offset: number;
}

export class SealedArena {
  private constructor(
    private readonly file: ArenaFile,
    readonly path: string,
    readonly header: ArenaHeader,
    private readonly headerBytes: Uint8Array,
    readonly footer: ArenaFooter,
    private readonly map: Uint8Array | null,
    private readonly keytab: Uint8Array,
    private readonly slots: Uint32Array,
    private readonly fingerprints: Uint16Array,
    private readonly mph: Mph,
    readonly dead: DeadSet,
    readonly fileSize: number,
  ) {}

  get identity(): Buffer {
    return this.footer.identity;
  }

  get count(): number {
    return this.footer.count;
  }

  get kind(): string {
    return this.header.kind;
  }

  get liveCount(): number {
    return this.footer.count - this.dead.count;
  }

  /**
   * Opens a sealed arena, checking header and footer. Records are checked
   * as they are read; verify() checks everything.
   */
  static open(fs: FileSystem, path: string, options: { ignoreDead?: boolean } = {}): SealedArena {
    const file = fs.open(path, 'r');
    try {
      const size = file.size();
      if (size < HEADER_LENGTH + FOOTER_LENGTH) {
        throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: too short to be a sealed arena`, { path, offset: size });
      }
      const map = file.map();
      const read = (at: number, len: number): Uint8Array => {
        if (map !== null) return map.subarray(at, at + len);
        const b = Buffer.allocUnsafe(len);
        if (file.read(b, 0, len, at) !== len) {
          throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: short read at ${at}`, { path, offset: at });
        }
        return b;
      };
      const headerBytes = read(0, HEADER_LENGTH);
      const header = decodeHeader(headerBytes, path);
      const footer = decodeFooter(read(size - FOOTER_LENGTH, FOOTER_LENGTH), size, path);
      if (header.lastSeq === null || header.lastSeq !== footer.lastSeq || footer.count === 0 ||
          footer.lastSeq - header.firstSeq + 1n !== BigInt(footer.count)) {
        throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: header and footer disagree on the sequence range`, { path, offset: 72 });
      }
      const n = footer.count;
      const keytab = read(footer.keytabOffset, n * KEYTAB_ENTRY_LENGTH);
      const slots = alignedU32(read(footer.slotsOffset, n * 4));
      const fingerprints = alignedU16(read(footer.fingerprintsOffset, n * 2));
      let mph: Mph;
      try {
        mph = Mph.deserialize(read(footer.mphOffset, footer.mphLength));
      } catch (err) {
        throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: perfect-hash index is damaged`, { path, offset: footer.mphOffset }, err);
      }
      if (mph.count !== n) {
        throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: perfect-hash index covers ${mph.count} keys, footer says ${n}`, { path, offset: footer.mphOffset });
      }
      const dead = options.ignoreDead ? DeadSet.empty(n) : DeadSet.load(fs, deadPathOf(path), n);
      return new SealedArena(file, path, header, headerBytes, footer, map, keytab, slots, fingerprints, mph, dead, size);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  private read(at: number, len: number): Uint8Array {
    if (this.map !== null) return this.map.subarray(at, at + len);
    return this.readCopy(at, len);
  }

  /** Bytes of the file read into a buffer of their own, mapped or not. */
  private readCopy(at: number, len: number): Uint8Array {
    const b = Buffer.allocUnsafe(len);
    if (this.file.read(b, 0, len, at) !== len) {
      throw new BazilError(ErrorCodes.CORRUPT_RECORD, `${this.path}: short read at ${at}`, { path: this.path, offset: at });
    }
    return b;
  }

  /**
   * Slot of `key[off, off+32)` when present (punched or not), else -1.
   * The fingerprint rejects nearly every absent key before any record read.
   */
  findSlot(key: Uint8Array, off = 0): number {
    const slot = this.mph.lookup(key, off);
    if (this.fingerprints[slot] !== fingerprintOf(key, off)) return -1;
    if (this.dead.has(slot)) {
      // A punched frame's key is zeros now; the key table still has it.
      const ordinal = this.ordinalsBySlot()[slot];
      const k = this.keyAt(ordinal);
      for (let i = 0; i < KEY_LENGTH; i++) if (k[i] !== key[off + i]) return -1;
      return slot;
    }
    // The key table, not the record: see keyMatchesAt.
    const base = this.ordinalsBySlot()[slot] * KEYTAB_ENTRY_LENGTH;
    for (let i = 0; i < KEY_LENGTH; i++) if (this.keytab[base + i] !== key[off + i]) return -1;
    return slot;
  }

  /** Present and not punched. */
  has(key: Uint8Array, off = 0): boolean {
    const slot = this.findSlot(key, off);
    return slot >= 0 && !this.dead.has(slot);
  }

  /**
   * The record for `key`, checksum verified; undefined when absent; throws
   * DELETED when its space was punched.
   */
  get(key: Uint8Array, off = 0): ArenaRecord | undefined {
    const slot = this.findSlot(key, off);
    if (slot < 0) return undefined;
    if (this.dead.has(slot)) {
      throw new BazilError(ErrorCodes.DELETED, `key ${toHex(key.subarray(off, off + 32))} was deleted from arena ${this.path}`, { path: this.path });
    }
    return this.recordAtOrdinal(this.ordinalsBySlot()[slot]);
  }

  /** Reads and checks the frame at `at`. */
  recordAtOffset(at: number): ArenaRecord {
    const m = this.map;
    if (m !== null) {
      // The hot path of every sealed get: no copies, two views.
      const len = (m[at] | (m[at + 1] << 8) | (m[at + 2] << 16) | (m[at + 3] << 24)) >>> 0;
      const payloadEnd = at + FRAME_HEAD_LENGTH + len;
      if (payloadEnd + 8 > this.footer.dataEnd) throw this.corruptRecord(at, 'frame runs past the records');
      if (!checksumMatches(m, at, payloadEnd, payloadEnd)) throw this.corruptRecord(at, 'checksum mismatch');
      return { type: m[at + 4], key: m.subarray(at + 5, at + FRAME_HEAD_LENGTH), payload: m.subarray(at + FRAME_HEAD_LENGTH, payloadEnd) };
    }
    const head = this.read(at, 4);
    const len = readPayloadLength(head, 0);
    const frameEnd = at + FRAME_OVERHEAD + len;
    if (frameEnd > this.footer.dataEnd) throw this.corruptRecord(at, 'frame runs past the records');
    const b = this.read(at, FRAME_OVERHEAD + len);
    const payloadEnd = FRAME_HEAD_LENGTH + len;
    if (!checksumMatches(b, 0, payloadEnd, payloadEnd)) throw this.corruptRecord(at, 'checksum mismatch');
    return { type: b[4], key: b.subarray(5, FRAME_HEAD_LENGTH), payload: b.subarray(FRAME_HEAD_LENGTH, payloadEnd) };
  }

  private corruptRecord(offset: number, why: string): BazilError {
    return new BazilError(ErrorCodes.CORRUPT_RECORD, `${this.path}: record at offset ${offset}: ${why}`, { path: this.path, offset });
  }

  private slotOrdinals: Uint32Array | null = null;
  private ordinalOffsets: Uint32Array | null = null;
  private deadOrdinals: Uint8Array | null = null;

  /**
   * Frame offset of every record by ordinal. The locator remembers a key's
   * ordinal, so a located get reads this array instead of evaluating the
   * perfect hash. Sealing hands over the active arena's offsets; an arena
   * opened from disk derives them once through the hash and slot table.
   */
  offsetsByOrdinal(): Uint32Array {
    if (this.ordinalOffsets === null) {
      const t = new Uint32Array(this.count);
      for (let i = 0; i < this.count; i++) t[i] = this.slots[this.slotOfOrdinal(i)];
      this.ordinalOffsets = t;
    }
    return this.ordinalOffsets;
  }

  /** Takes the offsets by ordinal known at sealing time (they equal what offsetsByOrdinal derives). */
  setOffsetsByOrdinal(offsets: Uint32Array): void {
    if (offsets.length === this.count) this.ordinalOffsets = offsets;
  }

  isDeadOrdinal(ordinal: number): boolean {
    if (this.dead.count === 0) return false;
    if (this.deadOrdinals === null) {
      const bits = new Uint8Array((this.count + 7) >>> 3);
      for (let i = 0; i < this.count; i++) if (this.dead.has(this.slotOfOrdinal(i))) bits[i >>> 3] |= 1 << (i & 7);
      this.deadOrdinals = bits;
    }
    return (this.deadOrdinals[ordinal >>> 3] & (1 << (ordinal & 7))) !== 0;
  }

  /**
   * Whether the record at `ordinal` has `key[off, off+32)`, punched or not.
   * Read from the key table, which holds the same keys densely (verify()
   * checks they agree): touching a record's key in the mapped file instead
   * made the kernel map the pages around it too (fault-around), so every
   * dedup check of an import added tens of KiB to the resident set.
   */
  keyMatchesAt(ordinal: number, key: Uint8Array, off: number): boolean {
    if (ordinal >= this.count) return false;
    const base = ordinal * KEYTAB_ENTRY_LENGTH;
    for (let i = 0; i < KEY_LENGTH; i++) if (this.keytab[base + i] !== key[off + i]) return false;
    return true;
  }

  /**
   * The record at `ordinal`, checksum verified; the caller has checked it
   * is live. Small frames are views of the mapped file; large ones (content
   * chunks) are read into a buffer of their own, and their length comes
   * from the offsets, so the mapping is not touched at all: any touch makes
   * the kernel map the pages around it too (fault-around), and a pass over
   * a volume's content (export, fsck) through the mapping kept every page
   * of every arena resident, so its memory grew with the volume. A read
   * leaves the pages to the page cache.
   */
  recordAtOrdinal(ordinal: number): ArenaRecord {
    const { offset, length } = this.spanOfOrdinal(ordinal);
    if (this.map !== null && length <= MAPPED_FRAME_MAX) return this.recordAtOffset(offset);
    if (length < FRAME_OVERHEAD || offset + length > this.footer.dataEnd) throw this.corruptRecord(offset, 'frame runs past the records');
    const b = this.readCopy(offset, length);
    const len = readPayloadLength(b, 0);
    const payloadEnd = FRAME_HEAD_LENGTH + len;
    if (FRAME_OVERHEAD + len > length) throw this.corruptRecord(offset, 'frame runs past the records');
    if (!checksumMatches(b, 0, payloadEnd, payloadEnd)) throw this.corruptRecord(offset, 'checksum mismatch');
    return { type: b[4], key: b.subarray(5, FRAME_HEAD_LENGTH), payload: b.subarray(FRAME_HEAD_LENGTH, payloadEnd) };
  }

  /**
   * Reads the frame at `ordinal` into `dest[at, at + frame length)` with
   * pread, whatever its size, checks it, and returns its payload's length;
   * the payload starts FRAME_HEAD_LENGTH bytes after `at`. The mapping is
   * never touched (see recordAtOrdinal), and no buffer is allocated: a pass
   * over a volume's content (export) reads each chunk straight into its
   * destination. A RangeError when the frame does not fit.
   */
  readFrameInto(ordinal: number, dest: Uint8Array, at: number): number {
    const { offset, length } = this.spanOfOrdinal(ordinal);
    if (length < FRAME_OVERHEAD || offset + length > this.footer.dataEnd) throw this.corruptRecord(offset, 'frame runs past the records');
    if (at < 0 || at + length > dest.length) throw new RangeError(`a frame of ${length} bytes does not fit at ${at} of ${dest.length}`);
    if (this.file.read(dest, at, length, offset) !== length) {
      throw new BazilError(ErrorCodes.CORRUPT_RECORD, `${this.path}: short read at ${offset}`, { path: this.path, offset });
    }
    const len = readPayloadLength(dest, at);
    const payloadEnd = at + FRAME_HEAD_LENGTH + len;
    if (FRAME_OVERHEAD + len > length) throw this.corruptRecord(offset, 'frame runs past the records');
    if (!checksumMatches(dest, at, payloadEnd, payloadEnd)) throw this.corruptRecord(offset, 'checksum mismatch');
    return len;
  }

  /** Offset and length of the frame at `ordinal` (punched or not). */
  spanOfOrdinal(ordinal: number): { offset: number; length: number } {
    const offsets = this.offsetsByOrdinal();
    const end = ordinal + 1 < this.count ? offsets[ordinal + 1] : this.footer.dataEnd;
    return { offset: offsets[ordinal], length: end - offsets[ordinal] };
  }

  /** Marks slots deleted (durably) and forgets the derived per-ordinal view. */
  async markDead(fs: FileSystem, slots: number[]): Promise<number[]> {
    const added = await this.dead.addAndPersist(fs, deadPathOf(this.path), slots);
    this.deadOrdinals = null;
    return added;
  }

  /** Record ordinal of every slot; built on first need (only arenas with punched records need it). */
  private ordinalsBySlot(): Uint32Array {
    if (this.slotOrdinals === null) {
      const t = new Uint32Array(this.count);
      for (let i = 0; i < this.count; i++) t[this.slotOfOrdinal(i)] = i;
      this.slotOrdinals = t;
    }
    return this.slotOrdinals;
  }

  /** The whole key table (64 bytes per record: key, then digest), a view. */
  keyTable(): Uint8Array {
    return this.keytab;
  }

  /** Key of the record at `ordinal` (append order), from the key table. */
  keyAt(ordinal: number): Uint8Array {
    const o = ordinal * KEYTAB_ENTRY_LENGTH;
    return this.keytab.subarray(o, o + KEY_LENGTH);
  }

  /** SHA-256 of the whole frame at `ordinal`, from the key table. */
  digestAt(ordinal: number): Uint8Array {
    const o = ordinal * KEYTAB_ENTRY_LENGTH + KEY_LENGTH;
    return this.keytab.subarray(o, o + 32);
  }

  slotOfOrdinal(ordinal: number): number {
    return this.mph.lookup(this.keytab, ordinal * KEYTAB_ENTRY_LENGTH);
  }

  /** Records in append order from sequence `fromSeq`, skipping punched ones. */
  *records(fromSeq = this.header.firstSeq, toSeq = this.footer.lastSeq): Generator<SequencedRecord> {
    const first = this.header.firstSeq;
    const lo = fromSeq > first ? Number(fromSeq - first) : 0;
    const hi = toSeq < this.footer.lastSeq ? Number(toSeq - first) : this.count - 1;
    for (let i = lo; i <= hi; i++) {
      const slot = this.slotOfOrdinal(i);
      if (this.dead.has(slot)) continue;
      yield { ...this.recordAtOrdinal(i), seq: first + BigInt(i) };
    }
  }

  /**
   * Checks everything: the identity recomputed from header and key table,
   * every live record's checksum and digest, and that the perfect hash,
   * slot table and fingerprints agree with the key table. Problems are
   * listed with their file offsets rather than thrown one at a time, so a
   * scrub reports the whole damage.
   */
  verify(): VerifyProblem[] {
    const problems: VerifyProblem[] = [];
    const n = this.count;
    const id = computeIdentity(this.headerBytes, this.keytab);
    if (!id.equals(this.footer.identity)) {
      problems.push({ code: ErrorCodes.IDENTITY_MISMATCH, message: `identity recomputes to ${toHex(id)}, footer says ${toHex(this.footer.identity)}`, offset: this.footer.keytabOffset });
    }
    // Offsets by ordinal come from the perfect hash and slot table; they must
    // tile the records exactly, which also gives each punched record's span
    // (its zeroed frame head no longer says how long it was).
    const seenSlots = new Uint8Array(n);
    const slotOf = new Uint32Array(n);
    let expectAt = HEADER_LENGTH;
    for (let i = 0; i < n; i++) {
      const slot = this.slotOfOrdinal(i);
      slotOf[i] = slot;
      if (seenSlots[slot] !== 0) {
        problems.push({ code: ErrorCodes.CORRUPT_ARENA, message: `perfect hash maps two keys to slot ${slot}`, offset: this.footer.mphOffset });
        return problems;
      }
      seenSlots[slot] = 1;
      if (this.fingerprints[slot] !== fingerprintOf(this.keytab, i * KEYTAB_ENTRY_LENGTH)) {
        problems.push({ code: ErrorCodes.CORRUPT_ARENA, message: `fingerprint of slot ${slot} is wrong`, offset: this.footer.fingerprintsOffset + slot * 2 });
      }
    }
    for (let i = 0; i < n; i++) {
      const slot = slotOf[i];
      const at = this.slots[slot];
      const end = i + 1 < n ? this.slots[slotOf[i + 1]] : this.footer.dataEnd;
      if (at !== expectAt || end <= at || end > this.footer.dataEnd) {
        problems.push({ code: ErrorCodes.CORRUPT_ARENA, message: `slot ${slot} of record ${i} points to ${at}, expected ${expectAt}`, offset: this.footer.slotsOffset + slot * 4 });
        return problems;
      }
      expectAt = end;
      if (this.dead.has(slot)) continue;
      const frameLen = end - at;
      const frame = this.read(at, frameLen);
      if (frameLen < FRAME_OVERHEAD || readPayloadLength(frame, 0) !== frameLen - FRAME_OVERHEAD) {
        problems.push({ code: ErrorCodes.CORRUPT_RECORD, message: `record ${i} has a damaged length`, offset: at });
        continue;
      }
      if (!Buffer.from(frame.subarray(5, FRAME_HEAD_LENGTH)).equals(this.keyAt(i))) {
        problems.push({ code: ErrorCodes.CORRUPT_RECORD, message: `record ${i} key differs from the key table`, offset: at + 5 });
      }
      if (!checksumMatches(frame, 0, frameLen - 8, frameLen - 8)) {
        problems.push({ code: ErrorCodes.CORRUPT_RECORD, message: `record ${i} fails its checksum`, offset: at });
      } else if (!digestOfFrame(this.header.version, frame, 0, frameLen).equals(this.digestAt(i))) {
        problems.push({ code: ErrorCodes.CORRUPT_RECORD, message: `record ${i} does not match its digest`, offset: at });
      }
    }
    if (problems.length === 0 && expectAt !== this.footer.dataEnd) {
      problems.push({ code: ErrorCodes.CORRUPT_ARENA, message: `records end at ${expectAt}, footer says ${this.footer.dataEnd}`, offset: expectAt });
    }
    return problems;
  }

  /** st_blocks of the file, to observe hole punching. */
  fileHandle(): ArenaFile {
    return this.file;
  }

  close(): void {
    this.file.close();
  }
}

export function deadPathOf(arenaPath: string): string {
  return arenaPath.replace(/\.arena$/, '.dead');
}

function alignedU32(b: Uint8Array): Uint32Array {
  if (b.byteOffset % 4 === 0) return new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  const c = new Uint8Array(b.byteLength);
  c.set(b);
  return new Uint32Array(c.buffer);
}

function alignedU16(b: Uint8Array): Uint16Array {
  if (b.byteOffset % 2 === 0) return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  const c = new Uint8Array(b.byteLength);
  c.set(b);
  return new Uint16Array(c.buffer);
}
