// Read-ahead for sequential readers of an open file (docs/mount.md,
// "Round 3: read" and "Round 4: reads"). A read after a remount used to
// decrypt every chunk on the daemon's one JavaScript thread, each into a
// fresh buffer (AES-GCM plus the garbage collection of those buffers led its
// profile). Once a handle reads sequentially, the chunks ahead of it are
// located here and handed to a worker, which preads each into a slot of
// shared memory and opens it there (a chunk still in an active arena is
// read into its slot here, through the arenas, which stay this thread's);
// the reads then find their chunks' plaintext in the slots (ManifestReader
// asks `plainOf`) and cost one copy into the caller's buffer.
//
// Read-ahead is only ever a hint: a chunk the worker could not open (a
// damaged record, a wrong length), a worker that failed, or a pool out of
// slots leaves the read to the synchronous path, which decrypts the chunk
// itself and reports any error as before. Chunks are named by id, so a
// write or truncate meanwhile cannot make a slot wrong, only unused.

import { Worker } from 'node:worker_threads';
import type { ContentStore } from '../cas/content-store.js';
import { OBJECT_KEY_LENGTH, TAG_LENGTH } from '../cas/convergent.js';
import { loadIngestNative } from '../cas/ingest-native.js';
import { extentsIn, type Manifest } from '../cas/manifest.js';
import { CONTROL, FILES, PATH_BYTES, SlotState, type ReadWorkerData } from './read-worker.js';

/** Room per slot: a chunk of the default chunker's largest size (256 KiB) sealed and framed; larger chunks are read without read-ahead. */
const SLOT_BYTES = 256 * 1024 + 4096;
/** Slots of the process: shared by every file read ahead (16.3 MiB, allocated on the first sequential read). */
const SLOTS = 64;
/** Bytes a sequential reader is read ahead of. */
const WINDOW = 1024 * 1024;
/** Top up once this much of the window has been consumed, so slots go to the worker in batches. */
const TOP_UP = 512 * 1024;
/** Chunks this far behind the reader are kept: the kernel's concurrent reads arrive slightly out of order. */
const BEHIND = 256 * 1024;
/** A read starting this close to where the last one ended counts as sequential. */
const NEAR = 1024 * 1024;

/** The worker and its slots, one per process, made when first needed. */
class ReadAheadPool {
  readonly slots: Buffer[] = [];
  readonly control: Int32Array;
  private readonly ring: Int32Array;
  private readonly keys: Buffer;
  private readonly fileMeta: Int32Array;
  private readonly paths: Buffer;
  /** File table entries by path, and the path of each entry (round robin: a recycled entry's version moves on). */
  private readonly fileIndex = new Map<string, number>();
  private readonly fileNames: (string | null)[] = new Array<string | null>(FILES).fill(null);
  private nextFile = 0;
  private readonly free: number[] = [];
  /** Slots let go of while still queued: free once the worker is done with them. */
  private readonly leaving: number[] = [];
  private worker: Worker | null;

  constructor() {
    const shared: SharedArrayBuffer[] = [];
    for (let i = 0; i < SLOTS; i++) {
      const b = new SharedArrayBuffer(SLOT_BYTES);
      shared.push(b);
      this.slots.push(Buffer.from(b));
      this.free.push(i);
    }
    const data: ReadWorkerData = {
      slots: shared,
      control: new SharedArrayBuffer((CONTROL.SLOT_BASE + SLOTS * CONTROL.SLOT_FIELDS) * 4),
      ring: new SharedArrayBuffer(SLOTS * 4),
      keys: new SharedArrayBuffer(SLOTS * OBJECT_KEY_LENGTH),
      fileMeta: new SharedArrayBuffer(FILES * 2 * 4),
      paths: new SharedArrayBuffer(FILES * PATH_BYTES),
    };
    this.control = new Int32Array(data.control);
    this.ring = new Int32Array(data.ring);
    this.keys = Buffer.from(data.keys);
    this.fileMeta = new Int32Array(data.fileMeta);
    this.paths = Buffer.from(data.paths);
    // A small young generation: the worker's garbage is the plaintext buffers it copies out at once.
    const worker = new Worker(new URL('./read-worker.js', import.meta.url), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    // Read-ahead is a hint: a worker that fails leaves every read to the synchronous path.
    worker.on('error', () => this.fail());
    worker.on('exit', () => this.fail());
    // It sleeps in Atomics.wait between chunks and never keeps the process alive.
    worker.unref();
    this.worker = worker;
  }

  get working(): boolean {
    return this.worker !== null;
  }

  state(slot: number): number {
    return Atomics.load(this.control, CONTROL.SLOT_BASE + slot * CONTROL.SLOT_FIELDS);
  }

  take(): number {
    for (let i = this.leaving.length - 1; i >= 0; i--) {
      const slot = this.leaving[i]!;
      if (this.state(slot) === SlotState.QUEUED) continue;
      this.leaving.splice(i, 1);
      this.free.push(slot);
    }
    return this.free.pop() ?? -1;
  }

  give(slot: number): void {
    if (this.state(slot) === SlotState.QUEUED) this.leaving.push(slot);
    else this.free.push(slot);
  }

  /**
   * The file table entry naming `path` to the worker and its version, or
   * null when the path does not fit an entry.
   */
  fileOf(path: string): { file: number; version: number } | null {
    let file = this.fileIndex.get(path);
    if (file === undefined) {
      const length = Buffer.byteLength(path);
      if (length > PATH_BYTES) return null;
      file = this.nextFile;
      this.nextFile = (file + 1) % FILES;
      const old = this.fileNames[file];
      if (old !== null && old !== undefined) this.fileIndex.delete(old);
      // The version moves before the path is rewritten: a worker that reads
      // the same version before and after copying the path copied it whole,
      // and a slot queued under the old version fails instead of reading
      // another file.
      Atomics.add(this.fileMeta, file * 2 + 1, 1);
      this.paths.write(path, file * PATH_BYTES, 'utf8');
      Atomics.store(this.fileMeta, file * 2, length);
      this.fileIndex.set(path, file);
      this.fileNames[file] = path;
    }
    return { file, version: Atomics.load(this.fileMeta, file * 2 + 1) };
  }

  /**
   * Queues a chunk in `slot` for the worker (`kick` wakes it): its sealed
   * bytes (`length` of them) are in the slot at `start` when `source` is
   * null, else at `position` of the file `source` names.
   */
  queue(slot: number, start: number, length: number, plainLength: number, key: Uint8Array, source: { file: number; version: number } | null, position: number): void {
    const at = CONTROL.SLOT_BASE + slot * CONTROL.SLOT_FIELDS;
    this.control[at + 1] = start;
    this.control[at + 2] = length;
    this.control[at + 3] = plainLength;
    this.control[at + 4] = source === null ? -1 : source.file;
    if (source !== null) {
      this.control[at + 5] = source.version;
      this.control[at + 6] = position % 2 ** 32 | 0;
      this.control[at + 7] = Math.floor(position / 2 ** 32);
    }
    this.keys.set(key, slot * OBJECT_KEY_LENGTH);
    Atomics.store(this.control, at, SlotState.QUEUED);
    const tail = Atomics.load(this.control, CONTROL.TAIL);
    this.ring[tail % SLOTS] = slot;
    Atomics.store(this.control, CONTROL.TAIL, tail + 1);
  }

  kick(): void {
    Atomics.notify(this.control, CONTROL.TAIL);
  }

  private fail(): void {
    this.worker = null;
  }
}

let pool: ReadAheadPool | null | undefined;

/** Counts of the process's read-ahead, for tests and benchmarks: chunks opened by the worker (of them preaded by it), refused by it, and read from a slot. */
let served = 0;

export function readAheadCounts(): { opened: number; preads: number; refused: number; served: number } {
  const c = pool?.control;
  const count = (field: number): number => (c === undefined ? 0 : Atomics.load(c, field));
  return { opened: count(CONTROL.OPENED), preads: count(CONTROL.PREADS), refused: count(CONTROL.REFUSED), served };
}

function sharedPool(): ReadAheadPool | null {
  if (pool === undefined) {
    try {
      pool = new ReadAheadPool();
    } catch {
      pool = null;
    }
  }
  return pool !== null && pool.working ? pool : null;
}

/**
 * Starts the worker now rather than at the first sequential read: its
 * start (a thread, its modules) costs tens of milliseconds of CPU, which a
 * mount pays while idle instead of during the read of a small file.
 */
export function warmReadAhead(): void {
  sharedPool();
}

/** A chunk read ahead: its slot (-1 once let go of), its id, and where it is in the file. */
interface Ahead {
  slot: number;
  id: Buffer;
  start: number;
  end: number;
}

/** The native memmove for copies out of the slots (shared memory, which V8 copies with a relaxed-atomic loop), or null. */
const copyInto = loadIngestNative()?.copyInto ?? null;

/** The read-ahead of one open file, shared by its handles. */
export class ReadAhead {
  /**
   * The chunks read ahead, in file order from `first` on (a reader moves
   * forward, so they are appended at the end and let go of at the front;
   * the array is compacted now and then), at the offsets of `manifest`.
   */
  private entries: Ahead[] = [];
  private first = 0;
  private manifest: Manifest | null | undefined = undefined;
  /** Where the last read ended (-1: no read yet). */
  private next = -1;
  private sequential = 0;
  /** File offset up to which chunks have been asked for. */
  private requestedTo = 0;
  private topUp: { manifest: Manifest | null; valid: number; at: number } | null = null;
  private closed = false;

  constructor(private readonly store: ContentStore) {}

  /**
   * The plaintext of chunk `id` if it was read ahead and is ready: the
   * start of the returned slot, which runs on past the chunk's end (no view
   * of exactly the chunk: a view of shared memory per read cost more than
   * the bookkeeping it saves; readers copy out the chunk's own range). For
   * reads that copyReady could not serve.
   */
  plainOf(id: Buffer): Buffer | undefined {
    if (pool == null) return undefined;
    for (let i = this.first; i < this.entries.length; i++) {
      const a = this.entries[i]!;
      if (a.slot < 0 || !a.id.equals(id)) continue;
      const state = pool.state(a.slot);
      if (state === SlotState.READY) {
        served++;
        return pool.slots[a.slot]!;
      }
      // Refused: the read opens it itself (and reports why); still queued: the read does not wait.
      if (state === SlotState.FAILED) this.release(a);
    }
    return undefined;
  }

  /**
   * Copies bytes [offset, end) of `manifest`'s content into the start of
   * `out` if every chunk under them was read ahead and is ready, and says
   * whether it did (else `out` may hold part of them, and the caller reads
   * the range the ordinary way). The fast path of a sequential reader: no
   * walk of the manifest, one lookup per request.
   */
  copyReady(manifest: Manifest | null, out: Buffer, offset: number, end: number): boolean {
    if (manifest !== this.manifest || pool == null) return false;
    const p = pool;
    let at = offset;
    for (let i = this.first; i < this.entries.length; i++) {
      const a = this.entries[i]!;
      if (a.end <= at) continue;
      // A gap (a hole, a chunk not read ahead) or a chunk not ready: the ordinary read.
      if (a.start > at || a.slot < 0 || p.state(a.slot) !== SlotState.READY) return false;
      const to = Math.min(end, a.end);
      const slot = p.slots[a.slot]!;
      if (copyInto !== null) copyInto(out, at - offset, slot, at - a.start, to - a.start);
      else slot.copy(out, at - offset, at - a.start, to - a.start);
      served++;
      at = to;
      if (at >= end) return true;
    }
    return false;
  }

  /**
   * Called before a read of [offset, offset + length) of a file whose
   * committed content is `manifest`, valid to `valid`: follows the reader
   * and schedules more read-ahead. The read never waits for the worker: a
   * chunk not opened yet is decrypted by the read itself, so a worker that
   * falls behind (a busy machine may leave it unscheduled for milliseconds)
   * costs some duplicated work, never a hand-off on the read's path.
   */
  before(manifest: Manifest | null, valid: number, offset: number, length: number): void {
    if (this.closed) return;
    if (manifest !== this.manifest) {
      // New committed content (a flush meanwhile): the chunks' offsets were the old manifest's.
      this.dropAll();
      this.requestedTo = 0;
      this.topUp = null;
      this.manifest = manifest;
    }
    const end = offset + length;
    const near = this.next >= 0 && Math.abs(offset - this.next) <= NEAR;
    if (!near && (this.next >= 0 || offset !== 0)) {
      // A jump: what was read ahead is of no use now.
      this.sequential = 0;
      this.dropAll();
      this.requestedTo = 0;
    } else {
      this.sequential++;
    }
    this.next = near ? Math.max(this.next, end) : end;
    this.dropBehind(offset - BEHIND);
    // A caller that never yields to the event loop (reads through the API
    // in a loop) never lets the deferred top-up run: do it now once the
    // reader has caught up with what was asked for.
    if (this.topUp !== null && this.requestedTo <= end) this.runTopUp();
    // From the second sequential read on (a read from the start counts as one already).
    if (this.sequential >= 1) {
      // What this read itself needs and nobody asked for yet, it decrypts itself.
      const from = Math.max(this.requestedTo, end);
      const to = Math.min(valid, offset + WINDOW);
      if (to > from && (this.requestedTo <= end || to - from >= TOP_UP) && this.topUp === null) {
        this.topUp = { manifest, valid, at: from };
        // After the read is answered: the kernel's next request need not wait for these preads.
        setImmediate(() => this.runTopUp());
      }
    }
  }

  /** Frees every slot; later calls read nothing ahead. */
  close(): void {
    this.closed = true;
    this.dropAll();
  }

  private runTopUp(): void {
    const plan = this.topUp;
    this.topUp = null;
    const p = sharedPool();
    if (plan === null || this.closed || p === null || plan.manifest !== this.manifest) return;
    const to = Math.min(plan.valid, this.next + WINDOW);
    const from = Math.max(this.requestedTo, plan.at);
    if (to <= from) return;
    // Chunks starting before the last one's end were queued (or passed over) already.
    const last = this.entries.length > this.first ? this.entries[this.entries.length - 1]!.end : 0;
    let queued = 0;
    let reached = from;
    try {
      for (const { extent, start } of extentsIn(plan.manifest, from, to - from, (ref) => this.store.loadNode(ref))) {
        const extentEnd = start + extent.length;
        if (extent.kind === 'hole' || start < last) {
          reached = extentEnd;
          continue;
        }
        const slot = p.take();
        if (slot < 0) break;
        let sealedStart = 0;
        let sealedLength = 0;
        let file: { file: number; version: number } | null = null;
        let position = 0;
        try {
          // A chunk in an arena file the worker preads itself, if it has
          // the length its manifest gives; the rest (in an active arena's
          // buffer, damaged framing) is read into the slot here, or left
          // to the synchronous read to report.
          const span = this.store.sealedSpan(extent.id);
          if (span !== null && span.length === extent.length + TAG_LENGTH && span.length <= SLOT_BYTES) {
            file = p.fileOf(span.path);
            sealedLength = span.length;
            position = span.position;
          }
          if (file === null) {
            const sealed = this.store.readSealedInto(extent.id, p.slots[slot]!, 0);
            sealedStart = sealed.start;
            sealedLength = sealed.length;
          }
        } catch {
          // Not held, damaged, or too big for a slot (a RangeError before any
          // read): the synchronous read handles it.
          p.give(slot);
          reached = extentEnd;
          continue;
        }
        this.entries.push({ slot, id: extent.id, start, end: extentEnd });
        p.queue(slot, sealedStart, sealedLength, extent.length, extent.key, file, position);
        reached = extentEnd;
        queued++;
      }
    } catch {
      // A manifest node that cannot be read: the synchronous read reports it.
    }
    // One wake per top-up: waking the worker (a futex wake) was a tenth of
    // the main thread's time when done every few chunks.
    if (queued > 0) p.kick();
    this.requestedTo = Math.max(this.requestedTo, reached);
  }

  private dropBehind(before: number): void {
    while (this.first < this.entries.length && this.entries[this.first]!.end <= before) this.release(this.entries[this.first++]!);
    if (this.first > 64 && this.first * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.first);
      this.first = 0;
    }
  }

  private dropAll(): void {
    for (let i = this.first; i < this.entries.length; i++) this.release(this.entries[i]!);
    this.entries = [];
    this.first = 0;
  }

  private release(a: Ahead): void {
    if (a.slot < 0) return;
    pool?.give(a.slot);
    a.slot = -1;
  }
}
