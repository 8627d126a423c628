// Worker thread body of the read-ahead pool (read-ahead.ts): opens the
// sealed chunks the main thread read into shared slots, checking each tag
// and length, and leaves each chunk's plaintext at the start of its slot.
// The main thread then answers reads by one copy out of the slot; the
// decryption and the garbage of its fresh plaintext buffers stay here.

import { parentPort, workerData } from 'node:worker_threads';
import { openObject, OBJECT_KEY_LENGTH } from '../cas/convergent.js';

export interface ReadAheadRequest {
  job: number;
  /** Per chunk: slot, where its sealed payload starts in the slot, sealed length, the plaintext length its manifest gives. */
  items: Float64Array;
  keys: Uint8Array;
}

export interface ReadAheadReply {
  job: number;
  /** Per chunk, in the request's order: whether its plaintext is in its slot. */
  ok: Uint8Array;
}

const ITEM = 4;
const slots = (workerData as { slots: SharedArrayBuffer[] }).slots.map((b) => Buffer.from(b));
const port = parentPort!;

port.on('message', (req: ReadAheadRequest) => {
  const n = req.items.length / ITEM;
  const ok = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const slot = slots[req.items[i * ITEM]!]!;
    const start = req.items[i * ITEM + 1]!;
    const sealedLength = req.items[i * ITEM + 2]!;
    const plainLength = req.items[i * ITEM + 3]!;
    try {
      const plain = openObject(slot.subarray(start, start + sealedLength), req.keys.subarray(i * OBJECT_KEY_LENGTH, (i + 1) * OBJECT_KEY_LENGTH));
      // A damaged or short chunk is left to the main thread's own read, which reports it.
      if (plain.length !== plainLength) continue;
      plain.copy(slot, 0);
      ok[i] = 1;
    } catch {
      // Same: the main thread reads it again and throws the proper error.
    }
  }
  port.postMessage({ job: req.job, ok } satisfies ReadAheadReply);
});
