// The filesystem projection in classic-level: inodes, directory entries
// (keyed parent ‖ name, so readdir pages in name order), xattrs, notes on
// events that did not simply apply, and the log position it reflects (the
// version vector and the last applied (hlc, writer, seq)). Writes go
// through a Batch, which also serves apply's reads (its own pending writes
// first), and commits them with the new position in one LevelDB batch, so
// the stored position always matches the stored state.

import { ClassicLevel } from 'classic-level';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { LogEvent } from '../log/codec.js';
import { VersionVector } from '../log/version-vector.js';
import { applyEvent, likelyReads, type FsTx } from './fs-state.js';
import { AggregateSettler, aggregateWrites, readAggregate, type StoredAggregate } from './aggregates.js';
import { prepareProjectionDir } from './format.js';
import {
  CACHE_TABLES, LINK_TABLE, POSITION_KEY, ROOT_KEY, VECTOR_KEY, decodeEntry, decodeInode, decodeNote, decodePosition, encodeEntry, encodeInode,
  encodeNote, encodePosition, entryKey, entryPrefix, inodeKey, noteKey, prefixEnd, xattrKey, xattrPrefix,
  type Entry, type Inode, type InodeKind, type Note, type Position,
} from './schema.js';

/** What getattr returns. */
export interface Attrs {
  id: Buffer;
  kind: InodeKind;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  mtime: bigint;
  ctime: bigint;
  /** The last explicit atime, else mtime: atime is not logged. */
  atime: bigint;
  manifest: Buffer | null;
}

export interface DirEntry {
  name: string;
  id: Buffer;
}

type Db = ClassicLevel<Buffer, Buffer>;

/** Up to this many keys are read with getSync rather than one async getMany (see prefetch). */
const SYNC_READS = 32;

export class ProjectionStore {
  private vv = VersionVector.EMPTY;
  private last: Position | null = null;
  private readonly settler: AggregateSettler;

  private constructor(private readonly db: Db) {
    this.settler = new AggregateSettler(db);
  }

  /** Opens (or creates) the projection at `dir`, migrating an older schema in place first (docs/migrations.md). */
  static async open(dir: string, options: { log?: (msg: string) => void } = {}): Promise<ProjectionStore> {
    await prepareProjectionDir(dir, options.log);
    const db: Db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    try {
      await db.open();
    } catch (err) {
      const locked = (err as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED';
      throw new BazilError(locked ? ErrorCodes.LOCKED : ErrorCodes.IO, `cannot open the projection at ${dir}`, { path: dir }, err);
    }
    const store = new ProjectionStore(db);
    try {
      await store.loadPosition();
    } catch (err) {
      // A position that does not read (a damaged table) must not leave the LevelDB lock held by this process.
      await db.close().catch(() => undefined);
      throw err;
    }
    return store;
  }

  close(): Promise<void> {
    return this.db.close();
  }

  private async loadPosition(): Promise<void> {
    const vv = await this.db.get(VECTOR_KEY);
    this.vv = vv === undefined ? VersionVector.EMPTY : VersionVector.decode(vv, ErrorCodes.CORRUPT_METADATA);
    const pos = await this.db.get(POSITION_KEY);
    this.last = pos === undefined ? null : decodePosition(pos);
  }

  /** The events reflected, as a version vector. */
  versionVector(): VersionVector {
    return this.vv;
  }

  /** The last event applied, in merge order; null when none is. */
  position(): Position | null {
    return this.last;
  }

  /** Drops everything: the projection of no events. */
  async clear(): Promise<void> {
    await this.db.clear();
    this.settler.generation++;
    this.vv = VersionVector.EMPTY;
    this.last = null;
  }

  /** A batch of events to apply; nothing is stored (or visible to the reads below) before commit. */
  batch(): Batch {
    return new Batch(this.db, this.vv, this.last, (vv, last) => {
      this.settler.generation++;
      this.vv = vv;
      this.last = last;
    });
  }

  // The point reads below use getSync: LevelDB answers them from its caches
  // in a few microseconds, while an awaited get costs a trip through the
  // thread pool, and FUSE asks for them once or more per request
  // (MEASURED.md). They stay async so callers need not change.

  async rootId(): Promise<Buffer | undefined> {
    return this.db.getSync(ROOT_KEY);
  }

  async lookup(parent: Uint8Array, name: string): Promise<Buffer | undefined> {
    const e = this.db.getSync(entryKey(parent, name));
    return e === undefined ? undefined : decodeEntry(e).child;
  }

  async getattr(id: Uint8Array): Promise<Attrs | undefined> {
    const v = this.db.getSync(inodeKey(id));
    if (v === undefined) return undefined;
    const n = decodeInode(v);
    return {
      id: Buffer.from(id), kind: n.kind, mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, nlink: n.nlink,
      mtime: n.mtime, ctime: n.ctime, atime: n.atime ?? n.mtime, manifest: n.manifest,
    };
  }

  /** Entries of `parent` in UTF-8 byte order of their names, after the name `after`, at most `limit`. */
  async readdir(parent: Uint8Array, options: { after?: string; limit?: number } = {}): Promise<DirEntry[]> {
    const prefix = entryPrefix(parent);
    const range = options.after === undefined ? { gte: prefix } : { gt: entryKey(parent, options.after) };
    const out: DirEntry[] = [];
    for await (const [k, v] of this.db.iterator({ ...range, lt: prefixEnd(prefix), limit: options.limit ?? -1 })) {
      out.push({ name: k.subarray(prefix.length).toString('utf8'), id: decodeEntry(v).child });
    }
    return out;
  }

  async readlink(id: Uint8Array): Promise<string | undefined> {
    const v = await this.db.get(inodeKey(id));
    return v === undefined ? undefined : decodeInode(v).target ?? undefined;
  }

  async listxattr(id: Uint8Array): Promise<string[]> {
    const prefix = xattrPrefix(id);
    const names: string[] = [];
    for await (const k of this.db.keys({ gte: prefix, lt: prefixEnd(prefix) })) names.push(k.subarray(prefix.length).toString('utf8'));
    return names;
  }

  async getxattr(id: Uint8Array, name: string): Promise<Buffer | undefined> {
    return this.db.get(xattrKey(id, name));
  }

  /** What happened to the event at `p`, when it did not simply apply. */
  async note(p: Position): Promise<Note | undefined> {
    const v = await this.db.get(noteKey(p));
    return v === undefined ? undefined : decodeNote(v);
  }

  /** A directory's subtree aggregate as last settled, and whether it is exact (docs/aggregates.md). */
  aggregate(dir: Uint8Array): Promise<StoredAggregate> {
    return readAggregate(this.db, dir);
  }

  /**
   * Recomputes dirty aggregates for up to `budgetMs`; returns how many dirty
   * directories are left. Must not run concurrently with a batch's commit.
   */
  settleAggregates(budgetMs?: number): Promise<number> {
    return this.settler.settle(budgetMs);
  }

  /**
   * The whole projection as bytes: every key and value in key order, each
   * as u32 big-endian length ‖ bytes. Two projections of the same events
   * give the same dump. Derived tables (back-links, aggregate caches) are
   * left out, except the back-links with `links` (they follow from the
   * entries alone, so they must match too; the caches depend on timing).
   */
  async dump(options: { links?: boolean } = {}): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const [k, v] of this.db.iterator()) {
      const tag = k[0]!;
      if (CACHE_TABLES.includes(tag) || (tag === LINK_TABLE && options.links !== true)) continue;
      parts.push(lengthPrefixed(k), lengthPrefixed(v));
    }
    return Buffer.concat(parts);
  }
}

function lengthPrefixed(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/**
 * Pending writes over the stored state, keyed by the key's bytes as latin1,
 * and stored values fetched ahead (prefetch), dropped at commit.
 */
export class Batch implements FsTx {
  private readonly pending = new Map<string, { key: Buffer; value: Buffer | null }>();
  private readonly fetched = new Map<string, Buffer | undefined>();
  private count = 0;

  constructor(
    private readonly db: Db,
    private vv: VersionVector,
    private last: Position | null,
    private readonly onCommit: (vv: VersionVector, last: Position | null) => void,
  ) {}

  /**
   * Fetches in one round trip what `events` will likely read: each LevelDB
   * read is a trip through the thread pool, which dominates applying
   * otherwise.
   */
  async prefetch(events: readonly LogEvent[]): Promise<void> {
    const keys = new Map<string, Buffer>();
    for (const ev of events) {
      const reads = likelyReads(ev);
      for (const id of reads.inodes) keys.set(inodeKey(id).toString('latin1'), inodeKey(id));
      for (const [parent, name] of reads.entries) keys.set(entryKey(parent, name).toString('latin1'), entryKey(parent, name));
    }
    keys.set(ROOT_KEY.toString('latin1'), ROOT_KEY);
    const wanted = [...keys].filter(([k]) => !this.pending.has(k) && !this.fetched.has(k));
    // A live commit applies an event or two: point reads then beat one round trip through the thread pool.
    const values = wanted.length <= SYNC_READS ? wanted.map(([, key]) => this.db.getSync(key)) : await this.db.getMany(wanted.map(([, key]) => key));
    wanted.forEach(([k], i) => this.fetched.set(k, values[i]));
  }

  /** Applies one event (or notes it rejected, when its body could not be opened) and advances the position. */
  async apply(header: Position, event: LogEvent | { rejected: string }): Promise<Note | null> {
    const note = 'rejected' in event ? { outcome: 'rejected' as const, detail: event.rejected } : await applyEvent(this, event);
    if (note !== null) this.set(noteKey(header), encodeNote(note));
    this.vv = this.vv.with(header.writer, header.seq);
    this.last = { hlc: header.hlc, writer: Buffer.from(header.writer), seq: header.seq };
    this.count++;
    return note;
  }

  async commit(): Promise<void> {
    if (this.count === 0) return;
    this.set(VECTOR_KEY, this.vv.encode());
    if (this.last !== null) this.set(POSITION_KEY, encodePosition(this.last));
    for (const w of await aggregateWrites(this.db, this.pending, this.fetched)) this.set(w.key, w.value);
    const ops = [...this.pending.values()].map(({ key, value }) =>
      value === null ? { type: 'del' as const, key } : { type: 'put' as const, key, value });
    await this.db.batch(ops);
    this.pending.clear();
    this.fetched.clear();
    this.count = 0;
    this.onCommit(this.vv, this.last);
  }

  private set(key: Buffer, value: Buffer | null): void {
    this.pending.set(key.toString('latin1'), { key, value });
  }

  private async read(key: Buffer): Promise<Buffer | undefined> {
    const k = key.toString('latin1');
    const p = this.pending.get(k);
    if (p !== undefined) return p.value ?? undefined;
    if (this.fetched.has(k)) return this.fetched.get(k);
    return this.db.get(key);
  }

  async root(): Promise<Buffer | undefined> {
    return this.read(ROOT_KEY);
  }

  setRoot(id: Buffer): void {
    this.set(ROOT_KEY, id);
  }

  async inode(id: Uint8Array): Promise<Inode | undefined> {
    const v = await this.read(inodeKey(id));
    return v === undefined ? undefined : decodeInode(v);
  }

  putInode(id: Uint8Array, inode: Inode): void {
    this.set(inodeKey(id), encodeInode(inode));
  }

  async entry(parent: Uint8Array, name: string): Promise<Entry | undefined> {
    const v = await this.read(entryKey(parent, name));
    return v === undefined ? undefined : decodeEntry(v);
  }

  putEntry(parent: Uint8Array, name: string, entry: Entry): void {
    this.set(entryKey(parent, name), encodeEntry(entry));
  }

  deleteEntry(parent: Uint8Array, name: string): void {
    this.set(entryKey(parent, name), null);
  }

  xattr(id: Uint8Array, name: string): Promise<Buffer | undefined> {
    return this.read(xattrKey(id, name));
  }

  putXattr(id: Uint8Array, name: string, value: Buffer): void {
    this.set(xattrKey(id, name), value);
  }

  deleteXattr(id: Uint8Array, name: string): void {
    this.set(xattrKey(id, name), null);
  }
}
