// Worker thread body of the seal pool (seal-pool.ts): seals a batch of
// chunks convergently and sends the objects back in one buffer.
//
// The convergence secret comes once, in workerData. Each request carries
// the chunks back to back in a transferred buffer with their lengths; the
// reply carries the sealed objects back to back (each one 16 bytes longer
// than its chunk), their ids and keys, and hands the input buffer back so
// the main thread can reuse it.

import { parentPort, workerData } from 'node:worker_threads';
import { OBJECT_ID_LENGTH, OBJECT_KEY_LENGTH, TAG_LENGTH, sealObject } from './convergent.js';

export interface SealRequest {
  job: number;
  input: ArrayBuffer;
  lengths: Uint32Array;
}

export interface SealReply {
  job: number;
  input: ArrayBuffer;
  sealed: ArrayBuffer;
  ids: ArrayBuffer;
  keys: ArrayBuffer;
}

const chunkKey = Buffer.from((workerData as { chunkKey: Uint8Array }).chunkKey);
const port = parentPort!;

port.on('message', (req: SealRequest) => {
  const n = req.lengths.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += req.lengths[i] + TAG_LENGTH;
  // Not pooled (so the whole ArrayBuffer can be transferred) and not zeroed (every byte is written).
  const sealed = Buffer.allocUnsafeSlow(total);
  const ids = Buffer.alloc(n * OBJECT_ID_LENGTH);
  const keys = Buffer.alloc(n * OBJECT_KEY_LENGTH);
  const input = Buffer.from(req.input);
  let inAt = 0;
  let outAt = 0;
  for (let i = 0; i < n; i++) {
    const length = req.lengths[i];
    const o = sealObject(chunkKey, input.subarray(inAt, inAt + length));
    o.sealed.copy(sealed, outAt);
    o.id.copy(ids, i * OBJECT_ID_LENGTH);
    o.key.copy(keys, i * OBJECT_KEY_LENGTH);
    inAt += length;
    outAt += o.sealed.length;
  }
  const reply: SealReply = { job: req.job, input: req.input, sealed: sealed.buffer, ids: ids.buffer, keys: keys.buffer };
  port.postMessage(reply, [req.input, sealed.buffer, ids.buffer, keys.buffer]);
});
