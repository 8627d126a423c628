// Subtree aggregates through the volume facade (docs/aggregates.md): the
// background task that settles the projection's dirty aggregates while the
// volume is idle, and the exact walk that past-state views use (their
// projections are replayed in memory and keep no aggregate tables).

import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ProjectionStore } from '../projection/index.js';
import type { VolumeReader } from './reader.js';

/** A directory's recursive statistics (a file's own, for a file). */
export interface Aggregates {
  /** Bytes of the regular files below, once per link. */
  rbytes: number;
  /** Non-directories below, once per link. */
  rfiles: number;
  /** Directories below (the directory itself not counted). */
  rsubdirs: number;
  /** Newest ctime of the node and everything below, ns since the epoch. */
  rctime: bigint;
  /** False when changes below have not been folded in yet: the figures are the last settled ones. */
  exact: boolean;
}

export interface AggregateOptions {
  /** Wait until every pending change is folded in. */
  exact?: boolean;
  signal?: AbortSignal;
}

/** How long the volume must be idle before settling starts: a burst of writes is settled once, after it. */
export const SETTLE_DELAY_MS = 50;
/** Longest a dirty mark waits for idleness before settling runs anyway, between writes. */
export const SETTLE_MAX_WAIT_MS = 1000;
/** Longest slice of settling that holds up writes (a directory is recomputed whole, so one huge directory may take longer). */
export const SETTLE_SLICE_MS = 50;
/**
 * Under a steady stream of writes, settling runs no more often than this
 * many times its own last duration: a directory is recomputed whole, so a
 * burst of creates in a directory of thousands of entries would otherwise
 * spend a growing share of the daemon's thread recomputing it every
 * SETTLE_MAX_WAIT_MS (docs/mount.md, "Round 3: metadata").
 */
const SETTLE_BUSY_FACTOR = 20;

/**
 * Settles a projection's dirty aggregates in the background, in short
 * slices run through `serialise` (the volume's write queue, so a slice never
 * runs during a commit), starting SETTLE_DELAY_MS after the last poke.
 */
export class BackgroundSettler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private waitingSince = 0;
  /** Time the last run of slices held the write queue, ms. */
  private lastRunMs = 0;
  /** The last run stopped with directories left dirty: schedule another. */
  private repoke = false;

  constructor(
    private readonly projection: ProjectionStore,
    private readonly serialise: <T>(work: () => Promise<T>) => Promise<T>,
  ) {}

  /** A settler that first settles what an earlier process left dirty. */
  static start(projection: ProjectionStore, serialise: <T>(work: () => Promise<T>) => Promise<T>): BackgroundSettler {
    const settler = new BackgroundSettler(projection, serialise);
    settler.poke();
    return settler;
  }

  /** Something was committed: settle once the volume has been idle a moment (or has been busy for SETTLE_MAX_WAIT_MS). */
  poke(): void {
    if (this.stopped) return;
    const now = performance.now();
    if (this.timer !== null) {
      // Under a steady stream of writes the figures would never settle: past the longest wait, the pending timer stands.
      if (now - this.waitingSince >= Math.max(SETTLE_MAX_WAIT_MS, SETTLE_BUSY_FACTOR * this.lastRunMs)) return;
      clearTimeout(this.timer);
    } else {
      this.waitingSince = now;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.runSlices();
    }, SETTLE_DELAY_MS);
    // Pending settling never keeps a process alive: the dirty marks are durable and settled after the next open.
    this.timer.unref();
  }

  /** Settles everything now (between writes) and resolves when nothing is dirty. */
  async settleNow(): Promise<void> {
    await this.serialise(async () => {
      while ((await this.projection.settleAggregates()) > 0);
    });
  }

  /** Stops scheduling and waits for a slice in flight; dirty marks left are settled after the next open. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private runSlices(): Promise<void> {
    if (this.running !== null) return this.running;
    this.running = (async () => {
      let spent = 0;
      let before = Number.POSITIVE_INFINITY;
      try {
        for (let left = 1; left > 0 && !this.stopped;) {
          left = await this.serialise(async () => {
            if (this.stopped) return 0;
            const started = performance.now();
            try {
              return await this.projection.settleAggregates(SETTLE_SLICE_MS);
            } finally {
              spent += performance.now() - started;
            }
          });
          // Writes let in between slices dirty their directories again. When
          // they do so as fast as slices clean (a stream of creates in one
          // huge directory, recomputed whole by every slice), the run stops
          // and leaves the rest to a later one, which poke() spaces by this
          // run's length: looping here made every create wait for a whole
          // recomputation of its directory.
          if (left > 0 && left >= before) {
            this.repoke = true;
            break;
          }
          before = left;
          // Let queued writes and reads in before the next slice.
          await nextTurn();
        }
      } catch (err) {
        // A failed slice leaves its directories dirty (reads say inexact, an exact read retries); report it and go on.
        process.emitWarning(`bazil: settling subtree aggregates failed: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        this.lastRunMs = spent;
        this.running = null;
        if (this.repoke) {
          this.repoke = false;
          this.poke();
        }
      }
    })();
    return this.running;
  }
}

/** The stored aggregate of inode `id`, or a file's own figures. */
export async function storedAggregates(reader: VolumeReader, projection: ProjectionStore, path: string, options: AggregateOptions): Promise<Aggregates> {
  const attrs = await reader.stat(path, options);
  if (attrs.kind !== 'dir') return ownFigures(attrs);
  const stored = await projection.aggregate(attrs.id);
  const v = stored.value ?? { rbytes: 0, rfiles: 0, rsubdirs: 0, rctime: attrs.ctime };
  return { ...v, exact: stored.exact };
}

/**
 * Exact aggregates by walking the tree below `path`: for views that keep no
 * aggregate tables (past states). Costs a visit of every node below.
 */
export async function walkAggregates(reader: VolumeReader, path: string, options: { signal?: AbortSignal } = {}): Promise<Aggregates> {
  const attrs = await reader.stat(path, options);
  if (attrs.kind !== 'dir') return ownFigures(attrs);
  const total: Aggregates = { rbytes: 0, rfiles: 0, rsubdirs: 0, rctime: attrs.ctime, exact: true };
  const dirs: string[] = [path];
  while (dirs.length > 0) {
    const dir = dirs.pop()!;
    for (let after: string | undefined; ;) {
      const page = await reader.readdir(dir, { after, limit: 1000, signal: options.signal });
      if (page.length === 0) break;
      for (const e of page) {
        const a = await reader.getattr(e.id);
        if (a.ctime > total.rctime) total.rctime = a.ctime;
        if (a.kind === 'dir') {
          total.rsubdirs++;
          dirs.push(dir === '/' ? `/${e.name}` : `${dir}/${e.name}`);
        } else {
          total.rfiles++;
          if (a.kind === 'file') total.rbytes += a.size;
        }
      }
      after = page[page.length - 1]!.name;
    }
  }
  return total;
}

function ownFigures(attrs: { kind: string; size: number; ctime: bigint }): Aggregates {
  return { rbytes: attrs.kind === 'file' ? attrs.size : 0, rfiles: 1, rsubdirs: 0, rctime: attrs.ctime, exact: true };
}
