// Projects a long batch's events while the batch is still running, instead
// of all of them after its last append (docs/ingest.md, "Round 4: import").
//
// An import's main thread waits on its seal worker for a good part of the
// import, and then, after the last file, read, decrypted and applied every
// event of the batch again: a third of the import's wall time on the
// benchmark, with the seal worker idle. Here, events are applied as they
// become durable: up to what the batch's content syncs covered (the log
// is in the same arena set), or, when many events wait (a flush of large
// files appends hundreds at once), after a log sync of its own; in small
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
import type { VersionVector } from '../log/version-vector.js';
import type { BatchProgress } from './write-batch.js';

/**
 * Appended events not yet known durable past which a round syncs the log
 * itself rather than wait for the batch's next content sync: a flush of
 * large files appends hundreds at once, and they are best projected while
 * the next files are read; a tree of many small directories flushes (and
 * syncs) every few events, and needs no sync of its own.
 */
export const EARLY_SYNC_EVENTS = 128;
/** Events per LevelDB batch: small, so the batch's other work is never held up for long. */
export const EARLY_PROJECTION_BATCH = 64;

export class EarlyProjection implements BatchProgress {
  private running: Promise<void> | null = null;
  private wanted = false;
  private stopped = false;
  private failure: { err: unknown } | null = null;
  /** What is known durable: projected up to here without a sync of its own. */
  private durable: VersionVector;
  private projected: bigint;

  constructor(private readonly log: LogStore, private readonly projector: Projector) {
    this.durable = log.versionVector();
    this.projected = this.own(this.durable);
  }

  appended(): void {
    if (this.unsynced() >= EARLY_SYNC_EVENTS) this.kick();
  }

  synced(vector: VersionVector): void {
    this.noteDurable(vector);
  }

  flushed(): void {
    if (this.unsynced() >= EARLY_SYNC_EVENTS || this.own(this.durable) > this.projected) this.kick();
  }

  /** Waits for the round under way, and starts no more; throws what a round threw. */
  async stop(): Promise<void> {
    this.stopped = true;
    while (this.running !== null) await this.running;
    if (this.failure !== null) throw this.failure.err;
  }

  /** Starts a round, or asks the one under way for another. */
  private kick(): void {
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

  private async rounds(): Promise<void> {
    do {
      this.wanted = false;
      if (this.unsynced() >= EARLY_SYNC_EVENTS) {
        // Every event appended before the sync began is durable once it returns.
        const appended = this.log.versionVector();
        await this.log.sync();
        this.noteDurable(appended);
      }
      const upTo = this.durable;
      if (this.own(upTo) > this.projected) {
        await this.projector.catchUpTo(upTo, EARLY_PROJECTION_BATCH);
        this.projected = this.own(upTo);
      }
    } while (this.wanted && !this.stopped);
  }

  private noteDurable(vector: VersionVector): void {
    if (this.own(vector) > this.own(this.durable)) this.durable = vector;
  }

  /** Events of this writer appended and not known durable. */
  private unsynced(): number {
    return Number(this.own(this.log.versionVector()) - this.own(this.durable));
  }

  /** The local writer's last seq in `vector`: the only writer that appends during a batch. */
  private own(vector: VersionVector): bigint {
    return vector.get(this.log.writer);
  }
}
