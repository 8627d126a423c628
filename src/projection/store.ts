// The filesystem projection in classic-level: inodes, directory entries
// (keyed parent ‖ name), xattrs, notes on
// events that did not simply apply, and the log position it reflects (the
// version vector and the last applied (hlc, writer, seq)). Writes go
// through a Batch, which also serves apply's reads (its own pending writes
// first), and commits them with the new position in one LevelDB batch, so
// the stored position always matches the stored state. Every read and
// write goes through SealedLevel (batches pipelined by OverlayLevel), which stores names hashed and values
// sealed with the volume's projection key (docs/projection.md,
// "Encryption"); readdir therefore pages in hash order, not name order.

import { ClassicLevel } from 'classic-level';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { LogEvent } from '../log/codec.js';
import { VersionVector } from '../log/version-vector.js';
import { applyEvent, likelyReads, type FsTx } from './fs-state.js';
import { AggregateSettler, aggregateWrites, readAggregate, type StoredAggregate } from './aggregates.js';
import type { ProjectionCipher } from './cipher.js';
import { prepareProjectionDir } from './format.js';
import { SealingCodec } from './record-codec.js';
import { OverlayLevel } from './overlay-level.js';
import { restoreRecords } from './restore.js';
import { CloneTable, materialiseLevel } from './clones.js';
import {
  CACHE_TABLES, CLONE_TABLE_PREFIX, KEY_CHECK_KEY, LINK_TABLE, POSITION_KEY, ROOT_KEY, VECTOR_KEY, cloneKey, decodeEntry, decodeInode, decodeNote,
  decodePendingClone, decodePosition, encodeEntry, encodeInode, encodeNote, encodePendingClone, encodePosition, entryKey, entryPrefix, inodeKey,
  linkPrefix, noteKey, prefixEnd, TABLE_LAYOUTS, xattrKey, xattrPrefix,
  type Entry, type Inode, type InodeKind, type Note, type PendingClone, type Position,
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

type RawDb = ClassicLevel<Buffer, Buffer>;
type Db = OverlayLevel;

/** Directory levels materialised per LevelDB batch when a dump materialises every pending copy. */
const MATERIALISE_COMMIT_EVERY = 64;

/** Up to this many keys are read with getSync rather than one async getMany (see prefetch). */
const SYNC_READS = 32;

export class ProjectionStore {
  private vv = VersionVector.EMPTY;
  private last: Position | null = null;
  private readonly settler: AggregateSettler;
  private readonly db: Db;
  /** The pending directory copies (clones.ts), mirrored in memory from their table: reads check them on every lookup. */
  private readonly clones = new CloneTable();
  /**
   * Serialises what writes the store: batches' apply and commit, the
   * materialisation of a copy a read asks for, settling and dumps (a read's
   * materialisation must not interleave with a batch that read before it).
   */
  private lock: Promise<unknown> = Promise.resolve();
  /** The root directory's id once read (rootId). */
  private root: Buffer | undefined;

  private constructor(private readonly raw: RawDb, readonly cipher: ProjectionCipher) {
    this.db = new OverlayLevel(raw, new SealingCodec(cipher));
    this.settler = new AggregateSettler(this.db, this.clones);
  }

  /**
   * Opens (or creates) the projection at `dir`, sealed with `cipher` (the
   * volume's projection key), migrating an older schema first
   * (docs/migrations.md).
   */
  static async open(dir: string, cipher: ProjectionCipher, options: { log?: (msg: string) => void } = {}): Promise<ProjectionStore> {
    await prepareProjectionDir(dir, cipher, options.log);
    const db: RawDb = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    try {
      await db.open();
    } catch (err) {
      const locked = (err as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED';
      throw new BazilError(locked ? ErrorCodes.LOCKED : ErrorCodes.IO, `cannot open the projection at ${dir}`, { path: dir }, err);
    }
    const store = new ProjectionStore(db, cipher);
    try {
      await store.checkKey(dir);
      await store.loadPosition();
    } catch (err) {
      // A position that does not read (a damaged table) must not leave the LevelDB lock held by this process.
      await db.close().catch(() => undefined);
      throw err;
    }
    return store;
  }

  /** Writes what is staged (overlay-level.ts), then closes; a failed write still closes LevelDB and is reported. */
  async close(): Promise<void> {
    try {
      await this.db.flush();
    } finally {
      await this.raw.close();
    }
  }

  /** Resolves once every committed batch is in LevelDB (commits return before that: overlay-level.ts). */
  flush(): Promise<void> {
    return this.db.flush();
  }

  /**
   * A new projection gets the key's check value; an existing one must hold
   * it, else its records were sealed with another key (a replaced volume
   * secret) and would not open: CORRUPT_METADATA, which the volume treats
   * as damage and answers by replaying the log.
   */
  private async checkKey(dir: string): Promise<void> {
    const want = this.cipher.keyCheck();
    const got = await this.raw.get(KEY_CHECK_KEY);
    if (got !== undefined && got.equals(want)) return;
    if (got === undefined) {
      let empty = true;
      for await (const _ of this.raw.keys({ limit: 1 })) empty = false;
      if (empty) {
        await this.raw.put(KEY_CHECK_KEY, want);
        return;
      }
    }
    throw new BazilError(ErrorCodes.CORRUPT_METADATA, `projection: ${dir} was not sealed with this volume's key`, { path: dir });
  }

  private async loadPosition(): Promise<void> {
    const vv = await this.db.get(VECTOR_KEY);
    this.vv = vv === undefined ? VersionVector.EMPTY : VersionVector.decode(vv, ErrorCodes.CORRUPT_METADATA);
    const pos = await this.db.get(POSITION_KEY);
    this.last = pos === undefined ? null : decodePosition(pos);
    this.clones.clear();
    for await (const [k, v] of this.db.iterator({ gte: CLONE_TABLE_PREFIX, lt: prefixEnd(CLONE_TABLE_PREFIX) })) this.clones.set(k.subarray(1), decodePendingClone(v));
  }

  /** Runs `work` when nothing else writes the store (see `lock`). */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.lock.then(work, work);
    this.lock = result.catch(() => undefined);
    return result;
  }

  /** How many directory copies are not materialised yet (docs/reflink.md). */
  pendingClones(): number {
    return this.clones.count();
  }

  /** A pending copy is materialised before its entries are read, so readers only ever see real entries. */
  private async materialised(dir: Uint8Array): Promise<void> {
    if (this.clones.get(dir) === undefined) return;
    await this.exclusive(async () => {
      if (this.clones.get(dir) === undefined) return;
      const batch = this.batch();
      await materialiseLevel(batch, dir);
      await batch.commit();
    });
  }

  /** Materialises every pending copy, committing every `MATERIALISE_COMMIT_EVERY` levels; call under the lock. */
  private async materialiseEverything(): Promise<void> {
    while (this.clones.any()) {
      const batch = this.batch();
      for (const dir of this.clones.all().slice(0, MATERIALISE_COMMIT_EVERY)) await materialiseLevel(batch, dir);
      await batch.commit();
    }
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
    await this.db.flush();
    await this.raw.clear();
    this.db.forgetReads();
    await this.raw.put(KEY_CHECK_KEY, this.cipher.keyCheck());
    this.clones.clear();
    this.root = undefined;
    this.settler.generation++;
    this.vv = VersionVector.EMPTY;
    this.last = null;
  }

  /**
   * Replaces the state with `records` (a saved dump in key order: the
   * projection of a prefix of the log), writing only what differs, derived
   * tables included (restore.ts); returns the records written or deleted.
   */
  async restore(records: Iterable<[Buffer, Buffer]>): Promise<number> {
    return this.exclusive(async () => {
      // A saved state has every copy materialised (dumps do that), so pending rows not in it go;
      // loadPosition reloads the in-memory copy table from what is left.
      await this.db.flush();
      const changed = await restoreRecords(this.db, records);
      this.root = undefined;
      this.settler.generation++;
      await this.loadPosition();
      return changed;
    });
  }

  /** A batch of events to apply; nothing is stored (or visible to the reads below) before commit. */
  batch(): Batch {
    return new Batch(this.db, this.vv, this.last, this.clones, (vv, last) => {
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
    // Every path resolution starts here, and the root, once created, changes only with the whole state (clear, restore).
    this.root ??= this.db.getSync(ROOT_KEY);
    return this.root === undefined ? undefined : Buffer.from(this.root);
  }

  async lookup(parent: Uint8Array, name: string): Promise<Buffer | undefined> {
    await this.materialised(parent);
    const e = this.db.getSync(entryKey(parent, name));
    return e === undefined ? undefined : decodeEntry(e).child;
  }

  async getattr(id: Uint8Array): Promise<Attrs | undefined> {
    return this.getattrNow(id);
  }

  // The same reads without a promise, for the mount's getattr/lookup fast
  // path (src/fuse/ops.ts): a promise per level of the call chain was the
  // largest part of the daemon's time per metadata operation.

  rootIdNow(): Buffer | undefined {
    this.root ??= this.db.getSync(ROOT_KEY);
    return this.root === undefined ? undefined : Buffer.from(this.root);
  }

  /** A child's id; null when `parent` is a pending copy, which only the async lookup materialises. */
  lookupNow(parent: Uint8Array, name: string): Buffer | undefined | null {
    if (this.clones.get(parent) !== undefined) return null;
    const e = this.db.getSync(entryKey(parent, name));
    return e === undefined ? undefined : decodeEntry(e).child;
  }

  getattrNow(id: Uint8Array): Attrs | undefined {
    const v = this.db.getSync(inodeKey(id));
    if (v === undefined) return undefined;
    const n = decodeInode(v);
    return {
      id: Buffer.from(id), kind: n.kind, mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, nlink: n.nlink,
      mtime: n.mtime, ctime: n.ctime, atime: n.atime ?? n.mtime, manifest: n.manifest,
    };
  }

  /**
   * Entries of `parent` after the entry named `after` (which need not
   * exist any more), at most `limit`, in the order of their names' keyed
   * hashes: an order stable while the directory does not change, which is
   * what paging needs; a caller that promises sorted names sorts.
   */
  async readdir(parent: Uint8Array, options: { after?: string; limit?: number } = {}): Promise<DirEntry[]> {
    await this.materialised(parent);
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
    const names: Buffer[] = [];
    for await (const k of this.db.keys({ gte: prefix, lt: prefixEnd(prefix) })) names.push(k.subarray(prefix.length));
    // Stored in hash order; a handful per inode, so they are given in name order as before.
    return names.sort(Buffer.compare).map((n) => n.toString('utf8'));
  }

  async getxattr(id: Uint8Array, name: string): Promise<Buffer | undefined> {
    return this.db.get(xattrKey(id, name));
  }

  /**
   * The ids (as latin1 strings) of the nodes that have extended attributes,
   * or null when more than `limit` attributes are stored or a pending copy
   * may still add some as it is materialised: one scan of the table lets
   * export list only these nodes' attributes, instead of an iterator (a
   * thread-pool round trip) for every node it writes (import-export.ts).
   */
  async xattrHolders(limit: number): Promise<Set<string> | null> {
    if (this.clones.any()) return null;
    const table = xattrPrefix(new Uint8Array(0));
    // Keys are table byte ‖ node id ‖ name.
    const nameAt = TABLE_LAYOUTS.get(table[0]!)!.nameAt!;
    const holders = new Set<string>();
    let rows = 0;
    for await (const k of this.db.keys({ gte: table, lt: prefixEnd(table), limit: limit + 1 })) {
      if (++rows > limit) return null;
      holders.add(k.subarray(table.length, nameAt).toString('latin1'));
    }
    return holders;
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
    return this.exclusive(() => this.settler.settle(budgetMs));
  }

  /**
   * The whole projection as bytes: every key and value as stored (names
   * hashed, values sealed), in stored-key order, each as u32 big-endian
   * length ‖ bytes. Two projections of the same events with the same key
   * give the same dump (the key check is left out, like the caches). Derived tables (back-links, aggregate caches) are
   * left out, except the back-links with `links` (they follow from the
   * entries alone, so they must match too; the caches depend on timing).
   * Pending directory copies are materialised first: a dump is the logical
   * tree, the same whenever copies were materialised.
   */
  async dump(options: { links?: boolean } = {}): Promise<Buffer> {
    return this.exclusive(async () => {
      await this.materialiseEverything();
      await this.db.flush();
      const parts: Buffer[] = [];
      for await (const [k, v] of this.raw.iterator()) {
        const tag = k[0]!;
        if (k.equals(KEY_CHECK_KEY)) continue;
        if (CACHE_TABLES.includes(tag) || (tag === LINK_TABLE && options.links !== true)) continue;
        parts.push(lengthPrefixed(k), lengthPrefixed(v));
      }
      return Buffer.concat(parts);
    });
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
  /** Pending entry and xattr writes by directory / node (latin1 id → latin1 keys), for entries() and xattrs(). */
  private readonly entryWrites = new Map<string, Set<string>>();
  private readonly xattrWrites = new Map<string, Set<string>>();
  /** Back-links this batch adds (true) or removes (false): child → (latin1 parent ‖ name → parent). */
  private readonly linkWrites = new Map<string, Map<string, { parent: Buffer; present: boolean }>>();
  readonly clones: CloneTable;
  readonly eagerClones = false;
  private count = 0;

  constructor(
    private readonly db: Db,
    private vv: VersionVector,
    private last: Position | null,
    committedClones: CloneTable,
    private readonly onCommit: (vv: VersionVector, last: Position | null) => void,
  ) {
    this.clones = new CloneTable(committedClones);
  }

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
    if (this.count === 0 && this.pending.size === 0) return;
    this.set(VECTOR_KEY, this.vv.encode());
    if (this.last !== null) this.set(POSITION_KEY, encodePosition(this.last));
    for (const w of await aggregateWrites(this.db, this.pending, this.fetched)) this.set(w.key, w.value);
    const ops = [...this.pending.values()].map(({ key, value }) =>
      value === null ? { type: 'del' as const, key } : { type: 'put' as const, key, value });
    await this.db.batch(ops);
    this.clones.mergeInto();
    this.pending.clear();
    this.fetched.clear();
    this.entryWrites.clear();
    this.xattrWrites.clear();
    this.linkWrites.clear();
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
    // Kept: the value before this batch, which commit's back-link upkeep and deleteEntry use.
    const v = await this.db.get(key);
    this.fetched.set(k, v);
    return v;
  }

  /** The value of `key` as this batch sees it, when known without a read. */
  private known(k: string): Buffer | undefined {
    const p = this.pending.get(k);
    if (p !== undefined) return p.value ?? undefined;
    return this.fetched.get(k);
  }

  private noteWrite(index: Map<string, Set<string>>, owner: Uint8Array, key: string): void {
    const o = Buffer.from(owner).toString('latin1');
    let set = index.get(o);
    if (set === undefined) index.set(o, (set = new Set()));
    set.add(key);
  }

  private noteLink(child: Buffer, parent: Uint8Array, name: string, present: boolean): void {
    const c = child.toString('latin1');
    let m = this.linkWrites.get(c);
    if (m === undefined) this.linkWrites.set(c, (m = new Map()));
    m.set(Buffer.concat([parent, Buffer.from(name, 'utf8')]).toString('latin1'), { parent: Buffer.from(parent), present });
  }

  /** Stored keys under `prefix` merged with this batch's writes to them, in key order. */
  private async scan(prefix: Buffer, written: Set<string> | undefined): Promise<[Buffer, Buffer][]> {
    const out = new Map<string, [Buffer, Buffer]>();
    for await (const [k, v] of this.db.iterator({ gte: prefix, lt: prefixEnd(prefix) })) {
      const l = k.toString('latin1');
      if (!this.pending.has(l)) out.set(l, [k, v]);
    }
    for (const l of written ?? []) {
      const w = this.pending.get(l);
      if (w !== undefined && w.value !== null) out.set(l, [w.key, w.value]);
    }
    return [...out.keys()].sort().map((l) => out.get(l)!);
  }

  async entries(dir: Uint8Array): Promise<[string, Entry][]> {
    const prefix = entryPrefix(dir);
    const rows = await this.scan(prefix, this.entryWrites.get(Buffer.from(dir).toString('latin1')));
    return rows.map(([k, v]) => [k.subarray(prefix.length).toString('utf8'), decodeEntry(v)]);
  }

  async xattrs(id: Uint8Array): Promise<[string, Buffer][]> {
    const prefix = xattrPrefix(id);
    const rows = await this.scan(prefix, this.xattrWrites.get(Buffer.from(id).toString('latin1')));
    return rows.map(([k, v]) => [k.subarray(prefix.length).toString('utf8'), v]);
  }

  async parentsOf(id: Uint8Array): Promise<Buffer[]> {
    const prefix = linkPrefix(id);
    const links = new Map<string, { parent: Buffer; present: boolean }>();
    for await (const k of this.db.keys({ gte: prefix, lt: prefixEnd(prefix) })) {
      links.set(k.subarray(prefix.length).toString('latin1'), { parent: Buffer.from(k.subarray(prefix.length, prefix.length + 32)), present: true });
    }
    for (const [k, l] of this.linkWrites.get(Buffer.from(id).toString('latin1')) ?? []) links.set(k, l);
    const parents = new Map<string, Buffer>();
    for (const l of links.values()) if (l.present) parents.set(l.parent.toString('latin1'), l.parent);
    return [...parents.values()];
  }

  putClone(dir: Uint8Array, row: PendingClone | null): void {
    this.clones.set(dir, row);
    this.set(cloneKey(dir), row === null ? null : encodePendingClone(row));
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

  putInode(id: Uint8Array, inode: Inode, fresh = false): void {
    const key = inodeKey(id);
    const k = key.toString('latin1');
    // Known absent before the batch: commit then looks for no back-links of it.
    if (fresh && !this.pending.has(k) && !this.fetched.has(k)) this.fetched.set(k, undefined);
    this.set(key, encodeInode(inode));
  }

  async entry(parent: Uint8Array, name: string): Promise<Entry | undefined> {
    const v = await this.read(entryKey(parent, name));
    return v === undefined ? undefined : decodeEntry(v);
  }

  putEntry(parent: Uint8Array, name: string, entry: Entry): void {
    const key = entryKey(parent, name);
    this.dropLinkOf(key, parent, name);
    this.noteLink(Buffer.from(entry.child), parent, name, true);
    this.noteWrite(this.entryWrites, parent, key.toString('latin1'));
    this.set(key, encodeEntry(entry));
  }

  deleteEntry(parent: Uint8Array, name: string): void {
    const key = entryKey(parent, name);
    this.dropLinkOf(key, parent, name);
    this.noteWrite(this.entryWrites, parent, key.toString('latin1'));
    this.set(key, null);
  }

  /** The entry being replaced no longer links its child here (apply reads an entry before it replaces or deletes it). */
  private dropLinkOf(key: Buffer, parent: Uint8Array, name: string): void {
    const old = this.known(key.toString('latin1'));
    if (old !== undefined) this.noteLink(decodeEntry(old).child, parent, name, false);
  }

  xattr(id: Uint8Array, name: string): Promise<Buffer | undefined> {
    return this.read(xattrKey(id, name));
  }

  putXattr(id: Uint8Array, name: string, value: Buffer): void {
    const key = xattrKey(id, name);
    this.noteWrite(this.xattrWrites, id, key.toString('latin1'));
    this.set(key, value);
  }

  deleteXattr(id: Uint8Array, name: string): void {
    const key = xattrKey(id, name);
    this.noteWrite(this.xattrWrites, id, key.toString('latin1'));
    this.set(key, null);
  }
}
