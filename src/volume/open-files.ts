// The open-file table: one shared state per open inode, whatever the number
// of handles on it, holding the writes not yet turned into events.
//
// A file's content while open is its base (a manifest and how many of its
// bytes still count: a truncate cuts them off) overlaid with dirty pages:
// fixed-size pages of the new content in memory, each filled from the base
// when first written, so a page is always whole and reads need no merging.
// Every write, truncate and read changes or reads this state synchronously,
// so every handle and every reader of the volume sees a write as soon as it
// returns, with no locks.
//
// A splice (src/cas/splice.ts: the pages chunked, sealed and appended to the
// content arenas, unsynced; an append goes through the seal workers,
// src/cas/append-splice.ts) turns pages into a new base. It runs in slices,
// so the pages it takes are frozen first: new writes go to fresh pages on
// top, reads fall through live pages, then frozen ones, then the base. A
// flush splices and then commits one event. A spill is the same splice
// without an event, started in the background past SPILL_FILE_BYTES of live
// pages in a file or SPILL_VOLUME_BYTES in the table, so memory stays
// bounded and a sequential write of a big file streams into the content
// store as it is written. Spilled objects are content-addressed and named by
// no event until a flush names them; a crash leaves them unreferenced for
// garbage collection, and no temporary name ever exists.

import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { ContentStore } from '../cas/content-store.js';
import { decodeManifest, encodeManifest, type Manifest } from '../cas/manifest.js';
import { ManifestReader, spliceManifestAsync, type ByteRange } from '../cas/splice.js';
import { spliceAppend } from '../cas/append-splice.js';
import type { SetContentEvent, TruncateEvent } from '../log/event.js';
import type { Attrs } from '../projection/index.js';
import { ReadAhead } from './read-ahead.js';

/** Bytes per dirty page: about half an average chunk, so a small write re-chunks little. */
export const PAGE_BYTES = 32 * 1024;
/** Live dirty bytes of one file past which it spills into the content store (writers wait at twice this). */
export const SPILL_FILE_BYTES = 16 * 1024 * 1024;
/** Dirty bytes of all open files past which the largest spills (writers wait at twice this). */
export const SPILL_VOLUME_BYTES = 64 * 1024 * 1024;
/**
 * Freed pages kept for reuse: a spill's worth (16 MiB), so a streaming
 * writer refills the pages its last spill freed instead of allocating
 * (fresh buffers count as external memory and bring on garbage collections).
 */
const FREE_PAGES_KEPT = SPILL_FILE_BYTES / PAGE_BYTES;
/** Live bytes of one file at which the seal workers are started, ahead of its first spill (small files never need them). */
const WARM_SEAL_BYTES = 256 * 1024;
/** The largest file size (ext4's with 4 KiB blocks, 16 TiB): beyond it, EFBIG. */
export const MAX_FILE_SIZE = 2 ** 44;

/** What a file's content is in the log (or will be once a commit in flight lands). */
interface Committed {
  manifest: Manifest | null;
  valid: number;
  size: number;
}

/** The event that makes a file's state durable. */
export interface CommitPlan {
  event: SetContentEvent | TruncateEvent;
}

/** Pages being spliced into a new base, read-only meanwhile, with the file size they were taken at. */
interface Frozen {
  pages: Map<number, Buffer>;
  size: number;
  /** The base's valid length when they were taken. */
  baseValid: number;
}

export class OpenFile {
  /** Open handles, plus internal users (a path truncate). */
  users = 0;
  private base: Manifest | null;
  private baseValid: number;
  private fileSize: number;
  /** Pages written since the last splice began. */
  private pages = new Map<number, Buffer>();
  /** Pages a splice in progress is turning into the next base; reads fall through to them. */
  private frozen: Frozen | null = null;
  /** The lowest size a truncate set while a splice ran: below the live pages, bytes from there on read as zeros. */
  private cut = Infinity;
  /** The splice in progress; splices of one file run one at a time. */
  private splicing: Promise<unknown> = Promise.resolve();
  private spillsPending = 0;
  /** Serialises flushes: each takes its plan and enqueues its event before the next begins. */
  private flushes: Promise<unknown> = Promise.resolve();
  private committed: Committed | null;
  /** When the file was last changed through the table, in ns; shown until the change is committed. */
  private changedNs = 0n;
  private commitsInFlight = 0;
  private lastCommit: Promise<void> = Promise.resolve();
  private readonly reader: ManifestReader;
  /** Made on the first read through a handle (read-ahead.ts). */
  private ahead: ReadAhead | null = null;

  constructor(readonly id: Buffer, attrs: Attrs, private readonly table: OpenFileTable) {
    this.base = attrs.manifest === null ? null : decodeManifest(attrs.manifest);
    this.fileSize = attrs.size;
    this.baseValid = Math.min(attrs.size, this.base?.size ?? 0);
    this.committed = { manifest: this.base, valid: this.baseValid, size: this.fileSize };
    this.reader = new ManifestReader(table.store);
  }

  get size(): number {
    return this.fileSize;
  }

  /** Bytes of dirty pages held, frozen ones included. */
  get dirtyBytes(): number {
    return (this.pages.size + (this.frozen?.pages.size ?? 0)) * PAGE_BYTES;
  }

  /** Bytes of pages a new splice would take. */
  get liveBytes(): number {
    return this.pages.size * PAGE_BYTES;
  }

  /** True from the moment a spill is asked for until it is done, so callers never ask twice for the same pages. */
  get isSplicing(): boolean {
    return this.spillsPending > 0;
  }

  /** Resolves when the splices started so far are done (or failed). */
  spliceDone(): Promise<unknown> {
    return this.splicing;
  }

  /** True while the file differs from its projection: unflushed changes, or a commit not yet projected. */
  get modified(): boolean {
    return this.commitsInFlight > 0 || !this.isCommitted();
  }

  /** The projection's attributes with this file's live size and times. */
  overlay(attrs: Attrs): Attrs {
    // An unlinked file's commits are skipped, so only this state knows its size and times.
    if (!this.modified && attrs.nlink > 0) return attrs;
    return { ...attrs, size: this.fileSize, mtime: this.changedNs, ctime: this.changedNs };
  }

  /** Bytes [offset, offset + length), short at the end of the file. */
  read(offset: number, length: number): Buffer {
    const end = Math.min(this.fileSize, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const out = Buffer.alloc(end - offset);
    this.readLayers(this.pages, offset, end, out, offset, (at, to, o) => this.readLower(at, to, out, o));
    return out;
  }

  /** Bytes [offset, offset + out.length) into `out`, short at the end of the file; returns the count. */
  readInto(out: Buffer, offset: number): number {
    const end = Math.min(this.fileSize, offset + out.length);
    if (offset >= end) return 0;
    // A clean file's range that was read ahead is copied straight from the
    // read-ahead's slots, without walking the layers and the manifest.
    if (this.ahead !== null && this.pages.size === 0 && this.frozen === null && end <= this.baseValid && this.ahead.copyReady(this.base, out, offset, end)) return end - offset;
    // No zero fill first: the layers below write every byte, zeros where
    // they hold none, and a fill of the whole buffer cost as much as the copy.
    this.readLayers(this.pages, offset, end, out, offset, (at, to, o) => this.readLower(at, to, out, o));
    return end - offset;
  }

  /** Follows a handle's reads for read-ahead (read-ahead.ts); call before readInto. */
  beforeRead(offset: number, length: number): void {
    if (this.ahead === null) {
      const ahead = new ReadAhead(this.table.store);
      this.ahead = ahead;
      this.reader.readAhead = (id) => ahead.plainOf(id);
    }
    this.ahead.before(this.base, Math.min(this.baseValid, this.fileSize), offset, length);
  }

  /** Writes `data` at `offset`, growing the file (with zeros between) as needed. */
  write(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    const end = offset + data.length;
    for (let at = offset; at < end;) {
      const index = Math.floor(at / PAGE_BYTES);
      const pageStart = index * PAGE_BYTES;
      const to = Math.min(end, pageStart + PAGE_BYTES);
      const page = this.pageFor(index, at === pageStart && to === pageStart + PAGE_BYTES);
      page.set(data.subarray(at - offset, to - offset), at - pageStart);
      at = to;
    }
    if (end > this.fileSize) this.fileSize = end;
    this.touch();
  }

  /** Sets the size: cut bytes are gone, so growing again reads zeros there. */
  truncate(size: number): void {
    if (size < this.fileSize) {
      const keep = Math.ceil(size / PAGE_BYTES);
      for (const index of [...this.pages.keys()]) {
        if (index >= keep) this.dropPage(index);
      }
      this.pages.get(Math.floor(size / PAGE_BYTES))?.fill(0, size % PAGE_BYTES);
      // Frozen pages and the base must not change under a splice: the cut hides them instead.
      if (this.frozen !== null) this.cut = Math.min(this.cut, size);
      else this.baseValid = Math.min(this.baseValid, size);
    }
    this.fileSize = size;
    this.touch();
  }

  /**
   * Turns the live pages (and any truncate of the base) into a new base in
   * the content store and frees them. The pages are frozen first, so writes
   * and reads go on while the splice runs (it yields every 256 KiB); what they
   * change lands in new live pages on top. Returns the content the new base
   * holds, as of the freeze.
   */
  spill(): Promise<Committed> {
    this.spillsPending++;
    const run = this.splicing.then(() => this.spliceNow(), () => this.spliceNow()).finally(() => {
      this.spillsPending--;
    });
    this.splicing = run.catch(() => undefined);
    return run;
  }

  /**
   * The event that commits the state as of this call, or null when it is
   * already committed. Splices first when needed. Plans are made one at a
   * time per file, each handed to `enqueue` (which puts its event in the
   * volume's write queue) before the next is made, so events keep the
   * order of the flushes. The state is taken as committed at once; track()
   * undoes that when the event does not make it.
   */
  planCommit<T extends object | null>(enqueue: (plan: CommitPlan | null) => T): Promise<T> {
    const run = this.flushes.then(async () => {
      const plan = await this.plan();
      try {
        return enqueue(plan);
      } catch (err) {
        // Not enqueued (the volume closed, the signal fired): nothing is known to be committed.
        this.committed = null;
        throw err;
      }
    });
    this.flushes = run.catch(() => undefined);
    return run;
  }

  private async plan(): Promise<CommitPlan | null> {
    // A background spill may have frozen pages; its base must be installed before this plan reads the state.
    while (this.isSplicing) await this.splicing;
    if (this.isCommitted()) return null;
    const previous = this.committed;
    const snap = this.pages.size > 0 || this.baseValid < (this.base?.size ?? 0)
      ? await this.spill()
      : { manifest: this.base, valid: this.baseValid, size: this.fileSize };
    this.committed = snap;
    // A pure size change over a manifest already in the log is a truncate
    // event: the projection reads zeros past the manifest, and no stale
    // bytes lie beyond `valid`. With a commit still in flight the manifest
    // may yet fail to land, so the event names it again.
    if (previous !== null && previous.manifest === snap.manifest && this.commitsInFlight === 0) {
      return { event: { type: 'truncate', inode: this.id, size: snap.size } };
    }
    return { event: { type: 'set-content', inode: this.id, size: snap.size, manifest: snap.manifest === null ? null : encodeManifest(snap.manifest) } };
  }

  /** Runs the commit of a plan, tracked so fsync can wait for it and attributes stay live until it lands. */
  track(commit: Promise<void>): Promise<void> {
    this.commitsInFlight++;
    const done = commit.then(() => undefined, (err: unknown) => {
      // Nothing is known to be committed now: the next flush commits everything.
      this.committed = null;
      throw err;
    }).finally(() => {
      this.commitsInFlight--;
    });
    this.lastCommit = done.catch(() => undefined);
    return done;
  }

  /** Resolves when every commit started so far has landed (or failed). */
  settled(): Promise<void> {
    return this.lastCommit;
  }

  /** Lets go of the read-ahead's slots (the volume is closing with handles still open). */
  stopReadAhead(): void {
    this.ahead?.close();
  }

  /** Frees every page (the file's last user left). */
  drop(): void {
    this.ahead?.close();
    for (const index of [...this.pages.keys()]) this.dropPage(index);
    if (this.frozen !== null) {
      this.table.account(-this.frozen.pages.size * PAGE_BYTES);
      this.frozen.pages = new Map();
    }
  }

  private async spliceNow(): Promise<Committed> {
    if (this.pages.size === 0 && this.baseValid >= (this.base?.size ?? 0)) {
      return { manifest: this.base, valid: this.baseValid, size: this.fileSize };
    }
    const frozen: Frozen = { pages: this.pages, size: this.fileSize, baseValid: this.baseValid };
    this.frozen = frozen;
    this.pages = new Map();
    this.cut = Infinity;
    const base = this.base;
    const readInto = (start: number, out: Buffer): void => {
      this.readLayers(frozen.pages, start, start + out.length, out, start, (at, to, o) => {
        // Pages are whole, so only the runs below them can hold stale bytes
        // (`out` is reused); the base leaves its holes untouched: zeros first.
        out.fill(0, o, o + (to - at));
        const end = Math.min(to, frozen.baseValid);
        if (end > at) this.reader.readInto(base, at, end - at, out, o);
      });
    };
    const read = (start: number, length: number): Buffer => {
      const out = Buffer.allocUnsafe(length);
      readInto(start, out);
      return out;
    };
    let result;
    try {
      const input = { base, baseValid: frozen.baseValid, size: frozen.size, changed: rangesOf(frozen.pages, frozen.size), read, readInto };
      // An append (a file written front to back) is chunked and sealed in the seal workers; edits inside the old content here.
      result = (await spliceAppend(this.table.store, input)) ?? await spliceManifestAsync(this.table.store, input);
    } catch (err) {
      this.thaw(frozen);
      throw err;
    }
    this.base = result.manifest;
    this.baseValid = Math.min(frozen.size, this.cut);
    this.frozen = null;
    this.cut = Infinity;
    this.table.account(-frozen.pages.size * PAGE_BYTES);
    for (const page of frozen.pages.values()) this.table.givePage(page);
    return { manifest: result.manifest, valid: frozen.size, size: frozen.size };
  }

  /** A failed splice puts its pages back under the live ones, as if it had not begun. */
  private thaw(frozen: Frozen): void {
    this.frozen = null;
    for (const [index, page] of frozen.pages) {
      const start = index * PAGE_BYTES;
      if (this.pages.has(index) || start >= this.cut) {
        this.table.account(-PAGE_BYTES);
        continue;
      }
      if (this.cut < start + PAGE_BYTES) page.fill(0, this.cut - start);
      this.pages.set(index, page);
    }
    this.baseValid = Math.min(this.baseValid, this.cut);
    this.cut = Infinity;
  }

  private isCommitted(): boolean {
    const c = this.committed;
    return c !== null && this.frozen === null && this.pages.size === 0 && c.manifest === this.base && c.valid === this.baseValid && c.size === this.fileSize;
  }

  private touch(): void {
    // A clock read in the facade, not the projection: the event that commits the change stamps its own time.
    const now = BigInt(Date.now()) * 1_000_000n;
    this.changedNs = now > this.changedNs ? now : this.changedNs + 1n;
  }

  /**
   * Fills out[at - outBase, end - outBase) from `pages` where they hold
   * the bytes, and from `lower` for each run of pages they lack.
   */
  private readLayers(pages: Map<number, Buffer>, at: number, end: number, out: Buffer, outBase: number, lower: (from: number, to: number, outOffset: number) => void): void {
    while (at < end) {
      const index = Math.floor(at / PAGE_BYTES);
      const pageStart = index * PAGE_BYTES;
      const page = pages.get(index);
      if (page !== undefined) {
        const to = Math.min(end, pageStart + PAGE_BYTES);
        page.copy(out, at - outBase, at - pageStart, to - pageStart);
        at = to;
        continue;
      }
      // A run of pages not held here reads from below in one pass.
      let runEnd = Math.min(end, pageStart + PAGE_BYTES);
      while (runEnd < end && !pages.has(runEnd / PAGE_BYTES)) runEnd = Math.min(end, runEnd + PAGE_BYTES);
      lower(at, runEnd, at - outBase);
      at = runEnd;
    }
  }

  /** The content under the live pages, [from, to) into `out` at `outOffset`: every byte written, zeros where nothing is. */
  private readLower(from: number, to: number, out: Buffer, outOffset: number): void {
    const frozen = this.frozen;
    if (frozen === null) {
      const end = Math.max(from, Math.min(to, this.baseValid));
      if (end > from) this.reader.readInto(this.base, from, end - from, out, outOffset);
      if (to > end) out.fill(0, outOffset + end - from, outOffset + to - from);
      return;
    }
    const end = Math.max(from, Math.min(to, this.cut));
    if (end > from) {
      this.readLayers(frozen.pages, from, end, out, from - outOffset, (at, upTo, o) => {
        const e = Math.max(at, Math.min(upTo, frozen.baseValid));
        if (e > at) this.reader.readInto(this.base, at, e - at, out, o);
        if (upTo > e) out.fill(0, o + e - at, o + upTo - at);
      });
    }
    if (to > end) out.fill(0, outOffset + end - from, outOffset + to - from);
  }

  /** The live page at `index`, made on first use from the content below (unless the caller overwrites all of it). */
  private pageFor(index: number, whole: boolean): Buffer {
    let page = this.pages.get(index);
    if (page !== undefined) return page;
    const start = index * PAGE_BYTES;
    page = this.table.takePage();
    if (!whole) {
      page.fill(0);
      const end = Math.min(this.fileSize, start + PAGE_BYTES);
      if (end > start) this.readLower(start, end, page, 0);
    }
    this.pages.set(index, page);
    this.table.account(PAGE_BYTES);
    return page;
  }

  private dropPage(index: number): void {
    const page = this.pages.get(index);
    if (page === undefined) return;
    this.pages.delete(index);
    this.table.account(-PAGE_BYTES);
    this.table.givePage(page);
  }
}

/** Sorted, merged ranges covered by pages, clipped to `size`. */
function rangesOf(pages: Map<number, Buffer>, size: number): ByteRange[] {
  const out: { start: number; end: number }[] = [];
  for (const index of [...pages.keys()].sort((a, b) => a - b)) {
    const start = index * PAGE_BYTES;
    const end = Math.min(size, start + PAGE_BYTES);
    if (start >= end) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last.end === start) last.end = end;
    else out.push({ start, end });
  }
  return out;
}

/** When dirty pages spill (defaults SPILL_FILE_BYTES and SPILL_VOLUME_BYTES). */
export interface OpenFileLimits {
  fileBytes: number;
  volumeBytes: number;
}

/** The open files of one volume, by inode id, and the memory their dirty pages hold. */
export class OpenFileTable {
  private readonly files = new Map<string, OpenFile>();
  private dirty = 0;
  /** Freed pages kept for reuse: a big write turns over thousands, and fresh 32 KiB buffers made garbage collection a sixth of its time. */
  private readonly freePages: Buffer[] = [];
  limits: OpenFileLimits = { fileBytes: SPILL_FILE_BYTES, volumeBytes: SPILL_VOLUME_BYTES };
  private warmed = false;

  constructor(readonly store: ContentStore) {}

  get dirtyBytes(): number {
    return this.dirty;
  }

  get(id: Uint8Array): OpenFile | undefined {
    return this.files.get(Buffer.from(id).toString('hex'));
  }

  /** The inode's open state (made from its projected attributes if not open yet), with one more user. */
  acquire(id: Buffer, attrs: Attrs): OpenFile {
    const key = id.toString('hex');
    let file = this.files.get(key);
    if (file === undefined) {
      file = new OpenFile(id, attrs, this);
      this.files.set(key, file);
    }
    file.users++;
    return file;
  }

  /** One user fewer; the state goes when the last one leaves. Returns whether it went. */
  release(file: OpenFile): boolean {
    file.users--;
    if (file.users > 0) return false;
    const key = file.id.toString('hex');
    if (this.files.get(key) === file) this.files.delete(key);
    // Pages still held (a flush that failed, an unlinked file) go with it.
    file.drop();
    return true;
  }

  all(): OpenFile[] {
    return [...this.files.values()];
  }

  /**
   * Keeps dirty memory bounded after `file` grew: starts a spill of it past
   * the file limit, or of the largest file past the volume limit, and makes
   * the writer wait (backpressure) while twice a limit is held.
   */
  async bound(file: OpenFile): Promise<void> {
    if (!this.warmed && file.liveBytes >= WARM_SEAL_BYTES) {
      // A write this big will spill through the seal workers: boot them meanwhile.
      this.warmed = true;
      this.store.warmSealPool();
    }
    const limit = this.limits.fileBytes;
    for (;;) {
      if (file.liveBytes >= limit && !file.isSplicing) startSpill(file);
      if (file.dirtyBytes < 2 * limit || !file.isSplicing) break;
      await file.spliceDone();
    }
    const volumeLimit = this.limits.volumeBytes;
    if (this.dirty >= volumeLimit) {
      const largest = this.largestIdle();
      if (largest !== undefined) startSpill(largest);
    }
    while (this.dirty >= 2 * volumeLimit) {
      const busy = [...this.files.values()].find((f) => f.isSplicing);
      if (busy !== undefined) {
        await busy.spliceDone();
        continue;
      }
      const largest = this.largestIdle();
      if (largest === undefined) break;
      startSpill(largest);
    }
  }

  private largestIdle(): OpenFile | undefined {
    let largest: OpenFile | undefined;
    for (const f of this.files.values()) {
      if (!f.isSplicing && f.liveBytes > 0 && (largest === undefined || f.liveBytes > largest.liveBytes)) largest = f;
    }
    return largest;
  }

  account(delta: number): void {
    this.dirty += delta;
  }

  /** A page buffer with unspecified contents. */
  takePage(): Buffer {
    return this.freePages.pop() ?? Buffer.allocUnsafeSlow(PAGE_BYTES);
  }

  /** Returns a page no one references any more. */
  givePage(page: Buffer): void {
    if (this.freePages.length < FREE_PAGES_KEPT) this.freePages.push(page);
  }
}

/** A background spill: if it fails its pages are put back (thaw), and the next flush meets the error again. */
function startSpill(file: OpenFile): void {
  file.spill().catch(() => undefined);
}

/** A read's offset and length: non-negative integers (a read past any end is short, never EFBIG). */
export function checkReadRange(offset: number, length: number, id: Buffer): void {
  for (const [what, v] of [['a read offset', offset], ['a read length', length]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, `${what} must be a non-negative integer, not ${String(v)}`, { errno: 'EINVAL', id: id.toString('hex') });
    }
  }
}

/** A size or offset as a POSIX call takes it: a non-negative integer, at most MAX_FILE_SIZE. */
export function checkFileOffset(value: number, what: string, id: Buffer): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `${what} must be a non-negative integer, not ${String(value)}`, { errno: 'EINVAL', id: id.toString('hex') });
  }
  if (value > MAX_FILE_SIZE) {
    throw new BazilError(ErrorCodes.FILE_TOO_LARGE, `${what} ${value} is past the largest file size (${MAX_FILE_SIZE} bytes)`, { errno: 'EFBIG', id: id.toString('hex') });
  }
}
