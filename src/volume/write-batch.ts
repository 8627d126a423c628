// Several events under one commit: many appends, one log sync, one
// projection catch-up (Volume.batch runs that part).
//
// The one ordering rule a batch keeps is the content rule: an event naming
// a manifest is appended only once the objects the batch wrote are durable,
// so a crash can never leave a durable event whose content is lost.
// Content is written unsynced; events that must wait for it are queued and
// appended after one arenas.sync(), together. Other events are appended at
// once (a creation's id is needed at once), before queued ones only when
// they touch none of the inodes the queue touches: so every inode, and
// every directory, sees its events in call order. What moves is only the
// interleaving of unrelated inodes (and hence ctimes).
//
// Content may be written by several writers at once (import pipelines its
// files), and a file whose chunks all dedup may name objects that another
// writer, still running, appended a moment ago. So the batch does not ask
// which writes are running: it counts appends. When a write finishes, the
// arena set's append count then (ArenaSet.appends) covers every object its
// manifest can name; an event naming content is appended only once a
// completed arenas.sync() covers that count (ArenaSet.durableAppends counts
// what the latest completed sync covered: appends made while a sync runs
// are not covered by it, even when they end before it does). Events naming
// content check it again right before they go to the log, and a batch that
// would break the rule fails with BAZIL_CONTENT_NOT_DURABLE instead of
// committing. The event operations (append, createFile, flush) run one at
// a time, in call order, so a flush's queue is exactly what was queued
// before its sync.
//
// (Until November 2026 the batch took "no write running once the sync
// ended" for "content clean", which missed a write that was running when
// the sync began and finished before it ended: its create went to the log
// with its last chunks still in memory. docs/volume.md, "The content rule".)

import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ArenaSet } from '../../arena/arena-set.js';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { checkAborted, type ContentSource, type ContentStore, type WriteResult } from '../cas/content-store.js';
import type { LogStore } from '../log/stream.js';
import type { VersionVector } from '../log/version-vector.js';
import type { CreateEvent, EventBody, MkdirEvent, MknodEvent, SymlinkEvent } from '../log/event.js';

/** Events that make a new inode, whose id (the event's id) callers need. */
export type CreationEvent = MkdirEvent | CreateEvent | SymlinkEvent | MknodEvent;

/** Who follows a batch's appends, syncs and flushes (EarlyProjection); nothing it does may append. */
export interface BatchProgress {
  appended(): void;
  /** The log's events up to `vector` are durable. */
  synced(vector: VersionVector): void;
  flushed(): void;
}

/** Unsynced content past which a batch syncs and appends its queue: bounds what a crash can lose and the queue's size. */
const FLUSH_CONTENT_BYTES = 64 * 1024 * 1024;
const FLUSH_QUEUED_EVENTS = 4096;
// A flush appends its queued events in slices of this many ms, letting the
// event loop run between them. A flush of a few hundred files' events takes
// 30-85 ms on the main thread, and while it ran nothing took the seal
// worker's finished slabs back or handed it new ones, so the worker ran dry
// (in an import, the worker's idle time while the main thread was busy was
// mostly flushes). Between slices the content writers apply their slabs and
// send the next; event operations still wait their turn (inTurn), and what
// the flush appends was made durable before it began. Ten interleaved pairs
// of the 1 GiB import: 5.69 -> 5.32 s median (docs/ingest.md, "Round 7").
const FLUSH_SLICE_MS = 2;

/**
 * An entry whose events wait for the batch's content: a file created
 * together with the events that complete it (content, times, xattrs), or
 * (create null) events that must follow such a file, like a hard link to it.
 */
export interface DeferredFile {
  /** The directory the entry goes into: later events on it stay behind it. */
  parent: Uint8Array;
  create: CreateEvent | null;
  /** Gets the created inode's id (null without a creation); returns the events that follow. */
  then: (inode: Buffer | null) => EventBody[];
}

export class WriteBatch {
  /** In order: events, and files created together with the events that complete them. */
  private readonly queued: (EventBody | DeferredFile)[] = [];
  /** Hex ids of the inodes and directories the queued events touch. */
  private readonly queuedTouch = new Set<string>();
  /** Queue marks (see contentMark), one per queued item. */
  private readonly queuedMarks: number[] = [];
  private unsyncedBytes = 0;
  /** ArenaSet.appends when the latest content write finished: what a sync must cover before content this batch wrote may be named. */
  private contentMark = 0;
  private appendedCount = 0;
  /** The tail of the event operations, which run one at a time (see the top), and how many have not settled. */
  private serial: Promise<unknown> = Promise.resolve();
  private running = 0;
  /** The first failure of a flush nobody awaited; every later call throws it. */
  private failure: { err: unknown } | null = null;

  constructor(
    private readonly log: LogStore,
    private readonly arenas: ArenaSet,
    private readonly content: ContentStore,
    private readonly signal: AbortSignal | undefined,
    private readonly progress?: BatchProgress,
  ) {}

  /** Events appended so far (queued ones not counted until flushed). */
  get appended(): number {
    return this.appendedCount;
  }

  /** Stores a file's content, not yet durable; a set-content naming it waits for the batch's next flush. */
  async writeContent(source: ContentSource): Promise<WriteResult> {
    checkAborted(this.signal);
    if (this.failure !== null) throw this.failure.err;
    const result = await this.content.writeStream(source, { sync: false, signal: this.signal });
    // Every object the manifest names was appended by now (or was already durable): the count covers them.
    this.contentMark = Math.max(this.contentMark, this.arenas.appends);
    this.unsyncedBytes += result.newBytes;
    if (this.unsyncedBytes >= FLUSH_CONTENT_BYTES) {
      this.unsyncedBytes = 0;
      // Not awaited: the writer goes on with the next file while the sync
      // runs (its events wait their turn behind it anyway). A failure is
      // thrown by the next call.
      this.inTurn(() => this.flushNow()).catch((err: unknown) => { this.failure ??= { err }; });
    }
    return result;
  }

  /**
   * Creates a file together with the events that complete it, appended as
   * one run after the content it names is durable: a crash then leaves the
   * whole file or none of it, never an empty one where the source was not.
   * Returns the id when appended now (content already durable), else null.
   */
  createFile(file: DeferredFile): Promise<Buffer | null> {
    checkAborted(this.signal);
    // The file's content (if any) was written before this call: the mark now covers it.
    const mark = this.contentMark;
    return this.inTurn(async () => {
      if (!this.dirtyFor(mark) && this.queued.length === 0) return this.appendDeferred(file, mark);
      this.queued.push(file);
      this.queuedMarks.push(mark);
      this.queuedTouch.add(Buffer.from(file.parent).toString('hex'));
      if (this.queued.length >= FLUSH_QUEUED_EVENTS) await this.flushNow();
      return null;
    });
  }

  /** Appends a creation event (see append) and returns the new inode's id. */
  async create(body: CreationEvent): Promise<Buffer> {
    return (await this.append(body))!;
  }

  /**
   * Appends `body`, or queues it behind content not yet durable (set-content)
   * or behind queued events on the same inodes. Returns the event's id when
   * appended now; creations are always appended now.
   */
  append(body: EventBody): Promise<Buffer | null> {
    checkAborted(this.signal);
    const mark = this.contentMark;
    return this.inTurn(async () => {
      const touched = touches(body);
      const waits = (namesContent(body) && this.dirtyFor(mark)) || touched.some((t) => this.queuedTouch.has(t));
      if (waits && !isCreation(body)) {
        this.queued.push(body);
        this.queuedMarks.push(mark);
        for (const t of touched) this.queuedTouch.add(t);
        if (this.queued.length >= FLUSH_QUEUED_EVENTS) await this.flushNow();
        return null;
      }
      if (waits) await this.flushNow();
      return this.appendNow(body, mark);
    });
  }

  /** Makes the batch's content durable, then appends every queued event, in order. */
  flush(): Promise<void> {
    // Nothing running, queued or unsynced (a batch of metadata events, all
    // appended at once): nothing to wait for, and no turn to take.
    if (this.running === 0 && this.queued.length === 0 && !this.dirtyFor(this.contentMark) && this.failure === null) return Promise.resolve();
    return this.inTurn(() => this.flushNow());
  }

  /** Runs an event operation after the ones called before it (see the top). */
  private inTurn<T>(op: () => Promise<T>): Promise<T> {
    const checked = async (): Promise<T> => {
      if (this.failure !== null) throw this.failure.err;
      return op();
    };
    this.running++;
    const result = this.serial.then(checked, checked);
    const settle = (): void => {
      this.running--;
    };
    this.serial = result.then(settle, settle);
    return result;
  }

  /** Whether content written before `mark` was taken may not be durable yet: no completed sync covers it. */
  private dirtyFor(mark: number): boolean {
    return this.arenas.durableAppends < mark;
  }

  private async flushNow(): Promise<void> {
    // Everything queued so far was queued after its content's write
    // finished, so a sync that covers the appends made until now covers it.
    if (this.dirtyFor(this.contentMark)) {
      // The sync covers every event appended before it too (the log's arenas are in the set).
      const appended = this.log.versionVector();
      await this.arenas.sync();
      this.progress?.synced(appended);
    }
    this.unsyncedBytes = 0;
    const queued = this.queued.splice(0);
    const marks = this.queuedMarks.splice(0);
    this.queuedTouch.clear();
    let sliceStart = performance.now();
    for (const [i, item] of queued.entries()) {
      if ('then' in item) this.appendDeferred(item, marks[i]!);
      else this.appendNow(item, marks[i]!);
      if (performance.now() - sliceStart >= FLUSH_SLICE_MS) {
        await nextTurn();
        sliceStart = performance.now();
      }
    }
    this.progress?.flushed();
  }

  /** `mark`: the contentMark when the file entered the batch, which a sync must have covered if its events name content. */
  private appendDeferred(file: DeferredFile, mark: number): Buffer | null {
    const id = file.create === null ? null : this.appendNow(file.create, mark);
    for (const body of file.then(id)) this.appendNow(body, mark);
    return id;
  }

  private appendNow(body: EventBody, mark: number): Buffer {
    if (namesContent(body) && this.arenas.durableAppends < mark) {
      // The content rule, checked where it is relied on: refuse rather than commit an event whose objects a crash could lose.
      throw new BazilError(ErrorCodes.CONTENT_NOT_DURABLE,
        `a ${body.type} event naming content was about to be appended before that content was durable (${this.arenas.durableAppends} of ${mark} appends synced)`,
        { type: body.type, durable: this.arenas.durableAppends, needed: mark });
    }
    this.appendedCount++;
    const id = this.log.append(body, { wallMs: Date.now() }).id;
    this.progress?.appended();
    return id;
  }
}

/** Whether an event names content objects (a manifest): it must follow their durability. */
function namesContent(body: EventBody): boolean {
  return (body.type === 'set-content' || body.type === 'create') && body.manifest != null;
}

function isCreation(body: EventBody): body is CreationEvent {
  return body.type === 'mkdir' || body.type === 'create' || body.type === 'symlink' || body.type === 'mknod';
}

/** The inodes an event reads or changes, as hex ids: the ones whose events must stay in order. */
function touches(body: EventBody): string[] {
  const ids: Uint8Array[] = [];
  if ('inode' in body) ids.push(body.inode);
  if ('parent' in body) ids.push(body.parent);
  if ('newParent' in body) ids.push(body.newParent);
  return ids.map((id) => Buffer.from(id).toString('hex'));
}
