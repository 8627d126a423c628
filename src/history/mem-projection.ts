// The filesystem projection held in memory: the same state ProjectionStore
// keeps in LevelDB (inodes, entries, xattrs, notes, vector and position),
// written by the same applyEvent through FsTx and read through the same
// interface VolumeReader uses. Past states are built here: replaying a
// prefix of the log needs no LevelDB and nothing on disk.
//
// Its dump() is byte for byte ProjectionStore.dump() of the same events
// (the same keys and canonical values, in key order), which is what a
// checkpoint hashes and stores, and what tests compare with the live
// projection. Maps are keyed by the raw bytes of ids (and UTF-8 bytes of
// names) as latin1 strings, whose string order is the bytes' order, so
// listings come out in name order. Records leave (and checkpoints come
// back) through the same RecordCodec the LevelDB projection stores with:
// names hashed, values sealed, sorted by stored key as LevelDB sorts them.
// Readdir here pages in name order; the LevelDB one in hash order: each is
// stable for its own paging, which is all a reader may rely on.

import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { LogEvent } from '../log/codec.js';
import { VersionVector } from '../log/version-vector.js';
import { applyEvent, type FsTx } from '../projection/fs-state.js';
import { CloneTable } from '../projection/clones.js';
import {
  POSITION_KEY, ROOT_KEY, VECTOR_KEY, decodeEntry, decodeInode, decodePosition, encodeEntry, encodeInode,
  encodeNote, encodePosition, type Entry, type Inode, type Note, type PendingClone, type Position,
} from '../projection/schema.js';
import type { Attrs, DirEntry } from '../projection/store.js';
import type { RecordCodec } from '../projection/record-codec.js';
import type { ProjectionReader } from '../volume/reader.js';
import type { RecordIndex } from './record-index.js';

// Table tags of src/projection/schema.ts (docs/projection.md, "Schema").
const META = 0x01;
const INODE = 0x02;
const ENTRY = 0x03;
const XATTR = 0x04;
const NOTE = 0x05;
const ENTRY_TAG = Buffer.from([ENTRY]);

const key = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');
const nameKey = (name: string): string => Buffer.from(name, 'utf8').toString('latin1');
const unkey = (k: string): Buffer => Buffer.from(k, 'latin1');

interface Dir {
  /** Name key (UTF-8 bytes as latin1) → entry. */
  entries: Map<string, Entry>;
  /** The name keys in byte order, or null when a change made them stale. */
  sorted: string[] | null;
}

export class MemProjection implements FsTx, ProjectionReader {
  private rootValue: Buffer | undefined;
  private readonly inodes = new Map<string, Inode>();
  private readonly dirs = new Map<string, Dir>();
  private readonly xattrMap = new Map<string, Map<string, Buffer>>();
  private readonly notes = new Map<string, Note>();
  /** Copies are materialised by the clone event itself (eagerClones), so between events this is empty. */
  readonly clones = new CloneTable();
  readonly eagerClones = true;
  private vv = VersionVector.EMPTY;
  private last: Position | null = null;
  private applied = 0n;

  /**
   * The stored form of each record as of the last records(), by logical
   * key, with the plain value it was made from: a replay writes a
   * checkpoint every few thousand events, and most records have not
   * changed since the last one, so they are not sealed again.
   */
  private sealed = new Map<string, { plain: Buffer; stored: [Buffer, Buffer] }>();

  /**
   * Records of the checkpoint this projection was loaded from that nothing
   * has read or changed yet, still in their stored (sealed) form: opening
   * every record costs an HMAC and an AES setup each (tens of µs), and an
   * as-of view reads a handful of the hundreds of thousands a large state
   * holds. Each is opened when first reached (a directory or an xattr set
   * as a whole) and moves to the maps above; records() passes the rest
   * through as they are, which is what sealing their plain form would give.
   */
  private readonly stored: StoredRecords = {
    inodes: new Map(), dirs: new Map(), xattrs: new Map(), notes: new Map(),
  };

  /**
   * A chain loaded by fromChain, in place of `stored`: the full
   * checkpoint's state as one indexed buffer, and the deltas' changes
   * merged into one sorted index over their buffers (record-index.ts). A
   * key the changes hold (changed, removed, or taken already) hides the
   * full one's record of it.
   */
  private base: RecordIndex | null = null;
  private overlay: RecordIndex | null = null;

  /** `codec` turns records into their stored form for records() and dump(), and back in fromRecords(). */
  constructor(private readonly codec: RecordCodec) {}

  /** Events applied (or noted rejected): the position in the merge order, when they are a prefix of it. */
  get count(): bigint {
    return this.applied;
  }

  versionVector(): VersionVector {
    return this.vv;
  }

  position(): Position | null {
    return this.last;
  }

  /** Applies one event (or notes it rejected, when its body could not be opened), as Batch.apply does. */
  async apply(header: Position, event: LogEvent | { rejected: string }): Promise<Note | null> {
    const note = 'rejected' in event ? { outcome: 'rejected' as const, detail: event.rejected } : await applyEvent(this, event);
    if (note !== null) this.notes.set(encodePosition(header).toString('latin1'), note);
    this.vv = this.vv.with(header.writer, header.seq);
    this.last = { hlc: header.hlc, writer: Buffer.from(header.writer), seq: header.seq };
    this.applied++;
    return note;
  }

  // ---- FsTx: what applyEvent reads and writes ----

  async root(): Promise<Buffer | undefined> {
    return this.rootValue;
  }

  setRoot(id: Buffer): void {
    this.rootValue = Buffer.from(id);
  }

  // Copies in and out: applyEvent changes the objects it reads before it puts them back.
  async inode(id: Uint8Array): Promise<Inode | undefined> {
    const n = this.inodeOf(key(id));
    return n === undefined ? undefined : { ...n };
  }

  putInode(id: Uint8Array, inode: Inode): void {
    const k = key(id);
    // A stored record of it, if any, is replaced unopened; one held in the map was taken from there already.
    if (!this.inodes.has(k)) this.takeInode(k);
    this.inodes.set(k, { ...inode });
  }

  async entry(parent: Uint8Array, name: string): Promise<Entry | undefined> {
    return this.entryOf(parent, name);
  }

  putEntry(parent: Uint8Array, name: string, entry: Entry): void {
    const p = key(parent);
    let dir = this.dirs.get(p);
    const k = nameKey(name);
    // The stored record of that name, if any, is replaced unopened; one held in the map was taken from there already.
    if (dir?.entries.has(k) !== true) this.takeStoredEntry(p, parent, name);
    if (dir === undefined) this.dirs.set(p, (dir = { entries: new Map(), sorted: null }));
    if (!dir.entries.has(k)) dir.sorted = null;
    dir.entries.set(k, { child: Buffer.from(entry.child), placed: entry.placed });
  }

  deleteEntry(parent: Uint8Array, name: string): void {
    const p = key(parent);
    const dir = this.dirs.get(p);
    if (dir?.entries.has(nameKey(name)) !== true) this.takeStoredEntry(p, parent, name);
    if (dir === undefined || !dir.entries.delete(nameKey(name))) return;
    dir.sorted = null;
    if (dir.entries.size === 0) this.dirs.delete(p);
  }

  async xattr(id: Uint8Array, name: string): Promise<Buffer | undefined> {
    return this.xattrsOf(key(id))?.get(nameKey(name));
  }

  putXattr(id: Uint8Array, name: string, value: Buffer): void {
    const k = key(id);
    let m = this.xattrsOf(k);
    if (m === undefined) this.xattrMap.set(k, (m = new Map()));
    m.set(nameKey(name), Buffer.from(value));
  }

  deleteXattr(id: Uint8Array, name: string): void {
    const k = key(id);
    const m = this.xattrsOf(k);
    if (m === undefined) return;
    m.delete(nameKey(name));
    if (m.size === 0) this.xattrMap.delete(k);
  }

  async entries(dir: Uint8Array): Promise<[string, Entry][]> {
    const d = this.dirOf(key(dir));
    return d === undefined ? [] : this.sortedNames(d).map((n) => [unkey(n).toString('utf8'), d.entries.get(n)!]);
  }

  async xattrs(id: Uint8Array): Promise<[string, Buffer][]> {
    const m = this.xattrsOf(key(id));
    return m === undefined ? [] : [...m.keys()].sort().map((n) => [unkey(n).toString('utf8'), m.get(n)!]);
  }

  /** A scan of every directory: only reached while a copy is pending, which here lasts no longer than its clone event. */
  async parentsOf(id: Uint8Array): Promise<Buffer[]> {
    for (const p of [...this.stored.dirs.keys()]) this.dirOf(p);
    for (const layer of [this.base, this.overlay]) {
      if (layer === null) continue;
      const [from, to] = layer.range(ENTRY_TAG);
      for (let i = from; i < to; i++) if (!layer.isGone(i)) this.dirOf(layer.keyString(i, 1, 33));
    }
    const out: Buffer[] = [];
    for (const [p, dir] of this.dirs) {
      for (const e of dir.entries.values()) {
        if (Buffer.compare(e.child, id) === 0) {
          out.push(unkey(p));
          break;
        }
      }
    }
    return out;
  }

  putClone(dir: Uint8Array, row: PendingClone | null): void {
    this.clones.set(dir, row);
  }

  // ---- ProjectionReader: what VolumeReader reads ----

  async rootId(): Promise<Buffer | undefined> {
    return this.rootValue;
  }

  async lookup(parent: Uint8Array, name: string): Promise<Buffer | undefined> {
    return this.entryOf(parent, name)?.child;
  }

  async getattr(id: Uint8Array): Promise<Attrs | undefined> {
    const n = this.inodeOf(key(id));
    if (n === undefined) return undefined;
    return {
      id: Buffer.from(id), kind: n.kind, mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, nlink: n.nlink,
      mtime: n.mtime, ctime: n.ctime, atime: n.atime ?? n.mtime, manifest: n.manifest,
    };
  }

  async readdir(parent: Uint8Array, options: { after?: string; limit?: number } = {}): Promise<DirEntry[]> {
    const dir = this.dirOf(key(parent));
    if (dir === undefined) return [];
    const names = this.sortedNames(dir);
    let start = 0;
    if (options.after !== undefined) {
      const after = nameKey(options.after);
      let lo = 0;
      let hi = names.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (names[mid]! <= after) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    const end = options.limit === undefined || options.limit < 0 ? names.length : Math.min(names.length, start + options.limit);
    const out: DirEntry[] = [];
    for (let i = start; i < end; i++) out.push({ name: unkey(names[i]!).toString('utf8'), id: dir.entries.get(names[i]!)!.child });
    return out;
  }

  async readlink(id: Uint8Array): Promise<string | undefined> {
    return this.inodeOf(key(id))?.target ?? undefined;
  }

  async listxattr(id: Uint8Array): Promise<string[]> {
    const m = this.xattrsOf(key(id));
    return m === undefined ? [] : [...m.keys()].sort().map((k) => unkey(k).toString('utf8'));
  }

  async getxattr(id: Uint8Array, name: string): Promise<Buffer | undefined> {
    return this.xattrsOf(key(id))?.get(nameKey(name));
  }

  /** The state as ProjectionStore.dump() writes it: every stored key and value in key order, each u32 BE length ‖ bytes. */
  async dump(): Promise<Buffer> {
    return Buffer.concat([...this.records()].flatMap(([k, v]) => [lengthPrefixed(k), lengthPrefixed(v)]));
  }

  /** Every (key, value) of the state as the LevelDB projection stores it, in stored-key order. */
  records(): [Buffer, Buffer][] {
    const next = new Map<string, { plain: Buffer; stored: [Buffer, Buffer] }>();
    const out: [Buffer, Buffer][] = [];
    for (const [k, v] of this.plainRecords()) {
      const id = k.toString('latin1');
      const hit = this.sealed.get(id);
      const stored = hit !== undefined && hit.plain.equals(v) ? hit.stored : this.codec.encode(k, v);
      next.set(id, { plain: v, stored });
      out.push(stored);
    }
    const { stored, base, overlay } = this;
    for (const r of stored.inodes.values()) out.push(r);
    for (const rs of stored.dirs.values()) for (const r of rs.values()) out.push(r);
    for (const rs of stored.xattrs.values()) for (const r of rs.values()) out.push(r);
    for (const r of stored.notes.values()) out.push(r);
    if (base !== null && overlay !== null) {
      // Both in key order: a walk side by side finds the full one's records the changes hide.
      let j = 0;
      for (let i = 0; i < base.size; i++) {
        let c = 1;
        while (j < overlay.size && (c = base.compareWith(i, overlay, j)) > 0) {
          pushLayered(out, overlay, j++);
          c = 1;
        }
        if (c === 0) pushLayered(out, overlay, j++);
        else pushLayered(out, base, i);
      }
      while (j < overlay.size) pushLayered(out, overlay, j++);
    }
    this.sealed = next;
    return out.sort((a, b) => Buffer.compare(a[0], b[0]));
  }

  /** Every (key, value) of the state in key order, in the LevelDB projection's schema before sealing. */
  private *plainRecords(): Generator<[Buffer, Buffer]> {
    // Within the meta table, keys sort as "position" < "root" < "vector".
    if (this.last !== null) yield [POSITION_KEY, encodePosition(this.last)];
    if (this.rootValue !== undefined) yield [ROOT_KEY, this.rootValue];
    if (this.applied > 0n) yield [VECTOR_KEY, this.vv.encode()];
    for (const k of [...this.inodes.keys()].sort()) yield [tagged(INODE, k), encodeInode(this.inodes.get(k)!)];
    for (const p of [...this.dirs.keys()].sort()) {
      const dir = this.dirs.get(p)!;
      for (const n of this.sortedNames(dir)) yield [tagged(ENTRY, p + n), encodeEntry(dir.entries.get(n)!)];
    }
    for (const k of [...this.xattrMap.keys()].sort()) {
      const m = this.xattrMap.get(k)!;
      for (const n of [...m.keys()].sort()) yield [tagged(XATTR, k + n), m.get(n)!];
    }
    for (const k of [...this.notes.keys()].sort()) yield [tagged(NOTE, k), encodeNote(this.notes.get(k)!)];
  }

  /**
   * A projection from records() output (a checkpoint's state, opened with
   * `codec`), with `count` events applied. The records' shape is checked
   * here; their sealed values are opened when first read (see `stored`),
   * and one that does not open fails that read with CORRUPT_METADATA.
   */
  static fromRecords(records: Iterable<[Buffer, Buffer]>, count: bigint, codec: RecordCodec): MemProjection {
    const p = new MemProjection(codec);
    p.applied = count;
    for (const record of records) p.storeRecord(record);
    return p;
  }

  /**
   * A projection from a full checkpoint's state and the changes of the
   * deltas after it merged (both indexed, record-index.ts): a chain of
   * checkpoints as one state. The records stay in their buffers until
   * read, so a chain costs a pass over its lengths and a merge of the
   * deltas' keys.
   */
  static fromChain(full: RecordIndex, changes: RecordIndex, count: bigint, codec: RecordCodec): MemProjection {
    const p = new MemProjection(codec);
    p.applied = count;
    for (const layer of [full, changes]) {
      for (let i = 0; i < layer.size; i++) {
        const rest = layer.keyLengthAt(i) - 1;
        switch (layer.tagAt(i)) {
          case META: {
            const [k, v] = layer.take(i)!;
            if (v === null) p.setMeta(k, null);
            else p.setMeta(...codec.decode(k, v));
            break;
          }
          case INODE:
            if (rest !== 32) throw badRecord('an inode key of the wrong length');
            break;
          case ENTRY:
            if (rest <= 32) throw badRecord('an entry key without a name');
            break;
          case XATTR:
            if (rest <= 32) throw badRecord('an xattr key without a name');
            break;
          case NOTE:
            if (rest !== 48) throw badRecord('a note key of the wrong length');
            break;
          default:
            throw badRecord(`an unknown table ${layer.tagAt(i)}`);
        }
      }
    }
    p.base = full;
    p.overlay = changes;
    return p;
  }

  private setMeta(k: Buffer, v: Buffer | null): void {
    if (k.equals(ROOT_KEY)) this.rootValue = v === null ? undefined : Buffer.from(v);
    else if (k.equals(VECTOR_KEY)) this.vv = v === null ? VersionVector.EMPTY : VersionVector.decode(v, ErrorCodes.BAD_CHECKPOINT);
    else if (k.equals(POSITION_KEY)) this.last = v === null ? null : decodePosition(Buffer.from(v));
    else throw badRecord('an unknown meta key');
  }

  /** Adds a stored record to a projection nothing has read yet. */
  private storeRecord(record: [Buffer, Buffer]): void {
    const { stored } = this;
    const [storedKey] = record;
    // Ids are read from the key in place (toString with bounds): no subarray per record.
    const rest = storedKey.length - 1;
    switch (storedKey[0]) {
      case META:
        this.setMeta(...this.codec.decode(storedKey, record[1]));
        break;
      case INODE:
        if (rest !== 32) throw badRecord('an inode key of the wrong length');
        stored.inodes.set(storedKey.toString('latin1', 1), record);
        break;
      case ENTRY:
        if (rest <= 32) throw badRecord('an entry key without a name');
        group(stored.dirs, storedKey.toString('latin1', 1, 33), storedKey.toString('latin1', 33), record);
        break;
      case XATTR:
        if (rest <= 32) throw badRecord('an xattr key without a name');
        group(stored.xattrs, storedKey.toString('latin1', 1, 33), storedKey.toString('latin1', 33), record);
        break;
      case NOTE:
        if (rest !== 48) throw badRecord('a note key of the wrong length');
        stored.notes.set(storedKey.toString('latin1', 1), record);
        break;
      default:
        throw badRecord(`an unknown table ${storedKey[0]}`);
    }
  }

  /**
   * One entry, opening only its own stored record: applying an event reads
   * the one or two names it touches, and opening a whole directory of
   * thousands of sealed entries for each would be most of a replay.
   */
  private entryOf(parent: Uint8Array, name: string): Entry | undefined {
    const p = key(parent);
    const k = nameKey(name);
    const hit = this.dirs.get(p)?.entries.get(k);
    if (hit !== undefined) return hit;
    const record = this.takeStoredEntry(p, parent, name);
    if (record === undefined) return undefined;
    const [storedName, v] = this.open(record);
    if (storedName.toString('latin1', 33) !== k) throw new BazilError(ErrorCodes.CORRUPT_METADATA, 'projection: a sealed entry holds another name than its key names');
    const e = decodeEntry(v);
    let dir = this.dirs.get(p);
    if (dir === undefined) this.dirs.set(p, (dir = { entries: new Map(), sorted: null }));
    const entry = { child: Buffer.from(e.child), placed: e.placed };
    dir.entries.set(k, entry);
    dir.sorted = null;
    return entry;
  }

  /** Removes (and returns) the stored record of one name of directory `p`, found by its stored key. */
  private takeStoredEntry(p: string, parent: Uint8Array, name: string): [Buffer, Buffer] | undefined {
    const records = this.stored.dirs.get(p);
    if (records === undefined && this.base === null) return undefined;
    const storedKey = this.codec.storedKey(Buffer.concat([ENTRY_TAG, parent, Buffer.from(name, 'utf8')]));
    if (this.base !== null) return this.takeLayered(storedKey);
    const tag = storedKey.toString('latin1', 33);
    const record = records!.get(tag);
    if (record !== undefined && records!.delete(tag) && records!.size === 0) this.stored.dirs.delete(p);
    return record;
  }

  /** Removes (and returns) the stored record of inode `k`. */
  private takeInode(k: string): [Buffer, Buffer] | undefined {
    if (this.base !== null) return this.takeLayered(tagged(INODE, k));
    const record = this.stored.inodes.get(k);
    if (record !== undefined) this.stored.inodes.delete(k);
    return record;
  }

  /** Removes (and returns) every stored record of a grouped table under `p` (a directory's entries, a node's xattrs). */
  private takeGroup(m: Map<string, Map<string, [Buffer, Buffer]>>, tag: number, p: string): [Buffer, Buffer][] {
    if (this.base === null) {
      const records = m.get(p);
      if (records === undefined) return [];
      m.delete(p);
      return [...records.values()];
    }
    const prefix = tagged(tag, p);
    const out: [Buffer, Buffer][] = [];
    const { base, overlay } = this;
    if (overlay !== null) {
      const [from, to] = overlay.range(prefix);
      for (let i = from; i < to; i++) {
        const r = overlay.take(i);
        if (r !== undefined && r[1] !== null) out.push([r[0], r[1]]);
      }
    }
    const [from, to] = base.range(prefix);
    for (let i = from; i < to; i++) {
      if (base.isGone(i)) continue;
      const [k, v] = base.record(i);
      if (overlay !== null && overlay.find(k) >= 0) continue;
      base.take(i);
      out.push([k, v!]);
    }
    return out;
  }

  /** Removes (and returns) the record of `storedKey` from a loaded chain: the changes' if they hold the key, else the full one's. */
  private takeLayered(storedKey: Buffer): [Buffer, Buffer] | undefined {
    const { base, overlay } = this;
    if (overlay !== null) {
      const i = overlay.find(storedKey);
      if (i >= 0) {
        const r = overlay.take(i);
        return r === undefined || r[1] === null ? undefined : [r[0], r[1]];
      }
    }
    const i = base!.find(storedKey);
    const r = i < 0 ? undefined : base!.take(i);
    return r === undefined ? undefined : [r[0], r[1]!];
  }

  /** Opens a stored record, remembering its stored form so records() does not seal it again while it is unchanged. */
  private open(record: [Buffer, Buffer]): [Buffer, Buffer] {
    const [k, v] = this.codec.decode(record[0], record[1]);
    this.sealed.set(k.toString('latin1'), { plain: v, stored: record });
    return [k, v];
  }

  private inodeOf(k: string): Inode | undefined {
    const held = this.inodes.get(k);
    if (held !== undefined) return held;
    const record = this.takeInode(k);
    if (record === undefined) return undefined;
    const n = decodeInode(this.open(record)[1]);
    this.inodes.set(k, n);
    return n;
  }

  private dirOf(p: string): Dir | undefined {
    const records = this.takeGroup(this.stored.dirs, ENTRY, p);
    if (records.length > 0) {
      let dir = this.dirs.get(p);
      if (dir === undefined) this.dirs.set(p, (dir = { entries: new Map(), sorted: null }));
      for (const record of records) {
        const [k, v] = this.open(record);
        const e = decodeEntry(v);
        dir.entries.set(k.subarray(33).toString('latin1'), { child: Buffer.from(e.child), placed: e.placed });
      }
      dir.sorted = null;
    }
    return this.dirs.get(p);
  }

  private xattrsOf(id: string): Map<string, Buffer> | undefined {
    const records = this.takeGroup(this.stored.xattrs, XATTR, id);
    if (records.length > 0) {
      let m = this.xattrMap.get(id);
      if (m === undefined) this.xattrMap.set(id, (m = new Map()));
      for (const record of records) {
        const [k, v] = this.open(record);
        m.set(k.subarray(33).toString('latin1'), Buffer.from(v));
      }
    }
    return this.xattrMap.get(id);
  }

  private sortedNames(dir: Dir): string[] {
    if (dir.sorted === null) dir.sorted = [...dir.entries.keys()].sort();
    return dir.sorted;
  }
}

/** Stored records of a loaded checkpoint not opened yet, by id (inodes, directories, xattr sets) or position (notes). */
interface StoredRecords {
  inodes: Map<string, [Buffer, Buffer]>;
  /** Directory id → stored name part of the key (the name's tag) → record. */
  dirs: Map<string, Map<string, [Buffer, Buffer]>>;
  /** Inode id → stored name part of the key → record. */
  xattrs: Map<string, Map<string, [Buffer, Buffer]>>;
  notes: Map<string, [Buffer, Buffer]>;
}

function group(m: Map<string, Map<string, [Buffer, Buffer]>>, k: string, name: string, record: [Buffer, Buffer]): void {
  const rs = m.get(k);
  if (rs === undefined) m.set(k, new Map([[name, record]]));
  else rs.set(name, record);
}

/** Record `i` of a loaded chain's layer, unless taken, removed or meta (whose values are fields). */
function pushLayered(out: [Buffer, Buffer][], layer: RecordIndex, i: number): void {
  if (layer.isGone(i) || layer.tagAt(i) === META) return;
  const [k, v] = layer.record(i);
  if (v !== null) out.push([k, v]);
}

function tagged(tag: number, latin1: string): Buffer {
  const b = Buffer.allocUnsafe(1 + latin1.length);
  b[0] = tag;
  b.write(latin1, 1, 'latin1');
  return b;
}

function lengthPrefixed(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function badRecord(what: string): BazilError {
  return new BazilError(ErrorCodes.BAD_CHECKPOINT, `checkpoint state holds ${what}`);
}
