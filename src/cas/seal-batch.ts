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
// chunk key (KnownChunks). The key is a keyed hash of the plaintext
// (chunk-keys.ts), so a chunk seen again costs one key instead of the key,
// AES-GCM and SHA-256: on a
// dataset that is half duplicates, a third of the sealing work. The writer
// needs no object for such a chunk when it is held already; in the rare
// case it is not (the writer that sealed it first was abandoned before
// appending, or the object was deleted since) the writer seals it itself,
// from the plaintext.

import { createCipheriv, hash } from 'node:crypto';
import type { ChunkKeyer } from './chunk-keys.js';
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
    private readonly keyer: ChunkKeyer,
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
    const chunker = this.chunkerOf(stream);
    const items: number[] = [];
    const parts: SealedParts = { ids: [], keys: [], fresh: [], inputAt: [] };
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
      outAt = this.sealOne(chunk, out, outAt, parts, input);
    };
    // With `end`, the file's last chunk is handed out from the input itself (no copy through the chunker's carry).
    chunker.push(input, emit, end);
    if (end) this.streams.delete(stream);
    return { items: Int32Array.from(items), ...finishParts(parts), output: out.subarray(0, outAt) };
  }

  /**
   * Chunks `input` as the next bytes of `stream` like run() (never ending
   * the file's chunk), but seals only a prefix of its chunks, about
   * `share` of the input's bytes, and leaves the rest to another worker
   * (sealRanges), so one file's sealing is spread over two threads while
   * its chunker stays in one. A chunk carried from earlier slabs is always
   * sealed here (its bytes are in this worker's chunker, not in the slab).
   * `rest` holds [offset, length] pairs in `input` of the data chunks left,
   * whose objects go into `output` from `output.length` on; when they
   * might not fit there, everything is sealed here (rest is empty).
   */
  cut(stream: number, input: Uint8Array, output: Uint8Array, share: number): SlabResult & { rest: Int32Array } {
    const chunker = this.chunkerOf(stream);
    const items: number[] = [];
    const parts: SealedParts = { ids: [], keys: [], fresh: [], inputAt: [] };
    let out = Buffer.from(output.buffer, output.byteOffset, output.byteLength);
    let outAt = 0;
    // In-slab data chunks as [offset, length], in file order, not yet sealed.
    const spans: number[] = [];
    let need = 0;
    chunker.push(input, (chunk) => {
      const length = chunk.length;
      if (this.zeros.subarray(0, length).equals(chunk)) {
        items.push(-length);
        return;
      }
      items.push(length);
      if (chunk.buffer !== input.buffer) {
        // Only the first chunk of a push can come from the carry, so it is the first data chunk too.
        outAt = this.sealOne(chunk, out, outAt, parts, input);
        return;
      }
      spans.push(chunk.byteOffset - input.byteOffset, length);
      need += length + TAG_LENGTH;
    });
    let mine = share * input.length;
    if (outAt + need > out.length) {
      // Only pathological input (many tiny chunks) outgrows the output slab: all sealed here, into a bigger buffer.
      const bigger = Buffer.allocUnsafeSlow(outAt + need);
      out.copy(bigger, 0, 0, outAt);
      out = bigger;
      mine = Infinity;
    }
    let sealed = outAt;
    let i = 0;
    for (; i < spans.length && sealed < mine; i += 2) {
      const at = spans[i]!;
      sealed += spans[i + 1]!;
      outAt = this.sealOne(input.subarray(at, at + spans[i + 1]!), out, outAt, parts, input);
    }
    return { items: Int32Array.from(items), ...finishParts(parts), output: out.subarray(0, outAt), rest: Int32Array.from(spans.slice(i)) };
  }

  /**
   * Seals the data chunks at `ranges` ([offset, length] pairs) of `input`,
   * their objects into `output` from `at` on (a cut() elsewhere said they
   * fit). Returns them like run(), `output` being output[at, end).
   */
  sealRanges(input: Uint8Array, ranges: Int32Array, output: Uint8Array, at: number): Omit<SlabResult, 'items'> {
    const parts: SealedParts = { ids: [], keys: [], fresh: [], inputAt: [] };
    const out = Buffer.from(output.buffer, output.byteOffset, output.byteLength);
    let outAt = at;
    for (let i = 0; i + 1 < ranges.length; i += 2) {
      const start = ranges[i]!;
      const length = ranges[i + 1]!;
      if (outAt + length + TAG_LENGTH > out.length) throw new Error('seal ranges: the output slab is too small');
      outAt = this.sealOne(input.subarray(start, start + length), out, outAt, parts, input);
    }
    return { ...finishParts(parts), output: out.subarray(at, outAt) };
  }

  /**
   * Seals one data chunk into `out` at `outAt` (room checked by the caller;
   * the same construction as convergent.ts sealObject, without per-object
   * buffers); returns the new end. A known chunk's plaintext stays where it
   * is when it lies in `input` (fresh 2), else it is copied into `out`.
   */
  private sealOne(chunk: Uint8Array, out: Buffer, outAt: number, parts: SealedParts, input: Uint8Array): number {
    const length = chunk.length;
    const native = loadIngestNative();
    const key = Buffer.allocUnsafe(OBJECT_KEY_LENGTH);
    this.keyer.keyInto(chunk, 0, length, key, 0);
    parts.keys.push(key);
    const seen = this.known.get(key);
    if (seen !== undefined) {
      parts.ids.push(seen);
      // The writer needs the plaintext only in the rare case the object is
      // not held: a chunk inside the input stays there; only one assembled
      // from earlier inputs (the chunker's carry) is copied.
      if (chunk.buffer === input.buffer) {
        parts.fresh.push(2);
        parts.inputAt.push(chunk.byteOffset - input.byteOffset);
        return outAt;
      }
      parts.fresh.push(0);
      parts.inputAt.push(-1);
      out.set(chunk, outAt);
      return outAt + length;
    }
    parts.inputAt.push(-1);
    let id: Buffer;
    if (native === null) {
      const cipher = createCipheriv('aes-256-gcm', key, ZERO_IV);
      cipher.update(chunk).copy(out, outAt);
      cipher.final();
      cipher.getAuthTag().copy(out, outAt + length);
      id = hash('sha256', out.subarray(outAt, outAt + length + TAG_LENGTH), 'buffer');
    } else {
      id = Buffer.allocUnsafe(OBJECT_ID_LENGTH);
      native.sealInto(key, chunk, 0, length, out, outAt, id, 0);
    }
    this.known.add(key, id);
    parts.ids.push(id);
    parts.fresh.push(1);
    return outAt + length + TAG_LENGTH;
  }

  /** The chunker of `stream`, a new one for its first slab. */
  private chunkerOf(stream: number): Chunker {
    let chunker = this.streams.get(stream);
    if (chunker === undefined) {
      chunker = this.newChunker();
      this.streams.set(stream, chunker);
    }
    return chunker;
  }

  /** Forgets a stream whose writer gave up. */
  drop(stream: number): void {
    this.streams.delete(stream);
  }

  /** Learns chunk key → id pairs (32 bytes each, back to back) that a writer knows to be held: those chunks then cost one chunk key. */
  know(keys: Uint8Array, ids: Uint8Array): void {
    for (let at = 0; at + OBJECT_KEY_LENGTH <= keys.length && at + OBJECT_ID_LENGTH <= ids.length; at += OBJECT_KEY_LENGTH) {
      this.known.add(Buffer.from(keys.subarray(at, at + OBJECT_KEY_LENGTH)), Buffer.from(ids.subarray(at, at + OBJECT_ID_LENGTH)));
    }
  }
}

interface SealedParts {
  ids: Buffer[];
  keys: Buffer[];
  fresh: number[];
  inputAt: number[];
}

function finishParts(parts: SealedParts): { ids: Buffer; keys: Buffer; fresh: Uint8Array; inputAt: Int32Array } {
  return {
    ids: concat(parts.ids, OBJECT_ID_LENGTH), keys: concat(parts.keys, OBJECT_KEY_LENGTH),
    fresh: Uint8Array.from(parts.fresh), inputAt: Int32Array.from(parts.inputAt),
  };
}

/** Fixed-size buffers back to back, in a buffer that owns its ArrayBuffer (so it can be transferred). */
function concat(parts: Buffer[], size: number): Buffer {
  const all = Buffer.allocUnsafeSlow(parts.length * size);
  for (let i = 0; i < parts.length; i++) parts[i]!.copy(all, i * size);
  return all;
}
