// A worker thread that decrypts files' content and writes the local files,
// for export (import-export.ts, Exporter). On two cores the main thread was
// the bottleneck of export: besides walking the projection it decrypted
// every chunk (with a fresh plaintext buffer each, which its garbage
// collector then had to find) and paid a thread-pool round trip for every
// open, write, chown, chmod, utimes and close, each a chance for the OS to
// give its core to the woken thread. Here the main thread only says where
// each chunk's record lies (a descriptor of its arena file, held open for
// the export, and the offset; arenaRead) or, when it cannot, copies the
// sealed object into a slab of shared memory itself; the worker reads the
// records into the slab (checking each frame's checksum as the arena
// does), decrypts them there (checking every tag), writes with pwritev and
// sets the owner, mode and times through the descriptor, all with plain
// system calls.
// Except the open: creating a file waits for the file system (its journal,
// or on a file system without one, ext4's search for an inode not deleted
// in the last half minute), so the main thread opens each file through the
// thread pool and hands the worker its descriptor.
//
// Opens go at most OPENS at a time, ahead of the content (sixteen files
// are in flight, import-export.ts). Creating files in one directory takes
// the directory's lock, so opens side by side do not go faster; the point
// of more than one is that the next create is already waiting in the
// kernel when one ends, instead of waiting for this thread to handle the
// completion and issue it. Each one more also waits, spinning on the lock
// while the holder runs (rwsem_spin_on_owner: 3 to 12% of export's CPU
// samples with four), on a core that is otherwise idle or that the spinner
// yields as soon as another thread wants it.
//
// Files share slabs and messages (a batch): a small file's content is one
// segment among many in a slab, and the worker answers once per batch, so
// the per-file cost is not a message and a reply each way (each a wake-up
// of another thread). A batch is posted when its slab is full, when
// BATCH_FILES files end in it, or when no open is under way, i.e. no file
// is about to join it (schedule).
//
// A file's segments reach the one worker in order. A writer that finds no
// free slab waits for one: the worker never waits on anything, so slabs
// always come back.

import { close as closeFd, closeSync, open, openSync } from 'node:fs';
import { FRAME_HEAD_LENGTH, FRAME_OVERHEAD } from '../../arena/format.js';
import { Worker } from 'node:worker_threads';
import { BazilError, ErrorCodes, ioError } from '../../errors/index.js';
import { checkAborted, type ContentStore, type SealedExtent } from '../cas/content-store.js';
import { OBJECT_ID_LENGTH, OBJECT_KEY_LENGTH } from '../cas/convergent.js';
import { ITEM_FIELDS, type ErrorMessage, type ExportReply, type ExportRequest, type FileClose, type Segment } from './export-protocol.js';

const SLABS = 4;
/** Room for many small files' chunks, or a big file's, per message; a sealed chunk (at most 256 KiB) always fits an empty slab. */
const SLAB_BYTES = 2 * 1024 * 1024;
/** Files ending in one batch before it is posted, so that those opened behind them are not held up. */
const BATCH_FILES = 8;
/** Opens under way at once (see the header); the thread pool's fourth thread stays free for the walk's LevelDB reads. */
const OPENS = 3;
/** Arena files held open for the workers' reads; chunks in others are read by this thread. */
const ARENA_FDS = 256;
/** Export workers: two on two cores (the main thread is mostly idle once the workers read the records). */
const LANES = 2;
/** Bytes waiting in every lane before another lane (worker) is started. */
const SPREAD_BYTES = 2 * SLAB_BYTES;

export type { ErrorMessage, FileClose };

/** One file being written, from its open until the reply to the batch that holds its last segment. */
interface FileState {
  readonly file: number;
  readonly fd: number;
  readonly path: string;
  /** The first error the worker reported for it. */
  error: unknown;
  /** Whether a segment of it is in a batch (posted or not): from then on the worker owns the descriptor. */
  handedOver: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A slab being filled, then posted, until its reply. */
interface Batch {
  readonly slab: number;
  used: number;
  readonly items: number[];
  readonly keys: Uint8Array[];
  readonly ids: Uint8Array[];
  readonly segments: Segment[];
  /** The files whose last segment is here: settled by this batch's reply. */
  readonly ending: FileState[];
  /** The files with any segment here, by number, for the errors the reply names. */
  readonly files: Map<number, FileState>;
  /** Arena descriptors the worker reads from for this batch, with their paths. */
  readonly fds: Map<number, string>;
}

/**
 * One export worker and its slabs and batches: a file's segments all go to
 * its lane, in order. ExportPool spreads files over its lanes.
 */
class ExportLane {
  private readonly worker: Worker;
  private readonly slabs: Buffer[] = [];
  private readonly free: number[] = [];
  private readonly waiting: Array<{ resolve: (slab: number) => void; reject: (err: unknown) => void }> = [];
  /** Posted batches by job number, until their replies. */
  private readonly posted = new Map<number, Batch>();
  /** Files written and not yet settled, to reject if the worker dies. */
  private readonly live = new Set<FileState>();
  /** The batch being filled, if any. */
  private current: Batch | null = null;
  /** A writer is getting the next slab for `current`: the others wait for it rather than each take one. */
  private gettingSlab: Promise<void> | null = null;
  /** A look at the current batch is due (lookSoon). */
  private postSoon = false;
  private nextJob = 0;
  private nextFile = 0;
  private failure: unknown = null;
  private closed = false;
  /** Resolves close() once the worker has closed what it held. */
  private closing: (() => void) | null = null;

  /** Bytes of the files written through this lane and not yet settled: the pool gives a new file to the lane with the fewest. */
  pendingBytes = 0;

  constructor(private readonly shared: PoolShared) {
    const slabBuffers: SharedArrayBuffer[] = [];
    for (let i = 0; i < SLABS; i++) {
      const b = new SharedArrayBuffer(SLAB_BYTES);
      slabBuffers.push(b);
      this.slabs.push(Buffer.from(b));
      this.free.push(i);
    }
    // The worker closes descriptors this thread opened: not its own to track.
    // A small young generation: without the addon its garbage is mostly the
    // wrappers of decrypted chunks, whose memory is freed only when they are collected.
    this.worker = new Worker(new URL('./export-worker.js', import.meta.url), { workerData: { slabs: slabBuffers }, trackUnmanagedFds: false, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    this.worker.on('message', (reply: ExportReply) => this.settle(reply));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`export worker exited with code ${code}`));
    });
    this.worker.unref();
  }

  /**
   * ExportPool.writeFile for a file the pool has created and opened as
   * `fd`: from its first segment on, the worker owns the descriptor (this
   * thread closes it only if the writer gives up before handing it over).
   */
  async writeFile(fd: number, path: string, extents: Iterable<SealedExtent>, source: Pick<ContentStore, 'readSealedInto' | 'sealedSpan'>, close: FileClose, signal?: AbortSignal): Promise<void> {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const f: FileState = { file: this.nextFile++, fd, path, error: null, handedOver: false, resolve, reject };
    this.live.add(f);
    let segment: Segment | null = null;
    let batch: Batch | null = null;
    /** The segment of this file in the current batch, begun if the batch changed. */
    const segmentIn = (b: Batch): Segment => {
      if (segment !== null && batch === b) return segment;
      batch = b;
      segment = { file: f.file, open: f.handedOver ? null : { fd, path }, from: b.items.length / ITEM_FIELDS, to: b.items.length / ITEM_FIELDS, close: null, drop: false };
      f.handedOver = true;
      b.segments.push(segment);
      b.files.set(f.file, f);
      return segment;
    };
    try {
      for (const e of extents) {
        checkAborted(signal);
        if (e.kind === 'hole') {
          let b = this.roomNow(0);
          while (b === null) {
            await this.roomFor(0);
            b = this.roomNow(0);
          }
          const s = segmentIn(b);
          b.items.push(-e.length, 0, 0, 0, -1, -1, 0);
          s.to++;
          continue;
        }
        let b = this.roomNow(e.frameLength);
        while (b === null) {
          await this.roomFor(e.frameLength);
          b = this.roomNow(e.frameLength);
        }
        const s = segmentIn(b);
        const read = this.shared.arenaRead(source, e);
        if (read !== null) {
          // The worker reads the record into the slab itself.
          if (!b.fds.has(read.fd)) b.fds.set(read.fd, read.path);
          b.items.push(e.length, e.frameLength - FRAME_OVERHEAD, e.take, b.used + FRAME_HEAD_LENGTH, b.keys.length, read.fd, read.position);
        } else {
          const sealed = source.readSealedInto(e.id, this.slabs[b.slab]!, b.used);
          b.items.push(e.length, sealed.length, e.take, sealed.start, b.keys.length, -1, 0);
        }
        b.used += e.frameLength;
        b.keys.push(e.key);
        b.ids.push(e.id);
        s.to++;
      }
      let b = this.roomNow(0);
      while (b === null) {
        await this.roomFor(0);
        b = this.roomNow(0);
      }
      segmentIn(b).close = close;
      b.ending.push(f);
      this.schedule();
    } catch (err) {
      await this.abandon(f, err);
      throw err;
    }
    return done;
  }

  /** A writer that failed: the worker closes the file if it has it, this thread if not; resolves once it is closed. */
  private async abandon(f: FileState, err: unknown): Promise<void> {
    if (!f.handedOver) {
      this.live.delete(f);
      closeFd(f.fd, () => {});
      return;
    }
    f.error ??= err;
    try {
      let b = this.roomNow(0);
      while (b === null) {
        await this.roomFor(0);
        b = this.roomNow(0);
      }
      b.segments.push({ file: f.file, open: null, from: b.items.length / ITEM_FIELDS, to: b.items.length / ITEM_FIELDS, close: null, drop: true });
      b.files.set(f.file, f);
      b.ending.push(f);
      this.schedule();
    } catch {
      // The pool failed or closed: the worker is gone, and every live file with it.
      return;
    }
    // Rejects with `err` (or an earlier error of the worker's): the caller throws its own.
    await new Promise<void>((res) => {
      const settle = (): void => res();
      f.resolve = settle;
      f.reject = settle;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // The worker holds the descriptors of files whose writers gave up (an
    // abort, a failure) until it reads their drop segments: it closes them
    // before it is stopped, or they would stay open in this process.
    if (this.failure === null) {
      if (this.current !== null && this.current.segments.length > 0) this.post();
      await new Promise<void>((resolve) => {
        const job = this.nextJob++;
        this.worker.ref();
        this.posted.set(job, emptyBatch(-1));
        this.closing = resolve;
        this.worker.postMessage({ job, closeAll: true } satisfies ExportRequest);
      });
    }
    this.closed = true;
    const err = new BazilError(ErrorCodes.CLOSED, 'the export pool was closed with work pending');
    for (const w of this.waiting.splice(0)) w.reject(err);
    for (const f of this.live) f.reject(err);
    this.live.clear();
    this.posted.clear();
    await this.worker.terminate();
  }

  /** The current batch when it has `bytes` free and no other writer is getting a slab; null otherwise (then `roomFor`). */
  private roomNow(bytes: number): Batch | null {
    const b = this.current;
    return b !== null && this.gettingSlab === null && b.used + bytes <= SLAB_BYTES && this.failure === null && !this.closed ? b : null;
  }

  /**
   * Settles when the current batch has `bytes` free (a full one is posted
   * and a new slab taken). The caller takes it with roomNow in the same
   * microtask: writers woken together fill the batch one after another, and
   * a batch once posted takes nothing more, so a batch handed across an
   * await could be stale.
   */
  private async roomFor(bytes: number): Promise<void> {
    for (;;) {
      if (this.roomNow(bytes) !== null) return;
      this.check();
      if (this.gettingSlab !== null) {
        await this.gettingSlab;
        continue;
      }
      if (this.current !== null) this.post();
      this.gettingSlab = this.take().then((slab) => {
        this.current = emptyBatch(slab);
      }).finally(() => {
        this.gettingSlab = null;
      });
      await this.gettingSlab;
    }
  }

  /**
   * Posts the current batch when BATCH_FILES files end in it, or when no
   * file is being opened (none is about to join it: the writers are
   * waiting for the walk or for their replies); otherwise the open under
   * way brings the next file, and its end looks again. A full slab is
   * posted by roomFor. Posting every file at once would make each small
   * file its own message again: the worker writes a small file faster than
   * the main thread prepares the next one.
   */
  private schedule(): void {
    const b = this.current;
    if (b !== null && b.ending.length >= BATCH_FILES && this.gettingSlab === null) {
      this.post();
      return;
    }
    if (this.shared.opening() === 0) this.lookSoon();
  }

  /** After the writers woken in this turn have added their files. */
  lookSoon(): void {
    if (this.postSoon) return;
    this.postSoon = true;
    setImmediate(() => {
      this.postSoon = false;
      const b = this.current;
      if (b !== null && b.segments.length > 0 && this.shared.opening() === 0 && this.gettingSlab === null && !this.closed && this.failure === null) this.post();
    });
  }

  private post(): void {
    const b = this.current!;
    this.current = null;
    const job = this.nextJob++;
    const request: ExportRequest = {
      job, slab: b.slab, items: Float64Array.from(b.items),
      keys: concat(b.keys, OBJECT_KEY_LENGTH), ids: concat(b.ids, OBJECT_ID_LENGTH), segments: b.segments, arenaPaths: [...b.fds],
    };
    if (this.posted.size === 0) this.worker.ref();
    this.posted.set(job, b);
    this.worker.postMessage(request);
  }

  private take(): Promise<number> {
    this.check();
    const slab = this.free.pop();
    return slab !== undefined ? Promise.resolve(slab) : new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private release(slab: number): void {
    const next = this.waiting.shift();
    if (next !== undefined) next.resolve(slab);
    else this.free.push(slab);
  }

  private settle(reply: ExportReply): void {
    const b = this.posted.get(reply.job);
    if (b === undefined) return;
    this.posted.delete(reply.job);
    if (this.posted.size === 0) this.worker.unref();
    if (b.slab < 0) {
      this.closing?.();
      this.closing = null;
      return;
    }
    for (const { file, error } of reply.errors) {
      const f = b.files.get(file);
      if (f !== undefined) f.error ??= fromMessage(error);
    }
    for (const f of b.ending) {
      this.live.delete(f);
      if (f.error === null) f.resolve();
      else f.reject(f.error);
    }
    this.release(b.slab);
  }

  private check(): void {
    if (this.closed) throw new BazilError(ErrorCodes.CLOSED, 'the export pool is closed');
    if (this.failure !== null) throw this.error(this.failure);
  }

  private fail(cause: unknown): void {
    this.failure ??= cause;
    for (const w of this.waiting.splice(0)) w.reject(this.error(cause));
    for (const f of this.live) f.reject(this.error(cause));
    this.live.clear();
    this.posted.clear();
    this.closing?.();
    this.closing = null;
    this.worker.unref();
  }

  private error(cause: unknown): BazilError {
    return new BazilError(ErrorCodes.INTERNAL, 'the export worker failed', {}, cause);
  }
}

/** What the lanes share: the opens (at most OPENS at once over all lanes) and the arena descriptors the workers read through. */
interface PoolShared {
  opening(): number;
  arenaRead(source: Pick<ContentStore, 'sealedSpan'>, e: Extract<SealedExtent, { kind: 'chunk' }>): { fd: number; path: string; position: number } | null;
}

/**
 * Export's workers (export-worker.ts), up to LANES of them, each with its
 * own slabs and batches (ExportLane); a file goes to the lane with the
 * fewest bytes still to write, and all of it there; a lane is added when
 * every lane has SPREAD_BYTES waiting. With the reads of the
 * records in the worker (arenaRead) one worker was export's longest
 * thread; two share that work (docs/ingest.md, "Round 5").
 */
export class ExportPool implements PoolShared {
  private readonly lanes: ExportLane[] = [];
  /** Opens under way. */
  private opens = 0;
  private readonly openQueue: Array<() => void> = [];
  /** Read-only descriptors of arena files the workers read chunks from, by path; closed with the pool. */
  private readonly arenaFds = new Map<string, number>();
  private closed = false;

  constructor() {
    this.lanes.push(new ExportLane(this));
  }

  opening(): number {
    return this.opens;
  }

  /**
   * Writes a new local file at `path` (it must not exist) with the content
   * `extents`, then, if `close` is given, its owner (where allowed), mode
   * and times. Resolves once the file is written and closed. The chunks'
   * sealed objects are read from `source`'s arena files by the worker, or
   * by this thread into the slabs.
   */
  async writeFile(path: string, extents: Iterable<SealedExtent>, source: Pick<ContentStore, 'readSealedInto' | 'sealedSpan'>, close: FileClose, signal?: AbortSignal): Promise<void> {
    const fd = await this.openNew(path, close.attrs?.createMode === true ? close.attrs.mode : 0o600);
    // Chosen once the file is open, and counted at once: the writers whose opens end together spread.
    let lane = this.lanes[0]!;
    for (const l of this.lanes) if (l.pendingBytes < lane.pendingBytes) lane = l;
    // The second worker starts only once there is enough to share: a small export pays for one.
    if (lane.pendingBytes >= SPREAD_BYTES && this.lanes.length < LANES) {
      lane = new ExportLane(this);
      this.lanes.push(lane);
    }
    lane.pendingBytes += close.size;
    try {
      return await lane.writeFile(fd, path, extents, source, close, signal);
    } finally {
      lane.pendingBytes -= close.size;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await Promise.all(this.lanes.map((l) => l.close()));
    } finally {
      // The workers are gone: nothing reads through these any more.
      for (const fd of this.arenaFds.values()) {
        try {
          closeSync(fd);
        } catch {
          // Read-only: nothing to lose.
        }
      }
      this.arenaFds.clear();
    }
  }

  /**
   * Where the worker can read chunk `e`'s record itself (a descriptor of
   * its arena file and the frame's offset), or null when this thread must
   * copy it into the slab: a record still in an active arena's write
   * buffer, a file layer that must see every read, an arena that went away
   * (sealed and renamed) before it was opened here, or too many arenas.
   * Moving the reads to the worker took them off this thread, which was
   * export's longest (docs/ingest.md, "Round 5"). The worker checks the
   * frame's checksum as the arena does on a read here.
   */
  arenaRead(source: Pick<ContentStore, 'sealedSpan'>, e: Extract<SealedExtent, { kind: 'chunk' }>): { fd: number; path: string; position: number } | null {
    const span = source.sealedSpan(e.id);
    if (span === null || span.length + FRAME_OVERHEAD !== e.frameLength) return null;
    let fd = this.arenaFds.get(span.path);
    if (fd === undefined) {
      if (this.arenaFds.size >= ARENA_FDS) return null;
      try {
        fd = openSync(span.path, 'r');
      } catch {
        return null;
      }
      this.arenaFds.set(span.path, fd);
    }
    return { fd, path: span.path, position: span.position - FRAME_HEAD_LENGTH };
  }

  /** Opens (creates) `path`, at most OPENS at a time. */
  private async openNew(path: string, mode: number): Promise<number> {
    if (this.closed) throw new BazilError(ErrorCodes.CLOSED, 'the export pool is closed');
    if (this.opens >= OPENS) await new Promise<void>((resolve) => this.openQueue.push(resolve));
    else this.opens++;
    try {
      return await new Promise<number>((resolve, reject) => {
        open(path, 'wx', mode, (err, fd) => (err === null ? resolve(fd) : reject(ioError('write', path, err))));
      });
    } finally {
      const next = this.openQueue.shift();
      if (next !== undefined) next();
      else {
        this.opens--;
        // No file is coming: what gathered goes once this file's writer has added it.
        for (const l of this.lanes) l.lookSoon();
      }
    }
  }
}

function fromMessage(error: ErrorMessage): BazilError {
  const cause = error.cause === null ? undefined : Object.assign(new Error(error.cause.message), { code: error.cause.code });
  return new BazilError(error.code, error.message, error.data, cause);
}

function emptyBatch(slab: number): Batch {
  return { slab, used: 0, items: [], keys: [], ids: [], segments: [], ending: [], files: new Map(), fds: new Map() };
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const all = new Uint8Array(parts.length * size);
  for (let i = 0; i < parts.length; i++) all.set(parts[i]!, i * size);
  return all;
}
