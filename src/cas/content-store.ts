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

import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { FRAME_PAYLOAD_OFFSET, type ArenaSet } from '../../arena/arena-set.js';
import { BazilError, ErrorCodes, ioError } from '../../errors/index.js';
import type { VolumeKeys } from '../crypto/volume-keys.js';
import { Chunker, chunkerParams, type ChunkerParams } from './chunker.js';
import { checkObjectId, openObject, OBJECT_ID_LENGTH, OBJECT_KEY_LENGTH, TAG_LENGTH } from './convergent.js';
import { gearTable } from './gear.js';
import { hmacChunkKeyer, type ChunkKeyer } from './chunk-keys.js';
import { sealObjectQuick } from './ingest-native.js';
import { LruCache } from './lru-cache.js';
import { SealPool, type SealStream, type SealedSlab, type Slab } from './seal-pool.js';
import type { SlabRead } from './seal-worker.js';
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
// Chunking and sealing on worker threads (seal-pool.ts; docs/crypto.md,
// "Worker threads", has the measurements). A file's bytes go to a worker in
// slabs (2 MiB by default) large enough that a round trip (~0.1 ms) is
// noise, and its last, partial slab goes too: the writer's thread has the
// arena appends and the events to do, and on two cores it is the busier
// one, so it chunks, seals (and, for a local file, reads) nothing itself. A
// write waits once its file has FILE_BYTES_IN_FLIGHT queued (at least
// MIN_SLABS_IN_FLIGHT slabs), and all writers together hold at most the
// pool's slabs.
const FILE_BYTES_IN_FLIGHT = 4 * 1024 * 1024;
const MIN_SLABS_IN_FLIGHT = 3;

/** Slabs of one file that may be queued for `pool`'s workers before its writer waits. */
function slabsInFlight(pool: SealPool): number {
  return Math.max(MIN_SLABS_IN_FLIGHT, Math.floor(FILE_BYTES_IN_FLIGHT / pool.slabBytes));
}

// Two workers even on two cores, so that one file's sealing can be spread
// over both (WriteOptions.spreadSealing; the mount's writes use it).
const DEFAULT_SEAL_WORKERS = availableParallelism() < 2 ? 0 : 2;

/**
 * Seal workers for a writer of whole files, `bazil import`: one per core
 * beside the writer's own thread (one on two cores), unless
 * BAZIL_SEAL_WORKERS says otherwise. Import never spreads one file over
 * two workers (the mount's writes do, hence the store's default of two),
 * and on two cores a second worker only adds a thread to share them with:
 * one worker imported the benchmark's gigabyte 5% faster with 7% less CPU
 * (docs/ingest.md, "Round 5").
 */
export function fileImportSealWorkers(): number {
  return defaultSealWorkers(Math.max(0, availableParallelism() - 1));
}

/** Slabs of import's seal pool (fileImportSealing); import-export.ts keeps as many files in flight. */
export const IMPORT_SEAL_SLABS = 64;
const IMPORT_SEAL_SLAB_BYTES = 512 * 1024;

/**
 * The seal pool of `bazil import`: its seal workers (fileImportSealWorkers)
 * and many small slabs rather than a few large ones. Each file in flight
 * holds a slab of its own, and most files of a tree are far smaller than a
 * slab (the benchmark's median is 94 KB), so six slabs of 2 MiB gave the
 * worker a few hundred KB queued: whenever the main thread was busy with
 * events for longer than a few ms the worker ran dry. Sixty-four of
 * 512 KiB (with as many files in flight, import-export.ts) took the 1 GiB
 * import 9-11% faster for 48 MiB more RSS (docs/ingest.md, "Round 7").
 */
export function fileImportSealing(): { sealWorkers: number; sealSlabs: number; sealSlabBytes: number } {
  return { sealWorkers: fileImportSealWorkers(), sealSlabs: IMPORT_SEAL_SLABS, sealSlabBytes: IMPORT_SEAL_SLAB_BYTES };
}

/**
 * The seal workers of a store whose options name none: BAZIL_SEAL_WORKERS
 * when set (a tuning knob: whether import is faster with one worker
 * depends on the machine's load, docs/ingest.md "Round 4: import"), else
 * `unset` (DEFAULT_SEAL_WORKERS unless the caller knows better).
 */
function defaultSealWorkers(unset = DEFAULT_SEAL_WORKERS): number {
  const env = process.env.BAZIL_SEAL_WORKERS;
  if (env === undefined || env === '') return unset;
  const n = /^[0-9]{1,3}$/.test(env) ? Number(env) : NaN;
  if (!(n <= 256)) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `BAZIL_SEAL_WORKERS must be a number of worker threads from 0 to 256, not '${env}'`, { sealWorkers: env });
  }
  return n;
}

export interface ContentStoreOptions {
  keys: Pick<VolumeKeys, 'chunkKey' | 'gearKey'>;
  /**
   * How chunk keys are taken: the volume's content format, under
   * `keys.chunkKey` (chunk-keys.ts, `chunkKeyer`). Format 1 by default.
   */
  keyer?: ChunkKeyer;
  chunking?: Partial<ChunkerParams>;
  /** Entries per manifest node before it splits into a tree (4,096). */
  maxNodeEntries?: number;
  /** Decrypted chunks kept for reads, in bytes (8 MiB; 0 turns the cache off). */
  cacheBytes?: number;
  /** Worker threads that chunk and seal during writes; 0 does it on the calling thread. */
  sealWorkers?: number;
  /** Slabs (2 MiB each, plus their output) that writers share on the way to the workers; 6 by default. */
  sealSlabs?: number;
  /** Bytes of a slab (2 MiB); import's are smaller (fileImportSealing), and tests make them small to cross many slab boundaries. */
  sealSlabBytes?: number;
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
  /**
   * Spread the sealing of each slab over two seal workers
   * (SealPool.sealSpread): for one big stream, as a mount's spill, that
   * would otherwise wait on one thread. Off by default.
   */
  spreadSealing?: boolean;
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

/**
 * A local file as a content source: the writer reads it itself, straight
 * into the slabs the seal workers take (no intermediate buffer, no copy),
 * with plain reads on its own thread. For import, whose files are mostly
 * in the page cache, that spared three thread-pool round trips per file
 * (open, read, close) and a copy of every byte. Reading stops at `size`
 * (what lstat saw) or at the end of the file, whichever comes first.
 */
export class LocalFileSource {
  constructor(readonly path: string, readonly size: number) {}
}

export type ContentSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Readable | LocalFileSource;

/**
 * A piece of a file as stored, for a reader that decrypts elsewhere (export
 * does it on a worker thread): a hole, or a chunk, of which the first `take`
 * plaintext bytes belong to the file. The chunk's sealed object is read with
 * ContentStore.readSealedInto into `frameLength` bytes of the reader's own
 * buffer.
 */
export type SealedExtent =
  | { kind: 'hole'; length: number }
  | { kind: 'chunk'; length: number; take: number; id: Buffer; key: Buffer; frameLength: number };

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
  private readonly keyer: ChunkKeyer;
  private readonly gear: Int32Array;
  private readonly chunking: ChunkerParams;
  readonly maxNodeEntries: number;
  private readonly chunkCache: LruCache<string, Buffer>;
  private readonly nodeCache = new LruCache<string, Manifest>(NODE_CACHE_ENTRIES);
  private readonly sealWorkers: number;
  private readonly sealSlabs: number | undefined;
  private readonly sealSlabBytes: number | undefined;
  private pool: SealPool | null = null;
  private closed = false;
  // The all-zero chunk, shared by every writer: importing many small files
  // must not cost each one fresh zeroed memory.
  private zeros: Buffer | null = null;

  /** `length` zero bytes, shared read-only, to recognise all-zero chunks. */
  zeroBytes(length: number): Buffer {
    if (this.zeros === null || this.zeros.length < length) this.zeros = Buffer.alloc(length);
    return this.zeros.subarray(0, length);
  }

  constructor(readonly arenas: ArenaSet, options: ContentStoreOptions) {
    this.chunkKey = Buffer.from(options.keys.chunkKey);
    this.keyer = options.keyer ?? hmacChunkKeyer(this.chunkKey);
    this.gear = gearTable(options.keys.gearKey);
    this.chunking = chunkerParams(options.chunking);
    this.maxNodeEntries = options.maxNodeEntries ?? DEFAULT_MAX_NODE_ENTRIES;
    this.chunkCache = new LruCache(options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    this.sealWorkers = options.sealWorkers ?? defaultSealWorkers();
    this.sealSlabs = options.sealSlabs;
    this.sealSlabBytes = options.sealSlabBytes;
    if (!Number.isSafeInteger(this.sealWorkers) || this.sealWorkers < 0) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'sealWorkers must be a non-negative integer', { sealWorkers: this.sealWorkers });
    }
  }

  /** Starts writing one file's content; see ContentWriter. */
  createWriter(options: WriteOptions = {}): ContentWriter {
    checkAborted(options.signal);
    if (this.closed) throw new BazilError(ErrorCodes.CLOSED, 'the content store is closed');
    const pool = this.sealWorkers === 0 ? null : () => this.sealPool();
    return new ContentWriter(this, new Chunker(this.gear, this.chunking), pool, options);
  }

  /**
   * Starts the seal workers now rather than at the first slab: a worker
   * takes a few hundred ms to boot under load, which a write that is about
   * to need them (a mount's big write) would otherwise wait for.
   */
  warmSealPool(): void {
    if (this.sealWorkers > 0 && !this.closed) this.sealPool();
  }

  /** The seal workers, started on first need. */
  private sealPool(): SealPool {
    return this.pool ??= new SealPool({
      chunkKey: this.chunkKey, contentFormat: this.keyer.format, gear: this.gear, chunking: this.chunking, workers: this.sealWorkers, slabs: this.sealSlabs, slabBytes: this.sealSlabBytes,
    });
  }

  /** A chunker with this volume's keyed gear table and parameters: what splicing re-chunks edited regions with. */
  createChunker(): Chunker {
    return new Chunker(this.gear, this.chunking);
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
    try {
      if (source instanceof LocalFileSource) {
        await writer.writeLocalFile(source);
      } else {
        for await (const data of source as AsyncIterable<unknown>) {
          if (!(data instanceof Uint8Array)) {
            throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'a content stream must yield bytes (Buffer or Uint8Array), not strings or objects');
          }
          await writer.write(data);
        }
      }
    } catch (err) {
      writer.abandon();
      throw err;
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
    const { id, key, sealed } = sealObjectQuick(this.keyer, plaintext);
    return { id, key, added: this.appendSealed(type, id, sealed) };
  }

  /** Appends an object sealed by this store (or its workers) unless held; returns the bytes added. */
  appendSealed(type: ObjectType, id: Buffer, sealed: Uint8Array): number {
    if (this.arenas.has(id)) return 0;
    // An object's id is SHA-256 of its sealed bytes: the arena need not hash them again.
    this.arenas.append(CONTENT_KIND, type, id, sealed, id);
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
    this.arenas.append(CONTENT_KIND, type, id, sealed, id);
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

  /**
   * The first `length` bytes of a file as sealed extents, in order, without
   * decrypting the chunks (manifest nodes are opened: they are needed to
   * walk the tree). BAZIL_NOT_FOUND for a chunk not held.
   */
  *sealedExtents(manifest: Manifest | null, length: number, options: CallOptions = {}): Generator<SealedExtent> {
    checkRange(0, length);
    for (const { extent, start } of extentsIn(manifest, 0, length, (ref) => this.loadNode(ref))) {
      checkAborted(options.signal);
      const take = Math.min(extent.length, length - start);
      if (extent.kind === 'hole') {
        yield { kind: 'hole', length: take };
        continue;
      }
      const frameLength = this.arenas.frameLength(extent.id);
      if (frameLength < 0) {
        throw new BazilError(ErrorCodes.NOT_FOUND, `object ${hex(extent.id)} is not stored here`, { id: hex(extent.id) });
      }
      yield { kind: 'chunk', length: extent.length, take, id: extent.id, key: extent.key, frameLength };
    }
  }

  /**
   * Reads object `id`'s sealed bytes into `dest` at `at`, using at most the
   * `frameLength` sealedExtents gave (the rest of that room is scratch), and
   * returns where they start and how long they are. Nothing is allocated,
   * and the arenas' maps are not touched, so export's memory does not grow
   * with the volume (docs/ingest.md). BAZIL_NOT_FOUND when not held.
   */
  readSealedInto(id: Buffer, dest: Uint8Array, at: number): { start: number; length: number } {
    const length = this.arenas.readFrameInto(id, dest, at);
    if (length < 0) throw new BazilError(ErrorCodes.NOT_FOUND, `object ${hex(id)} is not stored here`, { id: hex(id) });
    return { start: at + FRAME_PAYLOAD_OFFSET, length };
  }

  /**
   * Where object `id`'s sealed bytes lie in a file another thread of this
   * process can pread (ArenaSet.payloadSpan), or null when they must be
   * read through this store (not held, not yet written out of an active
   * arena's buffer, or on a file layer that must see every read). Those bytes are not checked by the
   * arena's record checksum on that path: the reader authenticates them
   * with the chunk's GCM tag, and leaves any failure to openObject, which
   * reports it.
   */
  sealedSpan(id: Uint8Array): { path: string; position: number; length: number } | null {
    return this.arenas.payloadSpan(id);
  }

  /**
   * Tells the seal workers the chunks of `manifest`, which is held: a
   * writer about to write much the same content (import --update of a
   * file seen before) then finds them with one chunk key each, without sealing
   * them again. Nothing without seal workers.
   */
  knowChunks(manifest: Manifest | null): void {
    if (this.sealWorkers === 0 || manifest === null || this.closed) return;
    const keys: Buffer[] = [];
    const ids: Buffer[] = [];
    for (const ref of this.objects(manifest)) {
      if (ref.kind !== 'chunk') continue;
      keys.push(ref.key);
      ids.push(ref.id);
    }
    this.sealPool().know(Buffer.concat(keys), Buffer.concat(ids));
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

/**
 * Opens a local file to read it, without updating its access time where
 * the OS allows (as root, or the file's owner): an atime update is a
 * journal write, which waits behind other processes' fsyncs.
 */
function openForReading(path: string): number {
  try {
    return openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOATIME);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw ioError('open', path, err);
  }
  try {
    return openSync(path, fsConstants.O_RDONLY);
  } catch (err) {
    throw ioError('open', path, err);
  }
}

/** A slab sent to a worker, or a hole, in file order. */
interface Queued {
  /** Null for a hole. */
  slab: Slab | null;
  sealing: Promise<SealedSlab> | null;
  hole: number;
  /** The local file bytes the worker reads into the slab first (writeLocalFile), if any. */
  read: PendingRead | null;
}

/** A SlabRead not yet sent, with the file's path for its errors. */
interface PendingRead extends SlabRead {
  path: string;
}

/**
 * One file's content being written: feed it bytes (and explicit holes, for
 * sparse input) in file order, then finish() for the manifest. Objects are
 * appended as chunks complete; an abandoned or aborted writer leaves only
 * unreferenced objects behind, which garbage collection reclaims.
 *
 * With a seal pool, bytes are copied into slabs that a worker chunks and
 * seals while the main thread reads on; results are appended in file order
 * as they come back, with at most a few slabs in flight. Without one, the
 * calling thread chunks and seals.
 */
export class ContentWriter {
  private readonly builder: ManifestBuilder;
  private readonly zeros: Buffer;
  private readonly signal: AbortSignal | undefined;
  private readonly queue: Queued[] = [];
  /** The slab being filled, and how far. */
  private slab: Slab | null = null;
  private used = 0;
  private stream: SealStream | null = null;
  /** Whether the worker may hold an unfinished chunk of this file (bytes sent since the last end). */
  private streamOpen = false;
  private size = 0;
  private newBytes = 0;
  private chunks = 0;
  private dedupedChunks = 0;
  private holeBytes = 0;
  private state: 'open' | 'finished' | 'failed' = 'open';
  /** The slab being filled ends with bytes its worker is to read from a local file. */
  private pendingRead: PendingRead | null = null;
  /** Files whose reads were handed to the workers: closed once every reply is in. */
  private readonly fds: number[] = [];
  private readonly onChunk = (chunk: Uint8Array): void => this.storeChunk(chunk);

  constructor(
    private readonly store: ContentStore,
    private readonly chunker: Chunker,
    private readonly pool: (() => SealPool) | null,
    private readonly options: WriteOptions,
  ) {
    this.signal = options.signal;
    this.builder = new ManifestBuilder((encoded) => {
      const r = store.storeObject(NODE_TYPE, encoded);
      this.newBytes += r.added;
      return r;
    }, store.maxNodeEntries);
    this.zeros = store.zeroBytes(chunker.params.maxSize);
  }

  async write(data: Uint8Array): Promise<void> {
    this.checkWritable();
    await this.guard(async () => {
      if (this.pool === null) {
        // Slices keep an abort prompt however large `data` is.
        for (let at = 0; at < data.length; at += HOLE_PIECE) {
          this.chunker.push(data.subarray(at, Math.min(data.length, at + HOLE_PIECE)), this.onChunk);
          checkAborted(this.signal);
        }
      } else {
        const pool = this.pool();
        // A file's bytes still to be read into the slab must not be followed by others there.
        if (this.pendingRead !== null) this.send(pool, false);
        for (let at = 0; at < data.length;) {
          const slab = this.slab ?? await this.takeSlab(pool);
          const n = Math.min(data.length - at, pool.slabBytes - this.used);
          slab.input.set(data.subarray(at, at + n), this.used);
          this.used += n;
          at += n;
          if (this.used === pool.slabBytes) this.send(pool, false);
          while (this.queue.length > slabsInFlight(pool)) await this.drainOne();
          checkAborted(this.signal);
        }
      }
      this.size += data.length;
    });
  }

  /**
   * Appends `length` bytes that `fill` writes in place, in order: each call
   * fills all of `out` with the bytes [offset, offset + out.length) of this
   * append. With a seal pool `out` is the slab itself, so the bytes are
   * copied once (from the caller's memory into the slab) instead of twice
   * through a buffer of the caller's, as write() needs.
   */
  async writeFrom(length: number, fill: (out: Buffer, offset: number) => void): Promise<void> {
    this.checkWritable();
    checkRange(0, length);
    await this.guard(async () => {
      if (this.pool === null) {
        const piece = Buffer.allocUnsafe(Math.min(HOLE_PIECE, length));
        for (let at = 0; at < length; at += piece.length) {
          const out = piece.subarray(0, Math.min(piece.length, length - at));
          fill(out, at);
          this.chunker.push(out, this.onChunk);
          checkAborted(this.signal);
        }
      } else {
        const pool = this.pool();
        if (this.pendingRead !== null) this.send(pool, false);
        for (let at = 0; at < length;) {
          const slab = this.slab ?? await this.takeSlab(pool);
          const n = Math.min(length - at, pool.slabBytes - this.used);
          fill(slab.input.subarray(this.used, this.used + n), at);
          this.used += n;
          at += n;
          if (this.used === pool.slabBytes) this.send(pool, false);
          while (this.queue.length > slabsInFlight(pool)) await this.drainOne();
          checkAborted(this.signal);
        }
      }
      this.size += length;
    });
  }

  /**
   * Appends the content of a local file (see LocalFileSource). With a seal
   * pool the seal worker reads each slab's bytes itself (SlabRead): this
   * thread only opens the file and hands out the ranges, and learns at
   * each reply how much was read (less once the file ended). Without one,
   * it is read here.
   */
  async writeLocalFile(source: LocalFileSource): Promise<void> {
    this.checkWritable();
    await this.guard(async () => {
      const fd = openForReading(source.path);
      const here = this.pool !== null && this.sealsHere(source);
      if (this.pool === null || here) {
        try {
          const buffer = Buffer.allocUnsafe(Math.min(HOLE_PIECE, source.size));
          for (let position = 0; position < source.size;) {
            let n: number;
            try {
              n = readSync(fd, buffer, 0, Math.min(buffer.length, source.size - position), position);
            } catch (err) {
              throw ioError('read', source.path, err);
            }
            if (n === 0) break;
            this.chunker.push(buffer.subarray(0, n), this.onChunk);
            position += n;
            this.size += n;
            checkAborted(this.signal);
          }
          // finish() leaves the chunker to the workers when there is a pool: the one chunk is ended here.
          if (here) this.chunker.finish(this.onChunk);
        } finally {
          closeSync(fd);
        }
        return;
      }
      if (this.fds.length > 0) {
        closeSync(fd);
        // The worker stops reading a stream at its file's end (seal-worker.ts): a second file would be cut.
        throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'a content writer reads at most one local file');
      }
      // Closed by finish() or abandon(), once no worker reads it any more.
      this.fds.push(fd);
      const pool = this.pool();
      if (this.pendingRead !== null) this.send(pool, false);
      for (let position = 0; position < source.size;) {
        if (this.slab === null) await this.takeSlab(pool);
        const n = Math.min(source.size - position, pool.slabBytes - this.used);
        // Counted as read; a reply that read less takes the difference back (drainOne).
        this.pendingRead = { fd, at: this.used, position, length: n, path: source.path };
        this.used += n;
        position += n;
        this.size += n;
        if (this.used === pool.slabBytes) this.send(pool, false);
        while (this.queue.length > slabsInFlight(pool)) await this.drainOne();
        checkAborted(this.signal);
      }
    });
  }

  /**
   * Appends `length` zero bytes without storing anything. The file's chunk
   * before the hole ends at the hole.
   */
  async hole(length: number): Promise<void> {
    this.checkWritable();
    checkRange(0, length);
    await this.guard(async () => {
      if (this.pool === null) {
        this.chunker.finish(this.onChunk);
        this.addHole(length);
      } else {
        await this.endChunk(this.pool());
        if (length > 0) this.queue.push({ slab: null, sealing: null, hole: length, read: null });
      }
      this.size += length;
    });
  }

  async finish(): Promise<WriteResult> {
    this.checkWritable();
    return this.guard(async () => {
      if (this.pool === null) {
        this.chunker.finish(this.onChunk);
      } else {
        const pool = this.pool();
        await this.endChunk(pool);
        if (this.slab !== null) pool.release(this.slab);
        this.slab = null;
        while (this.queue.length > 0) await this.drainOne();
        this.closeFiles();
      }
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

  /**
   * Gives up a writer that will not be finished (its input failed): the
   * slabs it holds go back to the pool once the worker is done with them.
   */
  abandon(): void {
    if (this.state === 'finished') return;
    this.state = 'failed';
    if (this.pool === null) return;
    const pool = this.pool();
    if (this.slab !== null) pool.release(this.slab);
    this.slab = null;
    this.pendingRead = null;
    const sealings: Promise<SealedSlab>[] = [];
    for (const { slab, sealing } of this.queue.splice(0)) {
      if (slab === null) continue;
      const release = (): void => pool.release(slab);
      if (sealing === null) release();
      else {
        sealing.then(release, release);
        sealings.push(sealing);
      }
    }
    if (this.streamOpen && this.stream !== null) pool.dropStream(this.stream);
    this.streamOpen = false;
    // A worker may still be reading a file: it is closed after the last reply.
    if (this.fds.length > 0) {
      if (sealings.length === 0) this.closeFiles();
      else void Promise.allSettled(sealings).then(() => this.closeFiles());
    }
  }

  private closeFiles(): void {
    for (const fd of this.fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {
        // Only reads went through it: nothing to lose.
      }
    }
  }

  /** A writer that failed part-way (an abort, an I/O error) takes no more calls. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.abandon();
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

  /**
   * Whether a local file is read and sealed on this thread although there
   * is a pool: a file no longer than the smallest chunk is one chunk, found
   * without a boundary search, and sealing it here (a few microseconds with
   * the addon) costs less than the round trip to a worker, its message and
   * its reply, which was most of a small file's content cost on this thread
   * (docs/ingest.md, "Round 5"). Only a fresh writer: the file is then the
   * chunk, exactly as a worker would have cut and sealed it.
   */
  private sealsHere(source: LocalFileSource): boolean {
    return source.size <= this.chunker.params.minSize && this.size === 0 && this.slab === null && this.queue.length === 0 && !this.streamOpen;
  }

  /** Without a pool: seal and append at once. */
  private storeChunk(chunk: Uint8Array): void {
    if (this.isZero(chunk)) {
      this.addHole(chunk.length);
      return;
    }
    const r = this.store.storeObject(CHUNK_TYPE, chunk);
    this.addChunk(chunk.length, r.id, r.key, r.added);
  }

  /**
   * A slab to fill. While none is free, this writer's own finished slabs go
   * first: they free slabs, and waiting on other writers alone could wait
   * forever.
   */
  private async takeSlab(pool: SealPool): Promise<Slab> {
    let slab = pool.tryTake();
    while (slab === null && this.queue.length > 0) {
      await this.drainOne();
      slab = pool.tryTake();
    }
    slab ??= await pool.take();
    this.slab = slab;
    this.used = 0;
    return slab;
  }

  /** Sends the slab being filled to the file's worker; `end` ends the file's current chunk after it. */
  private send(pool: SealPool, end: boolean): void {
    const slab = this.slab!;
    this.stream ??= pool.openStream();
    const read = this.pendingRead;
    this.pendingRead = null;
    const sealing = read !== null
      ? pool.seal(this.stream, slab, this.used, end, { fd: read.fd, at: read.at, position: read.position, length: read.length })
      : end || this.options.spreadSealing !== true ? pool.seal(this.stream, slab, this.used, end) : pool.sealSpread(this.stream, slab, this.used);
    // Awaited in drainOne; this only keeps an abandoned slab's failure from going unhandled.
    sealing.catch(() => {});
    this.queue.push({ slab, sealing, hole: 0, read });
    this.slab = null;
    this.used = 0;
    this.streamOpen = !end;
  }

  /** Ends the file's current chunk (before a hole, or at the end): sends what is buffered with `end`. */
  private async endChunk(pool: SealPool): Promise<void> {
    if (this.used === 0 && !this.streamOpen) return;
    if (this.slab === null) await this.takeSlab(pool);
    this.send(pool, true);
  }

  private async drainOne(): Promise<void> {
    const first = this.queue[0]!;
    if (first.sealing === null) {
      this.queue.shift();
      this.addHole(first.hole);
      return;
    }
    const sealed = await first.sealing;
    // Still ours unless abandon() took it meanwhile (an abort while we waited).
    if (this.queue[0] !== first) return;
    this.queue.shift();
    try {
      checkAborted(this.signal);
      if (first.read !== null) {
        if (sealed.readError !== undefined) {
          const cause = Object.assign(new Error(sealed.readError.message), sealed.readError.code === null ? {} : { code: sealed.readError.code });
          throw ioError('read', first.read.path, cause);
        }
        this.size -= first.read.length - (sealed.read ?? 0);
      }
      this.applySlab(sealed, first.slab!.input);
    } finally {
      this.pool!().release(first.slab!);
    }
  }

  /** Adds a slab's chunks and holes to the manifest in order, appending new objects. */
  private applySlab(sealed: SealedSlab, input: Buffer): void {
    let outAt = 0;
    let d = 0;
    for (const item of sealed.items) {
      if (item < 0) {
        this.addHole(-item);
        continue;
      }
      const id = Buffer.from(sealed.ids.subarray(d * OBJECT_ID_LENGTH, (d + 1) * OBJECT_ID_LENGTH));
      const key = Buffer.from(sealed.keys.subarray(d * OBJECT_KEY_LENGTH, (d + 1) * OBJECT_KEY_LENGTH));
      if (sealed.fresh[d] === 1) {
        const end = outAt + item + TAG_LENGTH;
        this.addChunk(item, id, key, this.store.appendSealed(CHUNK_TYPE, id, sealed.output.subarray(outAt, end)));
        outAt = end;
      } else {
        let plaintext: Uint8Array;
        if (sealed.fresh[d] === 2) {
          const at = sealed.inputAt[d]!;
          plaintext = input.subarray(at, at + item);
        } else {
          plaintext = sealed.output.subarray(outAt, outAt + item);
          outAt += item;
        }
        if (this.store.hasObject(id)) {
          this.addChunk(item, id, key, 0);
        } else {
          // The worker knew this chunk, but its object is not held (see seal-batch.ts): sealed here.
          const r = this.store.storeObject(CHUNK_TYPE, plaintext);
          this.addChunk(item, r.id, r.key, r.added);
        }
      }
      d++;
    }
  }
}
