// File handles: what open() and create() return. A handle is a small view
// of the inode's shared open state (open-files.ts) with its access mode; it
// checks the call and its own state, and the volume does the rest (flushes
// go through the volume's write queue).

import { BazilError, ErrorCodes } from '../../errors/index.js';
import { checkFileOffset, checkReadRange, type OpenFile } from './open-files.js';
import type { CallOptions } from './reader.js';

/** The access an open asks for (O_RDONLY = {read}, O_WRONLY = {write}, O_RDWR = both; neither is read-only). */
export interface OpenFlags {
  read?: boolean;
  write?: boolean;
  /** O_APPEND: every write goes to the current end of the file. */
  append?: boolean;
  /** O_TRUNC: the file is cut to 0 bytes at open (one event). */
  truncate?: boolean;
}

export interface FileHandle {
  /** The inode id. */
  readonly id: Buffer;
  /** Bytes [offset, offset + length): short at the end; sees every handle's unflushed writes. */
  read(offset: number, length: number, options?: CallOptions): Promise<Buffer>;
  /** read() into the start of `out` (at most out.length bytes); returns the byte count. Spares a buffer per call. */
  readInto(out: Buffer, offset: number, options?: CallOptions): Promise<number>;
  /**
   * readInto() answered in the caller's tick (reads never wait: a chunk not
   * read ahead is decrypted on the spot); throws what readInto rejects with.
   * For the mount, whose per-request promise chain was a visible share of a
   * read's cost.
   */
  readIntoNow(out: Buffer, offset: number, signal?: AbortSignal): number;
  /**
   * Returns the bytes written; with append, writes at the current end.
   * `data` is copied before the call returns (before its promise settles),
   * so the caller may reuse it at once.
   */
  write(offset: number, data: Uint8Array, options?: CallOptions): Promise<number>;
  /** ftruncate. */
  truncate(size: number, options?: CallOptions): Promise<void>;
  /** Unflushed writes become events (content durable first); a no-op when clean. */
  flush(options?: CallOptions): Promise<void>;
  /** flush, and durable (the log synced) when it returns. */
  fsync(options?: CallOptions): Promise<void>;
  /** flush and close the handle; later calls fail with EBADF. */
  release(options?: CallOptions): Promise<void>;
  /**
   * flush() answered in the caller's tick when it has nothing to do (no
   * unflushed change, no commit in flight): true then; false means call
   * flush(). Throws what flush rejects with before doing any work. For the
   * mount, whose every close of a file sends a flush and a release.
   */
  flushNow(): boolean;
  /** release() in the caller's tick when flushNow() would be true: true when released, false means call release(). */
  releaseNow(): boolean;
}

/** What a handle needs from its volume. */
export interface HandleHost {
  /** Throws if the volume is closed or the signal aborted. */
  checkOpen(signal: AbortSignal | undefined): void;
  /** Called after a change, to keep dirty memory bounded; may wait while too much is held. */
  changed(file: OpenFile): Promise<void>;
  flushFile(file: OpenFile, signal: AbortSignal | undefined): Promise<void>;
  /** Drops one user of the file's state (flushing is done before). */
  releaseFile(file: OpenFile): void;
  /** Makes every commit so far durable, metadata ones deferred by the volume included. */
  sync(signal: AbortSignal | undefined): Promise<void>;
}

export class Handle implements FileHandle {
  private released = false;
  private readonly canRead: boolean;
  private readonly canWrite: boolean;
  private readonly append: boolean;

  constructor(private readonly host: HandleHost, private readonly file: OpenFile, flags: OpenFlags) {
    this.canWrite = flags.write === true;
    this.canRead = flags.read === true || !this.canWrite;
    this.append = flags.append === true;
  }

  get id(): Buffer {
    return this.file.id;
  }

  async read(offset: number, length: number, options: CallOptions = {}): Promise<Buffer> {
    this.check(options.signal, 'read');
    if (!this.canRead) throw this.misuse('EBADF', 'is not open for reading');
    checkReadRange(offset, length, this.file.id);
    return this.file.read(offset, length);
  }

  async readInto(out: Buffer, offset: number, options: CallOptions = {}): Promise<number> {
    return this.readIntoNow(out, offset, options.signal);
  }

  readIntoNow(out: Buffer, offset: number, signal?: AbortSignal): number {
    this.check(signal, 'read');
    if (!this.canRead) throw this.misuse('EBADF', 'is not open for reading');
    checkReadRange(offset, out.length, this.file.id);
    this.file.beforeRead(offset, out.length);
    return this.file.readInto(out, offset);
  }

  async write(offset: number, data: Uint8Array, options: CallOptions = {}): Promise<number> {
    this.check(options.signal, 'write');
    if (!this.canWrite) throw this.misuse('EBADF', 'is not open for writing');
    if (!(data instanceof Uint8Array)) throw this.misuse('EINVAL', 'takes bytes (a Buffer or Uint8Array)');
    const at = this.append ? this.file.size : offset;
    checkFileOffset(at, 'a write offset', this.file.id);
    checkFileOffset(at + data.length, 'the end of a write', this.file.id);
    this.file.write(at, data);
    await this.host.changed(this.file);
    return data.length;
  }

  async truncate(size: number, options: CallOptions = {}): Promise<void> {
    this.check(options.signal, 'truncate');
    if (!this.canWrite) throw this.misuse('EINVAL', 'is not open for writing, so it cannot be truncated');
    checkFileOffset(size, 'a size', this.file.id);
    this.file.truncate(size);
    await this.host.changed(this.file);
  }

  async flush(options: CallOptions = {}): Promise<void> {
    this.check(options.signal, 'flush');
    await this.host.flushFile(this.file, options.signal);
  }

  async fsync(options: CallOptions = {}): Promise<void> {
    this.check(options.signal, 'fsync');
    // A content commit is durable when it lands (the log is synced before it
    // resolves), so fsync is a flush that waits for earlier ones too; the
    // sync covers a clean file whose creation or rename is still deferred.
    await this.host.flushFile(this.file, options.signal);
    await this.file.settled();
    await this.host.sync(options.signal);
  }

  flushNow(): boolean {
    this.check(undefined, 'flush');
    return this.clean();
  }

  releaseNow(): boolean {
    this.check(undefined, 'release');
    if (!this.clean()) return false;
    this.released = true;
    this.host.releaseFile(this.file);
    return true;
  }

  /** Whether a flush would plan no commit and wait for none: nothing unflushed, nothing being spliced or committed. */
  private clean(): boolean {
    return !this.file.modified && !this.file.isSplicing;
  }

  async release(options: CallOptions = {}): Promise<void> {
    this.check(options.signal, 'release');
    this.released = true;
    try {
      await this.host.flushFile(this.file, options.signal);
    } finally {
      this.host.releaseFile(this.file);
    }
  }

  private check(signal: AbortSignal | undefined, op: string): void {
    if (this.released) throw this.misuse('EBADF', `was released; ${op} needs an open handle`);
    this.host.checkOpen(signal);
  }

  private misuse(errno: string, why: string): BazilError {
    return new BazilError(ErrorCodes.BAD_ARGUMENT, `the handle on inode ${this.file.id.toString('hex')} ${why}`, { errno, id: this.file.id.toString('hex') });
  }
}
