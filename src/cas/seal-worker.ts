// Worker thread body of the seal pool (seal-pool.ts).
//
// The convergence secret comes once, in workerData. Each request carries
// chunks back to back in a transferred buffer with their lengths; the reply
// carries the sealed objects, their ids and keys (see seal-batch.ts), and
// hands the input buffer back so the writer can reuse it. A shared counter
// of finished jobs tells the writer how busy the worker is.

import { parentPort, workerData } from 'node:worker_threads';
import { sealBatch } from './seal-batch.js';

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

const data = workerData as { chunkKey: Uint8Array; done: Int32Array };
const chunkKey = Buffer.from(data.chunkKey);
const port = parentPort!;

port.on('message', (req: SealRequest) => {
  const { sealed, ids, keys } = sealBatch(chunkKey, new Uint8Array(req.input), req.lengths);
  const reply: SealReply = { job: req.job, input: req.input, sealed: sealed.buffer as ArrayBuffer, ids: ids.buffer as ArrayBuffer, keys: keys.buffer as ArrayBuffer };
  port.postMessage(reply, [req.input, reply.sealed, reply.ids, reply.keys]);
  // Seen by the writer at once, even while its event loop is busy (seal-pool.ts, `unfinished`).
  Atomics.add(data.done, 0, 1);
});
