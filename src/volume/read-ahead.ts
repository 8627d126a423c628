// Read-ahead for sequential readers of an open file (docs/mount.md,
// "Round 3: read"). A read after a remount used to decrypt every chunk on
// the daemon's one JavaScript thread, each into a fresh buffer (AES-GCM plus
// the garbage collection of those buffers led its profile). Once a handle
// reads sequentially, the chunks ahead of it are read (pread, on this
// thread: the arenas stay this thread's) into slots of shared memory, and a
// worker opens them there; the reads then find their chunks' plaintext in
// the slots (ManifestReader asks `plainOf`) and cost one copy into the
// caller's buffer.
//
// Read-ahead is only ever a hint: a chunk the worker could not open (a
// damaged record, a wrong length), a worker that failed, or a pool out of
// slots leaves the read to the synchronous path, which decrypts the chunk
// itself and reports any error as before. Chunks are named by id, so a
// write or truncate meanwhile cannot make a slot wrong, only unused.

import { Worker } from 'node:worker_threads';
import type { ContentStore } from '../cas/content-store.js';
import { OBJECT_KEY_LENGTH } from '../cas/convergent.js';
import { extentsIn, type Manifest } from '../cas/manifest.js';
import type { ReadAheadReply, ReadAheadRequest } from './read-worker.js';

/** Room per slot: a chunk of the default chunker's largest size (256 KiB) sealed and framed; larger chunks are read without read-ahead. */
const SLOT_BYTES = 256 * 1024 + 4096;
/** Slots of the process: shared by every file read ahead (16.3 MiB, allocated on the first sequential read). */
const SLOTS = 64;
/** Bytes a sequential reader is read ahead of. */
const WINDOW = 1024 * 1024;
/** Top up once this much of the window has been consumed, so slots go to the worker in batches. */
const TOP_UP = 256 * 1024;
/** Chunks per message to the worker: small batches, so the first chunks of a window are ready early. */
const BATCH = 4;
/** Chunks this far behind the reader are kept: the kernel's concurrent reads arrive slightly out of order. */
const BEHIND = 256 * 1024;
/** A read starting this close to where the last one ended counts as sequential. */
const NEAR = 1024 * 1024;
const ITEM = 4;

interface Job {
  resolve: (ok: Uint8Array | null) => void;
}

/** The worker and its slots, one per process, made when first needed. */
class ReadAheadPool {
  readonly slots: Buffer[] = [];
  private readonly free: number[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextJob = 0;
  private worker: Worker | null;

  constructor() {
    const shared: SharedArrayBuffer[] = [];
    for (let i = 0; i < SLOTS; i++) {
      const b = new SharedArrayBuffer(SLOT_BYTES);
      shared.push(b);
      this.slots.push(Buffer.from(b));
      this.free.push(i);
    }
    // A small young generation: the worker's garbage is the plaintext buffers it copies out at once.
    const worker = new Worker(new URL('./read-worker.js', import.meta.url), { workerData: { slots: shared }, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    worker.on('message', (reply: ReadAheadReply) => {
      const job = this.jobs.get(reply.job);
      this.jobs.delete(reply.job);
      if (this.jobs.size === 0) worker.unref();
      job?.resolve(reply.ok);
    });
    // Read-ahead is a hint: a worker that fails leaves every read to the synchronous path.
    worker.on('error', () => this.fail());
    worker.on('exit', () => this.fail());
    worker.unref();
    this.worker = worker;
  }

  get working(): boolean {
    return this.worker !== null;
  }

  take(): number {
    return this.free.pop() ?? -1;
  }

  give(slot: number): void {
    this.free.push(slot);
  }

  /** Opens the chunks in the worker; resolves with which succeeded, or null if the worker is gone. */
  open(items: number[], keys: Buffer[]): Promise<Uint8Array | null> {
    const worker = this.worker;
    if (worker === null) return Promise.resolve(null);
    const job = this.nextJob++;
    const keyBytes = new Uint8Array(keys.length * OBJECT_KEY_LENGTH);
    for (let i = 0; i < keys.length; i++) keyBytes.set(keys[i]!, i * OBJECT_KEY_LENGTH);
    return new Promise((resolve) => {
      this.jobs.set(job, { resolve });
      // Referenced while it has work: a read may be waiting for it.
      worker.ref();
      worker.postMessage({ job, items: Float64Array.from(items), keys: keyBytes } satisfies ReadAheadRequest);
    });
  }

  private fail(): void {
    this.worker = null;
    for (const job of this.jobs.values()) job.resolve(null);
    this.jobs.clear();
  }
}

let pool: ReadAheadPool | null | undefined;

/** Counts of the process's read-ahead, for tests and benchmarks: chunks opened ahead, refused by the worker, and read from a slot. */
const counts = { opened: 0, refused: 0, served: 0 };

export function readAheadCounts(): Readonly<typeof counts> {
  return { ...counts };
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

/** A chunk read ahead: its slot, where it first is in the file, and its plaintext once opened. */
interface Ahead {
  slot: number;
  start: number;
  end: number;
  plain: Buffer | null;
  ready: Promise<void> | null;
  /** Dropped while the worker held it: the slot goes back when the worker is done. */
  dropped: boolean;
}

/** The read-ahead of one open file, shared by its handles. */
export class ReadAhead {
  private readonly chunks = new Map<string, Ahead>();
  /** Where the last read ended (-1: no read yet). */
  private next = -1;
  private sequential = 0;
  /** File offset up to which chunks have been asked for. */
  private requestedTo = 0;
  private topUp: { manifest: Manifest | null; valid: number; at: number } | null = null;
  private closed = false;

  constructor(private readonly store: ContentStore) {}

  /** The plaintext of chunk `idHex` if it was read ahead and is ready. */
  plainOf(idHex: string): Buffer | undefined {
    const plain = this.chunks.get(idHex)?.plain ?? undefined;
    if (plain !== undefined) counts.served++;
    return plain;
  }

  /**
   * Called before a read of [offset, offset + length) of a file whose
   * committed content is `manifest`, valid to `valid`: follows the reader,
   * schedules more read-ahead, and returns a promise of the chunks of the
   * range still being opened, if any (the read should wait for it).
   */
  before(manifest: Manifest | null, valid: number, offset: number, length: number): Promise<void> | undefined {
    if (this.closed) return undefined;
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
    return this.waitFor(offset, end);
  }

  /** Frees every slot; later calls read nothing ahead. */
  close(): void {
    this.closed = true;
    this.dropAll();
  }

  private waitFor(offset: number, end: number): Promise<void> | undefined {
    let waits: Promise<void>[] | undefined;
    for (const a of this.chunks.values()) {
      if (a.ready === null || a.end <= offset || a.start >= end) continue;
      waits ??= [];
      if (!waits.includes(a.ready)) waits.push(a.ready);
    }
    if (waits === undefined) return undefined;
    return waits.length === 1 ? waits[0] : Promise.all(waits).then(() => undefined);
  }

  private runTopUp(): void {
    const plan = this.topUp;
    this.topUp = null;
    const p = sharedPool();
    if (plan === null || this.closed || p === null) return;
    const to = Math.min(plan.valid, this.next + WINDOW);
    const from = Math.max(this.requestedTo, plan.at);
    if (to <= from) return;
    let items: number[] = [];
    let keys: Buffer[] = [];
    let batch: Ahead[] = [];
    let reached = from;
    try {
      for (const { extent, start } of extentsIn(plan.manifest, from, to - from, (ref) => this.store.loadNode(ref))) {
        const extentEnd = start + extent.length;
        if (extent.kind === 'hole') {
          reached = extentEnd;
          continue;
        }
        const key = extent.id.toString('hex');
        if (this.chunks.has(key)) {
          reached = extentEnd;
          continue;
        }
        const frame = this.store.arenas.frameLength(extent.id);
        // Not held, or too big for a slot: the synchronous read handles it.
        if (frame < 0 || frame > SLOT_BYTES) {
          reached = extentEnd;
          continue;
        }
        const slot = p.take();
        if (slot < 0) break;
        let sealed: { start: number; length: number };
        try {
          sealed = this.store.readSealedInto(extent.id, p.slots[slot]!, 0);
        } catch {
          p.give(slot);
          reached = extentEnd;
          continue;
        }
        const ahead: Ahead = { slot, start, end: extentEnd, plain: null, ready: null, dropped: false };
        this.chunks.set(key, ahead);
        batch.push(ahead);
        items.push(slot, sealed.start, sealed.length, extent.length);
        keys.push(extent.key);
        reached = extentEnd;
        if (batch.length === BATCH) {
          this.send(p, batch, items, keys);
          items = [];
          keys = [];
          batch = [];
        }
      }
    } catch {
      // A manifest node that cannot be read: the synchronous read reports it.
    }
    if (batch.length > 0) this.send(p, batch, items, keys);
    this.requestedTo = Math.max(this.requestedTo, reached);
  }

  private send(p: ReadAheadPool, batch: Ahead[], items: number[], keys: Buffer[]): void {
    const ready = p.open(items, keys).then((ok) => {
      for (let i = 0; i < batch.length; i++) {
        const a = batch[i]!;
        a.ready = null;
        if (a.dropped) {
          p.give(a.slot);
          continue;
        }
        if (ok !== null && ok[i] === 1) {
          counts.opened++;
          a.plain = p.slots[a.slot]!.subarray(0, items[i * ITEM + 3]!);
          continue;
        }
        if (ok !== null) counts.refused++;
        this.forget(a);
        p.give(a.slot);
      }
    });
    for (const a of batch) a.ready = ready;
  }

  private forget(a: Ahead): void {
    for (const [key, b] of this.chunks) {
      if (b === a) {
        this.chunks.delete(key);
        return;
      }
    }
  }

  private dropBehind(before: number): void {
    for (const [key, a] of this.chunks) {
      if (a.end <= before) this.drop(key, a);
    }
  }

  private dropAll(): void {
    for (const [key, a] of this.chunks) this.drop(key, a);
  }

  private drop(key: string, a: Ahead): void {
    this.chunks.delete(key);
    a.plain = null;
    if (a.ready !== null) a.dropped = true;
    else pool?.give(a.slot);
  }
}
