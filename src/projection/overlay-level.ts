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
// Ordering against the log is unchanged: a batch is staged after its
// events were appended to the log, and LevelDB writes without sync, so the
// projection could already reach the disk ahead of a deferred log fsync;
// the volume detects and rebuilds that at open (docs/mount.md,
// "Durability").

import type { ClassicLevel } from 'classic-level';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { RecordCodec } from './record-codec.js';
import { SealedLevel, type KeyRange, type RecordOp } from './sealed-level.js';

/** Staged operations beyond which a new batch waits for the writes ahead of it (bounds the memory a replay can stage). */
const MAX_STAGED_OPS = 16_384;

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

  constructor(raw: ClassicLevel<Buffer, Buffer>, codec: RecordCodec) {
    super(raw, codec);
  }

  override async get(key: Buffer): Promise<Buffer | undefined> {
    const s = this.staged.get(key.toString('latin1'));
    return s !== undefined ? s.value ?? undefined : super.get(key);
  }

  override getSync(key: Buffer): Buffer | undefined {
    const s = this.staged.get(key.toString('latin1'));
    return s !== undefined ? s.value ?? undefined : super.getSync(key);
  }

  override async getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    if (this.staged.size === 0) return super.getMany(keys);
    const out: (Buffer | undefined)[] = new Array(keys.length);
    const missing: number[] = [];
    keys.forEach((key, i) => {
      const s = this.staged.get(key.toString('latin1'));
      if (s !== undefined) out[i] = s.value ?? undefined;
      else missing.push(i);
    });
    if (missing.length > 0) {
      const values = await super.getMany(missing.map((i) => keys[i]!));
      missing.forEach((i, j) => {
        // A batch staged while LevelDB answered is newer than its answer.
        const s = this.staged.get(keys[i]!.toString('latin1'));
        out[i] = s !== undefined ? s.value ?? undefined : values[j];
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
      await super.batch(ops, options);
      return;
    }
    const group = this.group;
    for (const op of ops) {
      const key = op.key.toString('latin1');
      this.staged.set(key, { key: op.key, value: op.type === 'put' ? op.value : null, group });
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
      this.pump();
      await this.writing;
    }
    this.check();
  }

  /** Hands the queued operations to LevelDB when no write is in flight. */
  private pump(): void {
    if (this.writing !== null || this.queue.length === 0 || this.failure !== null) return;
    const ops = this.queue;
    const group = this.group++;
    this.queue = [];
    this.writing = super.batch(ops).then(
      () => {
        for (const op of ops) {
          const k = op.key.toString('latin1');
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
