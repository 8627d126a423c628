// Keeps a ProjectionStore in step with a LogStore. Events apply in the log's
// merge order (hlc, writer, seq); events past the store's version vector
// roll forward. An event that sorts before the last one applied (it arrived
// late from another writer) means the state was built in the wrong order:
// the projector rewinds to the newest saved state (a history checkpoint,
// through a RewindSource) that ends before the late event and is still a
// prefix of the merge order, and replays from there; without one, it
// rebuilds from the first event (docs/projection.md, "Rewind").

import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { compareCausal, type CausallyOrdered } from '../log/causal-merge.js';
import type { Envelope, LogEvent } from '../log/codec.js';
import type { LogStore } from '../log/stream.js';
import { VersionVector } from '../log/version-vector.js';
import type { ProjectionStore } from './store.js';

/** Events per LevelDB batch: large enough to amortise the write, small enough to bound memory. */
export const DEFAULT_BATCH_EVENTS = 1000;

export interface CatchUpResult {
  applied: number;
  /** Whether a late event forced a replay from scratch. */
  rebuilt: boolean;
  /** When a late event was handled by a rewind: the events the state rewound to covers (the replay started after them). */
  rewoundTo?: bigint;
}

/** A saved state to rewind to: the first `count` events of the merge order, as the dump's records in key order. */
export interface RewindPoint {
  count: bigint;
  records: Iterable<[Buffer, Buffer]>;
}

/** Where the projector finds a state to rewind to (history's checkpoints: src/history/rewind.ts). */
export interface RewindSource {
  /** The newest saved state that is still a prefix of the log's merge order and ends before `late`; null when there is none. */
  before(late: CausallyOrdered): Promise<RewindPoint | null>;
}

export class Projector {
  private lastChecked = false;

  constructor(
    private readonly store: ProjectionStore,
    private readonly log: LogStore,
    private readonly batchEvents = DEFAULT_BATCH_EVENTS,
    private readonly rewind?: RewindSource,
  ) {}

  /** Applies every event the log holds past the store's version vector. */
  async catchUp(): Promise<CatchUpResult> {
    if (!this.reflectsOnlyTheLog()) return { applied: await this.rebuild(), rebuilt: true };
    const events = this.log.merged(this.store.versionVector());
    const first = events.next();
    if (first.done) return { applied: 0, rebuilt: false };
    const last = this.store.position();
    if (last !== null && compareCausal(first.value, last) < 0) {
      events.return(undefined);
      return this.rewindBefore(first.value);
    }
    return { applied: await this.applyAll(first.value, events), rebuilt: false };
  }

  /**
   * Applies the events the log holds past the store's version vector and
   * covered by `upTo`, in merge order, stopping at the first one `upTo`
   * does not cover (so what is applied is always a prefix of the merge
   * order), `batchEvents` per LevelDB batch. Only the plain roll forward:
   * when the store does not reflect only the log, or the next event sorts
   * before the last applied, it applies nothing and leaves that to
   * catchUp(). For a writer that projects its durable events while it
   * goes on appending (Volume.batch with `projectEarly`).
   */
  async catchUpTo(upTo: VersionVector, batchEvents = this.batchEvents): Promise<number> {
    if (!this.reflectsOnlyTheLog()) return 0;
    const events = this.log.merged(this.store.versionVector());
    const first = events.next();
    if (first.done || !covers(upTo, first.value)) {
      events.return(undefined);
      return 0;
    }
    const last = this.store.position();
    if (last !== null && compareCausal(first.value, last) < 0) {
      events.return(undefined);
      return 0;
    }
    return this.applyAll(first.value, bounded(events, upTo), batchEvents);
  }

  /** Rewinds to the newest saved state before `late` and replays the rest of the log; rebuilds when there is none. */
  private async rewindBefore(late: CausallyOrdered): Promise<CatchUpResult> {
    const point = this.rewind === undefined ? null : await this.rewind.before(late);
    if (point === null) return { applied: await this.rebuild(), rebuilt: true };
    await this.store.restore(point.records);
    const events = this.log.merged(this.store.versionVector());
    const first = events.next();
    return { applied: first.done ? 0 : await this.applyAll(first.value, events), rebuilt: false, rewoundTo: point.count };
  }

  /**
   * Whether every event the store reflects is in the log. The projection is
   * written after the log's sync, so a crash leaves it behind; it is ahead
   * only when the log lost events it had made durable (arenas restored from
   * a backup, a disk that dropped acknowledged writes). Rolling forward
   * would then keep the lost events' effects and skip new events that reuse
   * their sequence numbers. The last applied event is compared once per
   * projector (at open), since later events can only come through it.
   */
  private reflectsOnlyTheLog(): boolean {
    if (!this.store.versionVector().isCoveredBy(this.log.versionVector())) return false;
    if (this.lastChecked) return true;
    const last = this.store.position();
    if (last !== null) {
      const held = this.log.read(last.writer, last.seq);
      const first = held.next();
      held.return(undefined);
      if (first.done || first.value.seq !== last.seq || first.value.hlc !== last.hlc) return false;
    }
    this.lastChecked = true;
    return true;
  }

  /** Drops the projection and replays the whole log; returns the events applied. */
  async rebuild(): Promise<number> {
    await this.store.exclusive(() => this.store.clear());
    const events = this.log.merged(VersionVector.EMPTY);
    const first = events.next();
    return first.done ? 0 : this.applyAll(first.value, events);
  }

  /** Applies events a batch at a time: open the batch's events, prefetch what they read, apply, commit. */
  private async applyAll(first: Envelope, rest: Iterator<Envelope>, batchEvents = this.batchEvents): Promise<number> {
    const batch = this.store.batch();
    let n = 0;
    let it: IteratorResult<Envelope> = { done: false, value: first };
    while (!it.done) {
      const chunk: [Envelope, LogEvent | { rejected: string }][] = [];
      for (; !it.done && chunk.length < batchEvents; it = rest.next()) chunk.push([it.value, this.openOrReject(it.value)]);
      // Under the store's lock: a read that materialises a copy must not come between this batch's reads and its commit.
      await this.store.exclusive(async () => {
        await batch.prefetch(chunk.flatMap(([, ev]) => ('rejected' in ev ? [] : [ev])));
        for (const [env, ev] of chunk) await batch.apply(env, ev);
        await batch.commit();
      });
      n += chunk.length;
    }
    return n;
  }

  /** A signed event whose body does not open is noted as rejected, the same way on every peer holding the key. */
  private openOrReject(env: Envelope): LogEvent | { rejected: string } {
    try {
      return this.log.open(env);
    } catch (err) {
      if (isBazilError(err, ErrorCodes.CORRUPT_EVENT) || isBazilError(err, ErrorCodes.DECRYPT_FAILED) || isBazilError(err, ErrorCodes.UNSUPPORTED_FORMAT)) {
        return { rejected: `${err.code}: ${err.message}` };
      }
      throw err;
    }
  }
}

function covers(vector: VersionVector, env: Envelope): boolean {
  return env.seq <= vector.get(env.writer);
}

/** `events` up to (not including) the first one `upTo` does not cover. */
function* bounded(events: Generator<Envelope>, upTo: VersionVector): Generator<Envelope> {
  try {
    for (let it = events.next(); !it.done; it = events.next()) {
      if (!covers(upTo, it.value)) return;
      yield it.value;
    }
  } finally {
    events.return(undefined);
  }
}
