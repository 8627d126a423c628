// The active arena of one (kind, writer): the only arena that takes appends.
//
// Appends are framed into a memory buffer and written to the file in large
// pieces; sync() makes everything appended before it durable with group
// commit, so any number of callers awaiting at once share one fdatasync.
// Keys are indexed by the owning ArenaSet's locator, fed by the recovery
// scan at open, which is also where a torn tail is found and cut off.

import { hash } from 'node:crypto';
import { BazilError, ErrorCodes } from '../errors/index.js';
import type { ArenaFile, FileSystem } from './file-system.js';
import {
  type ArenaHeader, DIGEST_LENGTH, FRAME_HEAD_LENGTH, FRAME_OVERHEAD, HEADER_LENGTH, KEYTAB_ENTRY_LENGTH, KEY_LENGTH, MAX_DATA_END,
  decodeHeader, encodeFrameUnchecked, encodeHeader, frameLength, readPayloadLength, recordDigest, tryParseFrame, validateRecord,
} from './format.js';
import { checksumFrames, checksumMatches } from './checksum.js';
import { writeFileDurably } from './dead-set.js';

export interface ArenaRecord {
  type: number;
  key: Uint8Array;
  payload: Uint8Array;
}

export interface SequencedRecord extends ArenaRecord {
  seq: bigint;
}

export const DEFAULT_FLUSH_BYTES = 1024 * 1024;
/**
 * Write-behind: every this many bytes written, the kernel is asked to start
 * writing them to the device (sync_file_range), so the device works while
 * appends go on instead of all at the next sync(), as RocksDB's
 * bytes_per_sync does. It does not wait and makes nothing durable.
 */
const WRITE_BEHIND_BYTES = 8 * 1024 * 1024;
const SCAN_CHUNK = 8 * 1024 * 1024;

export interface OpenedActive {
  arena: ActiveArena;
  /** Bytes of torn or corrupt tail cut off during recovery. */
  truncatedBytes: number;
  /**
   * Where the cut bytes were saved, when a valid record followed the bad
   * one (damage mid-file rather than a torn tail); null otherwise.
   */
  savedTail: string | null;
}

/** How far past a bad frame recovery looks for a valid one. */
const RESYNC_WINDOW = 256 * 1024 * 1024;

/**
 * Whether a whole, valid frame starts anywhere in file[from, end). Random
 * bytes almost never pass the length test, so this costs a few nanoseconds
 * per byte and a checksum only for plausible candidates.
 */
function validFrameAfter(file: ArenaFile, from: number, end: number): boolean {
  const limit = Math.min(end, from + RESYNC_WINDOW);
  const buf = Buffer.allocUnsafe(Math.min(SCAN_CHUNK, limit - from + FRAME_OVERHEAD));
  for (let base = from; base < limit; base += buf.length - FRAME_OVERHEAD) {
    const n = file.read(buf, 0, Math.min(buf.length, end - base), base);
    for (let i = 0; i + FRAME_OVERHEAD <= n && base + i < limit; i++) {
      if (buf[i + 4] === 0) continue;
      const len = readPayloadLength(buf, i);
      if (base + i + FRAME_OVERHEAD + len > end) continue;
      if (i + FRAME_OVERHEAD + len <= n) {
        if (tryParseFrame(buf, i, n) !== null) return true;
      } else {
        const whole = Buffer.allocUnsafe(FRAME_OVERHEAD + len);
        file.read(whole, 0, whole.length, base + i);
        if (tryParseFrame(whole, 0, whole.length) !== null) return true;
      }
    }
    if (n < buf.length) break;
  }
  return false;
}

/**
 * What sealing needs from an active arena besides its file: the key table
 * (key, then digest, per record, in record order) as far as this process
 * knows it. The digests of the first `recovered` records, found by the scan
 * at open, are not known (their entries hold only the key): sealing reads
 * those records back to digest them.
 */
export interface SealingTable {
  keytab: Buffer;
  recovered: number;
}

export class ActiveArena {
  private offsets: Uint32Array<ArrayBuffer>;
  /** The key table being built, KEYTAB_ENTRY_LENGTH bytes per record (see SealingTable). */
  private keytab: Buffer;
  /** Records found by the scan at open, whose digests are not in keytab. */
  private readonly recovered: number;
  private countValue = 0;
  /** Bytes handed to the file so far (records below this offset are in the file). */
  private writtenEnd: number;
  /** Bytes made durable by a completed sync. */
  private durableEnd: number;
  private pending: Buffer;
  private pendingLength = 0;
  /** Frames in pending[checksummedTo, pendingLength) still lack their checksums. */
  private checksummedTo = 0;
  private inflight: Promise<void> | null = null;
  /** Start of the written bytes not yet handed to startWriteback. */
  private writebackFrom = 0;
  private failed: unknown = null;
  private closed = false;
  private retired = false;
  /** Settles when the stream's previous arena's records are durable; no record here is acknowledged before. */
  predecessor: Promise<unknown> | null = null;
  /** Whether the file's directory entry is durable; a new file needs a directory sync once. */
  private entryDurable: boolean;

  private constructor(
    private readonly fs: FileSystem,
    private file: ArenaFile,
    readonly header: ArenaHeader,
    readonly headerBytes: Buffer,
    dataEnd: number,
    offsets: Uint32Array<ArrayBuffer>,
    keytab: Buffer,
    count: number,
    entryDurable: boolean,
    flushBytes: number,
  ) {
    this.offsets = offsets;
    this.keytab = keytab;
    this.recovered = count;
    this.countValue = count;
    this.writtenEnd = dataEnd;
    this.durableEnd = entryDurable ? dataEnd : 0;
    this.entryDurable = entryDurable;
    this.pending = Buffer.allocUnsafe(flushBytes);
  }

  get path(): string {
    return this.file.path;
  }

  /** Creates a new active arena file holding only its header. */
  static create(fs: FileSystem, path: string, header: ArenaHeader, flushBytes = DEFAULT_FLUSH_BYTES): ActiveArena {
    const headerBytes = encodeHeader({ ...header, lastSeq: null });
    const file = fs.open(path, 'create');
    try {
      file.write(headerBytes, 0, HEADER_LENGTH, 0);
    } catch (err) {
      file.close();
      throw err;
    }
    return new ActiveArena(
      fs, file, { ...header, lastSeq: null }, headerBytes, HEADER_LENGTH, new Uint32Array(1024), Buffer.allocUnsafe(1024 * KEYTAB_ENTRY_LENGTH),
      0, false, flushBytes,
    );
  }

  /**
   * Opens an existing active arena, scanning every record (each is passed
   * to `onRecord` for indexing). The first frame that is short or fails its checksum marks the
   * end: the arena is truncated there, since nothing past a torn record was
   * ever acknowledged by sync().
   */
  static async open(fs: FileSystem, path: string, flushBytes = DEFAULT_FLUSH_BYTES, onRecord?: (key: Uint8Array, ordinal: number) => void): Promise<OpenedActive> {
    const file = fs.open(path, 'rw');
    try {
      const size = file.size();
      const headerBytes = Buffer.alloc(HEADER_LENGTH);
      if (size < HEADER_LENGTH) {
        throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: active arena shorter than its header`, { path, offset: 0 });
      }
      file.read(headerBytes, 0, HEADER_LENGTH, 0);
      const header = decodeHeader(headerBytes, path);
      // A crash during sealing may have written the last sequence number in
      // place; an active arena has none, so the header is re-encoded open.
      header.lastSeq = null;
      const cleanHeader = encodeHeader(header);
      let offsets = new Uint32Array(1024);
      let keytab: Buffer = Buffer.allocUnsafe(1024 * KEYTAB_ENTRY_LENGTH);
      let count = 0;
      let at = HEADER_LENGTH;
      let buf = Buffer.allocUnsafe(SCAN_CHUNK);
      let bufStart = HEADER_LENGTH;
      let bufLen = file.read(buf, 0, Math.min(buf.length, size - HEADER_LENGTH), HEADER_LENGTH);
      for (;;) {
        let rel = at - bufStart;
        if (bufLen - rel < FRAME_OVERHEAD || bufLen - rel < frameLength(readPayloadLength(buf, rel))) {
          // Refill so the next whole frame is in the buffer, growing it for a large record.
          if (at >= size) break;
          const need = bufLen - rel >= 4 ? frameLength(readPayloadLength(buf, rel)) : FRAME_OVERHEAD;
          if (need > size - at) break;
          if (need > buf.length) buf = Buffer.allocUnsafe(need);
          bufStart = at;
          bufLen = file.read(buf, 0, Math.min(buf.length, size - at), at);
          rel = 0;
        }
        const frame = tryParseFrame(buf, rel, bufLen);
        if (frame === null) break;
        if (count === offsets.length) {
          offsets = grow(offsets);
          keytab = growTable(keytab);
        }
        offsets[count] = at;
        keytab.set(frame.key, count * KEYTAB_ENTRY_LENGTH);
        onRecord?.(frame.key, count);
        count++;
        at += frame.length;
      }
      const truncatedBytes = size - at;
      let savedTail: string | null = null;
      if (truncatedBytes > 0 && validFrameAfter(file, at + 1, size)) {
        // A valid record after the bad one: either damage in the middle of
        // the file or a crash that wrote pages out of order. Either way the
        // records after it cannot be trusted as a stream, but they may
        // matter: keep the bytes, durably, before cutting them off.
        savedTail = `${path}.cut-${at}`;
        const tail = Buffer.allocUnsafe(truncatedBytes);
        file.read(tail, 0, truncatedBytes, at);
        await writeFileDurably(fs, savedTail, tail);
      }
      if (truncatedBytes > 0) file.truncate(at);
      if (!headerBytes.equals(cleanHeader)) file.write(cleanHeader, 0, HEADER_LENGTH, 0);
      const arena = new ActiveArena(fs, file, header, cleanHeader, at, offsets, keytab, count, true, flushBytes);
      // Whatever recovery cut or rewrote is not durable yet; the next sync covers it.
      if (truncatedBytes > 0 || !headerBytes.equals(cleanHeader)) arena.durableEnd = 0;
      return { arena, truncatedBytes, savedTail };
    } catch (err) {
      file.close();
      throw err;
    }
  }

  get count(): number {
    return this.countValue;
  }

  /** Length of the arena's records, including what is still buffered. */
  get dataEnd(): number {
    return this.writtenEnd + this.pendingLength;
  }

  get nextSeq(): bigint {
    return this.header.firstSeq + BigInt(this.countValue);
  }

  /**
   * Appends a record and returns its ordinal (sequence number minus the
   * first); durable after sync(). Keys must be unique within the arena: the
   * owner checks, through its locator. `payloadHash` is SHA-256(payload)
   * when the caller has it (a content object's id), else it is computed
   * here: the record's digest is taken now, from the bytes given, so
   * sealing need not read them back. A wrong `payloadHash` is not checked
   * here; verify() and fsck report the record as not matching its digest.
   */
  append(type: number, key: Uint8Array, payload: Uint8Array, payloadHash?: Uint8Array): number {
    this.checkUsable();
    validateRecord(type, key, payload);
    if (payloadHash !== undefined && payloadHash.length !== DIGEST_LENGTH) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, `a payload hash is ${DIGEST_LENGTH} bytes, not ${payloadHash.length}`);
    }
    const digestOf = payloadHash ?? hash('sha256', payload, 'buffer');
    const len = frameLength(payload.length);
    const at = this.dataEnd;
    if (at + len > MAX_DATA_END) {
      throw new BazilError(ErrorCodes.RECORD_TOO_LARGE, `${this.path}: record does not fit below 4 GiB; seal first`, { path: this.path });
    }
    if (len > this.pending.length - this.pendingLength) this.flush();
    if (this.countValue === this.offsets.length) {
      this.offsets = grow(this.offsets);
      this.keytab = growTable(this.keytab);
    }
    const entry = this.countValue * KEYTAB_ENTRY_LENGTH;
    if (len > this.pending.length) {
      const big = Buffer.allocUnsafe(len);
      encodeFrameUnchecked(big, 0, type, key, payload);
      this.keytab.set(recordDigest(big, 0, digestOf), entry + KEY_LENGTH);
      checksumFrames(big, 0, len);
      this.writeOut(big, len);
    } else {
      // The checksum is filled in later, for a whole buffer in one call.
      encodeFrameUnchecked(this.pending, this.pendingLength, type, key, payload);
      this.keytab.set(recordDigest(this.pending, this.pendingLength, digestOf), entry + KEY_LENGTH);
      this.pendingLength += len;
    }
    this.keytab.set(key, entry);
    this.offsets[this.countValue] = at;
    return this.countValue++;
  }

  /** Fills the checksums of buffered frames that lack them. */
  private checksumPending(): void {
    if (this.checksummedTo < this.pendingLength) {
      checksumFrames(this.pending, this.checksummedTo, this.pendingLength);
      this.checksummedTo = this.pendingLength;
    }
  }

  /** Hands buffered records to the file (the page cache), without waiting for the device. */
  flush(): void {
    if (this.pendingLength === 0) return;
    this.checksumPending();
    this.writeOut(this.pending, this.pendingLength);
    this.pendingLength = 0;
    this.checksummedTo = 0;
    if (this.writtenEnd - this.writebackFrom >= WRITE_BEHIND_BYTES) {
      this.file.startWriteback(this.writebackFrom, this.writtenEnd - this.writebackFrom);
      this.writebackFrom = this.writtenEnd;
    }
  }

  private writeOut(buf: Buffer, len: number): void {
    try {
      this.file.write(buf, 0, len, this.writtenEnd);
    } catch (err) {
      // After a failed write the file's tail is unknown; refuse further use
      // rather than risk acknowledging records that are not there.
      this.failed = err;
      throw err;
    }
    this.writtenEnd += len;
  }

  /**
   * Resolves once every record appended before the call is durable. Calls
   * made while an fdatasync is in flight wait for it and then share the next
   * one, so N concurrent callers cost about two syncs, not N.
   */
  async sync(): Promise<void> {
    this.checkUsable();
    this.flush();
    const target = this.writtenEnd;
    while (this.durableEnd < target) {
      await (this.inflight ?? this.startSync());
      if (this.failed !== null) throw this.failed;
    }
  }

  private startSync(): Promise<void> {
    const upto = this.writtenEnd;
    const p = this.syncOnce(upto).finally(() => {
      this.inflight = null;
    });
    this.inflight = p;
    return p;
  }

  private async syncOnce(upto: number): Promise<void> {
    try {
      if (this.predecessor !== null) await this.predecessor;
      await this.file.sync();
      if (!this.entryDurable) {
        await this.fs.syncDir(dirOf(this.path));
        this.entryDurable = true;
      }
    } catch (err) {
      // fsyncgate: after a failed fsync the kernel may have dropped the dirty
      // pages, so a retry could falsely succeed. The arena stops here and is
      // reopened (and rescanned) by its owner.
      this.failed = err;
      throw err;
    }
    if (upto > this.durableEnd) this.durableEnd = upto;
  }

  /** Whether the record at `ordinal` has `key[off, off+32)`. */
  keyMatchesAt(ordinal: number, key: Uint8Array, off: number): boolean {
    if (ordinal >= this.countValue) return false;
    return this.keyEquals(ordinal, key, off);
  }

  private keyEquals(ordinal: number, key: Uint8Array, off: number): boolean {
    const head = this.readBytes(this.offsets[ordinal] + 5, 32);
    for (let i = 0; i < 32; i++) if (head[i] !== key[off + i]) return false;
    return true;
  }

  private readBytes(at: number, len: number): Uint8Array {
    if (at >= this.writtenEnd) {
      this.checksumPending();
      const rel = at - this.writtenEnd;
      return this.pending.subarray(rel, rel + len);
    }
    const out = Buffer.allocUnsafe(len);
    const n = this.file.read(out, 0, len, at);
    if (n !== len) {
      throw new BazilError(ErrorCodes.CORRUPT_RECORD, `${this.path}: short read at offset ${at}`, { path: this.path, offset: at });
    }
    return out;
  }

  frameEnd(ordinal: number): number {
    return ordinal + 1 < this.countValue ? this.offsets[ordinal + 1] : this.dataEnd;
  }

  frameOffset(ordinal: number): number {
    return this.offsets[ordinal];
  }

  /**
   * Offset and length of the frame at `ordinal` when it is in the file
   * already (not in the write buffer), else null: appended bytes never
   * change, so another thread may pread them from there.
   */
  writtenSpan(ordinal: number): { offset: number; length: number } | null {
    if (ordinal >= this.countValue) return null;
    const end = this.frameEnd(ordinal);
    if (end > this.writtenEnd) return null;
    const offset = this.offsets[ordinal];
    return { offset, length: end - offset };
  }

  /** The record at `ordinal`, checksum verified. */
  recordAt(ordinal: number): ArenaRecord {
    this.checkOpen();
    const at = this.offsets[ordinal];
    const len = this.frameEnd(ordinal) - at;
    const b = this.readBytes(at, len);
    const payloadEnd = len - 8;
    if (readPayloadLength(b, 0) !== payloadEnd - FRAME_HEAD_LENGTH || !checksumMatches(b, 0, payloadEnd, payloadEnd)) {
      throw new BazilError(ErrorCodes.CORRUPT_RECORD, `${this.path}: record at offset ${at} fails its checksum`, { path: this.path, offset: at });
    }
    return { type: b[4], key: b.subarray(5, FRAME_HEAD_LENGTH), payload: b.subarray(FRAME_HEAD_LENGTH, payloadEnd) };
  }

  *records(fromOrdinal = 0, toOrdinal = this.countValue): Generator<SequencedRecord> {
    for (let i = Math.max(0, fromOrdinal); i < Math.min(toOrdinal, this.countValue); i++) {
      yield { ...this.recordAt(i), seq: this.header.firstSeq + BigInt(i) };
    }
  }

  /** The underlying file, for sealing; only after flush(). */
  fileForSealing(): ArenaFile {
    this.checkUsable();
    this.flush();
    return this.file;
  }

  /** A copy of the key table as far as it is known (see SealingTable), for sealing. */
  sealingTable(): SealingTable {
    return { keytab: Buffer.from(this.keytab.subarray(0, this.countValue * KEYTAB_ENTRY_LENGTH)), recovered: this.recovered };
  }

  /** Frame offsets of every record, in append order. */
  frameOffsets(): Uint32Array {
    return this.offsets.subarray(0, this.countValue);
  }

  /** Stops appends: the arena is being sealed. Reads go on until close(). */
  retire(): void {
    this.retired = true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.file.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new BazilError(ErrorCodes.CLOSED, `${this.path}: arena is closed`, { path: this.path });
  }

  private checkUsable(): void {
    this.checkOpen();
    if (this.retired) throw new BazilError(ErrorCodes.CLOSED, `${this.path}: arena is being sealed`, { path: this.path });
    if (this.failed !== null) {
      throw new BazilError(ErrorCodes.IO, `${this.path}: an earlier write or sync failed; reopen the arena set to recover`, { path: this.path }, this.failed);
    }
  }
}

function growTable(a: Buffer): Buffer {
  const b = Buffer.allocUnsafe(a.length * 2);
  a.copy(b);
  return b;
}

function grow(a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(a.length * 2);
  b.set(a);
  return b;
}

export function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? (i === 0 ? '/' : '.') : path.slice(0, i);
}
