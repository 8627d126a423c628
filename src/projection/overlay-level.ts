// The projection's database with its batch writes pipelined: a batch is
// staged in memory and answered at once, and staged batches go to LevelDB
// together, one LevelDB batch at a time, behind the caller. A live commit
// (one create, one unlink) then no longer waits for a trip through the
// thread pool, which was about half of its time (docs/mount.md,
// "Performance").
//
// Point reads (get, getSync, getMany) look at the staged writes first, so
// every reader sees a batch as soon as batch() returns, exactly as when it
// waited for LevelDB. Range reads (iterator, keys, values) first wait for
// everything staged so far to be written, then read LevelDB: merging the
// staged writes into a range would need their stored (hashed) keys' order,
// and ranges are rare on the paths that commit often (readdir, listxattr,
// the back-link scans of an inode that changes).
//
// One LevelDB batch is in flight at a time: two batches on the thread pool
// may land in either order, and a later batch must win. A write that fails
// fails every later call (the staged state stays readable, so readers stay
// consistent with the position the store reports; the log, written before
// any of this, replays it at the next open, as after a crash).
//
// Point reads that reach LevelDB are remembered in the clear (record-cache.ts),
// and every staged write updates what is remembered, so a repeated read of
// a record costs a map lookup.
//
// Ordering against the log is unchanged: a batch is staged after its
// events were appended to the log, and LevelDB writes without sync, so the
// projection could already reach the disk ahead of a deferred log fsync;
// the volume detects and rebuilds that at open (docs/mount.md,
// "Durability").

import type { ClassicLevel } from 'classic-level';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { RecordCodec } from './record-codec.js';
import { RecordCache } from './record-cache.js';
import { SealedLevel, type KeyRange, type RecordOp } from './sealed-level.js';

/** Staged operations beyond which a new batch waits for the writes ahead of it (bounds the memory a replay can stage). */
const MAX_STAGED_OPS = 16_384;
/** How long staged operations may wait to be written together (see pump). */
const GROUP_MS = 5;
/** Queued operations that are written at once, without waiting for more. */
const WRITE_AT_ONCE_OPS = 4096;

interface Staged {
  key: Buffer;
  value: Buffer | null;
  /** The group that will write it: the entry goes once that group is written and nothing newer replaced it. */
  group: number;
}

export class OverlayLevel extends SealedLevel {
  private readonly staged = new Map<string, Staged>();
  /** Operations of the group not yet handed to LevelDB, in order. */
  private queue: RecordOp[] = [];
  private group = 0;
  private writing: Promise<void> | null = null;
  private failure: unknown = null;
  private readonly cache = new RecordCache();
  /** Counts staged batches and drops: an async read fills the cache only if none came while LevelDB answered. */
  private writes = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(raw: ClassicLevel<Buffer, Buffer>, codec: RecordCodec) {
    super(raw, codec);
  }

  override async get(key: Buffer): Promise<Buffer | undefined> {
    const k = key.toString('latin1');
    const s = this.staged.get(k);
    if (s !== undefined) return s.value ?? undefined;
    const cached = this.cache.get(k);
    if (cached !== undefined) return cached ?? undefined;
    const writes = this.writes;
    const v = await super.get(key);
    if (writes === this.writes) this.cache.set(k, v ?? null);
    return v;
  }

  override getSync(key: Buffer): Buffer | undefined {
    const k = key.toString('latin1');
    const s = this.staged.get(k);
    if (s !== undefined) return s.value ?? undefined;
    const cached = this.cache.get(k);
    if (cached !== undefined) return cached ?? undefined;
    const v = super.getSync(key);
    this.cache.set(k, v ?? null);
    return v;
  }

  /** Forgets every remembered read: the owner changed the database beside this object (a clear). */
  forgetReads(): void {
    this.writes++;
    this.cache.clear();
  }

  override async getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    const out: (Buffer | undefined)[] = new Array(keys.length);
    const missing: number[] = [];
    keys.forEach((key, i) => {
      const k = key.toString('latin1');
      const s = this.staged.get(k);
      if (s !== undefined) {
        out[i] = s.value ?? undefined;
        return;
      }
      const cached = this.cache.get(k);
      if (cached !== undefined) out[i] = cached ?? undefined;
      else missing.push(i);
    });
    if (missing.length > 0) {
      const writes = this.writes;
      const values = await super.getMany(missing.map((i) => keys[i]!));
      missing.forEach((i, j) => {
        // A batch staged while LevelDB answered is newer than its answer.
        const k = keys[i]!.toString('latin1');
        const s = this.staged.get(k);
        out[i] = s !== undefined ? s.value ?? undefined : values[j];
        if (s === undefined && writes === this.writes) this.cache.set(k, values[j] ?? null);
      });
    }
    return out;
  }

  override async put(key: Buffer, value: Buffer): Promise<void> {
    await this.batch([{ type: 'put', key, value }]);
  }

  /** Stages `ops`; with `sync`, waits until they are written and synced. */
  override async batch(ops: RecordOp[], options: { sync?: boolean } = {}): Promise<void> {
    this.check();
    if (this.queue.length >= MAX_STAGED_OPS) await this.flush();
    if (options.sync === true) {
      await this.flush();
      this.writes++;
      // Remembered before the write, as a staged batch is, so a point read meanwhile cannot remember the old value.
      for (const op of ops) this.cache.set(op.key.toString('latin1'), op.type === 'put' ? op.value : null);
      try {
        await super.batch(ops, options);
      } catch (err) {
        // What LevelDB holds is unknown now.
        this.forgetReads();
        throw err;
      }
      return;
    }
    this.writes++;
    const group = this.group;
    for (const op of ops) {
      const key = op.key.toString('latin1');
      const value = op.type === 'put' ? op.value : null;
      this.staged.set(key, { key: op.key, value, group });
      this.cache.set(key, value);
      this.queue.push(op);
    }
    this.pump();
  }

  override async *iterator(range: KeyRange = {}): AsyncGenerator<[Buffer, Buffer]> {
    await this.flush();
    yield* super.iterator(range);
  }

  /** Resolves once everything staged before the call is in LevelDB; rejects if a write failed. */
  async flush(): Promise<void> {
    while (this.failure === null && (this.writing !== null || this.queue.length > 0)) {
      this.writeNow();
      await this.writing;
    }
    this.check();
  }

  /**
   * Lets the queue gather for GROUP_MS before it is written, unless it is
   * large already: consecutive commits rewrite the same records (the
   * position, the parent directory's inode and dirty mark), which one
   * write then seals and stores once, and each LevelDB batch has a fixed
   * cost on this thread. Readers see the staged state meanwhile, and range
   * reads and close write it at once (flush).
   */
  private pump(): void {
    if (this.writing !== null || this.queue.length === 0 || this.failure !== null) return;
    if (this.queue.length >= WRITE_AT_ONCE_OPS) {
      this.writeNow();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.writeNow();
    }, GROUP_MS);
  }

  /** Hands the queued operations to LevelDB when no write is in flight, the last one per key only. */
  private writeNow(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.writing !== null || this.queue.length === 0 || this.failure !== null) return;
    const last = new Map<string, RecordOp>();
    for (const op of this.queue) last.set(op.key.toString('latin1'), op);
    const group = this.group++;
    this.queue = [];
    this.writing = super.batch([...last.values()]).then(
      () => {
        for (const k of last.keys()) {
          if (this.staged.get(k)?.group === group) this.staged.delete(k);
        }
        this.writing = null;
        this.pump();
      },
      (err: unknown) => {
        this.failure ??= err;
        this.writing = null;
      },
    );
  }

  private check(): void {
    if (this.failure !== null) {
      throw new BazilError(ErrorCodes.IO, 'a projection write failed; the volume must be reopened (the log replays it)', {}, this.failure);
    }
  }
}
