// A volume's past: any point of its log (a position in the merge order, a
// time, a snapshot) as a VolumeReader over an in-memory projection of the
// events up to that point, rebuilt from the nearest checkpoint before it.
//
// Positions: `@N` is the state after the first N events of the merge order
// (hlc, writer, seq) of the log as this peer holds it. Every prefix of that
// order holds a prefix of each writer's stream, so it is also a version
// vector; a snapshot names a vector (its event's deps plus itself) that
// need not be a prefix when writers were concurrent, and its state is the
// events that vector covers, applied in merge order.
//
// Checkpoints (checkpoints.ts) are taken every `every` events of the merge
// order, at update() and by any replay that passes a position lacking one.
// A checkpoint is used only while its vector is still a prefix of the merge
// order: an event that arrived late and sorts before its position makes it
// stale, and it is dropped.

import { BazilError, ErrorCodes, isBazilError } from '../../errors/index.js';
import type { ContentStore } from '../cas/content-store.js';
import { compareCausal } from '../log/causal-merge.js';
import type { Envelope, LogEvent } from '../log/codec.js';
import { hlcMs } from '../log/hlc.js';
import type { LogStore } from '../log/stream.js';
import { SealingCodec, type ProjectionCipher } from '../projection/index.js';
import { VersionVector } from '../log/version-vector.js';
import { VolumeReader } from '../volume/reader.js';
import { CheckpointStore, checkpointBytes, type CheckpointRef, type SnapshotInfo } from './checkpoints.js';
import { MemProjection } from './mem-projection.js';
import { describePoint, type Point } from './when.js';

/** Events between checkpoints: replaying this many in memory takes well under a second. */
export const DEFAULT_CHECKPOINT_EVERY = 4096n;

/** What a history needs of an open volume. */
export interface HistorySource {
  name: string;
  /** The volume's directory; checkpoints go in its `checkpoints/`. */
  dir: string;
  log: LogStore;
  content: ContentStore;
  /** Seals past states the way the live projection is sealed: checkpoints hold no plaintext either. */
  cipher: ProjectionCipher;
}

export interface HistoryOptions {
  /** Events between checkpoints (default DEFAULT_CHECKPOINT_EVERY). */
  every?: bigint;
  signal?: AbortSignal;
}

/** A past state, readable like the live volume. */
export interface AsOf {
  point: Point;
  /** Events the state covers. */
  count: bigint;
  vector: VersionVector;
  /** The clock of the last event covered. */
  hlc: bigint;
  reader: VolumeReader<MemProjection>;
  projection: MemProjection;
  /** The checkpoint the replay started from (its count), or null for the first event. */
  from: bigint | null;
  /** Events replayed past that checkpoint. */
  replayed: number;
}

interface ReplayState {
  proj: MemProjection;
  snapshots: Map<string, SnapshotInfo>;
}

interface ReplayPlan {
  /** Stops before this event. */
  stop: (env: Envelope) => boolean;
  /** Only events this vector covers are applied (a snapshot's state). */
  only?: VersionVector;
  /** Writes checkpoints at multiples of `every` that lack one (only for prefixes of the merge order). */
  record: boolean;
  signal?: AbortSignal;
}

export class History {
  private refs: CheckpointRef[] = [];
  /** Checkpoints this object wrote. */
  private written = 0;

  private readonly codec: SealingCodec;

  private constructor(
    private readonly src: HistorySource,
    private readonly store: CheckpointStore,
    readonly every: bigint,
  ) {
    this.codec = new SealingCodec(src.cipher);
  }

  /** Lists the volume's checkpoints and drops those the log no longer supports. */
  static async open(src: HistorySource, options: HistoryOptions = {}): Promise<History> {
    const every = options.every ?? DEFAULT_CHECKPOINT_EVERY;
    if (every < 1n) throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'checkpoints are taken every 1 or more events');
    const h = new History(src, CheckpointStore.forVolume(src.dir), every);
    for (const ref of await h.store.list()) {
      if (h.isPrefix(ref)) h.refs.push(ref);
      else await h.store.remove(ref.path);
    }
    return h;
  }

  /** Events the log holds, all writers together. */
  total(): bigint {
    return this.src.log.versionVector().pairs().reduce((sum, [, seq]) => sum + seq, 0n);
  }

  /** The checkpoints in use, oldest first. */
  checkpoints(): readonly CheckpointRef[] {
    return this.refs;
  }

  /**
   * Takes every checkpoint the log calls for that is missing (the log grew
   * past the last one, or one was deleted as damaged or stale); returns how
   * many were written.
   */
  async update(options: { signal?: AbortSignal } = {}): Promise<number> {
    const target = (this.total() / this.every) * this.every;
    const before = this.written;
    for (let m = this.every; m <= target; m += this.every) {
      if (this.refs.some((r) => r.count === m)) continue;
      const state = await this.start((r) => r.count < m, options.signal);
      // One replay fills every gap up to the next checkpoint that exists.
      const next = this.refs.find((r) => r.count > m)?.count ?? target;
      await this.replay(state, { stop: () => state.proj.count >= next, record: true, signal: options.signal });
    }
    return this.written - before;
  }

  /** The state at `point`. */
  async at(point: Point, options: { signal?: AbortSignal } = {}): Promise<AsOf> {
    const total = this.total();
    switch (point.kind) {
      case 'now':
        return this.prefix(point, total, options.signal);
      case 'position':
        if (point.count === 0n) throw beforeHistory(point, 'the volume has no state before its first event (@1 is the first)');
        if (point.count > total) {
          throw new BazilError(ErrorCodes.BAD_ARGUMENT, `@${point.count} is past the end of the log, which holds ${total} events`, { when: `@${point.count}`, total: total.toString() });
        }
        return this.prefix(point, point.count, options.signal);
      case 'time': {
        const first = this.src.log.merged().next();
        if (first.done || hlcMs(first.value.hlc) > point.ms) {
          const since = first.done ? 'has no events' : `begins at ${new Date(hlcMs(first.value.hlc)).toISOString()}`;
          throw beforeHistory(point, `is before the volume existed: its log ${since}`);
        }
        const state = await this.start((r) => hlcMs(r.position.hlc) <= point.ms, options.signal);
        const from = state.proj.count;
        await this.replay(state, { stop: (env) => hlcMs(env.hlc) > point.ms, record: true, signal: options.signal });
        return this.asOf(point, state, from);
      }
      case 'snapshot': {
        const snap = (await this.snapshots(options)).find((s) => s.name === point.name);
        if (snap === undefined) {
          throw new BazilError(ErrorCodes.UNKNOWN_SNAPSHOT, `volume '${this.src.name}' has no snapshot named ${JSON.stringify(point.name)} (see \`bazil snapshot ls\`)`, { name: point.name });
        }
        const want = snap.vector.pairs().reduce((sum, [, seq]) => sum + seq, 0n);
        const state = await this.start((r) => r.vector.isCoveredBy(snap.vector), options.signal);
        const from = state.proj.count;
        await this.replay(state, { stop: () => state.proj.count >= want, only: snap.vector, record: false, signal: options.signal });
        return this.asOf(point, state, from);
      }
    }
  }

  /** The live snapshots at the end of the log, in name order. */
  async snapshots(options: { signal?: AbortSignal } = {}): Promise<SnapshotInfo[]> {
    const last = this.refs.at(-1);
    const table = new Map((last?.snapshots ?? []).map((s) => [s.name, s]));
    let count = last?.count ?? 0n;
    for (const env of this.src.log.merged(last?.vector ?? VersionVector.EMPTY)) {
      checkAbort(options.signal);
      count++;
      const ev = this.openOrReject(env);
      if (!('rejected' in ev)) trackSnapshot(table, ev, count);
    }
    return [...table.values()].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  }

  /**
   * Replays the whole log and checks every checkpoint against the state the
   * replay reaches at its position, and its file against its name; one
   * that differs is replaced by the replayed state. Returns what was checked.
   */
  async verify(options: { signal?: AbortSignal } = {}): Promise<{ checked: number; replaced: string[] }> {
    const byCount = new Map(this.refs.map((r) => [r.count, r]));
    const state: ReplayState = { proj: new MemProjection(this.codec), snapshots: new Map() };
    const replaced: string[] = [];
    let checked = 0;
    const total = this.total();
    while (state.proj.count < total) {
      const next = [...byCount.keys()].filter((c) => c > state.proj.count).sort((a, b) => (a < b ? -1 : 1))[0] ?? total;
      const reached = state.proj.count;
      await this.replay(state, { stop: () => state.proj.count >= next, record: false, signal: options.signal });
      if (state.proj.count === reached) break;
      const ref = byCount.get(state.proj.count);
      if (ref === undefined) continue;
      checked++;
      if (checkpointBytes(state.proj, state.snapshots.values()).id === ref.id && (await this.store.intact(ref))) continue;
      replaced.push(ref.path);
      await this.store.remove(ref.path);
      this.refs = this.refs.filter((r) => r !== ref);
      this.insertRef(await this.store.write(state.proj, state.snapshots.values()));
    }
    return { checked, replaced };
  }

  // ---- internals ----

  private async prefix(point: Point, count: bigint, signal: AbortSignal | undefined): Promise<AsOf> {
    const state = await this.start((r) => r.count <= count, signal);
    const from = state.proj.count;
    await this.replay(state, { stop: () => state.proj.count >= count, record: true, signal });
    return this.asOf(point, state, from);
  }

  private asOf(point: Point, state: ReplayState, from: bigint): AsOf {
    const position = state.proj.position();
    if (position === null) throw beforeHistory(point, 'holds no events');
    return {
      point, count: state.proj.count, vector: state.proj.versionVector(), hlc: position.hlc,
      reader: new VolumeReader(this.src.name, state.proj, this.src.content), projection: state.proj,
      from: from === 0n ? null : from, replayed: Number(state.proj.count - from),
    };
  }

  /**
   * The state of the latest checkpoint `usable` accepts, or of no events. A
   * checkpoint that fails to load is deleted and the next older one tried.
   */
  private async start(usable: (r: CheckpointRef) => boolean, signal?: AbortSignal): Promise<ReplayState> {
    for (let i = this.refs.length - 1; i >= 0; i--) {
      const ref = this.refs[i]!;
      if (!usable(ref)) continue;
      checkAbort(signal);
      try {
        const proj = await this.store.load(ref, this.codec);
        return { proj, snapshots: new Map(ref.snapshots.map((s) => [s.name, s])) };
      } catch (err) {
        if (!isBazilError(err, ErrorCodes.BAD_CHECKPOINT)) throw err;
        await this.store.remove(ref.path);
        this.refs.splice(i, 1);
      }
    }
    return { proj: new MemProjection(this.codec), snapshots: new Map() };
  }

  private async replay(state: ReplayState, plan: ReplayPlan): Promise<void> {
    const { proj } = state;
    // A log arena sealed while the replay awaits is read on from its sealed form (ArenaSet.records).
    const events = this.src.log.merged(proj.versionVector());
    try {
      for (;;) {
        const it = events.next();
        if (it.done) break;
        const env = it.value;
        if (plan.stop(env)) break;
        checkAbort(plan.signal);
        if (plan.only !== undefined && !plan.only.includes(env.writer, env.seq)) continue;
        const ev = this.openOrReject(env);
        if (!('rejected' in ev)) trackSnapshot(state.snapshots, ev, proj.count + 1n);
        await proj.apply(env, ev);
        if (plan.record && proj.count % this.every === 0n && !this.refs.some((r) => r.count === proj.count)) {
          this.insertRef(await this.store.write(proj, state.snapshots.values()));
          this.written++;
        }
      }
    } finally {
      events.return(undefined);
    }
  }

  private insertRef(ref: CheckpointRef): void {
    this.refs.push(ref);
    this.refs.sort((a, b) => (a.count < b.count ? -1 : a.count > b.count ? 1 : 0));
  }

  /** Whether the checkpoint's events are still exactly the first `count` of the merge order. */
  private isPrefix(ref: CheckpointRef): boolean {
    const held = this.src.log.versionVector();
    if (!ref.vector.isCoveredBy(held)) return false;
    if (ref.vector.pairs().reduce((sum, [, seq]) => sum + seq, 0n) !== ref.count) return false;
    const last = this.src.log.read(ref.position.writer, ref.position.seq).next();
    if (last.done || last.value.seq !== ref.position.seq || last.value.hlc !== ref.position.hlc) return false;
    for (const [writer] of held.pairs()) {
      const next = this.src.log.read(writer, ref.vector.get(writer) + 1n).next();
      if (!next.done && compareCausal(next.value, ref.position) < 0) return false;
    }
    return true;
  }

  /** A signed event whose body does not open is noted as rejected, as the live projector does. */
  private openOrReject(env: Envelope): LogEvent | { rejected: string } {
    try {
      return this.src.log.open(env);
    } catch (err) {
      if (isBazilError(err, ErrorCodes.CORRUPT_EVENT) || isBazilError(err, ErrorCodes.DECRYPT_FAILED) || isBazilError(err, ErrorCodes.UNSUPPORTED_FORMAT)) {
        return { rejected: `${err.code}: ${err.message}` };
      }
      throw err;
    }
  }
}

/**
 * The snapshot table's rule: a name names the first snapshot event that
 * took it while it is free (a concurrent second one with the same name is
 * ignored, on every peer alike); snapshot-rm frees it.
 */
function trackSnapshot(table: Map<string, SnapshotInfo>, ev: LogEvent, count: bigint): void {
  const b = ev.body;
  if (b.type === 'snapshot' && !table.has(b.name)) {
    table.set(b.name, { name: b.name, count, vector: ev.deps.with(ev.writer, ev.seq), hlc: ev.hlc, writer: Buffer.from(ev.writer), seq: ev.seq });
  } else if (b.type === 'snapshot-rm') {
    table.delete(b.name);
  }
}

function beforeHistory(point: Point, why: string): BazilError {
  return new BazilError(ErrorCodes.BEFORE_HISTORY, `${describePoint(point)} ${why}`, { when: describePoint(point) });
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new BazilError(ErrorCodes.ABORTED, 'history replay aborted');
}
