// The projection's on-disk schema (docs/projection.md): binary keys that
// sort the way reads page through them, and canonical CBOR values, so that
// two projections of the same events are the same bytes.

import { BazilError, ErrorCodes } from '../../errors/index.js';
import { decodeCanonical, encodeCanonical, type DecodedValue } from '../log/canonical-cbor.js';

export type InodeKind = 'dir' | 'file' | 'symlink' | 'fifo' | 'socket';
const KINDS: readonly InodeKind[] = ['dir', 'file', 'symlink', 'fifo', 'socket'];

/** An event's place in its writer's stream: enough to ask whether another event had seen it. */
export interface Stamp {
  writer: Buffer;
  seq: bigint;
}

export interface Inode {
  kind: InodeKind;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Files: entries naming it. Directories: 2 + subdirectories. 0 once removed (the record is kept). */
  nlink: number;
  mtime: bigint;
  ctime: bigint;
  /** Only set by an explicit utimens: atime is not logged otherwise. */
  atime: bigint | null;
  manifest: Buffer | null;
  target: string | null;
  /** Directories: the directory holding it (null for the root), for cycle checks on rename. */
  parent: Buffer | null;
  /** Directories: how many entries it holds, so emptiness needs no scan. */
  entries: number;
  /** The last event that created the inode or changed its content: a remover that had not seen it races a write. */
  changed: Stamp;
  /** The event that dropped nlink to 0, or null while linked. */
  unlinked: Stamp | null;
}

export interface Entry {
  child: Buffer;
  /** The event that put this name here. */
  placed: Stamp;
}

/** The outcome of an event that did not simply apply, kept so the projection says why. */
export interface Note {
  outcome: 'ignored' | 'skipped' | 'conflict' | 'lost+found' | 'rejected';
  detail: string;
}

const META = 0x01;
const INODE = 0x02;
const ENTRY = 0x03;
const XATTR = 0x04;
const NOTE = 0x05;
// Schema version 2 (migrations/projection/0001-aggregates.ts): back-links
// from every node to the entries naming it, and the lazy subtree aggregates
// of directories with their dirty marks (docs/aggregates.md).
const LINK = 0x06;
const AGGREGATE = 0x07;
const DIRTY = 0x08;
// Pending directory copies (docs/reflink.md): a directory made by a clone
// event whose entries are still those of its source. Real state, not
// derived, but always empty in a dump (dump materialises every copy first).
const CLONE = 0x09;

/**
 * Tables derived from the others rather than from events: not part of
 * `dump()`, so a projection's dump is the same whatever indexes it keeps
 * (an in-memory one for past states keeps none). The aggregate caches also
 * depend on how far the background has settled them.
 */
export const LINK_TABLE = LINK;
export const CACHE_TABLES: readonly number[] = [AGGREGATE, DIRTY];
export const DERIVED_TABLES: readonly number[] = [LINK, ...CACHE_TABLES];
export const ENTRY_TABLE = ENTRY;
export const INODE_TABLE = INODE;

/**
 * How each table is stored (docs/projection.md, "Encryption"). `nameAt`:
 * where a name starts in the key (after the tag and the ids before it),
 * or null when the key holds none; the name is replaced by its keyed hash,
 * scoped by the 32 bytes before it, and carried sealed in the value.
 * `clear`: the values are ids and numbers only, stored as they are; every
 * other value is sealed. A table missing here is sealed and has no name,
 * so a new table is protected without more work unless its key ends in a
 * name: then it must be listed here. `keepName: false` (back-links, whose
 * readers need only the ids before the name) drops the name instead of
 * carrying it: such a table's keys read back with the hash in its place.
 */
export interface TableLayout {
  nameAt: number | null;
  clear: boolean;
  keepName?: boolean;
}

export const TABLE_LAYOUTS: ReadonlyMap<number, TableLayout> = new Map<number, TableLayout>([
  [META, { nameAt: null, clear: true }],
  [INODE, { nameAt: null, clear: false }],
  [ENTRY, { nameAt: 33, clear: false }],
  [XATTR, { nameAt: 33, clear: false }],
  [NOTE, { nameAt: null, clear: false }],
  [LINK, { nameAt: 65, clear: true, keepName: false }],
  [AGGREGATE, { nameAt: null, clear: true }],
  [DIRTY, { nameAt: null, clear: true }],
]);

export const ROOT_KEY = Buffer.from([META, ...Buffer.from('root')]);
/** The sealing key's check value (cipher.ts keyCheck): a projection sealed with another key is caught at open. Not part of dump(). */
export const KEY_CHECK_KEY = Buffer.from([META, ...Buffer.from('keycheck')]);
export const VECTOR_KEY = Buffer.from([META, ...Buffer.from('vector')]);
export const POSITION_KEY = Buffer.from([META, ...Buffer.from('position')]);

export const inodeKey = (id: Uint8Array): Buffer => Buffer.concat([Buffer.from([INODE]), id]);
export const entryPrefix = (parent: Uint8Array): Buffer => Buffer.concat([Buffer.from([ENTRY]), parent]);
export const entryKey = (parent: Uint8Array, name: string): Buffer => Buffer.concat([entryPrefix(parent), Buffer.from(name, 'utf8')]);
export const xattrPrefix = (id: Uint8Array): Buffer => Buffer.concat([Buffer.from([XATTR]), id]);
export const xattrKey = (id: Uint8Array, name: string): Buffer => Buffer.concat([xattrPrefix(id), Buffer.from(name, 'utf8')]);

/** `06 ‖ child ‖ parent ‖ name`: the entry (parent, name) names child; how a change to a file finds the directories above it. */
export const linkPrefix = (child: Uint8Array): Buffer => Buffer.concat([Buffer.from([LINK]), child]);
export const linkKey = (child: Uint8Array, parent: Uint8Array, name: string): Buffer =>
  Buffer.concat([linkPrefix(child), parent, Buffer.from(name, 'utf8')]);
export const LINK_TABLE_PREFIX = Buffer.from([LINK]);
export const aggregateKey = (dir: Uint8Array): Buffer => Buffer.concat([Buffer.from([AGGREGATE]), dir]);
export const dirtyKey = (dir: Uint8Array): Buffer => Buffer.concat([Buffer.from([DIRTY]), dir]);
export const DIRTY_TABLE_PREFIX = Buffer.from([DIRTY]);
export const AGGREGATE_TABLE_PREFIX = Buffer.from([AGGREGATE]);
export const cloneKey = (dir: Uint8Array): Buffer => Buffer.concat([Buffer.from([CLONE]), dir]);
export const CLONE_TABLE_PREFIX = Buffer.from([CLONE]);

/**
 * A directory copy not materialised yet: its entries are logically copies
 * of `source`'s (a directory that is never itself pending), each with ctime
 * `ctime` and the clone event's stamp.
 */
export interface PendingClone {
  source: Buffer;
  ctime: bigint;
  stamp: Stamp;
}

export function encodePendingClone(p: PendingClone): Buffer {
  return encodeCanonical([p.source, p.ctime, ...stampCbor(p.stamp)]);
}

export function decodePendingClone(bytes: Uint8Array): PendingClone {
  const v = decodeCanonical(bytes, ErrorCodes.CORRUPT_METADATA);
  if (!Array.isArray(v) || v.length !== 4) throw corrupt('a pending clone is a 4-element array');
  return { source: buf(v[0]), ctime: big(v[1]), stamp: stamp([v[2], v[3]]) };
}

/** A directory's recursive statistics: everything below it, itself excluded (rctime includes its own ctime). */
export interface Aggregate {
  /** Sum of the sizes of the regular files below, once per link. */
  rbytes: number;
  /** Non-directories below (files, symlinks, fifos, sockets), once per link. */
  rfiles: number;
  /** Directories below. */
  rsubdirs: number;
  /** The newest ctime of the directory and everything below, in ns. */
  rctime: bigint;
}

export function encodeAggregate(a: Aggregate): Buffer {
  return encodeCanonical([a.rbytes, a.rfiles, a.rsubdirs, a.rctime]);
}

/** Later versions may append fields (bytes stored locally); a reader takes the first four. */
export function decodeAggregate(bytes: Uint8Array): Aggregate {
  const v = decodeCanonical(bytes, ErrorCodes.CORRUPT_METADATA);
  if (!Array.isArray(v) || v.length < 4) throw corrupt('an aggregate record is an array of at least 4 elements');
  return { rbytes: num(v[0]), rfiles: num(v[1]), rsubdirs: num(v[2]), rctime: big(v[3]) };
}

/** A place in the merge order, (hlc, writer, seq), as bytes that sort the same way. */
export interface Position {
  hlc: bigint;
  writer: Buffer;
  seq: bigint;
}

export function encodePosition(p: Position): Buffer {
  const b = Buffer.alloc(48);
  b.writeBigUInt64BE(p.hlc, 0);
  Buffer.from(p.writer).copy(b, 8);
  b.writeBigUInt64BE(p.seq, 40);
  return b;
}

export function decodePosition(b: Buffer): Position {
  if (b.length !== 48) throw corrupt('a position is 48 bytes');
  return { hlc: b.readBigUInt64BE(0), writer: Buffer.from(b.subarray(8, 40)), seq: b.readBigUInt64BE(40) };
}

export const noteKey = (p: Position): Buffer => Buffer.concat([Buffer.from([NOTE]), encodePosition(p)]);

/** The smallest key after every key that starts with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  throw new BazilError(ErrorCodes.INTERNAL, 'a key prefix of only 0xff bytes has no end');
}

export function encodeInode(n: Inode): Buffer {
  return encodeCanonical([
    KINDS.indexOf(n.kind), n.mode, n.uid, n.gid, n.size, n.nlink, n.mtime, n.ctime, n.atime,
    n.manifest, n.target, n.parent, n.entries, stampCbor(n.changed), n.unlinked === null ? null : stampCbor(n.unlinked),
  ]);
}

export function decodeInode(bytes: Uint8Array): Inode {
  const v = decodeCanonical(bytes, ErrorCodes.CORRUPT_METADATA);
  if (!Array.isArray(v) || v.length !== 15) throw corrupt('an inode record is a 15-element array');
  const kind = KINDS[num(v[0])];
  if (kind === undefined) throw corrupt('unknown inode kind');
  return {
    kind, mode: num(v[1]), uid: num(v[2]), gid: num(v[3]), size: num(v[4]), nlink: num(v[5]),
    mtime: big(v[6]), ctime: big(v[7]), atime: v[8] === null ? null : big(v[8]),
    manifest: v[9] === null ? null : buf(v[9]), target: v[10] === null ? null : str(v[10]),
    parent: v[11] === null ? null : buf(v[11]), entries: num(v[12]),
    changed: stamp(v[13]), unlinked: v[14] === null ? null : stamp(v[14]),
  };
}

export function encodeEntry(e: Entry): Buffer {
  return encodeCanonical([e.child, ...stampCbor(e.placed)]);
}

export function decodeEntry(bytes: Uint8Array): Entry {
  const v = decodeCanonical(bytes, ErrorCodes.CORRUPT_METADATA);
  if (!Array.isArray(v) || v.length !== 3) throw corrupt('an entry record is a 3-element array');
  return { child: buf(v[0]), placed: stamp([v[1], v[2]]) };
}

export function encodeNote(n: Note): Buffer {
  return encodeCanonical([n.outcome, n.detail]);
}

export function decodeNote(bytes: Uint8Array): Note {
  const v = decodeCanonical(bytes, ErrorCodes.CORRUPT_METADATA);
  if (!Array.isArray(v) || v.length !== 2) throw corrupt('a note is a 2-element array');
  return { outcome: str(v[0]) as Note['outcome'], detail: str(v[1]) };
}

function stampCbor(s: Stamp): [Buffer, bigint] {
  return [s.writer, s.seq];
}

function stamp(v: DecodedValue): Stamp {
  if (!Array.isArray(v) || v.length !== 2) throw corrupt('a stamp is [writer, seq]');
  return { writer: buf(v[0]), seq: big(v[1]) };
}

function num(v: DecodedValue): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw corrupt('expected an integer');
}

function big(v: DecodedValue): bigint {
  if (typeof v === 'number' || typeof v === 'bigint') return BigInt(v);
  throw corrupt('expected an integer');
}

function buf(v: DecodedValue): Buffer {
  if (Buffer.isBuffer(v)) return v;
  throw corrupt('expected a byte string');
}

function str(v: DecodedValue): string {
  if (typeof v === 'string') return v;
  throw corrupt('expected text');
}

function corrupt(message: string): BazilError {
  return new BazilError(ErrorCodes.CORRUPT_METADATA, `projection: ${message}`);
}
