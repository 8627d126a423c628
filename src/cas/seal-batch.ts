// Sealing a batch of chunks into one buffer: the unit of work of a seal
// worker, and of the writer's own thread when the workers are busy.

import { OBJECT_ID_LENGTH, OBJECT_KEY_LENGTH, TAG_LENGTH, sealObject } from './convergent.js';

export interface SealedChunks {
  /** The sealed objects back to back, in input order; object i is 16 bytes longer than chunk i. */
  sealed: Buffer;
  /** 32 bytes per object. */
  ids: Buffer;
  /** 32 bytes per object. */
  keys: Buffer;
}

/**
 * Seals the chunks found back to back in `input`. The three buffers own
 * their whole ArrayBuffers (not pooled), so a worker can transfer them.
 */
export function sealBatch(chunkKey: Uint8Array, input: Uint8Array, lengths: ArrayLike<number>): SealedChunks {
  const n = lengths.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += lengths[i] + TAG_LENGTH;
  // Not zeroed: every byte is written below.
  const sealed = Buffer.allocUnsafeSlow(total);
  const ids = Buffer.allocUnsafeSlow(n * OBJECT_ID_LENGTH);
  const keys = Buffer.allocUnsafeSlow(n * OBJECT_KEY_LENGTH);
  let inAt = 0;
  let outAt = 0;
  for (let i = 0; i < n; i++) {
    const length = lengths[i];
    const o = sealObject(chunkKey, input.subarray(inAt, inAt + length));
    o.sealed.copy(sealed, outAt);
    o.id.copy(ids, i * OBJECT_ID_LENGTH);
    o.key.copy(keys, i * OBJECT_KEY_LENGTH);
    inAt += length;
    outAt += o.sealed.length;
  }
  return { sealed, ids, keys };
}
