// Worker thread body of the read-ahead pool (read-ahead.ts): opens the
// sealed chunks the main thread read into shared slots, checking each tag
// and length, and leaves each chunk's plaintext at the start of its slot.
// Work comes through a ring of slot numbers in shared memory and each
// slot's state says when it is done: no messages either way, so the main
// thread pays no event-loop turn per chunk and reads the state when a read
// needs the chunk. The decryption and the garbage of its fresh plaintext
// buffers stay on this thread.

import { workerData } from 'node:worker_threads';
import { openObject, OBJECT_KEY_LENGTH } from '../cas/convergent.js';

/** Layout of the control array (Int32), shared with read-ahead.ts. */
export const CONTROL = {
  /** Slots queued so far (the ring's tail), and taken by the worker (its head). */
  TAIL: 0,
  HEAD: 1,
  /** Chunks opened, and refused (damaged, or not the length their manifest gives), since the start. */
  OPENED: 2,
  REFUSED: 3,
  /** Then per slot: state, sealed start, sealed length, plaintext length. */
  SLOT_BASE: 4,
  SLOT_FIELDS: 4,
} as const;

export const SlotState = { IDLE: 0, QUEUED: 1, READY: 2, FAILED: 3 } as const;

export interface ReadWorkerData {
  slots: SharedArrayBuffer[];
  control: SharedArrayBuffer;
  /** The ring of queued slot numbers, as many entries as slots. */
  ring: SharedArrayBuffer;
  /** Each slot's object key. */
  keys: SharedArrayBuffer;
}

// Only when run as the worker (the main thread imports the layout above).
if (workerData !== null && typeof workerData === 'object' && 'ring' in workerData) serve(workerData as ReadWorkerData);

function serve(data: ReadWorkerData): void {
  const slots = data.slots.map((b) => Buffer.from(b));
  const control = new Int32Array(data.control);
  const ring = new Int32Array(data.ring);
  const keys = Buffer.from(data.keys);
  let head = Atomics.load(control, CONTROL.HEAD);
  for (;;) {
    // Sleeps until the main thread queues more (it notifies on TAIL).
    let tail = Atomics.load(control, CONTROL.TAIL);
    while (tail === head) {
      Atomics.wait(control, CONTROL.TAIL, tail);
      tail = Atomics.load(control, CONTROL.TAIL);
    }
    for (; head !== tail; head++) {
      const slot = ring[head % ring.length]!;
      const at = CONTROL.SLOT_BASE + slot * CONTROL.SLOT_FIELDS;
      const start = control[at + 1]!;
      const sealedLength = control[at + 2]!;
      const plainLength = control[at + 3]!;
      let state: number = SlotState.FAILED;
      try {
        const buf = slots[slot]!;
        const plain = openObject(buf.subarray(start, start + sealedLength), keys.subarray(slot * OBJECT_KEY_LENGTH, (slot + 1) * OBJECT_KEY_LENGTH));
        // A damaged or short chunk is left to the main thread's own read, which reports it.
        if (plain.length === plainLength) {
          plain.copy(buf, 0);
          state = SlotState.READY;
        }
      } catch {
        // Same: the main thread reads it again and throws the proper error.
      }
      Atomics.add(control, state === SlotState.READY ? CONTROL.OPENED : CONTROL.REFUSED, 1);
      Atomics.store(control, at, state);
      Atomics.store(control, CONTROL.HEAD, head + 1);
    }
  }
}
