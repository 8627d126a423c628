// Splicing a file's manifest: the content of an edited file as its old
// manifest with the edited regions re-chunked, every untouched chunk
// reference kept as it is. A 1-byte write into a 1 GiB file then seals a
// few chunks around the byte and one manifest node, not the whole file.
//
// POSIX writes and truncates never shift bytes, so an untouched chunk of
// the old manifest holds the same bytes at the same offset in the new file.
// Re-chunking starts at the first old chunk that overlaps a change and goes
// on through the change; after it, the old chunks that follow are fed to
// the chunker too until one of its boundaries falls exactly on an old
// boundary (content-defined chunking re-synchronises there, because a
// boundary depends only on the bytes since the previous one), and from
// then on the old references are reused. A bound on that re-synchronising
// run (RESYNC_LIMIT chunks) forces a cut at an old boundary instead, so an
// edit never costs more than a few chunks whatever the content.
//
// Zero-filled regions that no write touched (a truncate upwards, a sparse
// write past the end, an old hole) become holes, never chunked bytes: a
// write at 1 TiB into an empty file stores one chunk.

import { setImmediate as nextTurn } from 'node:timers/promises';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { CHUNK_TYPE, NODE_TYPE, checkAborted, type ContentStore } from './content-store.js';
import { loadIngestNative } from './ingest-native.js';
import { ManifestBuilder, extentsIn, type ChunkExtent, type Manifest, type NodeRef } from './manifest.js';

/** A half-open byte range [start, end). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface SpliceInput {
  /** The content's old manifest (null: none). */
  readonly base: Manifest | null;
  /** Bytes of `base` that are still content; past them (a truncate cut them off) the old file reads as zeros. */
  readonly baseValid: number;
  /** The new file's size. */
  readonly size: number;
  /** Where the new content may differ from the old: sorted, disjoint, inside [0, size). */
  readonly changed: readonly ByteRange[];
  /** The new content of [start, start + length); called only for ranges that are re-chunked. */
  readonly read: (start: number, length: number) => Uint8Array;
}

export interface SpliceResult {
  /** The new root manifest; null for an empty file. */
  readonly manifest: Manifest | null;
  readonly size: number;
  /** Bytes of new objects (chunks and manifest nodes) appended to the arenas, unsynced. */
  readonly newBytes: number;
  /** Old chunk references kept as they were. */
  readonly reusedChunks: number;
  /** Bytes that went through the chunker. */
  readonly rechunkedBytes: number;
}

/** Old chunks fed after an edit while waiting for the boundaries to line up again. */
const RESYNC_LIMIT = 8;
/** Bytes asked of `read` at a time, so a long changed range never sits in memory whole. */
const READ_PIECE = 1024 * 1024;

type Piece =
  | { readonly kind: 'ref'; readonly extent: ChunkExtent }
  | { readonly kind: 'hole'; readonly length: number }
  | { readonly kind: 'bytes'; readonly start: number; readonly length: number };

/** Work between two yields of spliceManifestAsync (a few ms): about this many bytes chunked, or old references walked. */
const YIELD_BYTES = 256 * 1024;
const YIELD_REFS = 4096;

/**
 * Builds the manifest of the new content in one synchronous run. New
 * objects are appended unsynced: sync the arenas before naming the
 * manifest in an event.
 */
export function spliceManifest(store: ContentStore, input: SpliceInput): SpliceResult {
  const steps = spliceSteps(store, input);
  for (let r = steps.next(); ; r = steps.next()) if (r.done === true) return r.value;
}

/**
 * The same, giving the event loop back every 256 KiB of chunking, so that a
 * big splice (a spill of many MiB) never stalls unrelated calls for long.
 * `input.read` must read a state that does not change meanwhile (an open
 * file freezes its pages for this).
 */
export async function spliceManifestAsync(store: ContentStore, input: SpliceInput, signal?: AbortSignal): Promise<SpliceResult> {
  const steps = spliceSteps(store, input);
  for (let r = steps.next(); ; r = steps.next()) {
    if (r.done === true) return r.value;
    await nextTurn();
    checkAborted(signal);
  }
}

function* spliceSteps(store: ContentStore, input: SpliceInput): Generator<void, SpliceResult> {
  checkInput(input);
  let newBytes = 0;
  let reusedChunks = 0;
  let rechunkedBytes = 0;
  if (input.size === 0) return { manifest: null, size: 0, newBytes, reusedChunks, rechunkedBytes };

  const builder = new ManifestBuilder((encoded) => {
    const r = store.storeObject(NODE_TYPE, encoded);
    newBytes += r.added;
    return r;
  }, store.maxNodeEntries);
  const chunker = store.createChunker();
  const zeros = store.zeroBytes(chunker.params.maxSize);
  let fed = 0;
  let emitted = 0;
  const sink = (chunk: Uint8Array): void => {
    emitted += chunk.length;
    if (zeros.subarray(0, chunk.length).equals(chunk)) {
      builder.addHole(chunk.length);
      return;
    }
    const r = store.storeObject(CHUNK_TYPE, chunk);
    newBytes += r.added;
    builder.addChunk(chunk.length, r.id, r.key);
  };
  const feed = (data: Uint8Array): void => {
    fed += data.length;
    rechunkedBytes += data.length;
    chunker.push(data, sink);
  };
  const cut = (): void => chunker.finish(sink);

  let resyncing = 0;
  let sinceYield = 0;
  for (const piece of pieces(input, (ref) => store.loadNode(ref))) {
    if (sinceYield >= YIELD_BYTES) {
      yield;
      sinceYield = 0;
    }
    if (piece.kind === 'ref') {
      sinceYield += YIELD_BYTES / YIELD_REFS;
      if (fed === emitted) {
        builder.addChunk(piece.extent.length, piece.extent.id, piece.extent.key);
        reusedChunks++;
        continue;
      }
      feed(chunkBytes(store, piece.extent));
      sinceYield += piece.extent.length;
      if (fed !== emitted && ++resyncing >= RESYNC_LIMIT) cut();
      if (fed === emitted) resyncing = 0;
    } else if (piece.kind === 'hole') {
      cut();
      resyncing = 0;
      builder.addHole(piece.length);
    } else {
      resyncing = 0;
      for (let at = piece.start, end = piece.start + piece.length; at < end; at += READ_PIECE) {
        const n = Math.min(READ_PIECE, end - at);
        const data = input.read(at, n);
        if (data.length !== n) {
          throw new BazilError(ErrorCodes.INTERNAL, `splice: read(${at}, ${n}) returned ${data.length} bytes`);
        }
        feed(data);
        sinceYield += n;
        if (sinceYield >= YIELD_BYTES && at + n < end) {
          yield;
          sinceYield = 0;
        }
      }
    }
  }
  cut();
  const manifest = builder.finish();
  if ((manifest?.size ?? 0) !== input.size) {
    throw new BazilError(ErrorCodes.INTERNAL, `splice built ${manifest?.size ?? 0} bytes, not ${input.size}`);
  }
  return { manifest, size: input.size, newBytes, reusedChunks, rechunkedBytes };
}

function checkInput(input: SpliceInput): void {
  const bad = (why: string): never => {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `splice: ${why}`, { size: input.size, baseValid: input.baseValid });
  };
  if (!Number.isSafeInteger(input.size) || input.size < 0) bad('the size must be a non-negative integer');
  if (!Number.isSafeInteger(input.baseValid) || input.baseValid < 0) bad('baseValid must be a non-negative integer');
  let last = 0;
  for (const r of input.changed) {
    if (!Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.end) || r.start < last || r.end <= r.start || r.end > input.size) {
      bad('changed ranges must be sorted, disjoint, non-empty and inside the file');
    }
    last = r.end;
  }
}

/** An old chunk's plaintext, which must be as long as its manifest says. */
function chunkBytes(store: ContentStore, extent: ChunkExtent): Buffer {
  const plain = store.openObject(extent.id, extent.key);
  if (plain.length !== extent.length) {
    throw new BazilError(ErrorCodes.CORRUPT_MANIFEST, `chunk ${extent.id.toString('hex')} holds ${plain.length} bytes, not the ${extent.length} its manifest claims`, { id: extent.id.toString('hex') });
  }
  return plain;
}

/**
 * The new file in order, as old chunks that can be kept (if the chunker is
 * aligned when they come), holes, and byte ranges to re-chunk. An old chunk
 * is re-chunked when a change overlaps it, when a truncate cut it, or when
 * it is the last one before a change that starts right at its end (an
 * append), so appending in steps chunks as a single pass would.
 */
function* pieces(input: SpliceInput, loadNode: (ref: NodeRef) => Manifest): Generator<Piece> {
  const { changed } = input;
  const valid = Math.min(input.baseValid, input.base?.size ?? 0, input.size);
  let ci = 0;
  for (const { extent, start } of extentsIn(input.base, 0, valid, loadNode)) {
    const end = Math.min(start + extent.length, valid);
    while (ci < changed.length && changed[ci]!.end <= start) ci++;
    const next = changed[ci];
    if (extent.kind === 'hole') {
      yield* holeOrBytes(start, end, changed, ci);
      continue;
    }
    const touched = next !== undefined && (next.start < end || (end === valid && next.start === end));
    if (!touched && end === start + extent.length) yield { kind: 'ref', extent };
    else yield { kind: 'bytes', start, length: end - start };
  }
  while (ci < changed.length && changed[ci]!.end <= valid) ci++;
  yield* holeOrBytes(valid, input.size, changed, ci);
}

/** [from, to) of zeros except where changed: holes between, bytes over the changes. */
function* holeOrBytes(from: number, to: number, changed: readonly ByteRange[], ci: number): Generator<Piece> {
  let at = from;
  for (let i = ci; i < changed.length && changed[i]!.start < to && at < to; i++) {
    const r = changed[i]!;
    if (r.end <= at) continue;
    if (r.start > at) yield { kind: 'hole', length: r.start - at };
    const s = Math.max(at, r.start);
    const e = Math.min(to, r.end);
    yield { kind: 'bytes', start: s, length: e - s };
    at = e;
  }
  if (at < to) yield { kind: 'hole', length: to - at };
}

/** The ingest addon's memmove, for copies out of shared memory (read-ahead slots), or null. */
const copyShared = loadIngestNative()?.copyInto ?? null;

/**
 * Reads ranges of a manifest synchronously, keeping the last few decrypted
 * chunks: an open file's reads and page fills come in runs over the same
 * chunks, and must not yield while the file's state is being read.
 */
export class ManifestReader {
  private readonly recent = new Map<string, Buffer>();
  /**
   * Chunks read ahead elsewhere (src/volume/read-ahead.ts), by id:
   * memory reused later, holding the chunk's plaintext at its start and
   * possibly more after it, so only the chunk's range is copied out, at
   * once, and it is never kept in `recent`.
   */
  readAhead: ((id: Buffer) => Buffer | undefined) | null = null;

  constructor(private readonly store: ContentStore, private readonly keep = 8) {}

  /**
   * Copies bytes [offset, offset + length) of `manifest` into `out` at
   * `outOffset`, writing every byte: holes and bytes past its end as zeros,
   * so callers need not clear `out` first.
   */
  readInto(manifest: Manifest | null, offset: number, length: number, out: Buffer, outOffset: number): void {
    const end = offset + length;
    let at = offset;
    for (const { extent, start } of extentsIn(manifest, offset, length, this.loadNode)) {
      const from = Math.max(offset, start);
      const to = Math.min(end, start + extent.length);
      if (extent.kind === 'hole') out.fill(0, outOffset + from - offset, outOffset + to - offset);
      else this.copyChunk(extent, out, outOffset + from - offset, from - start, to - start);
      at = to;
    }
    if (at < end) out.fill(0, outOffset + at - offset, outOffset + length);
  }

  private readonly loadNode = (ref: NodeRef): Manifest => this.store.loadNode(ref);

  /** Copies the chunk's plaintext [from, to) into `out` at `at`. */
  private copyChunk(extent: ChunkExtent, out: Buffer, at: number, from: number, to: number): void {
    const key = extent.id.toString('hex');
    const hit = this.recent.get(key);
    if (hit !== undefined) {
      this.recent.delete(key);
      this.recent.set(key, hit);
      hit.copy(out, at, from, to);
      return;
    }
    const ahead = this.readAhead?.(extent.id);
    if (ahead !== undefined) {
      // A read-ahead slot is shared memory, which V8 copies with a
      // relaxed-atomic loop: this copy, once per byte read, was the read
      // handler's largest cost until it went through memmove.
      if (copyShared !== null) copyShared(out, at, ahead, from, to);
      else ahead.copy(out, at, from, to);
      return;
    }
    const plain = chunkBytes(this.store, extent);
    plain.copy(out, at, from, to);
    this.recent.set(key, plain);
    if (this.recent.size > this.keep) this.recent.delete(this.recent.keys().next().value!);
  }
}
