// Worker threads that chunk and seal file content, so that this work (the
// gear hash, the chunk key, AES-GCM and SHA-256: nearly all the CPU time of ingest)
// runs beside the reading, the arena appends and the events of the main
// thread instead of after them. docs/crypto.md has the measurements.
//
// Content travels in slabs: a fixed set of input and output buffers in
// shared memory, given to every worker once. A writer takes an input slab,
// copies its file's next bytes in, and sends it; the worker chunks them
// (continuing the file's chunker from its previous slab), writes the
// objects into the output slab of the same number, and the writer releases
// the pair once it has appended them. Moving ArrayBuffers back and forth
// instead made every batch count as new external memory for V8, and its
// garbage collections took a quarter of the main thread. The slabs also
// bound what all writers together hold: a writer waits for a free slab.
//
// A file's slabs all go to one worker (its chunker lives there), which
// answers in order; a new file goes to the worker with the fewest slabs
// pending. Workers are unref'ed while idle, so an open pool never keeps a
// process alive.

import { Worker } from 'node:worker_threads';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { DEFAULT_CONTENT_FORMAT, type ContentFormat } from './content-format.js';
import type { ChunkerParams } from './chunker.js';
import { TAG_LENGTH } from './convergent.js';
import type { SealReply, SealRequest, SealWorkerData, SlabRead } from './seal-worker.js';

/** One input slab and its output slab, held by one writer between take() and release(). */
export interface Slab {
  readonly index: number;
  /** Where the writer puts its file's next bytes. */
  readonly input: Buffer;
}

/** What a worker made of a slab; see seal-batch.ts SlabResult. */
export interface SealedSlab {
  items: Int32Array;
  ids: Buffer;
  keys: Buffer;
  fresh: Uint8Array;
  inputAt: Int32Array;
  /** Valid until the slab is released. */
  output: Buffer;
  /** With a SlabRead: bytes read, or why the read failed (see SealReply). */
  read?: number;
  readError?: { message: string; code: string | null };
}

/** One file's bytes on their way through a worker. */
export interface SealStream {
  readonly id: number;
  readonly slot: number;
}

interface Pending {
  resolve: (sealed: SealedSlab) => void;
  reject: (err: unknown) => void;
  slab: number;
  /** Takes the raw reply instead of `resolve` (the steps of sealSpread). */
  onReply?: (reply: SealReply) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  sent: number;
  /** Jobs the worker has finished: written by it, read here without waiting for its messages. */
  done: Int32Array;
}

export interface SealPoolOptions {
  chunkKey: Uint8Array;
  /** How chunk keys are taken (chunk-keys.ts); format 1 by default. */
  contentFormat?: ContentFormat;
  gear: Int32Array;
  chunking: ChunkerParams;
  workers: number;
  /** Input slabs (each with an output slab); 6 by default. */
  slabs?: number;
  /** Bytes of an input slab; 2 MiB by default. */
  slabBytes?: number;
}

const DEFAULT_SLABS = 6;
/**
 * The part of a spread slab's bytes its stream's worker seals itself, beside
 * chunking all of it: in the profiles the gear scan costs about three fifths
 * of what the HMAC, AES-GCM and SHA-256 of the same bytes do, so with a fifth
 * both threads are about as busy (docs/mount.md "Round 3").
 */
export const DEFAULT_SPREAD_SHARE = 0.2;
const DEFAULT_SLAB_BYTES = 2 * 1024 * 1024;
/** Tags for this many chunks fit in an output slab beside the input's bytes and a carried chunk. */
const OUTPUT_TAGS = 4096;

export class SealPool {
  private readonly slots: Slot[] = [];
  private nextJob = 0;
  private nextStream = 0;
  private failure: unknown = null;
  private closed = false;
  private readonly inputs: SharedArrayBuffer[] = [];
  private readonly outputs: SharedArrayBuffer[] = [];
  private readonly free: number[] = [];
  private readonly waiting: Array<{ resolve: (slab: Slab) => void; reject: (err: unknown) => void }> = [];
  readonly size: number;
  readonly slabBytes: number;

  constructor(options: SealPoolOptions) {
    const { workers } = options;
    if (!Number.isSafeInteger(workers) || workers < 1) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'a seal pool needs at least one worker', { workers });
    }
    const slabs = options.slabs ?? DEFAULT_SLABS;
    this.slabBytes = options.slabBytes ?? DEFAULT_SLAB_BYTES;
    if (!Number.isSafeInteger(slabs) || slabs < 1 || !Number.isSafeInteger(this.slabBytes) || this.slabBytes < 1) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'a seal pool needs at least one slab of at least one byte', { slabs, slabBytes: this.slabBytes });
    }
    for (let i = 0; i < slabs; i++) {
      this.inputs.push(new SharedArrayBuffer(this.slabBytes));
      this.outputs.push(new SharedArrayBuffer(this.slabBytes + options.chunking.maxSize + TAG_LENGTH * OUTPUT_TAGS));
      this.free.push(i);
    }
    this.size = workers;
    for (let i = 0; i < workers; i++) {
      const done = new Int32Array(new SharedArrayBuffer(4));
      const workerData: SealWorkerData = {
        chunkKey: Uint8Array.from(options.chunkKey), contentFormat: options.contentFormat ?? DEFAULT_CONTENT_FORMAT, gear: Int32Array.from(options.gear), chunking: { ...options.chunking },
        done, inputs: this.inputs, outputs: this.outputs,
      };
      const worker = new Worker(new URL('./seal-worker.js', import.meta.url), { workerData });
      const slot: Slot = { worker, pending: new Map(), sent: 0, done };
      worker.on('message', (reply: SealReply) => this.settle(slot, reply));
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`seal worker exited with code ${code}`));
      });
      worker.unref();
      this.slots.push(slot);
    }
  }

  /** A new file's stream, on the least busy worker. */
  openStream(): SealStream {
    let best = 0;
    for (let i = 1; i < this.slots.length; i++) if (this.backlog(this.slots[i]!) < this.backlog(this.slots[best]!)) best = i;
    return { id: this.nextStream++, slot: best };
  }

  /** Tells the worker to forget a stream that will not be ended (its writer gave up). */
  dropStream(stream: SealStream): void {
    if (this.closed || this.failure !== null) return;
    const request: SealRequest = { job: -1, stream: stream.id, drop: true };
    this.slots[stream.slot]!.worker.postMessage(request);
  }

  /**
   * Tells every worker chunk key → id pairs (32 bytes each, back to back)
   * of objects that are held, so that those chunks, met again, cost one
   * chunk key instead of being sealed. Cheap to get wrong: a writer appends
   * nothing for a known chunk without checking that its object is held.
   */
  know(keys: Uint8Array, ids: Uint8Array): void {
    if (this.closed || this.failure !== null || keys.length === 0) return;
    for (const slot of this.slots) slot.worker.postMessage({ job: -1, know: true, keys, ids } satisfies SealRequest);
  }

  /** A free slab now, or null when every slab is taken. */
  tryTake(): Slab | null {
    const index = this.free.pop();
    return index === undefined ? null : this.slab(index);
  }

  /** A free slab, waiting for one to be released if need be. */
  take(): Promise<Slab> {
    try {
      this.check();
    } catch (err) {
      return Promise.reject(err);
    }
    const slab = this.tryTake();
    return slab !== null ? Promise.resolve(slab) : new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** Gives a slab back once its output has been used (or its batch abandoned, once sealed). */
  release(slab: Slab): void {
    const next = this.waiting.shift();
    if (next !== undefined) next.resolve(this.slab(slab.index));
    else this.free.push(slab.index);
  }

  /**
   * Chunks and seals the first `length` bytes of `slab` as the next bytes
   * of `stream`, ending its last chunk when `end`. With `read`, the worker
   * first reads those bytes from a file into the slab, and seals only as
   * many as it read (`length` is then read.at + read.length at most).
   * Calls for one stream are answered in order.
   */
  seal(stream: SealStream, slab: Slab, length: number, end: boolean, read?: SlabRead): Promise<SealedSlab> {
    try {
      this.check();
    } catch (err) {
      return Promise.reject(err);
    }
    const slot = this.slots[stream.slot]!;
    slot.sent++;
    const job = this.nextJob++;
    const request: SealRequest = read === undefined ? { job, stream: stream.id, slab: slab.index, length, end } : { job, stream: stream.id, slab: slab.index, length, end, read };
    return new Promise<SealedSlab>((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(job, { resolve, reject, slab: slab.index });
      slot.worker.postMessage(request);
    });
  }

  /**
   * seal() of a slab that does not end its stream's chunk, with the work
   * spread over two workers: the stream's worker (which holds its chunker)
   * chunks the slab and seals about `share` of it, and the least busy other
   * worker seals the rest into the same output slab. One stream's write
   * then goes faster than one thread can chunk and seal. Same contract
   * as seal(); with a single worker it is seal().
   */
  sealSpread(stream: SealStream, slab: Slab, length: number, share = DEFAULT_SPREAD_SHARE): Promise<SealedSlab> {
    if (this.slots.length < 2) return this.seal(stream, slab, length, false);
    try {
      this.check();
    } catch (err) {
      return Promise.reject(err);
    }
    const home = this.slots[stream.slot]!;
    return new Promise<SealedSlab>((resolve, reject) => {
      const cut: SealRequest = { job: this.nextJob++, stream: stream.id, slab: slab.index, length, cut: true, share };
      this.post(home, cut, slab.index, reject, (first) => {
        const mine = this.sealedOf(first, slab.index);
        const rest = first.rest;
        if (rest === undefined || rest.length === 0) return resolve(mine);
        try {
          this.check();
        } catch (err) {
          return reject(err);
        }
        let helper = home;
        for (const slot of this.slots) if (slot !== home && (helper === home || this.backlog(slot) < this.backlog(helper))) helper = slot;
        const seal: SealRequest = { job: this.nextJob++, slab: slab.index, length, ranges: rest, at: first.outputLength };
        this.post(helper, seal, slab.index, reject, (second) => {
          resolve({
            items: mine.items,
            ids: Buffer.concat([mine.ids, Buffer.from(second.ids)]),
            keys: Buffer.concat([mine.keys, Buffer.from(second.keys)]),
            fresh: Uint8Array.from([...mine.fresh, ...second.fresh]),
            inputAt: Int32Array.from([...mine.inputAt, ...second.inputAt]),
            output: Buffer.from(this.outputs[slab.index]!, 0, second.outputLength),
          });
        });
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new BazilError(ErrorCodes.CLOSED, 'the seal pool was closed with work pending');
    for (const w of this.waiting.splice(0)) w.reject(err);
    for (const slot of this.slots) {
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    }
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  /**
   * Slabs sent to a worker and not yet done. Unlike a count of unanswered
   * messages, this is current even while the calling thread has been too
   * busy to receive the replies.
   */
  private backlog(slot: Slot): number {
    return slot.sent - Atomics.load(slot.done, 0);
  }

  /** Sends a request whose reply goes to `onReply` (sealSpread's steps). */
  private post(slot: Slot, request: SealRequest, slab: number, reject: (err: unknown) => void, onReply: (reply: SealReply) => void): void {
    slot.sent++;
    if (slot.pending.size === 0) slot.worker.ref();
    slot.pending.set(request.job, { resolve: () => undefined, reject, slab, onReply });
    slot.worker.postMessage(request);
  }

  private sealedOf(reply: SealReply, slab: number): SealedSlab {
    const output = reply.overflow !== null
      ? Buffer.from(reply.overflow, 0, reply.outputLength)
      : Buffer.from(this.outputs[slab]!, 0, reply.outputLength);
    return { items: reply.items, ids: Buffer.from(reply.ids), keys: Buffer.from(reply.keys), fresh: reply.fresh, inputAt: reply.inputAt, output };
  }

  private slab(index: number): Slab {
    return { index, input: Buffer.from(this.inputs[index]!) };
  }

  private check(): void {
    if (this.closed) throw new BazilError(ErrorCodes.CLOSED, 'the seal pool is closed');
    if (this.failure !== null) throw this.error(this.failure);
  }

  private settle(slot: Slot, reply: SealReply): void {
    const p = slot.pending.get(reply.job);
    if (p === undefined) return;
    slot.pending.delete(reply.job);
    if (slot.pending.size === 0) slot.worker.unref();
    if (p.onReply !== undefined) {
      p.onReply(reply);
      return;
    }
    const output = reply.overflow !== null
      ? Buffer.from(reply.overflow, 0, reply.outputLength)
      : Buffer.from(this.outputs[p.slab]!, 0, reply.outputLength);
    p.resolve({
      items: reply.items, ids: Buffer.from(reply.ids), keys: Buffer.from(reply.keys), fresh: reply.fresh, inputAt: reply.inputAt, output,
      read: reply.read, readError: reply.readError,
    });
  }

  private fail(cause: unknown): void {
    if (this.failure === null) this.failure = cause;
    for (const w of this.waiting.splice(0)) w.reject(this.error(cause));
    for (const slot of this.slots) {
      for (const p of slot.pending.values()) p.reject(this.error(cause));
      slot.pending.clear();
      slot.worker.unref();
    }
  }

  private error(cause: unknown): BazilError {
    return new BazilError(ErrorCodes.INTERNAL, 'a seal worker failed', {}, cause);
  }
}
