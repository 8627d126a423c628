// Worker thread body of the read-ahead pool (read-ahead.ts): reads the
// sealed chunks ahead of a reader into shared slots and opens them there,
// checking each tag and length, and leaves each chunk's plaintext at the
// start of its slot. Work comes through a ring of slot numbers in shared
// memory and each slot's state says when it is done: no messages either
// way, so the main thread pays no event-loop turn per chunk and reads the
// state when a read needs the chunk.
//
// A chunk in an arena file is named to this thread by file (an entry of a
// shared table of paths) and position, and this thread preads it itself:
// those preads were a fifth of the main thread's time during a read. Its
// bytes then skip the arena's record checksum, which the GCM tag makes
// redundant for a reader with the key: any byte that is not the chunk's
// (damage, a file replaced, a name recycled meanwhile) fails the tag, and
// a failed slot is left to the main thread's own read, which reports it.
// Other chunks (in an active arena's write buffer, or on a file layer that
// must see every read) arrive in the slot already.

import { closeSync, openSync, readSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { OBJECT_KEY_LENGTH, TAG_LENGTH } from '../cas/convergent.js';
import { loadIngestNative } from '../cas/ingest-native.js';
import { openObjectInPlace } from '../cas/open-in-place.js';

/** Layout of the control array (Int32), shared with read-ahead.ts. */
export const CONTROL = {
  /** Slots queued so far (the ring's tail), and taken by the worker (its head). */
  TAIL: 0,
  HEAD: 1,
  /** Chunks opened, and refused (damaged, unreadable, or not the length their manifest gives), since the start. */
  OPENED: 2,
  REFUSED: 3,
  /** Of the opened ones, those this thread preaded itself. */
  PREADS: 4,
  /**
   * Then per slot: state, sealed start, sealed length, plaintext length,
   * file (-1: the sealed bytes are in the slot at `start` already), the
   * file entry's version, and the position in the file (low, high 32 bits).
   */
  SLOT_BASE: 8,
  SLOT_FIELDS: 8,
} as const;

export const SlotState = { IDLE: 0, QUEUED: 1, READY: 2, FAILED: 3 } as const;

/** Entries of the shared file table, and the bytes of a path in it. */
export const FILES = 64;
export const PATH_BYTES = 1024;
/** The worker closes its files after this long without work, so a file deleted meanwhile (compaction) is not kept. */
const IDLE_CLOSE_MS = 1000;

export interface ReadWorkerData {
  slots: SharedArrayBuffer[];
  control: SharedArrayBuffer;
  /** The ring of queued slot numbers, as many entries as slots. */
  ring: SharedArrayBuffer;
  /** Each slot's object key. */
  keys: SharedArrayBuffer;
  /** Per file entry: the path's byte length, and a version that moves before the path is rewritten. */
  fileMeta: SharedArrayBuffer;
  /** Per file entry: PATH_BYTES of UTF-8 path. */
  paths: SharedArrayBuffer;
}

/** The worker's open descriptors, by file entry and version. */
class Files {
  private readonly fds = new Int32Array(FILES).fill(-1);
  private readonly versions = new Int32Array(FILES);
  private count = 0;

  constructor(private readonly meta: Int32Array, private readonly paths: Buffer) {}

  get open(): number {
    return this.count;
  }

  /** The descriptor of entry `file` as of `version`, or -1 when the entry moved on or the file cannot be opened. */
  fd(file: number, version: number): number {
    if (file < 0 || file >= FILES) return -1;
    if (this.fds[file]! >= 0 && this.versions[file] === version) return this.fds[file]!;
    this.close(file);
    if (Atomics.load(this.meta, file * 2 + 1) !== version) return -1;
    const length = Atomics.load(this.meta, file * 2);
    // Copied out of shared memory, then checked against a rewrite meanwhile (the version moves first).
    const path = Buffer.from(this.paths.subarray(file * PATH_BYTES, file * PATH_BYTES + length)).toString('utf8');
    if (Atomics.load(this.meta, file * 2 + 1) !== version) return -1;
    try {
      this.fds[file] = openSync(path, 'r');
    } catch {
      return -1;
    }
    this.versions[file] = version;
    this.count++;
    return this.fds[file]!;
  }

  closeAll(): void {
    for (let i = 0; i < FILES; i++) this.close(i);
  }

  private close(file: number): void {
    const fd = this.fds[file]!;
    if (fd < 0) return;
    this.fds[file] = -1;
    this.count--;
    try {
      closeSync(fd);
    } catch {
      // Nothing was written through it; a failing close loses nothing.
    }
  }
}

function serve(data: ReadWorkerData): void {
  const slots = data.slots.map((b) => Buffer.from(b));
  const control = new Int32Array(data.control);
  const ring = new Int32Array(data.ring);
  const keys = Buffer.from(data.keys);
  const files = new Files(new Int32Array(data.fileMeta), Buffer.from(data.paths));
  const native = loadIngestNative();
  let head = Atomics.load(control, CONTROL.HEAD);
  for (;;) {
    // Sleeps until the main thread queues more (it notifies on TAIL).
    let tail = Atomics.load(control, CONTROL.TAIL);
    while (tail === head) {
      if (Atomics.wait(control, CONTROL.TAIL, tail, files.open > 0 ? IDLE_CLOSE_MS : Infinity) === 'timed-out') files.closeAll();
      tail = Atomics.load(control, CONTROL.TAIL);
    }
    for (; head !== tail; head++) {
      const slot = ring[head % ring.length]!;
      const at = CONTROL.SLOT_BASE + slot * CONTROL.SLOT_FIELDS;
      let start = control[at + 1]!;
      const sealedLength = control[at + 2]!;
      const plainLength = control[at + 3]!;
      const file = control[at + 4]!;
      const buf = slots[slot]!;
      const key = keys.subarray(slot * OBJECT_KEY_LENGTH, (slot + 1) * OBJECT_KEY_LENGTH);
      let state: number = SlotState.FAILED;
      try {
        let read = true;
        if (file >= 0) {
          start = 0;
          const position = control[at + 7]! * 2 ** 32 + (control[at + 6]! >>> 0);
          read = preadFully(files.fd(file, control[at + 5]!), buf, sealedLength, position);
        }
        // A damaged, unreadable or short chunk is left to the main thread's own read, which reports it.
        if (read && sealedLength - TAG_LENGTH === plainLength) {
          // The plaintext goes to the start of the slot: opened in place
          // with the addon (then moved down if the chunk sat further in),
          // else a new buffer copied there.
          const plain = openObjectInPlace(buf, start, start + sealedLength, key);
          if (plain.buffer !== buf.buffer) plain.copy(buf, 0);
          else if (start !== 0) native!.copyInto(buf, 0, buf, start, start + plainLength);
          state = SlotState.READY;
        }
      } catch {
        // Same: the main thread reads it again and throws the proper error.
      }
      if (state === SlotState.READY && file >= 0) Atomics.add(control, CONTROL.PREADS, 1);
      Atomics.add(control, state === SlotState.READY ? CONTROL.OPENED : CONTROL.REFUSED, 1);
      Atomics.store(control, at, state);
      Atomics.store(control, CONTROL.HEAD, head + 1);
    }
  }
}

/** Reads `length` bytes at `position` into the start of `buf`; false if the descriptor is missing or the file ends first. */
function preadFully(fd: number, buf: Buffer, length: number, position: number): boolean {
  if (fd < 0) return false;
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) return false;
    done += n;
  }
  return true;
}

// Only when run as the worker (the main thread imports the layout above);
// last, so that everything it uses is defined.
if (workerData !== null && typeof workerData === 'object' && 'ring' in workerData) serve(workerData as ReadWorkerData);
