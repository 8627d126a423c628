// The file layer under the arena engine.
//
// Every byte the arena engine reads or writes goes through this interface, so
// tests can slide a fault-injecting layer (fault-fs.ts) between the engine and
// the disk without mocking any module. Reads and writes are synchronous:
// they hit the page cache and cost about a microsecond, far less than a trip
// through libuv's thread pool. Only the calls that wait on the device (file
// and directory fsync) are asynchronous, so group commit can overlap them
// with new appends.

export interface FileStat {
  size: number;
  /** 512-byte blocks allocated, as st_blocks reports them. */
  blocks: number;
}

export interface ArenaFile {
  readonly path: string;
  /** Current length in bytes. */
  size(): number;
  /** Reads up to `length` bytes at `position` into `buf`; returns bytes read. */
  read(buf: Uint8Array, offset: number, length: number, position: number): number;
  /** Writes all of `buf[offset, offset+length)` at `position`. */
  write(buf: Uint8Array, offset: number, length: number, position: number): void;
  /** Makes every write issued before the call durable (fdatasync). */
  sync(): Promise<void>;
  /**
   * Starts writing a range's dirty pages to the device without waiting and
   * without making anything durable (sync_file_range); a hint that lets the
   * device work while appends go on. May do nothing.
   */
  startWriteback(position: number, length: number): void;
  truncate(length: number): void;
  /** Frees the blocks of a byte range, keeping the file size (FALLOC_FL_PUNCH_HOLE). */
  punchHole(position: number, length: number): void;
  /**
   * A read-only view of the whole file as it is now, backed by a memory map
   * where the platform allows it; null where it does not. Only used on
   * sealed (immutable) files, whose length never changes.
   */
  map(): Uint8Array | null;
  close(): void;
}

export type OpenMode =
  /** Read only. */
  | 'r'
  /** Read and write an existing file. */
  | 'rw'
  /** Create a new file for read and write; fails if it exists. */
  | 'create';

export interface FileSystem {
  open(path: string, mode: OpenMode): ArenaFile;
  /** Atomically replaces `to` with `from` (rename(2)). */
  rename(from: string, to: string): void;
  unlink(path: string): void;
  /** Names in a directory, unsorted. */
  readdir(dir: string): string[];
  mkdirp(dir: string): void;
  /** Makes creations, renames and unlinks in `dir` durable (fsync of the directory). */
  syncDir(dir: string): Promise<void>;
  exists(path: string): boolean;
  stat(path: string): FileStat;
  /**
   * The path under which another thread of this process may read the same
   * file with plain node:fs, or null. Layers that must see every read (the
   * fault-injecting one) leave it out, and callers then read through them.
   */
  localPath?(path: string): string | null;
}
