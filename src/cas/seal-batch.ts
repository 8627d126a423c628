// Chunking and sealing a slab of one file's bytes: the unit of work of a
// seal worker (seal-worker.ts, seal-pool.ts).
//
// A writer streams a file through slabs; the worker keeps the file's
// chunker (its rolling hash and the bytes of an unfinished chunk) from one
// slab to the next, so boundaries are exactly those of chunking the whole
// file in one go. For every chunk the slab completes, in file order, the
// result says: a hole (an all-zero chunk, stored as nothing), or a data
// chunk with its id and key, and in the output either its sealed object or,
// when the worker had sealed that very chunk before, only its plaintext.
//
// Why the plaintext: a worker remembers the ids of chunks it sealed, by
// chunk key (KnownChunks). The key is an HMAC of the plaintext, so a chunk
// seen again costs one HMAC instead of HMAC, AES-GCM and SHA-256: on a
// dataset that is half duplicates, a third of the sealing work. The writer
// needs no object for such a chunk when it is held already; in the rare
// case it is not (the writer that sealed it first was abandoned before
// appending, or the object was deleted since) the writer seals it itself,
// from the plaintext.

import { createCipheriv, createHmac, hash } from 'node:crypto';
import { Chunker } from './chunker.js';
import { OBJECT_ID_LENGTH, OBJECT_KEY_LENGTH, TAG_LENGTH } from './convergent.js';
import { loadIngestNative } from './ingest-native.js';

const ZERO_IV = Buffer.alloc(12);

/** Ids of chunks sealed before, by chunk key; forgets everything when full, which only costs re-sealing. */
export class KnownChunks {
  private readonly ids = new Map<string, Buffer>();

  constructor(private readonly capacity: number) {}

  get(key: Buffer): Buffer | undefined {
    return this.ids.get(key.toString('latin1'));
  }

  add(key: Buffer, id: Buffer): void {
    if (this.ids.size >= this.capacity) this.ids.clear();
    this.ids.set(key.toString('latin1'), id);
  }
}

export interface SlabResult {
  /** In file order: a positive length is a data chunk, a negative one an all-zero chunk (a hole). */
  items: Int32Array;
  /** Per data chunk, 32 bytes each. */
  ids: Buffer;
  keys: Buffer;
  /**
   * Per data chunk: 1 when `output` holds its sealed object; for a known
   * chunk 0 when `output` holds its plaintext, 2 when the plaintext is left
   * where it was, in the input at `inputAt` (no copy).
   */
  fresh: Uint8Array;
  /** Per data chunk: where in the input a known chunk's plaintext is (fresh 2), else -1. */
  inputAt: Int32Array;
  /** The data chunks' objects or plaintexts, back to back. */
  output: Buffer;
}

/** Chunks and seals the slabs of the files being written through one worker. */
export class SlabSealer {
  private readonly zeros: Buffer;
  private readonly streams = new Map<number, Chunker>();
  private readonly known: KnownChunks;

  constructor(
    private readonly chunkKey: Buffer,
    private readonly newChunker: () => Chunker,
    maxChunk: number,
    knownChunks: number,
  ) {
    this.zeros = Buffer.alloc(maxChunk);
    this.known = new KnownChunks(knownChunks);
  }

  /**
   * Chunks `input` as the next bytes of `stream` (ending the file's last
   * chunk when `end`) and seals every chunk completed, into `output` when
   * it is large enough (a fresh buffer otherwise).
   */
  run(stream: number, input: Uint8Array, end: boolean, output: Uint8Array): SlabResult {
    let chunker = this.streams.get(stream);
    if (chunker === undefined) {
      chunker = this.newChunker();
      this.streams.set(stream, chunker);
    }
    const items: number[] = [];
    const ids: Buffer[] = [];
    const keys: Buffer[] = [];
    const fresh: number[] = [];
    const inputAt: number[] = [];
    const native = loadIngestNative();
    let out = Buffer.from(output.buffer, output.byteOffset, output.byteLength);
    let outAt = 0;
    const emit = (chunk: Uint8Array): void => {
      const length = chunk.length;
      if (this.zeros.subarray(0, length).equals(chunk)) {
        items.push(-length);
        return;
      }
      if (outAt + length + TAG_LENGTH > out.length) {
        // Only pathological input (many tiny chunks) outgrows the output slab.
        const bigger = Buffer.allocUnsafeSlow(2 * (outAt + length + TAG_LENGTH));
        out.copy(bigger, 0, 0, outAt);
        out = bigger;
      }
      items.push(length);
      // The same construction as convergent.ts sealObject, written into `out` without per-object buffers.
      let key: Buffer;
      if (native === null) {
        key = createHmac('sha256', this.chunkKey).update(chunk).digest();
      } else {
        key = Buffer.allocUnsafe(OBJECT_KEY_LENGTH);
        native.chunkKeyInto(this.chunkKey, chunk, 0, length, key, 0);
      }
      keys.push(key);
      const seen = this.known.get(key);
      if (seen !== undefined) {
        ids.push(seen);
        // The writer needs the plaintext only in the rare case the object
        // is not held: a chunk inside this input stays there; only one
        // assembled from earlier inputs (the chunker's carry) is copied.
        if (chunk.buffer === input.buffer) {
          fresh.push(2);
          inputAt.push(chunk.byteOffset - input.byteOffset);
          return;
        }
        fresh.push(0);
        inputAt.push(-1);
        out.set(chunk, outAt);
        outAt += length;
        return;
      }
      let id: Buffer;
      if (native === null) {
        const cipher = createCipheriv('aes-256-gcm', key, ZERO_IV);
        cipher.update(chunk).copy(out, outAt);
        cipher.final();
        cipher.getAuthTag().copy(out, outAt + length);
        // One-shot: no Hash object per chunk.
        id = hash('sha256', out.subarray(outAt, outAt + length + TAG_LENGTH), 'buffer');
      } else {
        // Straight into the output slab: no cipher, hash or buffer objects per chunk, no copy.
        id = Buffer.allocUnsafe(OBJECT_ID_LENGTH);
        native.sealInto(key, chunk, 0, length, out, outAt, id, 0);
      }
      this.known.add(key, id);
      ids.push(id);
      fresh.push(1);
      inputAt.push(-1);
      outAt += length + TAG_LENGTH;
    };
    // With `end`, the file's last chunk is handed out from the input itself (no copy through the chunker's carry).
    chunker.push(input, emit, end);
    if (end) this.streams.delete(stream);
    return {
      items: Int32Array.from(items),
      ids: concat(ids, OBJECT_ID_LENGTH),
      keys: concat(keys, OBJECT_KEY_LENGTH),
      fresh: Uint8Array.from(fresh),
      inputAt: Int32Array.from(inputAt),
      output: out.subarray(0, outAt),
    };
  }

  /** Forgets a stream whose writer gave up. */
  drop(stream: number): void {
    this.streams.delete(stream);
  }

  /** Learns chunk key → id pairs (32 bytes each, back to back) that a writer knows to be held: those chunks then cost one HMAC. */
  know(keys: Uint8Array, ids: Uint8Array): void {
    for (let at = 0; at + OBJECT_KEY_LENGTH <= keys.length && at + OBJECT_ID_LENGTH <= ids.length; at += OBJECT_KEY_LENGTH) {
      this.known.add(Buffer.from(keys.subarray(at, at + OBJECT_KEY_LENGTH)), Buffer.from(ids.subarray(at, at + OBJECT_ID_LENGTH)));
    }
  }
}

/** Fixed-size buffers back to back, in a buffer that owns its ArrayBuffer (so it can be transferred). */
function concat(parts: Buffer[], size: number): Buffer {
  const all = Buffer.allocUnsafeSlow(parts.length * size);
  for (let i = 0; i < parts.length; i++) parts[i]!.copy(all, i * size);
  return all;
}
