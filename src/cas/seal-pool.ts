// Worker threads that seal chunks, so that sealing (HMAC, AES-GCM and
// SHA-256: about two thirds of the CPU time of ingest) runs beside the
// chunker and the arena appends of the main thread instead of after them.
// docs/crypto.md has the measurements behind this.
//
// Batches go to the worker with the fewest pending; each worker answers in
// order, and callers keep their own order by awaiting the promises seal()
// returns in the order they asked. Workers are unref'ed while idle, so an
// open pool never keeps a process alive.

import { Worker } from 'node:worker_threads';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { SealedChunks } from './seal-batch.js';
import type { SealReply, SealRequest } from './seal-worker.js';

export interface SealedBatch extends SealedChunks {
  /** The batch's input buffer, handed back for reuse. */
  input: ArrayBuffer;
}

interface Pending {
  resolve: (batch: SealedBatch) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  sent: number;
  /** Jobs the worker has finished: written by it, read here without waiting for its messages. */
  done: Int32Array;
}

export class SealPool {
  private readonly slots: Slot[] = [];
  private nextJob = 0;
  private failure: unknown = null;
  private closed = false;

  constructor(chunkKey: Uint8Array, workers: number) {
    if (!Number.isSafeInteger(workers) || workers < 1) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'a seal pool needs at least one worker', { workers });
    }
    this.size = workers;
    for (let i = 0; i < workers; i++) {
      const done = new Int32Array(new SharedArrayBuffer(4));
      const worker = new Worker(new URL('./seal-worker.js', import.meta.url), { workerData: { chunkKey: Uint8Array.from(chunkKey), done } });
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

  /**
   * Batches sent and not yet sealed, over all workers. Unlike a count of
   * unanswered messages, this is current even while the calling thread has
   * been too busy to receive the replies.
   */
  get unfinished(): number {
    let n = 0;
    for (const s of this.slots) n += s.sent - Atomics.load(s.done, 0);
    return n;
  }

  readonly size: number;

  /** Seals the chunks of `input` (back to back, of the given lengths). Transfers `input`. */
  seal(input: ArrayBuffer, lengths: Uint32Array): Promise<SealedBatch> {
    if (this.closed) return Promise.reject(new BazilError(ErrorCodes.CLOSED, 'the seal pool is closed'));
    if (this.failure !== null) return Promise.reject(this.error(this.failure));
    let slot = this.slots[0];
    for (const s of this.slots) if (s.sent - Atomics.load(s.done, 0) < slot.sent - Atomics.load(slot.done, 0)) slot = s;
    slot.sent++;
    const job = this.nextJob++;
    const request: SealRequest = { job, input, lengths };
    return new Promise<SealedBatch>((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(job, { resolve, reject });
      slot.worker.postMessage(request, [input, lengths.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new BazilError(ErrorCodes.CLOSED, 'the seal pool was closed with work pending');
    for (const slot of this.slots) {
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    }
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private settle(slot: Slot, reply: SealReply): void {
    const p = slot.pending.get(reply.job);
    if (p === undefined) return;
    slot.pending.delete(reply.job);
    if (slot.pending.size === 0) slot.worker.unref();
    p.resolve({ input: reply.input, sealed: Buffer.from(reply.sealed), ids: Buffer.from(reply.ids), keys: Buffer.from(reply.keys) });
  }

  private fail(cause: unknown): void {
    if (this.failure === null) this.failure = cause;
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
