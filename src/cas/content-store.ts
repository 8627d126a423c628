// Content storage over a volume's arena set: files in, manifests out, and
// byte ranges back (docs/volume.md, "Content").
//
// Objects live in the arenas of kind `content`, keyed by object id, type 1
// for chunks and 2 for manifest nodes, payload = the sealed object. Writing
// chunks the input, turns all-zero chunks into holes, seals the rest
// convergently and appends only objects not already held (dedup). Reading
// maps a byte range to the chunks under it and authenticates every chunk it
// decrypts with its GCM tag. The arena already checksums its records, so
// local reads skip the object-id hash by default; objects that come from an
// untrusted store go through importObject(), which checks the id first, and
// `verifyIds` turns the id check on for reads too (fsck, paranoia).

import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import type { ArenaSet } from '../../arena/arena-set.js';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { VolumeKeys } from '../crypto/volume-keys.js';
import { Chunker, chunkerParams, type ChunkerParams } from './chunker.js';
import { checkObjectId, openObject, sealObject, OBJECT_ID_LENGTH, OBJECT_KEY_LENGTH, TAG_LENGTH } from './convergent.js';
import { gearTable } from './gear.js';
import { LruCache } from './lru-cache.js';
import { sealBatch, type SealedChunks } from './seal-batch.js';
import { SealPool, type SealedBatch } from './seal-pool.js';
import {
  DEFAULT_MAX_NODE_ENTRIES, ManifestBuilder, decodeManifest, extentsIn, objectsOf,
  type ChunkExtent, type Manifest, type NodeRef,
} from './manifest.js';

export const CONTENT_KIND = 'content';
export const CHUNK_TYPE = 1;
export const NODE_TYPE = 2;
export type ObjectType = typeof CHUNK_TYPE | typeof NODE_TYPE;

const DEFAULT_CACHE_BYTES = 8 * 1024 * 1024;
const NODE_CACHE_ENTRIES = 64;
const HOLE_PIECE = 1024 * 1024;
// Sealing on worker threads (docs/crypto.md, "Worker threads", has the
// measurements). Chunk bytes go to a worker in batches large enough that a
// round trip (~0.1 ms) is noise; a worker gets a new batch while it has
// fewer than WORKER_QUEUE_DEPTH unfinished, otherwise the writer's thread
// seals it; and a write waits once MAX_BATCHES_IN_FLIGHT batches are
// queued, so one writer holds at most ~32 MiB of chunks and objects.
const BATCH_BYTES = 4 * 1024 * 1024;
const WORKER_QUEUE_DEPTH = 2;
const MAX_BATCHES_IN_FLIGHT = 3;
const DEFAULT_SEAL_WORKERS = Math.min(2, Math.max(0, availableParallelism() - 1));

export interface ContentStoreOptions {
  keys: Pick<VolumeKeys, 'chunkKey' | 'gearKey'>;
  chunking?: Partial<ChunkerParams>;
  /** Entries per manifest node before it splits into a tree (4,096). */
  maxNodeEntries?: number;
  /** Decrypted chunks kept for reads, in bytes (8 MiB; 0 turns the cache off). */
  cacheBytes?: number;
  /** Worker threads that seal chunks during writes; 0 seals on the calling thread. */
  sealWorkers?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface WriteOptions extends CallOptions {
  /**
   * Wait for the appended objects to be durable before resolving (default
   * true). A caller that commits an event naming the manifest must have the
   * content durable first; pass false only to batch several writes under
   * one `arenas.sync()` that precedes the event.
   */
  sync?: boolean;
}

export interface ReadOptions extends CallOptions {
  /** Also check each object against its id (SHA-256), not only its tag. */
  verifyIds?: boolean;
}

export interface RangeOptions extends ReadOptions {
  offset?: number;
  length?: number;
}

export interface WriteResult {
  /** The root manifest; null for an empty file. */
  manifestRoot: Manifest | null;
  size: number;
  /** Bytes of new objects (chunks and manifest nodes) appended to the arenas. */
  newBytes: number;
  /** Chunks referenced by the manifest (holes not counted). */
  chunks: number;
  /** Of those, how many were already stored (in earlier files or earlier in this one). */
  dedupedChunks: number;
  /** Bytes stored as holes: all-zero chunks and explicit holes. */
  holeBytes: number;
}

export type ContentSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Readable;

/** Throws BAZIL_ABORTED if `signal` has fired. */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new BazilError(ErrorCodes.ABORTED, 'the operation was aborted', {}, signal.reason);
  }
}

function hex(id: Uint8Array): string {
  return Buffer.from(id).toString('hex');
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'offset and length must be non-negative integers', { offset, length });
  }
}

export class ContentStore {
  private readonly chunkKey: Buffer;
  private readonly gear: Int32Array;
  private readonly chunking: ChunkerParams;
  readonly maxNodeEntries: number;
  private readonly chunkCache: LruCache<string, Buffer>;
  private readonly nodeCache = new LruCache<string, Manifest>(NODE_CACHE_ENTRIES);
  private readonly sealWorkers: number;
  private pool: SealPool | null = null;
  private closed = false;
  // Batch buffers and the all-zero chunk, shared by every writer: importing
  // many small files must not cost each one 4 MiB of fresh zeroed memory
  // (that made garbage collection most of a small-file import).
  private readonly batchBuffers: ArrayBuffer[] = [];
  private zeros: Buffer | null = null;

  /** A batch buffer of at least `size` bytes, reused when one is free. */
  takeBatchBuffer(size: number): ArrayBuffer {
    const b = this.batchBuffers.pop();
    return b !== undefined && b.byteLength >= size ? b : new ArrayBuffer(size);
  }

  /** Returns a batch buffer for reuse (a few are kept). */
  giveBatchBuffer(b: ArrayBuffer): void {
    if (this.batchBuffers.length < 4 && b.byteLength > 0) this.batchBuffers.push(b);
  }

  /** `length` zero bytes, shared read-only, to recognise all-zero chunks. */
  zeroBytes(length: number): Buffer {
    if (this.zeros === null || this.zeros.length < length) this.zeros = Buffer.alloc(length);
    return this.zeros.subarray(0, length);
  }

  constructor(readonly arenas: ArenaSet, options: ContentStoreOptions) {
    this.chunkKey = Buffer.from(options.keys.chunkKey);
    this.gear = gearTable(options.keys.gearKey);
    this.chunking = chunkerParams(options.chunking);
    this.maxNodeEntries = options.maxNodeEntries ?? DEFAULT_MAX_NODE_ENTRIES;
    this.chunkCache = new LruCache(options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    this.sealWorkers = options.sealWorkers ?? DEFAULT_SEAL_WORKERS;
    if (!Number.isSafeInteger(this.sealWorkers) || this.sealWorkers < 0) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'sealWorkers must be a non-negative integer', { sealWorkers: this.sealWorkers });
    }
  }

  /** Starts writing one file's content; see ContentWriter. */
  createWriter(options: WriteOptions = {}): ContentWriter {
    checkAborted(options.signal);
    if (this.closed) throw new BazilError(ErrorCodes.CLOSED, 'the content store is closed');
    const pool = this.sealWorkers === 0 ? null : () => (this.pool ??= new SealPool(this.chunkKey, this.sealWorkers));
    const sealHere = (input: Uint8Array, lengths: readonly number[]): SealedChunks => sealBatch(this.chunkKey, input, lengths);
    return new ContentWriter(this, new Chunker(this.gear, this.chunking), pool, sealHere, options);
  }

  /** Stops the seal workers. The arena set stays open: its owner closes it. */
  async close(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = null;
    await pool?.close();
  }

  /** Stores a stream of buffers as one file's content. */
  async writeStream(source: ContentSource, options: WriteOptions = {}): Promise<WriteResult> {
    const writer = this.createWriter(options);
    for await (const data of source as AsyncIterable<unknown>) {
      if (!(data instanceof Uint8Array)) {
        throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'a content stream must yield bytes (Buffer or Uint8Array), not strings or objects');
      }
      await writer.write(data);
    }
    return writer.finish();
  }

  writeBuffer(data: Uint8Array, options: WriteOptions = {}): Promise<WriteResult> {
    return this.writeStream([data], options);
  }

  /**
   * Seals `plaintext` and appends it unless already held. Returns the
   * reference and how many bytes were appended (0 for a duplicate).
   */
  storeObject(type: ObjectType, plaintext: Uint8Array): { id: Buffer; key: Buffer; added: number } {
    const { id, key, sealed } = sealObject(this.chunkKey, plaintext);
    return { id, key, added: this.appendSealed(type, id, sealed) };
  }

  /** Appends an object sealed by this store (or its workers) unless held; returns the bytes added. */
  appendSealed(type: ObjectType, id: Buffer, sealed: Uint8Array): number {
    if (this.arenas.has(id)) return 0;
    this.arenas.append(CONTENT_KIND, type, id, sealed);
    return sealed.length;
  }

  /** Whether the object is held locally (and not deleted). */
  hasObject(id: Uint8Array): boolean {
    return this.arenas.has(id);
  }

  /** The sealed bytes of an object, for pushing it to a store; undefined if not held. */
  getSealed(id: Uint8Array): { type: number; sealed: Buffer } | undefined {
    const rec = this.arenas.get(id);
    return rec === undefined ? undefined : { type: rec.type, sealed: Buffer.from(rec.payload) };
  }

  /**
   * Adds an object fetched from an untrusted store or peer: it must hash to
   * `id` (BAZIL_OBJECT_MISMATCH otherwise) before it is appended. Returns
   * false if it was already held. Not durable until `arenas.sync()`.
   */
  importObject(id: Uint8Array, type: ObjectType, sealed: Uint8Array): boolean {
    checkObjectId(id, sealed);
    if (type !== CHUNK_TYPE && type !== NODE_TYPE) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, `unknown content object type ${String(type)}`);
    }
    if (this.arenas.has(id)) return false;
    this.arenas.append(CONTENT_KIND, type, id, sealed);
    return true;
  }

  /**
   * Decrypts a held object with its key. BAZIL_NOT_FOUND if absent,
   * BAZIL_DELETED if punched, BAZIL_CORRUPT_RECORD if the arena record is
   * damaged, BAZIL_CORRUPT_OBJECT if the tag fails, BAZIL_OBJECT_MISMATCH
   * (with `verifyId`) if it does not hash to its id.
   */
  openObject(id: Uint8Array, key: Uint8Array, verifyId = false): Buffer {
    if (!(id instanceof Uint8Array) || id.length !== OBJECT_ID_LENGTH) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, `an object id is ${OBJECT_ID_LENGTH} bytes`);
    }
    const rec = this.arenas.get(id);
    if (rec === undefined) {
      throw new BazilError(ErrorCodes.NOT_FOUND, `object ${hex(id)} is not stored here`, { id: hex(id) });
    }
    try {
      // The payload is a view into arena buffers: decrypting copies it out at once.
      return openObject(rec.payload, key, verifyId ? { verifyId: id } : {});
    } catch (err) {
      if (err instanceof BazilError && err.data.id === undefined) err.data.id = hex(id);
      throw err;
    }
  }

  /**
   * Loads a manifest node: decrypted, authenticated and decoded. Cached,
   * except when `verifyId` asks for the object to be checked again.
   */
  loadNode(ref: NodeRef, verifyId = false): Manifest {
    const cacheKey = hex(ref.id);
    const hit = verifyId ? undefined : this.nodeCache.get(cacheKey);
    if (hit !== undefined) return hit;
    const node = decodeManifest(this.openObject(ref.id, ref.key, verifyId));
    this.nodeCache.set(cacheKey, node);
    return node;
  }

  private chunkPlaintext(extent: ChunkExtent, verifyId: boolean, cache: boolean): Buffer {
    // A verifying read checks every object it returns, so it does not take cached plaintext.
    const useCache = cache && !verifyId;
    const cacheKey = useCache ? hex(extent.id) : '';
    if (useCache) {
      const hit = this.chunkCache.get(cacheKey);
      if (hit !== undefined) return hit;
    }
    const plain = this.openObject(extent.id, extent.key, verifyId);
    if (plain.length !== extent.length) {
      throw new BazilError(ErrorCodes.CORRUPT_MANIFEST, `chunk ${hex(extent.id)} holds ${plain.length} bytes, not the ${extent.length} its manifest claims`, { id: hex(extent.id) });
    }
    if (useCache) this.chunkCache.set(cacheKey, plain, plain.length);
    return plain;
  }

  /**
   * Reads [offset, offset + length) of a file, clipped to its size (a range
   * past the end reads short, as pread does). Holes read as zeros.
   */
  async read(manifest: Manifest | null, offset: number, length: number, options: ReadOptions = {}): Promise<Buffer> {
    checkRange(offset, length);
    checkAborted(options.signal);
    const size = manifest?.size ?? 0;
    const end = Math.min(size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const out = Buffer.alloc(end - offset);
    const verifyId = options.verifyIds === true;
    for (const { extent, start } of extentsIn(manifest, offset, end - offset, (ref) => this.loadNode(ref, verifyId))) {
      checkAborted(options.signal);
      if (extent.kind === 'hole') continue;
      const plain = this.chunkPlaintext(extent, verifyId, true);
      const from = Math.max(offset, start);
      const to = Math.min(end, start + extent.length);
      plain.copy(out, from - offset, from - start, to - start);
    }
    return out;
  }

  /**
   * Streams a file's content (or a range of it) for export: one buffer per
   * chunk, holes as zero buffers of at most 1 MiB. Chunks bypass the read
   * cache, which a sequential pass would only flush.
   */
  async *stream(manifest: Manifest | null, options: RangeOptions = {}): AsyncGenerator<Buffer> {
    const size = manifest?.size ?? 0;
    const offset = options.offset ?? 0;
    const length = options.length ?? Math.max(0, size - offset);
    checkRange(offset, length);
    const end = Math.min(size, offset + length);
    const verifyId = options.verifyIds === true;
    checkAborted(options.signal);
    for (const { extent, start } of extentsIn(manifest, offset, end - offset, (ref) => this.loadNode(ref, verifyId))) {
      checkAborted(options.signal);
      const from = Math.max(offset, start);
      const to = Math.min(end, start + extent.length);
      if (extent.kind === 'hole') {
        for (let at = from; at < to; at += HOLE_PIECE) {
          yield Buffer.alloc(Math.min(HOLE_PIECE, to - at));
          checkAborted(options.signal);
        }
      } else {
        const plain = this.chunkPlaintext(extent, verifyId, false);
        yield from === start && to === start + extent.length ? plain : plain.subarray(from - start, to - start);
      }
    }
  }

  /** Every object a manifest references (nodes and chunks), for GC, pinning and push. */
  *objects(manifest: Manifest | null, options: ReadOptions = {}): Generator<ChunkExtent | NodeRef> {
    const verifyId = options.verifyIds === true;
    for (const ref of objectsOf(manifest, (r) => this.loadNode(r, verifyId))) {
      checkAborted(options.signal);
      yield ref;
    }
  }
}

/** Chunks waiting to be sealed: data chunks back to back in `bytes`, and the order of chunks and holes. */
interface Batch {
  input: ArrayBuffer;
  bytes: Buffer;
  used: number;
  /** In file order: a positive length is a data chunk in `bytes`, a negative one a hole. */
  items: number[];
  dataLengths: number[];
}

interface QueuedBatch {
  batch: Batch;
  sealing: Promise<SealedBatch> | null;
}

/**
 * One file's content being written: feed it bytes (and explicit holes, for
 * sparse input) in file order, then finish() for the manifest. Objects are
 * appended as chunks complete; an abandoned or aborted writer leaves only
 * unreferenced objects behind, which garbage collection reclaims.
 *
 * With a seal pool, chunks are copied into batches that worker threads
 * seal while the main thread goes on chunking; results are appended in
 * file order as they come back, with at most a few batches in flight. A
 * file smaller than one batch never leaves the main thread.
 */
export class ContentWriter {
  private readonly builder: ManifestBuilder;
  private readonly zeros: Buffer;
  private readonly signal: AbortSignal | undefined;
  private readonly queue: QueuedBatch[] = [];
  private batch: Batch | null = null;
  private size = 0;
  private newBytes = 0;
  private chunks = 0;
  private dedupedChunks = 0;
  private holeBytes = 0;
  private state: 'open' | 'finished' | 'failed' = 'open';
  private readonly onChunk: (chunk: Uint8Array) => void;

  constructor(
    private readonly store: ContentStore,
    private readonly chunker: Chunker,
    private readonly pool: (() => SealPool) | null,
    private readonly sealHere: (input: Uint8Array, lengths: readonly number[]) => SealedChunks,
    private readonly options: WriteOptions,
  ) {
    this.signal = options.signal;
    this.builder = new ManifestBuilder((encoded) => {
      const r = store.storeObject(NODE_TYPE, encoded);
      this.newBytes += r.added;
      return r;
    }, store.maxNodeEntries);
    this.zeros = store.zeroBytes(chunker.params.maxSize);
    this.onChunk = pool === null ? (chunk) => this.storeChunk(chunk) : (chunk) => this.batchChunk(chunk);
  }

  async write(data: Uint8Array): Promise<void> {
    this.checkWritable();
    await this.guard(async () => {
      // Slices bound the bytes queued for the workers however large `data` is.
      for (let at = 0; at < data.length; at += BATCH_BYTES) {
        this.chunker.push(data.subarray(at, Math.min(data.length, at + BATCH_BYTES)), this.onChunk);
        while (this.queue.length > MAX_BATCHES_IN_FLIGHT) await this.drainOne();
        checkAborted(this.signal);
      }
      this.size += data.length;
    });
  }

  /**
   * Appends `length` zero bytes without storing anything. The chunker is
   * flushed first, so the chunk before a hole ends at the hole.
   */
  async hole(length: number): Promise<void> {
    this.checkWritable();
    checkRange(0, length);
    await this.guard(async () => {
      this.chunker.finish(this.onChunk);
      if (this.pool === null) this.addHole(length);
      else if (length > 0) this.currentBatch().items.push(-length);
      this.size += length;
    });
  }

  async finish(): Promise<WriteResult> {
    this.checkWritable();
    return this.guard(async () => {
      this.chunker.finish(this.onChunk);
      while (this.queue.length > 0) await this.drainOne();
      // The last partial batch is sealed here: waiting for a worker round trip would gain nothing.
      if (this.batch !== null) {
        this.applyBatch(this.batch, null);
        this.store.giveBatchBuffer(this.batch.input);
      }
      this.batch = null;
      const manifestRoot = this.builder.finish();
      this.state = 'finished';
      if (this.options.sync !== false) await this.store.arenas.sync();
      checkAborted(this.signal);
      return {
        manifestRoot, size: this.size, newBytes: this.newBytes,
        chunks: this.chunks, dedupedChunks: this.dedupedChunks, holeBytes: this.holeBytes,
      };
    });
  }

  /** A writer that failed part-way (an abort, an I/O error) takes no more calls. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.state = 'failed';
      throw err;
    }
  }

  private checkWritable(): void {
    if (this.state !== 'open') {
      throw new BazilError(ErrorCodes.CLOSED, `this content writer has ${this.state === 'finished' ? 'finished' : 'failed'}`);
    }
    checkAborted(this.signal);
  }

  private isZero(chunk: Uint8Array): boolean {
    // A chunk is never longer than maxSize, the length of `zeros`; equals() is a memcmp.
    return this.zeros.subarray(0, chunk.length).equals(chunk);
  }

  private addHole(length: number): void {
    this.builder.addHole(length);
    this.holeBytes += length;
  }

  private addChunk(length: number, id: Buffer, key: Buffer, added: number): void {
    this.chunks++;
    if (added === 0) this.dedupedChunks++;
    this.newBytes += added;
    this.builder.addChunk(length, id, key);
  }

  /** Without a pool: seal and append at once. */
  private storeChunk(chunk: Uint8Array): void {
    checkAborted(this.signal);
    if (this.isZero(chunk)) {
      this.addHole(chunk.length);
      return;
    }
    const r = this.store.storeObject(CHUNK_TYPE, chunk);
    this.addChunk(chunk.length, r.id, r.key, r.added);
  }

  private currentBatch(): Batch {
    if (this.batch === null) {
      const input = this.store.takeBatchBuffer(Math.max(BATCH_BYTES, this.chunker.params.maxSize));
      this.batch = { input, bytes: Buffer.from(input), used: 0, items: [], dataLengths: [] };
    }
    return this.batch;
  }

  /** With a pool: copy the chunk into the current batch, sending the batch off when full. */
  private batchChunk(chunk: Uint8Array): void {
    if (this.isZero(chunk)) {
      this.currentBatch().items.push(-chunk.length);
      return;
    }
    let batch = this.currentBatch();
    if (batch.used + chunk.length > batch.bytes.length) {
      this.dispatch();
      batch = this.currentBatch();
    }
    batch.bytes.set(chunk, batch.used);
    batch.used += chunk.length;
    batch.items.push(chunk.length);
    batch.dataLengths.push(chunk.length);
  }

  /**
   * Sends the current batch to a seal worker, or, when every worker already
   * has a batch queued behind the one it is sealing, seals it here: the
   * writer's thread then shares the sealing instead of waiting, which
   * balances the two on a two-core machine.
   */
  private dispatch(): void {
    const batch = this.batch!;
    this.batch = null;
    let sealing: Promise<SealedBatch> | null = null;
    if (batch.dataLengths.length > 0) {
      const pool = this.pool!();
      if (pool.unfinished < WORKER_QUEUE_DEPTH * pool.size) {
        sealing = pool.seal(batch.input, Uint32Array.from(batch.dataLengths));
        // Awaited in drainOne; this only keeps an abandoned batch's failure from going unhandled.
        sealing.catch(() => {});
      } else {
        sealing = Promise.resolve({ input: batch.input, ...this.sealHere(batch.bytes, batch.dataLengths) });
      }
    }
    this.queue.push({ batch, sealing });
  }

  private async drainOne(): Promise<void> {
    const { batch, sealing } = this.queue.shift()!;
    const sealed = sealing === null ? null : await sealing;
    checkAborted(this.signal);
    this.applyBatch(batch, sealed);
    this.store.giveBatchBuffer(sealed === null ? batch.input : sealed.input);
  }

  /** Adds a batch's chunks and holes to the manifest in order, appending new objects. */
  private applyBatch(batch: Batch, sealed: SealedBatch | null): void {
    let inAt = 0;
    let outAt = 0;
    let d = 0;
    for (const item of batch.items) {
      if (item < 0) {
        this.addHole(-item);
        continue;
      }
      if (sealed === null) {
        // Sealed here, from bytes still in the batch buffer.
        const r = this.store.storeObject(CHUNK_TYPE, batch.bytes.subarray(inAt, inAt + item));
        this.addChunk(item, r.id, r.key, r.added);
      } else {
        const end = outAt + item + TAG_LENGTH;
        const id = Buffer.from(sealed.ids.subarray(d * OBJECT_ID_LENGTH, (d + 1) * OBJECT_ID_LENGTH));
        const key = Buffer.from(sealed.keys.subarray(d * OBJECT_KEY_LENGTH, (d + 1) * OBJECT_KEY_LENGTH));
        const added = this.store.appendSealed(CHUNK_TYPE, id, sealed.sealed.subarray(outAt, end));
        this.addChunk(item, id, key, added);
        outAt = end;
      }
      inAt += item;
      d++;
    }
  }
}
