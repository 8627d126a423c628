// File manifests: a file's content as a list of extents, a tree for big files.
//
// An extent is a chunk reference (object id, chunk key, plaintext length)
// or a hole (a length of zero bytes that stores nothing). A manifest node
// holds at most `maxEntries` entries (4,096 by default); a file with more
// extents becomes a tree whose inner entries reference child nodes, which
// are encoded as below and stored as objects sealed convergently like
// chunks, so identical files share their nodes too. The root node is not
// stored as an object: it travels in the event that sets the file's
// content (encrypted with the event body). An empty file has no manifest.
//
// Encoding (CBOR via cbor-x, deterministic, integers only):
//   node  = [version = 1, size, [entry, ...]]
//   entry = [0, length]              a hole
//         | [1, length, id, key]     a chunk: id and key are 32-byte strings
//         | [2, length, id, key]     a child node covering `length` bytes
// Lengths and sizes are unsigned integers (at most 2^53 - 1), and every
// length is positive; a node's size is the sum of its entries' lengths.
// Nodes of the same tree level hold exactly `maxEntries` entries, except the
// last of each level, so the tree is a function of the extent list alone.

import { Encoder } from 'cbor-x';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { decodeManifestFast } from './manifest-fast.js';

export const MANIFEST_VERSION = 1;
export const DEFAULT_MAX_NODE_ENTRIES = 4096;
const REF_LENGTH = 32;
// Deeper than any honest tree (2-entry nodes reach 2^53 bytes in 53 levels):
// a bound on recursion for manifests written by a faulty or hostile peer.
const MAX_DEPTH = 64;

const HOLE = 0;
const CHUNK = 1;
const NODE = 2;

export interface ChunkExtent {
  readonly kind: 'chunk';
  readonly length: number;
  readonly id: Buffer;
  readonly key: Buffer;
}

export interface HoleExtent {
  readonly kind: 'hole';
  readonly length: number;
}

/** A reference to a child node covering `length` bytes of the file. */
export interface NodeRef {
  readonly kind: 'node';
  readonly length: number;
  readonly id: Buffer;
  readonly key: Buffer;
}

export type Extent = ChunkExtent | HoleExtent;
export type ManifestEntry = Extent | NodeRef;

/** A manifest node; the root one describes a whole (non-empty) file. */
export interface Manifest {
  readonly size: number;
  readonly entries: readonly ManifestEntry[];
}

/** Loads (fetches, authenticates, decodes) the node a reference names. */
export type NodeLoader = (ref: NodeRef) => Manifest;

/** Seals an encoded node as an object and returns its id and key. */
export type NodeSealer = (encoded: Buffer) => { id: Buffer; key: Buffer };

const cbor = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: false });

/** Integers past 32 bits must go to cbor-x as bigints, or it writes floats. */
function uint(n: number): number | bigint {
  return n > 0xffffffff ? BigInt(n) : n;
}

export function encodeManifest(node: Manifest): Buffer {
  const entries = node.entries.map((e) =>
    e.kind === 'hole' ? [HOLE, uint(e.length)] : [e.kind === 'chunk' ? CHUNK : NODE, uint(e.length), e.id, e.key]);
  // cbor-x hands out views of its internal buffer; the caller gets bytes of its own.
  return Buffer.from(cbor.encode([MANIFEST_VERSION, uint(node.size), entries]));
}

function corrupt(why: string, cause?: unknown): BazilError {
  return new BazilError(ErrorCodes.CORRUPT_MANIFEST, `malformed manifest: ${why}`, {}, cause);
}

/** A positive length as a number, or null; cbor-x decodes integers past 32 bits as bigints. */
function lengthOf(n: unknown): number | null {
  const v = typeof n === 'bigint' && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : null;
}

function isRef(b: unknown): b is Buffer {
  return b instanceof Uint8Array && b.length === REF_LENGTH;
}

/** Decodes and validates a node; throws BAZIL_CORRUPT_MANIFEST. */
export function decodeManifest(bytes: Uint8Array): Manifest {
  // The canonical shape, read directly; anything else the general way below.
  const fast = decodeManifestFast(bytes, MANIFEST_VERSION);
  if (fast !== null) return fast;
  let raw: unknown;
  try {
    raw = cbor.decode(bytes);
  } catch (err) {
    throw corrupt('not CBOR', err);
  }
  if (!Array.isArray(raw) || raw.length !== 3) throw corrupt('not a [version, size, entries] array');
  const [version, rawSize, list] = raw as unknown[];
  if (typeof version !== 'number' || version > MANIFEST_VERSION) {
    throw new BazilError(ErrorCodes.UNSUPPORTED_FORMAT, `manifest version ${String(version)} is newer than this build understands`, { version: String(version) });
  }
  if (version !== MANIFEST_VERSION) throw corrupt(`unknown version ${version}`);
  const size = lengthOf(rawSize);
  if (size === null) throw corrupt('size is not a positive integer');
  if (!Array.isArray(list) || list.length === 0) throw corrupt('no entries');
  const entries: ManifestEntry[] = new Array(list.length);
  let sum = 0;
  for (let i = 0; i < list.length; i++) {
    const e: unknown = list[i];
    const length = Array.isArray(e) ? lengthOf(e[1]) : null;
    if (!Array.isArray(e) || length === null) throw corrupt(`entry ${i} is malformed`);
    if (e[0] === HOLE && e.length === 2) {
      entries[i] = { kind: 'hole', length };
    } else if ((e[0] === CHUNK || e[0] === NODE) && e.length === 4 && isRef(e[2]) && isRef(e[3])) {
      entries[i] = { kind: e[0] === CHUNK ? 'chunk' : 'node', length, id: Buffer.from(e[2]), key: Buffer.from(e[3]) };
    } else {
      throw corrupt(`entry ${i} is malformed`);
    }
    sum += length;
  }
  if (sum !== size) throw corrupt(`entries cover ${sum} bytes, not the ${size} the node claims`);
  return { size, entries };
}

/**
 * Builds a manifest from extents given in file order, streaming: it keeps
 * one partial node per tree level, sealing a node as soon as it is full, so
 * memory stays bounded whatever the file size. Adjacent holes merge.
 */
export class ManifestBuilder {
  private readonly levels: ManifestEntry[][] = [[]];
  private readonly sizes: number[] = [0];
  private pendingHole = 0;

  constructor(private readonly sealNode: NodeSealer, readonly maxEntries = DEFAULT_MAX_NODE_ENTRIES) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 2) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'a manifest node must hold at least 2 entries', { maxEntries });
    }
  }

  addChunk(length: number, id: Buffer, key: Buffer): void {
    this.flushHole();
    this.push(0, { kind: 'chunk', length, id, key });
  }

  addHole(length: number): void {
    this.pendingHole += length;
  }

  /** The root manifest, or null for an empty file. */
  finish(): Manifest | null {
    this.flushHole();
    for (let level = 0; ; level++) {
      const list = this.levels[level];
      if (level + 1 === this.levels.length) {
        return list.length === 0 ? null : { size: this.sizes[level], entries: list };
      }
      if (list.length > 0) this.sealLevel(level);
    }
  }

  private flushHole(): void {
    if (this.pendingHole > 0) {
      this.push(0, { kind: 'hole', length: this.pendingHole });
      this.pendingHole = 0;
    }
  }

  private push(level: number, entry: ManifestEntry): void {
    if (this.levels[level].length === this.maxEntries) this.sealLevel(level);
    this.levels[level].push(entry);
    this.sizes[level] += entry.length;
    if (!Number.isSafeInteger(this.sizes[level])) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'a file may not exceed 2^53 - 1 bytes');
    }
  }

  /** Seals the partial node of `level` and adds its reference one level up. */
  private sealLevel(level: number): void {
    const node: Manifest = { size: this.sizes[level], entries: this.levels[level] };
    const { id, key } = this.sealNode(encodeManifest(node));
    this.levels[level] = [];
    this.sizes[level] = 0;
    if (this.levels.length === level + 1) {
      this.levels.push([]);
      this.sizes.push(0);
    }
    this.push(level + 1, { kind: 'node', length: node.size, id, key });
  }
}

/** A leaf extent and the file offset where it starts. */
export interface ExtentSpan {
  readonly extent: Extent;
  readonly start: number;
}

// Entry start offsets of each node, computed once per decoded node object.
const startsOf = new WeakMap<Manifest, Float64Array>();

function starts(node: Manifest): Float64Array {
  let s = startsOf.get(node);
  if (s === undefined) {
    s = new Float64Array(node.entries.length + 1);
    for (let i = 0; i < node.entries.length; i++) s[i + 1] = s[i] + node.entries[i].length;
    startsOf.set(node, s);
  }
  return s;
}

/** Index of the entry that holds byte `offset` (0 <= offset < size). */
function entryAt(s: Float64Array, offset: number): number {
  let lo = 0;
  let hi = s.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (s[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The leaf extents that cover [offset, offset + length) of the file, in
 * order, descending the tree only into the nodes that the range touches.
 * The range is clipped to the file. A loaded node must cover exactly the
 * length its reference claims, or BAZIL_CORRUPT_MANIFEST.
 */
export function* extentsIn(root: Manifest | null, offset: number, length: number, loadNode: NodeLoader): Generator<ExtentSpan> {
  if (root === null || length <= 0 || offset >= root.size) return;
  yield* walk(root, 0, offset, Math.min(root.size, offset + length), loadNode, 0);
}

function* walk(node: Manifest, base: number, from: number, to: number, loadNode: NodeLoader, depth: number): Generator<ExtentSpan> {
  const s = starts(node);
  for (let i = entryAt(s, Math.max(0, from - base)); i < node.entries.length && base + s[i] < to; i++) {
    const entry = node.entries[i];
    const start = base + s[i];
    if (entry.kind === 'node') {
      yield* walk(loadChecked(entry, loadNode, depth), start, from, to, loadNode, depth + 1);
    } else {
      yield { extent: entry, start };
    }
  }
}

function loadChecked(ref: NodeRef, loadNode: NodeLoader, depth: number): Manifest {
  if (depth >= MAX_DEPTH) {
    throw new BazilError(ErrorCodes.CORRUPT_MANIFEST, `manifest tree deeper than ${MAX_DEPTH} levels`, { id: ref.id.toString('hex') });
  }
  const child = loadNode(ref);
  if (child.size !== ref.length) {
    throw new BazilError(ErrorCodes.CORRUPT_MANIFEST, `manifest node ${ref.id.toString('hex')} covers ${child.size} bytes, not the ${ref.length} its parent claims`, { id: ref.id.toString('hex') });
  }
  return child;
}

/**
 * Every object a manifest references, nodes before the entries under them:
 * what garbage collection counts, pinning fetches and push uploads. Holes
 * are left out; a chunk referenced twice is listed twice.
 */
export function* objectsOf(root: Manifest | null, loadNode: NodeLoader): Generator<ChunkExtent | NodeRef> {
  if (root !== null) yield* objectsUnder(root, loadNode, 0);
}

function* objectsUnder(node: Manifest, loadNode: NodeLoader, depth: number): Generator<ChunkExtent | NodeRef> {
  for (const entry of node.entries) {
    if (entry.kind === 'hole') continue;
    yield entry;
    if (entry.kind === 'node') yield* objectsUnder(loadChecked(entry, loadNode, depth), loadNode, depth + 1);
  }
}
