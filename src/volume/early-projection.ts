// Projects a long batch's events while the batch is still running, instead
// of all of them after its last append (docs/ingest.md, "Round 4: import").
//
// An import's main thread waits on its seal worker for a good part of the
// import, and then, after the last file, read, decrypted and applied every
// event of the batch again: a third of the import's wall time on the
// benchmark, with the seal worker idle. Here, each time the batch flushes
// (and every so many appends), the events appended so far are made durable
// (one log sync, shared with any running) and then applied, in small
// LevelDB batches between which the import goes on. Only durable events
// are applied, so the projection is never ahead of the log, after a crash
// or a power cut alike; what is not applied when the batch ends is caught
// up by the commit as before. The events are still in the log's recent
// appends, so they are neither read back from the arena nor decrypted.
//
// The projection then shows the batch's committed prefix before the batch
// ends: a batch that reads the projection and needs the state from before
// it (import --update) must not use this.

import type { LogStore } from '../log/stream.js';
import type { Projector } from '../projection/projector.js';
import type { BatchProgress } from './write-batch.js';

/** Appends after which a running batch projects what it has, even without a flush: keeps them in the log's recent appends. */
export const EARLY_PROJECTION_EVENTS = 128;
/** Events per LevelDB batch: small, so the batch's other work is never held up for long. */
export const EARLY_PROJECTION_BATCH = 64;

export class EarlyProjection implements BatchProgress {
  private running: Promise<void> | null = null;
  private wanted = false;
  private stopped = false;
  private failure: { err: unknown } | null = null;
  private sinceKick = 0;

  constructor(private readonly log: LogStore, private readonly projector: Projector) {}

  /** Counts an append; kicks a round every EARLY_PROJECTION_EVENTS. */
  appended(): void {
    if (++this.sinceKick >= EARLY_PROJECTION_EVENTS) this.kick();
  }

  /** A flush of the batch ended: its events are appended. */
  flushed(): void {
    this.kick();
  }

  /** Syncs and projects what has been appended, now or after the round under way. */
  kick(): void {
    this.sinceKick = 0;
    if (this.stopped || this.failure !== null) return;
    if (this.running !== null) {
      this.wanted = true;
      return;
    }
    this.running = this.rounds().catch((err: unknown) => {
      this.failure = { err };
    }).finally(() => {
      this.running = null;
    });
  }

  /** Waits for the round under way, and starts no more; throws what a round threw. */
  async stop(): Promise<void> {
    this.stopped = true;
    while (this.running !== null) await this.running;
    if (this.failure !== null) throw this.failure.err;
  }

  private async rounds(): Promise<void> {
    do {
      this.wanted = false;
      const upTo = this.log.versionVector();
      // Every event appended before the sync began is durable once it returns.
      await this.log.sync();
      await this.projector.catchUpTo(upTo, EARLY_PROJECTION_BATCH);
    } while (this.wanted && !this.stopped);
  }
}
