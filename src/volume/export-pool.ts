// A worker thread that decrypts files' content and writes the local files,
// for export (import-export.ts, Exporter). On two cores the main thread was
// the bottleneck of export: besides walking the projection it decrypted
// every chunk (with a fresh plaintext buffer each, which its garbage
// collector then had to find) and paid a thread-pool round trip for every
// open, write, chown, chmod, utimes and close, each a chance for the OS to
// give its core to the woken thread. Here the main thread only copies each
// chunk's sealed object into a slab of shared memory; the worker opens,
// decrypts (checking every tag), writes with pwritev and sets the owner,
// mode and times through the descriptor, all with plain system calls.
// Except the open: creating a file waits for the file system's journal,
// which under other processes' fsyncs took milliseconds; one after another
// on the worker those waits added up, so the main thread opens each file
// through the thread pool, several at once, and hands the worker its
// descriptor.
//
// A file's parts go in order to the one worker, which answers in order. A
// writer that finds no free slab waits for one: the worker never waits on
// anything, so slabs always come back.

import { close as closeFd, open } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { BazilError, ErrorCodes, ioError, type ErrorCode, type ErrorData } from '../../errors/index.js';
import { checkAborted, type ContentStore, type SealedExtent } from '../cas/content-store.js';
import { OBJECT_ID_LENGTH, OBJECT_KEY_LENGTH } from '../cas/convergent.js';
import type { ExportReply, ExportRequest, FileClose } from './export-worker.js';

const SLABS = 4;
/** Room for many small files' chunks, or a big file's, per message; a sealed chunk (at most 256 KiB) always fits an empty slab. */
const SLAB_BYTES = 2 * 1024 * 1024;

export type { FileClose };

interface Pending {
  resolve: () => void;
  reject: (err: unknown) => void;
  slab: number;
}

export class ExportPool {
  private readonly worker: Worker;
  private readonly slabs: Buffer[] = [];
  private readonly free: number[] = [];
  private readonly waiting: Array<{ resolve: (slab: number) => void; reject: (err: unknown) => void }> = [];
  private readonly pending = new Map<number, Pending>();
  private nextJob = 0;
  private nextFile = 0;
  private failure: unknown = null;
  private closed = false;

  constructor() {
    const shared: SharedArrayBuffer[] = [];
    for (let i = 0; i < SLABS; i++) {
      const b = new SharedArrayBuffer(SLAB_BYTES);
      shared.push(b);
      this.slabs.push(Buffer.from(b));
      this.free.push(i);
    }
    // The worker closes descriptors this thread opened: not its own to track.
    // A small young generation: its garbage is mostly the wrappers of
    // decrypted chunks, whose memory is freed only when they are collected.
    this.worker = new Worker(new URL('./export-worker.js', import.meta.url), { workerData: { slabs: shared }, trackUnmanagedFds: false, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    this.worker.on('message', (reply: ExportReply) => this.settle(reply));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`export worker exited with code ${code}`));
    });
    this.worker.unref();
  }

  /**
   * Writes a new local file at `path` (it must not exist) with the content
   * `extents`, then, if `close` is given, its owner (where allowed), mode
   * and times. Resolves once the file is written and closed. The chunks'
   * sealed objects are read from `source` straight into the slabs.
   */
  async writeFile(path: string, extents: Iterable<SealedExtent>, source: Pick<ContentStore, 'readSealedInto'>, close: FileClose, signal?: AbortSignal): Promise<void> {
    const file = this.nextFile++;
    const parts: Promise<void>[] = [];
    const fd = await new Promise<number>((resolve, reject) => {
      open(path, 'wx', close.attrs?.createMode === true ? close.attrs.mode : 0o600, (err, fd) => (err === null ? resolve(fd) : reject(ioError('write', path, err))));
    });
    let opened = false;
    let slab = -1;
    let used = 0;
    let items: number[] = [];
    let keys: Uint8Array[] = [];
    let ids: Uint8Array[] = [];
    const send = (last: boolean): void => {
      const request: ExportRequest = {
        job: this.nextJob++, file, slab, items: Float64Array.from(items),
        keys: concat(keys, OBJECT_KEY_LENGTH), ids: concat(ids, OBJECT_ID_LENGTH),
        open: opened ? null : { fd, path }, close: last ? close : null,
      };
      opened = true;
      parts.push(this.post(request));
      slab = -1;
      used = 0;
      items = [];
      keys = [];
      ids = [];
    };
    try {
      slab = await this.take();
      for (const e of extents) {
        checkAborted(signal);
        if (e.kind === 'hole') {
          items.push(-e.length, 0, 0, 0);
          continue;
        }
        if (used + e.frameLength > SLAB_BYTES) {
          send(false);
          slab = await this.take();
        }
        const sealed = source.readSealedInto(e.id, this.slabs[slab]!, used);
        used += e.frameLength;
        items.push(e.length, sealed.length, e.take, sealed.start);
        keys.push(e.key);
        ids.push(e.id);
      }
      send(true);
    } catch (err) {
      if (slab >= 0) this.release(slab);
      // Once a part is sent the worker owns the descriptor, and closes it.
      if (opened) this.worker.postMessage({ job: -1, file, drop: true } satisfies ExportRequest);
      else closeFd(fd, () => {});
      await Promise.allSettled(parts);
      throw err;
    }
    const outcomes = await Promise.allSettled(parts);
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // The worker holds the descriptors of files whose writers gave up (an
    // abort, a failure) until it reads their drop messages: it closes them
    // before it is stopped, or they would stay open in this process.
    if (this.failure === null) {
      await new Promise<void>((resolve) => {
        const job = this.nextJob++;
        this.worker.ref();
        this.pending.set(job, { resolve, reject: () => resolve(), slab: -1 });
        this.worker.postMessage({ job, closeAll: true } satisfies ExportRequest);
      });
    }
    this.closed = true;
    const err = new BazilError(ErrorCodes.CLOSED, 'the export pool was closed with work pending');
    for (const w of this.waiting.splice(0)) w.reject(err);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    await this.worker.terminate();
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

  private post(request: ExportRequest & { slab: number }): Promise<void> {
    this.check();
    return new Promise<void>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(request.job, { resolve, reject, slab: request.slab });
      this.worker.postMessage(request);
    });
  }

  private settle(reply: ExportReply): void {
    const p = this.pending.get(reply.job);
    if (p === undefined) return;
    this.pending.delete(reply.job);
    if (this.pending.size === 0) this.worker.unref();
    if (p.slab >= 0) this.release(p.slab);
    if (reply.error === null) {
      p.resolve();
      return;
    }
    const cause = reply.error.cause === null ? undefined : Object.assign(new Error(reply.error.cause.message), { code: reply.error.cause.code });
    p.reject(new BazilError(reply.error.code, reply.error.message, reply.error.data, cause));
  }

  private check(): void {
    if (this.closed) throw new BazilError(ErrorCodes.CLOSED, 'the export pool is closed');
    if (this.failure !== null) throw this.error(this.failure);
  }

  private fail(cause: unknown): void {
    this.failure ??= cause;
    for (const w of this.waiting.splice(0)) w.reject(this.error(cause));
    for (const p of this.pending.values()) p.reject(this.error(cause));
    this.pending.clear();
    this.worker.unref();
  }

  private error(cause: unknown): BazilError {
    return new BazilError(ErrorCodes.INTERNAL, 'the export worker failed', {}, cause);
  }
}

/** A BazilError as it crosses from the worker. */
export interface ErrorMessage {
  code: ErrorCode;
  message: string;
  data: ErrorData;
  cause: { code: string | undefined; message: string } | null;
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const all = new Uint8Array(parts.length * size);
  for (let i = 0; i < parts.length; i++) all.set(parts[i]!, i * size);
  return all;
}
