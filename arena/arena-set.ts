// ArenaSet: every arena in one directory, behind one lookup.
//
// Files in the directory:
//   <kind>.<writer hex>.<first seq>.active   an active arena (takes appends)
//   <identity hex>.arena                     a sealed arena
//   <identity hex>.dead                      punched slots of a sealed arena
//   compaction.journal                       arenas to retire, while a compaction finishes
//   LOCK                                     the owning process's pid
//
// A key is found through the locator, an in-memory table from key hashes to
// arena numbers, so a lookup costs the same with one arena or a thousand.

import { BazilError, ErrorCodes, isBazilError } from '../errors/index.js';
import type { FileSystem, FileStat } from './file-system.js';
import { ActiveArena, DEFAULT_FLUSH_BYTES, type ArenaRecord, type SequencedRecord } from './active-arena.js';
import { SealedArena, deadPathOf, type VerifyProblem } from './sealed-arena.js';
import { prepareSeal, sealedName } from './seal.js';
import { KeyTable } from './key-table.js';
import {
  FORMAT_VERSION, FRAME_HEAD_LENGTH, FRAME_OVERHEAD, HEADER_LENGTH, ID_LENGTH, KEYTAB_ENTRY_LENGTH, KEY_LENGTH, toHex, validateKind,
} from './format.js';
import { writeFileDurably } from './dead-set.js';

export const DEFAULT_SEAL_BYTES = 64 * 1024 * 1024;
const ZERO_ID = Buffer.alloc(ID_LENGTH);
const JOURNAL = 'compaction.journal';
const LOCK = 'LOCK';

export interface ArenaSetOptions {
  fs: FileSystem;
  /** This process's writer id (32 bytes): appends go to its streams. */
  writer: Uint8Array;
  /** Seal an active arena once its records reach this many bytes. */
  sealBytes?: number;
  /** Buffer appends up to this many bytes before writing them out. */
  flushBytes?: number;
  /** Where recovery and maintenance messages go. */
  log?: (message: string) => void;
}

interface Entry {
  number: number;
  active: ActiveArena | null;
  sealed: SealedArena | null;
  kind: string;
  writer: string;
  firstSeq: bigint;
  /** While sealing: settles when its records are durable (before the seal is). */
  recordsDurable?: Promise<void>;
  /** While sealing: where the sealed file goes, once its identity is known. */
  sealedPath?: string;
}

export type KeyState = 'live' | 'deleted' | 'absent';

export interface ArenaSetStats {
  sealedArenas: number;
  activeArenas: number;
  records: number;
  liveRecords: number;
  deadRecords: number;
  /** Sum of file lengths. */
  fileBytes: number;
  /** Bytes actually allocated on disk (st_blocks × 512), which hole punching lowers. */
  diskBytes: number;
  locatorBytes: number;
}

export interface ArenaProblem extends VerifyProblem {
  path: string;
}

export interface PunchResult {
  punched: number;
  /** Keys not punched: absent, already deleted, or still in an active arena. */
  skipped: number;
  arenas: number;
}

export interface CompactionResult {
  retired: string[];
  copied: number;
  reclaimedBytes: number;
}

// Directories held open in this process, per file layer: the LOCK file's pid
// cannot tell two opens in one process apart. Keyed by the layer so a test
// that simulates a crash through a fault-injecting layer can reopen through
// the real one.
const lockedHere = new WeakMap<FileSystem, Set<string>>();

function heldBy(fs: FileSystem): Set<string> {
  let s = lockedHere.get(fs);
  if (!s) lockedHere.set(fs, (s = new Set()));
  return s;
}

export class ArenaSet {
  private readonly entries: (Entry | null)[] = [];
  private readonly locator = new KeyTable(1024);
  private readonly activeByStream = new Map<string, Entry>();
  private readonly pendingSeals = new Set<Promise<void>>();
  private readonly writerHex: string;
  private readonly sealBytes: number;
  private readonly flushBytes: number;
  private readonly log: (message: string) => void;
  private closed = false;
  private sealFailure: unknown = null;
  /** Records appended through this set since it opened, every kind and writer counted. */
  private appendCount = 0;
  /** How many of those a completed sync() covers (see durableAppends). */
  private durableCount = 0;

  private constructor(readonly dir: string, private readonly fs: FileSystem, options: ArenaSetOptions) {
    this.writerHex = toHex(options.writer);
    this.sealBytes = options.sealBytes ?? DEFAULT_SEAL_BYTES;
    this.flushBytes = options.flushBytes ?? DEFAULT_FLUSH_BYTES;
    this.log = options.log ?? (() => {});
  }

  /**
   * Opens (creating if needed) the arena set in `dir`: finishes an
   * interrupted compaction, removes temporary files, opens sealed arenas,
   * recovers active ones (cutting torn tails) and builds the locator.
   */
  static async open(dir: string, options: ArenaSetOptions): Promise<ArenaSet> {
    if (!(options.writer instanceof Uint8Array) || options.writer.length !== ID_LENGTH) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'writer id must be 32 bytes');
    }
    const fs = options.fs;
    fs.mkdirp(dir);
    const set = new ArenaSet(dir, fs, options);
    set.lock();
    try {
      await set.load();
    } catch (err) {
      set.closeAll();
      throw err;
    }
    return set;
  }

  private lock(): void {
    const path = `${this.dir}/${LOCK}`;
    if (heldBy(this.fs).has(path)) {
      throw new BazilError(ErrorCodes.LOCKED, `${this.dir} is already open in this process`, { path: this.dir });
    }
    if (this.fs.exists(path)) {
      const f = this.fs.open(path, 'r');
      const b = Buffer.alloc(32);
      const n = f.read(b, 0, 32, 0);
      f.close();
      const pid = Number.parseInt(b.subarray(0, n).toString('latin1'), 10);
      if (Number.isInteger(pid) && pid !== process.pid && processAlive(pid)) {
        throw new BazilError(ErrorCodes.LOCKED, `${this.dir} is in use by process ${pid}`, { path: this.dir, pid });
      }
      this.fs.unlink(path);
    }
    const f = this.fs.open(path, 'create');
    const pid = Buffer.from(String(process.pid), 'latin1');
    f.write(pid, 0, pid.length, 0);
    f.close();
    heldBy(this.fs).add(path);
  }

  private async load(): Promise<void> {
    const names = this.fs.readdir(this.dir);
    if (names.includes(JOURNAL)) await this.finishCompaction();
    const actives: ActiveArena[] = [];
    // Keys found by the recovery scans, so indexing needs no second read.
    const scannedKeys = new Map<ActiveArena, Uint8Array>();
    for (const name of this.fs.readdir(this.dir).sort()) {
      const path = `${this.dir}/${name}`;
      if (name.endsWith('.tmp')) {
        this.fs.unlink(path);
      } else if (name.endsWith('.arena')) {
        const sealed = SealedArena.open(this.fs, path);
        if (sealedName(sealed.identity) !== name) {
          sealed.close();
          throw new BazilError(ErrorCodes.IDENTITY_MISMATCH, `${path}: footer identity ${toHex(sealed.identity)} does not match the file name`, { path });
        }
        this.addSealed(sealed);
      } else if (name.endsWith('.active')) {
        if (this.fs.stat(path).size < HEADER_LENGTH) {
          // Creation wrote the header in one piece before any record, so a
          // shorter file never held an acknowledged record.
          this.log(`${path}: removing an active arena whose creation was cut short`);
          this.fs.unlink(path);
          continue;
        }
        const keys = new KeyCollector();
        const { arena, truncatedBytes, savedTail } = await ActiveArena.open(this.fs, path, this.flushBytes, (k, i) => keys.add(k, i));
        scannedKeys.set(arena, keys.bytes());
        if (savedTail !== null) {
          this.log(`${path}: a damaged record at offset ${arena.dataEnd} is followed by valid ones; cut ${truncatedBytes} bytes after ${arena.count} records and saved them in ${savedTail} [${ErrorCodes.CORRUPT_RECORD}]`);
        } else if (truncatedBytes > 0) {
          this.log(`${path}: cut ${truncatedBytes} bytes of torn tail after ${arena.count} records`);
        }
        actives.push(arena);
      }
    }
    // Walk each stream's arenas in sequence order. Seals finish out of order
    // (each waits only for its own records), so an active arena may sit
    // between sealed ones; it must continue exactly where the arena before
    // it ends, or its predecessor's records never all became durable and
    // none of its own was acknowledged: it is set aside as .orphan.
    actives.sort((a, b) => cmp(a.header.firstSeq, b.header.firstSeq));
    for (const a of actives) {
      const kind = a.header.kind;
      const writer = toHex(a.header.writer);
      const stream = streamOf(kind, writer);
      let before: Entry | null = null;
      let after = false;
      for (const e of this.entries) {
        if (!e || e.kind !== kind || e.writer !== writer) continue;
        if (e.firstSeq < a.header.firstSeq && (before === null || e.firstSeq > before.firstSeq)) before = e;
        if (e.firstSeq > a.header.firstSeq) after = true;
      }
      for (const b of actives) {
        if (b !== a && b.header.kind === kind && toHex(b.header.writer) === writer && b.header.firstSeq > a.header.firstSeq) after = true;
      }
      const expectSeq = before === null ? 1n : before.sealed ? before.sealed.footer.lastSeq + 1n : before.active!.nextSeq;
      if (a.header.firstSeq !== expectSeq) {
        this.log(`${a.path}: does not continue its stream (expected sequence ${expectSeq}); moved aside as .orphan`);
        a.close();
        this.fs.rename(a.path, `${a.path}.orphan`);
        continue;
      }
      if (a.count === 0) {
        a.close();
        if (after) {
          this.fs.unlink(a.path);
          continue;
        }
        // Keep an empty active arena: its file is there and will take appends.
        const reopened = (await ActiveArena.open(this.fs, a.path, this.flushBytes)).arena;
        this.activeByStream.set(stream, this.addActive(reopened));
        continue;
      }
      const entry = this.addActive(a, scannedKeys.get(a));
      if (after || a.dataEnd >= this.sealBytes) {
        await this.seal(entry);
      } else {
        this.activeByStream.set(stream, entry);
      }
    }
    await this.fs.syncDir(this.dir);
  }

  private addSealed(sealed: SealedArena): Entry {
    const entry: Entry = {
      number: this.entries.length, active: null, sealed,
      kind: sealed.kind, writer: toHex(sealed.header.writer), firstSeq: sealed.header.firstSeq,
    };
    this.entries.push(entry);
    const keytab = sealed.keyTable();
    this.locator.reserve(this.locator.size + sealed.count);
    for (let i = 0; i < sealed.count; i++) this.locator.insert(keytab, i * KEYTAB_ENTRY_LENGTH, entry.number, i);
    return entry;
  }

  private addActive(active: ActiveArena, keys?: Uint8Array): Entry {
    const entry: Entry = {
      number: this.entries.length, active, sealed: null,
      kind: active.header.kind, writer: toHex(active.header.writer), firstSeq: active.header.firstSeq,
    };
    this.entries.push(entry);
    if (active.count > 0) {
      this.locator.reserve(this.locator.size + active.count);
      for (let i = 0; i < active.count; i++) {
        if (keys) this.locator.insert(keys, i * KEY_LENGTH, entry.number, i);
        else this.locator.insert(active.recordAt(i).key, 0, entry.number, i);
      }
    }
    return entry;
  }

  private activeFor(kind: string, writerHex = this.writerHex): Entry {
    // Appends mostly go to one stream in a row; this spares building the stream name.
    const last = this.lastActive;
    if (last !== null && last.kind === kind && last.writer === writerHex) return last;
    const stream = streamOf(kind, writerHex);
    const existing = this.activeByStream.get(stream);
    if (existing) {
      this.lastActive = existing;
      return existing;
    }
    validateKind(kind);
    // The newest arena of the stream may still be sealing; it is in entries as active.
    let prevEntry: Entry | null = null;
    for (const e of this.entries) {
      if (e && e.kind === kind && e.writer === writerHex && (prevEntry === null || e.firstSeq > prevEntry.firstSeq)) prevEntry = e;
    }
    let firstSeq = 1n;
    let predecessor: Promise<void> | undefined;
    if (prevEntry?.sealed) {
      firstSeq = prevEntry.sealed.footer.lastSeq + 1n;
    } else if (prevEntry?.active) {
      if (!prevEntry.recordsDurable) throw new BazilError(ErrorCodes.IO, `stream ${stream} has an active arena that is not sealing`);
      firstSeq = prevEntry.active.nextSeq;
      predecessor = prevEntry.recordsDurable;
    }
    // An active arena's header names no predecessor (zeros): sealing writes
    // it, once the predecessor's identity is known.
    const writer = Buffer.from(writerHex, 'hex');
    const path = `${this.dir}/${kind}.${writerHex}.${firstSeq}.active`;
    const active = ActiveArena.create(this.fs, path, { version: FORMAT_VERSION, kind, writer, firstSeq, lastSeq: null, prev: ZERO_ID }, this.flushBytes);
    // No record here is acknowledged before all of the predecessor's are
    // durable, so the stream never has a gap after a crash.
    if (predecessor) active.predecessor = predecessor;
    const entry = this.addActive(active);
    this.activeByStream.set(stream, entry);
    this.lastActive = entry;
    return entry;
  }

  private readonly sealing = new Map<number, { identity: Promise<Buffer>; done: Promise<void> }>();
  /** The stream appended to last, while its arena takes appends. */
  private lastActive: Entry | null = null;

  /**
   * Appends a record to this writer's stream of `kind`; returns its
   * sequence number. Durable after sync(). `payloadHash`, SHA-256(payload),
   * saves hashing the payload when the caller has it (ActiveArena.append).
   */
  append(kind: string, type: number, key: Uint8Array, payload: Uint8Array, payloadHash?: Uint8Array): bigint {
    this.checkOpen();
    const entry = this.activeFor(kind);
    const ordinal = this.appendTo(entry, type, key, payload, payloadHash);
    return entry.firstSeq + BigInt(ordinal);
  }

  /**
   * Appends to an entry's active arena and indexes the key. A key may live
   * in several arenas (compaction copies), but only once per arena: the
   * perfect hash needs distinct keys.
   */
  private appendTo(entry: Entry, type: number, key: Uint8Array, payload: Uint8Array, payloadHash?: Uint8Array): number {
    checkKey(key);
    const active = entry.active!;
    if (this.locate(key) === LIVE && this.hitEntry === entry) {
      throw new BazilError(ErrorCodes.DUPLICATE_KEY, `key ${toHex(key)} is already in arena ${active.path}`, { path: active.path });
    }
    const ordinal = active.append(type, key, payload, payloadHash);
    this.appendCount++;
    // locate() left the key's hashes in the locator: no second hashing.
    this.locator.insertStarted(entry.number, ordinal);
    if (active.dataEnd >= this.sealBytes) void this.seal(entry).catch(() => {});
    return ordinal;
  }

  /**
   * Appends a record to another writer's stream of `kind` (records that
   * arrive from a peer one by one rather than as sealed arenas). `seq` must
   * be the stream's next sequence number, so a stream never has gaps or
   * forks; a record already held at `seq` with the same key is a no-op.
   */
  appendAt(kind: string, writer: Uint8Array, seq: bigint, type: number, key: Uint8Array, payload: Uint8Array): void {
    this.checkOpen();
    if (!(writer instanceof Uint8Array) || writer.length !== ID_LENGTH) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'writer id must be 32 bytes');
    }
    const writerHex = toHex(writer);
    const next = this.nextSeq(kind, writer);
    if (seq < next) {
      const held = this.recordAt(kind, writer, seq);
      if (held && Buffer.from(held.key).equals(key)) return;
      throw new BazilError(ErrorCodes.CONFLICT, `writer ${writerHex} already has a different record at sequence ${seq} of ${kind}`, { writer: writerHex, seq: Number(seq) });
    }
    if (seq > next) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, `writer ${writerHex}'s ${kind} stream continues at ${next}, not ${seq}`, { writer: writerHex, seq: Number(seq), next: Number(next) });
    }
    this.appendTo(this.activeFor(kind, writerHex), type, key, payload);
  }

  /** The record at `seq` of a writer's stream, if held and live. */
  recordAt(kind: string, writer: Uint8Array, seq: bigint): SequencedRecord | undefined {
    for (const r of this.records(kind, writer, seq, seq)) return r;
    return undefined;
  }

  /**
   * Seals the arena of `entry` (in the background when called from
   * append): its stream's next append starts a new active arena at once,
   * whose records are acknowledged only after this seal is durable.
   */
  private seal(entry: Entry): Promise<void> {
    const already = this.sealing.get(entry.number);
    if (already) return already.done;
    const active = entry.active!;
    const stream = streamOf(entry.kind, entry.writer);
    if (this.activeByStream.get(stream) === entry) this.activeByStream.delete(stream);
    if (this.lastActive === entry) this.lastActive = null;
    // The stream's previous arena: its identity goes into this one's header.
    let prevIdentity: Promise<Buffer> = Promise.resolve(ZERO_ID);
    let prevFirst = -1n;
    for (const e of this.entries) {
      if (!e || e === entry || e.kind !== entry.kind || e.writer !== entry.writer || e.firstSeq >= entry.firstSeq || e.firstSeq <= prevFirst) continue;
      prevFirst = e.firstSeq;
      prevIdentity = e.sealed ? Promise.resolve(e.sealed.identity) : (this.sealing.get(e.number)?.identity ?? Promise.resolve(ZERO_ID));
    }
    // Syncing the records first lets sync() and the next arena go on while
    // the seal section is computed.
    entry.recordsDurable = active.sync();
    entry.recordsDurable.catch(() => {});
    let settleIdentity!: (id: Buffer) => void;
    let failIdentity!: (err: unknown) => void;
    const identity = new Promise<Buffer>((resolve, reject) => {
      settleIdentity = resolve;
      failIdentity = reject;
    });
    identity.catch(() => {});
    const done = (async (): Promise<void> => {
      let prepared;
      try {
        prepared = await prepareSeal(this.fs, active, prevIdentity);
      } catch (err) {
        failIdentity(err);
        throw err;
      }
      settleIdentity(prepared.identity);
      entry.sealedPath = prepared.path;
      await entry.recordsDurable;
      await prepared.commit();
      const sealed = SealedArena.open(this.fs, prepared.path);
      sealed.setOffsetsByOrdinal(active.frameOffsets().slice());
      entry.sealed = sealed;
      entry.active = null;
      entry.recordsDurable = undefined;
      active.close();
    })();
    const tracked = done.catch((err: unknown) => {
      this.sealFailure = err;
      throw err;
    }).finally(() => {
      this.sealing.delete(entry.number);
      this.pendingSeals.delete(tracked);
    });
    tracked.catch(() => {});
    this.sealing.set(entry.number, { identity, done: tracked });
    this.pendingSeals.add(tracked);
    return tracked;
  }

  /** Seals the active arenas of `kind` (or every kind) now, if they hold records. */
  async sealNow(kind?: string): Promise<string[]> {
    this.checkOpen();
    const sealedPaths: string[] = [];
    const waits: Promise<void>[] = [];
    for (const entry of [...this.activeByStream.values()]) {
      if (kind !== undefined && entry.kind !== kind) continue;
      if (entry.active!.count === 0) continue;
      waits.push(this.seal(entry).then(() => { sealedPaths.push(entry.sealed!.path); }));
    }
    await Promise.all([...waits, ...this.pendingSeals]);
    return sealedPaths;
  }

  /** This set's own writer id: append() continues its streams. */
  get writer(): Buffer {
    return Buffer.from(this.writerHex, 'hex');
  }

  /** Resolves when every seal started so far has finished (sealed arenas renamed into place). */
  async waitForSeals(): Promise<void> {
    while (this.pendingSeals.size > 0) await Promise.all([...this.pendingSeals]);
  }

  /**
   * Hands every active arena's buffered records to the file system without
   * waiting for the device: they then survive a crash of this process,
   * though not a power cut (sync() is for that).
   */
  flush(): void {
    this.checkOpen();
    for (const entry of this.activeByStream.values()) entry.active!.flush();
  }

  /**
   * Records appended through this set since it opened (every kind and
   * writer): a caller notes it once something it will name is appended,
   * and waits until durableAppends reaches it (the content rule of
   * src/volume/write-batch.ts).
   */
  get appends(): number {
    return this.appendCount;
  }

  /**
   * How many of `appends` are known durable: the count at the start of the
   * latest sync() that completed. Only ever rises; a record appended while
   * a sync runs is not covered by it, even if that sync ends later.
   */
  get durableAppends(): number {
    return this.durableCount;
  }

  /**
   * Resolves once every record appended before the call is durable,
   * including arenas being sealed. Concurrent callers share fsyncs.
   */
  async sync(): Promise<void> {
    this.checkOpen();
    // Each arena's sync below hands its buffered records to the file in
    // this same synchronous loop, so it covers exactly what was appended
    // before this line.
    const covers = this.appendCount;
    // Arenas being sealed count once their records are durable; the rest of
    // the seal (index, rename) finishes in the background.
    const waits: Promise<unknown>[] = [];
    for (const e of this.entries) if (e?.recordsDurable) waits.push(e.recordsDurable);
    for (const entry of this.activeByStream.values()) waits.push(entry.active!.sync());
    await Promise.all(waits);
    if (this.sealFailure !== null) {
      throw new BazilError(ErrorCodes.IO, 'sealing an arena failed; reopen the arena set to recover', { dir: this.dir }, this.sealFailure);
    }
    if (covers > this.durableCount) this.durableCount = covers;
  }

  /** Whether `key` is stored and live. */
  has(key: Uint8Array): boolean {
    return this.state(key) === 'live';
  }

  state(key: Uint8Array): KeyState {
    checkKey(key);
    const found = this.locate(key);
    return found === LIVE ? 'live' : found === DELETED ? 'deleted' : 'absent';
  }

  // Where locate() found the live record; valid until the next locate().
  private hitEntry: Entry | null = null;
  private hitOrdinal = 0;

  /**
   * Finds `key` through the locator, which remembers each key's arena and
   * record ordinal: a hit costs one table probe and one key comparison,
   * with no perfect-hash evaluation. Sets hitEntry/hitOrdinal when LIVE.
   */
  private locate(key: Uint8Array): number {
    const loc = this.locator;
    loc.start(key, 0);
    const first = loc.next();
    if (first < 0) return ABSENT;
    const firstOrdinal = loc.aux;
    const second = loc.next();
    if (second < 0) return this.check(this.entries[first], key, firstOrdinal);
    // Several arenas may hold the key (a copy made by compaction, or a
    // hash collision): gather the candidates before checking any.
    const found = [first, firstOrdinal, second, loc.aux];
    for (let n = loc.next(); n >= 0; n = loc.next()) found.push(n, loc.aux);
    let deleted = false;
    for (let i = 0; i < found.length; i += 2) {
      const r = this.check(this.entries[found[i]], key, found[i + 1]);
      if (r === LIVE) return LIVE;
      if (r === DELETED) deleted = true;
    }
    return deleted ? DELETED : ABSENT;
  }

  private check(e: Entry | null, key: Uint8Array, ordinal: number): number {
    if (!e) return ABSENT;
    if (e.active) {
      if (!e.active.keyMatchesAt(ordinal, key, 0)) return ABSENT;
    } else {
      const sealed = e.sealed!;
      if (!sealed.keyMatchesAt(ordinal, key, 0)) return ABSENT;
      if (sealed.isDeadOrdinal(ordinal)) return DELETED;
    }
    this.hitEntry = e;
    this.hitOrdinal = ordinal;
    return LIVE;
  }

  /** Every arena that holds `key` (live or punched), with the record's ordinal there. */
  private holders(key: Uint8Array): { entry: Entry; ordinal: number }[] {
    checkKey(key);
    const out: { entry: Entry; ordinal: number }[] = [];
    const pairs: number[] = [];
    this.locator.start(key, 0);
    for (let n = this.locator.next(); n >= 0; n = this.locator.next()) pairs.push(n, this.locator.aux);
    for (let i = 0; i < pairs.length; i += 2) {
      const entry = this.entries[pairs[i]];
      const ordinal = pairs[i + 1];
      if (!entry) continue;
      const here = entry.active ? entry.active.keyMatchesAt(ordinal, key, 0) : entry.sealed!.keyMatchesAt(ordinal, key, 0);
      if (here) out.push({ entry, ordinal });
    }
    return out;
  }

  /**
   * The record stored under `key`, checksum verified; undefined when
   * absent. Throws BAZIL_DELETED when its only copies were punched.
   */
  get(key: Uint8Array): ArenaRecord | undefined {
    this.checkOpen();
    checkKey(key);
    const r = this.locate(key);
    if (r === LIVE) return this.hitRecord();
    if (r === DELETED) {
      throw new BazilError(ErrorCodes.DELETED, `key ${toHex(key)} was deleted`, { key: toHex(key) });
    }
    return undefined;
  }

  private hitRecord(): ArenaRecord {
    const e = this.hitEntry!;
    return e.active ? e.active.recordAt(this.hitOrdinal) : e.sealed!.recordAtOrdinal(this.hitOrdinal);
  }

  /**
   * The room readFrameInto needs for `key`'s record (its frame: payload and
   * framing), or -1 when absent; throws BAZIL_DELETED like get().
   */
  frameLength(key: Uint8Array): number {
    this.checkOpen();
    checkKey(key);
    const r = this.locate(key);
    if (r === DELETED) throw new BazilError(ErrorCodes.DELETED, `key ${toHex(key)} was deleted`, { key: toHex(key) });
    if (r !== LIVE) return -1;
    const e = this.hitEntry!;
    if (e.active) return e.active.frameEnd(this.hitOrdinal) - e.active.frameOffset(this.hitOrdinal);
    return e.sealed!.spanOfOrdinal(this.hitOrdinal).length;
  }

  /**
   * Reads `key`'s record into `dest` at `at` without allocating, checksum
   * verified, and returns its payload's length (-1 when absent): the
   * payload is at `dest[at + FRAME_PAYLOAD_OFFSET, ...)`, and the rest of
   * the frame's room (frameLength bytes from `at`) is overwritten with the
   * framing. Sealed records are read with pread, never through the map, so
   * a pass over all the content does not make it resident.
   */
  readFrameInto(key: Uint8Array, dest: Uint8Array, at: number): number {
    this.checkOpen();
    checkKey(key);
    const r = this.locate(key);
    if (r === DELETED) throw new BazilError(ErrorCodes.DELETED, `key ${toHex(key)} was deleted`, { key: toHex(key) });
    if (r !== LIVE) return -1;
    const e = this.hitEntry!;
    if (e.sealed) return e.sealed.readFrameInto(this.hitOrdinal, dest, at);
    // A record of the active arena is in its pending buffer or a page away: copied as it comes.
    const rec = e.active!.recordAt(this.hitOrdinal);
    // The same room as a sealed frame needs, so that a caller's layout does not depend on where the record is.
    if (at < 0 || at + FRAME_OVERHEAD + rec.payload.length > dest.length) throw new RangeError(`a record of ${rec.payload.length} bytes does not fit at ${at} of ${dest.length}`);
    dest.set(rec.payload, at + FRAME_HEAD_LENGTH);
    return rec.payload.length;
  }

  /**
   * Where `key`'s payload lies in its arena's file, for a reader on another
   * thread of this process (the content read-ahead's worker): the file's
   * path as that thread can open it (FileSystem.localPath), the payload's
   * position and length. null when the record is absent, deleted, still in
   * an active arena's write buffer, or its file system names no local path
   * (the fault-injecting one): the caller then reads through this set. The
   * record's checksum is not checked on that path, and the file may have
   * been sealed or compacted away by the time it is read, so the caller
   * must authenticate what it reads (a chunk's GCM tag does) and fall back
   * to this set when that fails.
   */
  payloadSpan(key: Uint8Array): { path: string; position: number; length: number } | null {
    this.checkOpen();
    checkKey(key);
    if (this.locate(key) !== LIVE) return null;
    const e = this.hitEntry!;
    const span = e.sealed ? e.sealed.spanOfOrdinal(this.hitOrdinal) : e.active!.writtenSpan(this.hitOrdinal);
    if (span === null || span.length < FRAME_OVERHEAD) return null;
    const path = this.fs.localPath?.(e.sealed ? e.sealed.path : e.active!.path) ?? null;
    if (path === null) return null;
    return { path, position: span.offset + FRAME_HEAD_LENGTH, length: span.length - FRAME_OVERHEAD };
  }

  /** Batched get: one entry per key, undefined for absent or deleted keys. */
  getMany(keys: readonly Uint8Array[]): (ArenaRecord | undefined)[] {
    this.checkOpen();
    const out = new Array<ArenaRecord | undefined>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      checkKey(key);
      out[i] = this.locate(key) === LIVE ? this.hitRecord() : undefined;
    }
    return out;
  }

  /** The writers that have arenas of `kind`. */
  writers(kind: string): Buffer[] {
    const seen = new Set<string>();
    for (const e of this.entries) if (e && e.kind === kind) seen.add(e.writer);
    return [...seen].sort().map((h) => Buffer.from(h, 'hex'));
  }

  /**
   * A writer's records of `kind` in append order, from sequence `fromSeq`
   * up to `toSeq` inclusive. Punched records are skipped.
   */
  *records(kind: string, writer: Uint8Array, fromSeq = 1n, toSeq?: bigint): Generator<SequencedRecord> {
    this.checkOpen();
    const w = toHex(writer);
    const mine = this.entries.filter((e): e is Entry => e !== null && e.kind === kind && e.writer === w)
      .sort((a, b) => cmp(a.firstSeq, b.firstSeq));
    for (const e of mine) {
      if (e.sealed) {
        if (e.sealed.footer.lastSeq < fromSeq) continue;
        if (toSeq !== undefined && e.firstSeq > toSeq) return;
        yield* e.sealed.records(fromSeq, toSeq);
      } else if (e.active) {
        if (toSeq !== undefined && e.firstSeq > toSeq) return;
        const last = toSeq ?? e.firstSeq + BigInt(e.active.count) - 1n;
        yield* this.activeRecords(e, fromSeq > e.firstSeq ? fromSeq : e.firstSeq, last);
      }
    }
  }

  /**
   * An active arena's records read one at a time through whichever form
   * the entry has at that moment: a consumer that awaits between records
   * can outlive the active arena, whose seal closes it and leaves the
   * sealed arena in its place.
   */
  private *activeRecords(e: Entry, fromSeq: bigint, lastSeq: bigint): Generator<SequencedRecord> {
    for (let seq = fromSeq; seq <= lastSeq; seq++) {
      if (e.active) {
        const ordinal = Number(seq - e.firstSeq);
        if (ordinal >= e.active.count) return;
        yield { ...e.active.recordAt(ordinal), seq };
      } else {
        if (e.sealed) yield* e.sealed.records(seq, lastSeq);
        return;
      }
    }
  }

  /** The next sequence number of a writer's stream of `kind` (this set's own writer by default). */
  nextSeq(kind: string, writer?: Uint8Array): bigint {
    const writerHex = writer === undefined ? this.writerHex : toHex(writer);
    let next = 1n;
    for (const e of this.entries) {
      if (!e || e.kind !== kind || e.writer !== writerHex) continue;
      const end = e.sealed ? e.sealed.footer.lastSeq + 1n : e.active!.nextSeq;
      if (end > next) next = end;
    }
    return next;
  }

  /**
   * Frees the space of dead records: marks them in each arena's deleted
   * list (made durable first), then punches holes over them, merging
   * neighbouring dead records so whole blocks are released.
   */
  async punch(keys: readonly Uint8Array[]): Promise<PunchResult> {
    this.checkOpen();
    const bySealed = new Map<Entry, Set<number>>();
    let skipped = 0;
    for (const key of keys) {
      let found = false;
      for (const { entry, ordinal } of this.holders(key)) {
        if (!entry.sealed || entry.sealed.isDeadOrdinal(ordinal)) continue;
        let set = bySealed.get(entry);
        if (!set) bySealed.set(entry, (set = new Set()));
        set.add(ordinal);
        found = true;
      }
      if (!found) skipped++;
    }
    let punched = 0;
    for (const [e, ordinals] of bySealed) {
      const arena = e.sealed!;
      const spans = [...ordinals].sort((x, y) => x - y).map((o) => arena.spanOfOrdinal(o));
      const added = await arena.markDead(this.fs, [...ordinals].map((o) => arena.slotOfOrdinal(o)));
      punched += added.length;
      // Sealed arenas are opened read-only; punching needs a writable descriptor.
      const file = this.fs.open(arena.path, 'rw');
      try {
        let start = -1;
        let end = -1;
        for (const span of spans) {
          if (span.offset === end) {
            end += span.length;
            continue;
          }
          if (start >= 0) file.punchHole(start, end - start);
          start = span.offset;
          end = span.offset + span.length;
        }
        if (start >= 0) file.punchHole(start, end - start);
        await file.sync();
      } finally {
        file.close();
      }
    }
    return { punched, skipped, arenas: bySealed.size };
  }

  /**
   * Copies the live records of sealed arenas whose live fraction is below
   * `maxLiveness` into a new arena of this writer, then retires the old
   * arenas together: a journal naming them is made durable before any is
   * removed, and open() finishes the removal after a crash.
   */
  async compact(options: { maxLiveness?: number; kind?: string } = {}): Promise<CompactionResult> {
    this.checkOpen();
    const maxLiveness = options.maxLiveness ?? 0.5;
    // The newest arena of each of this writer's streams stays, however dead:
    // it holds the stream's last sequence number, which the next arena continues.
    const newest = new Set<Entry>();
    for (const e of this.entries) {
      if (!e || e.writer !== this.writerHex) continue;
      const n = this.entries.find((x) => x && x.kind === e.kind && x.writer === e.writer && x.firstSeq > e.firstSeq);
      if (!n) newest.add(e);
    }
    const victims = this.entries.filter((e): e is Entry =>
      e !== null && e.sealed !== null && !newest.has(e) && (options.kind === undefined || e.kind === options.kind) &&
      e.sealed.liveCount / e.sealed.count < maxLiveness);
    if (victims.length === 0) return { retired: [], copied: 0, reclaimedBytes: 0 };
    const victimSet = new Set(victims);
    let copied = 0;
    const kinds = new Set<string>();
    for (const v of victims) {
      const arena = v.sealed!;
      for (let i = 0; i < arena.count; i++) {
        if (arena.isDeadOrdinal(i)) continue;
        const key = arena.keyAt(i);
        // A live copy outside the victims (an earlier compaction that was interrupted, say) already keeps it.
        if (this.holders(key).some(({ entry, ordinal }) => !victimSet.has(entry) && !(entry.sealed?.isDeadOrdinal(ordinal) ?? false))) continue;
        const rec = arena.recordAtOrdinal(i);
        this.appendTo(this.activeFor(v.kind), rec.type, rec.key, rec.payload);
        kinds.add(v.kind);
        copied++;
      }
    }
    for (const kind of kinds) await this.sealNow(kind);
    await this.sync();
    let reclaimedBytes = 0;
    for (const v of victims) reclaimedBytes += this.stat(v.sealed!.path).blocks * 512;
    const names = victims.map((v) => sealedName(v.sealed!.identity));
    await writeFileDurably(this.fs, `${this.dir}/${JOURNAL}`, Buffer.from(JSON.stringify({ retire: names })));
    for (const v of victims) {
      const arena = v.sealed!;
      for (let i = 0; i < arena.count; i++) this.locator.remove(arena.keyAt(i), 0, v.number);
      arena.close();
      this.entries[v.number] = null;
    }
    await this.finishCompaction();
    return { retired: names, copied, reclaimedBytes };
  }

  private async finishCompaction(): Promise<void> {
    const journalPath = `${this.dir}/${JOURNAL}`;
    const f = this.fs.open(journalPath, 'r');
    let text: string;
    try {
      const b = Buffer.alloc(f.size());
      f.read(b, 0, b.length, 0);
      text = b.toString('utf8');
    } finally {
      f.close();
    }
    let names: unknown;
    try {
      names = (JSON.parse(text) as { retire?: unknown }).retire;
    } catch (err) {
      throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${journalPath}: unreadable compaction journal`, { path: journalPath }, err);
    }
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string' && /^[0-9a-f]{64}\.arena$/.test(n))) {
      throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${journalPath}: malformed compaction journal`, { path: journalPath });
    }
    for (const name of names as string[]) {
      for (const p of [`${this.dir}/${name}`, deadPathOf(`${this.dir}/${name}`)]) {
        if (this.fs.exists(p)) this.fs.unlink(p);
      }
    }
    await this.fs.syncDir(this.dir);
    this.fs.unlink(journalPath);
    await this.fs.syncDir(this.dir);
  }

  /**
   * Takes a sealed arena made elsewhere (a peer's): verifies it whole,
   * then copies it in unchanged under its identity. An arena already held
   * is accepted as is; one that claims sequence numbers of a writer that a
   * different held arena already covers is refused.
   */
  async adopt(sourcePath: string): Promise<{ identity: Buffer; path: string; added: boolean }> {
    this.checkOpen();
    const source = SealedArena.open(this.fs, sourcePath, { ignoreDead: true });
    try {
      const problems = source.verify();
      if (problems.length > 0) {
        const p = problems[0];
        throw new BazilError(p.code === ErrorCodes.IDENTITY_MISMATCH ? ErrorCodes.IDENTITY_MISMATCH : ErrorCodes.CORRUPT_ARENA,
          `${sourcePath}: refused: ${p.message} (offset ${p.offset}${problems.length > 1 ? `, and ${problems.length - 1} more problems` : ''})`,
          { path: sourcePath, offset: p.offset });
      }
      const name = sealedName(source.identity);
      const path = `${this.dir}/${name}`;
      const held = this.entries.find((e) => e?.sealed?.identity.equals(source.identity));
      if (held) return { identity: source.identity, path, added: false };
      const w = toHex(source.header.writer);
      for (const e of this.entries) {
        if (!e || e.kind !== source.kind || e.writer !== w) continue;
        const last = e.sealed ? e.sealed.footer.lastSeq : e.active!.nextSeq - 1n;
        if (e.firstSeq <= source.footer.lastSeq && source.header.firstSeq <= last) {
          throw new BazilError(ErrorCodes.CONFLICT, `${sourcePath}: sequence numbers ${source.header.firstSeq}..${source.footer.lastSeq} of writer ${w} overlap an arena already held`, { path: sourcePath, writer: w });
        }
      }
      const tmp = `${path}.tmp`;
      if (this.fs.exists(tmp)) this.fs.unlink(tmp);
      const out = this.fs.open(tmp, 'create');
      try {
        const src = source.fileHandle();
        const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
        for (let at = 0; at < source.fileSize;) {
          const n = src.read(buf, 0, Math.min(buf.length, source.fileSize - at), at);
          if (n <= 0) throw new BazilError(ErrorCodes.IO, `${sourcePath}: file shrank while adopting`, { path: sourcePath });
          out.write(buf, 0, n, at);
          at += n;
        }
        await out.sync();
      } finally {
        out.close();
      }
      this.fs.rename(tmp, path);
      await this.fs.syncDir(this.dir);
      this.addSealed(SealedArena.open(this.fs, path));
      return { identity: source.identity, path, added: true };
    } finally {
      source.close();
    }
  }

  /** Checks every arena; problems are listed with file and offset. */
  verify(): ArenaProblem[] {
    this.checkOpen();
    const problems: ArenaProblem[] = [];
    for (const e of this.entries) {
      if (!e) continue;
      if (e.sealed) {
        for (const p of e.sealed.verify()) problems.push({ ...p, path: e.sealed.path });
      } else if (e.active) {
        const a = e.active;
        for (let i = 0; i < a.count; i++) {
          try {
            a.recordAt(i);
          } catch (err) {
            if (!isBazilError(err)) throw err;
            problems.push({ code: err.code, message: err.message, offset: a.frameOffset(i), path: a.path });
          }
        }
      }
    }
    return problems;
  }

  /** Paths of the sealed arenas, in no particular order. */
  sealedPaths(): string[] {
    return this.entries.filter((e): e is Entry => e?.sealed != null).map((e) => e.sealed!.path);
  }

  stats(): ArenaSetStats {
    const s: ArenaSetStats = { sealedArenas: 0, activeArenas: 0, records: 0, liveRecords: 0, deadRecords: 0, fileBytes: 0, diskBytes: 0, locatorBytes: this.locator.byteLength };
    for (const e of this.entries) {
      if (!e) continue;
      const st = this.statEntry(e);
      s.fileBytes += st.size;
      s.diskBytes += st.blocks * 512;
      if (e.sealed) {
        s.sealedArenas++;
        s.records += e.sealed.count;
        s.deadRecords += e.sealed.dead.count;
        s.liveRecords += e.sealed.liveCount;
      } else {
        s.activeArenas++;
        s.records += e.active!.count;
        s.liveRecords += e.active!.count;
      }
    }
    return s;
  }

  private stat(path: string): FileStat {
    return this.fs.stat(path);
  }

  /** st of an entry's file; a seal may have renamed it a moment ago. */
  private statEntry(e: Entry): FileStat {
    if (e.sealed) return this.stat(e.sealed.path);
    try {
      return this.stat(e.active!.path);
    } catch (err) {
      if (e.sealedPath === undefined || !isBazilError(err, ErrorCodes.NOT_FOUND)) throw err;
      return this.stat(e.sealedPath);
    }
  }

  /** Waits for background seals, syncs, and closes every arena. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.sync();
    } finally {
      // Whatever happened, no seal may still be running when files close:
      // it would rename files behind the next owner's back.
      while (this.pendingSeals.size > 0) await Promise.allSettled([...this.pendingSeals]);
      this.closeAll();
    }
  }

  private closeAll(): void {
    this.closed = true;
    for (const e of this.entries) {
      e?.active?.close();
      e?.sealed?.close();
    }
    const lockPath = `${this.dir}/${LOCK}`;
    if (heldBy(this.fs).delete(lockPath)) {
      try {
        this.fs.unlink(lockPath);
      } catch {
        // A lock file that cannot be removed is stale at the next open.
      }
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new BazilError(ErrorCodes.CLOSED, `arena set ${this.dir} is closed`, { path: this.dir });
  }
}

/** Packs the keys a recovery scan reports into one buffer. */
class KeyCollector {
  private buf = Buffer.allocUnsafe(32 * 1024);
  private count = 0;

  add(key: Uint8Array, ordinal: number): void {
    const need = (ordinal + 1) * KEY_LENGTH;
    if (need > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.count * KEY_LENGTH);
      this.buf = bigger;
    }
    this.buf.set(key, ordinal * KEY_LENGTH);
    this.count = ordinal + 1;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.count * KEY_LENGTH);
  }
}

// Outcomes of locate().
const ABSENT = 0;
const LIVE = 1;
/** Where readFrameInto puts a record's payload, from the offset it was given. */
export const FRAME_PAYLOAD_OFFSET = FRAME_HEAD_LENGTH;
const DELETED = 2;

function streamOf(kind: string, writerHex: string): string {
  return `${kind}.${writerHex}`;
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `keys are ${KEY_LENGTH} bytes`);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

