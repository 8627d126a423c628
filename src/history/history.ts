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
// Every `fullEvery`-th one (the 1st, the 17th, …) is full; the others are
// deltas against the checkpoint before them, so a checkpoint costs the
// records its `every` events changed rather than the whole state, and
// loading one reads at most `fullEvery` files. A replay that does not hold
// the state of the previous checkpoint writes a full one instead.
// A checkpoint is used only while its vector is still a prefix of the merge
// order: an event that arrived late and sorts before its position makes it
// stale, and it is dropped.

import { BazilError, ErrorCodes, isBazilError } from '../../errors/index.js';
import type { ContentStore } from '../cas/content-store.js';
import type { Envelope, LogEvent } from '../log/codec.js';
import { hlcMs } from '../log/hlc.js';
import type { LogStore } from '../log/stream.js';
import { SealingCodec, type ProjectionCipher } from '../projection/index.js';
import { VersionVector } from '../log/version-vector.js';
import { VolumeReader } from '../volume/reader.js';
import {
  CheckpointStore, chainOf, checkpointBytes, deltaBytes, stateOf, type CheckpointBytes, type CheckpointRef, type SnapshotInfo,
  type StateRecords,
} from './checkpoints.js';
import { MemProjection } from './mem-projection.js';
import { isMergePrefix } from './merge-prefix.js';
import { describePoint, type Point } from './when.js';

/** Events between checkpoints: replaying this many in memory takes well under a second. */
export const DEFAULT_CHECKPOINT_EVERY = 4096n;
/** Checkpoints per full one; the rest are deltas, each against the one before it. */
export const DEFAULT_FULL_EVERY = 16n;

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
  /** Checkpoints per full one (default DEFAULT_FULL_EVERY; 1: every one full). */
  fullEvery?: bigint;
  /** Told of each checkpoint file found damaged (and deleted) while listing them. */
  onDamaged?: (err: BazilError) => void;
  signal?: AbortSignal;
}

/** A checkpoint that verify() found wrong. */
export interface CheckpointFinding {
  path: string;
  count: bigint;
  why: string;
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
  /** The state at the last checkpoint position the replay passed (or started from), when the next one may be written as a delta against it. */
  base: BaseState | null;
}

interface BaseState {
  count: bigint;
  id: string;
  state: StateRecords;
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
    readonly fullEvery: bigint,
  ) {
    this.codec = new SealingCodec(src.cipher);
  }

  /** Lists the volume's checkpoints and drops those the log no longer supports. */
  static async open(src: HistorySource, options: HistoryOptions = {}): Promise<History> {
    const every = options.every ?? DEFAULT_CHECKPOINT_EVERY;
    const fullEvery = options.fullEvery ?? DEFAULT_FULL_EVERY;
    if (every < 1n) throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'checkpoints are taken every 1 or more events');
    if (fullEvery < 1n) throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'every 1 or more checkpoints is a full one');
    const h = new History(src, CheckpointStore.forVolume(src.dir), every, fullEvery);
    for (const ref of await h.store.list(options.onDamaged)) {
      if (isMergePrefix(src.log, ref)) h.refs.push(ref);
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
      if (!this.needsWrite(m)) continue;
      const state = await this.start((r) => r.count < m, options.signal);
      // One replay fills every gap in a row; it stops at a checkpoint that needs nothing after it.
      await this.replay(state, {
        stop: () => state.proj.count >= m && (state.proj.count >= target || (state.proj.count % this.every === 0n && !this.needsWrite(state.proj.count + this.every))),
        record: true, signal: options.signal,
      });
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
   * Replays the log up to the last checkpoint and checks each one against
   * the state the replay reaches at its position: a full one's state, a
   * delta's changes (against the replayed state at its base's position),
   * and each file's bytes against its name. A delta is checked on its own:
   * its base is checked at its own position, and a delta whose base is bad
   * or gone names an id no good checkpoint has, so it is never loaded until
   * a correct base with that id is written again. One that differs (a
   * well-formed file with a forged name is only caught this way) is deleted
   * and, with `rewrite` (the default), written again from the replay.
   */
  async verify(options: { signal?: AbortSignal; rewrite?: boolean } = {}): Promise<{ checked: number; replaced: string[]; findings: CheckpointFinding[] }> {
    const rewrite = options.rewrite ?? true;
    const todo = [...this.refs];
    const state: ReplayState = { proj: new MemProjection(this.codec), snapshots: new Map(), base: null };
    const findings: CheckpointFinding[] = [];
    const replaced: string[] = [];
    // The replayed state at each position a checkpoint is (or may be rewritten as) a delta against, kept until the last one that needs it.
    const lastUse = new Map<bigint, bigint>();
    for (const r of todo) {
      for (const c of [r.base?.count, r.count - this.every]) {
        if (c !== undefined && c > 0n && (lastUse.get(c) ?? 0n) < r.count) lastUse.set(c, r.count);
      }
    }
    const stops = [...new Set([...todo.map((r) => r.count), ...lastUse.keys()])].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    const states = new Map<bigint, StateRecords>();
    /** The id of the good (checked or rewritten) checkpoint at each position. */
    const good = new Map<bigint, string>();
    let checked = 0;
    for (const stop of stops) {
      await this.replay(state, { stop: () => state.proj.count >= stop, record: false, signal: options.signal });
      if (state.proj.count !== stop) break;
      for (const ref of todo.filter((r) => r.count === stop)) {
        checked++;
        const why = await this.check(ref, state, states);
        if (why === null) {
          good.set(stop, ref.id);
          continue;
        }
        findings.push({ path: ref.path, count: stop, why });
        await this.store.remove(ref.path);
        this.refs = this.refs.filter((r) => r !== ref);
        if (!rewrite || good.has(stop)) continue;
        const baseCount = stop - this.every;
        const baseId = good.get(baseCount);
        const baseState = states.get(baseCount);
        const delta = !this.isFullPosition(stop) && baseId !== undefined && baseState !== undefined;
        const bytes = delta ? deltaBytes(state.proj, state.snapshots.values(), { count: baseCount, id: baseId }, baseState) : checkpointBytes(state.proj, state.snapshots.values());
        const written = await this.store.writeBytes(state.proj, bytes, delta ? { count: baseCount, id: baseId } : null);
        this.insertRef(written);
        good.set(stop, written.id);
        replaced.push(ref.path);
      }
      if ((lastUse.get(stop) ?? 0n) > stop) states.set(stop, stateOf(state.proj));
      for (const [c] of states) if ((lastUse.get(c) ?? 0n) <= stop) states.delete(c);
    }
    return { checked, replaced, findings };
  }

  /** Why `ref` is not the checkpoint the replayed `state` calls for, or null when it is. */
  private async check(ref: CheckpointRef, state: ReplayState, states: ReadonlyMap<bigint, StateRecords>): Promise<string | null> {
    if (!(await this.store.intact(ref))) return 'its bytes do not hash to its name, or it does not parse';
    if (ref.base === null) {
      return checkpointBytes(state.proj, state.snapshots.values(), ref.version).id === ref.id ? null : 'its state differs from a replay of the log to its position';
    }
    const baseState = states.get(ref.base.count);
    if (baseState === undefined) return `its base position @${ref.base.count} is not one the log reaches`;
    return deltaBytes(state.proj, state.snapshots.values(), ref.base, baseState, ref.version).id === ref.id ? null : 'its changes differ from a replay of the log between its base and its position';
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
   * checkpoint whose chain fails to load has the file at fault deleted, and
   * the next older one is tried; a delta whose base is gone is skipped (a
   * replay past the base writes it again, the same bytes).
   */
  private async start(usable: (r: CheckpointRef) => boolean, signal?: AbortSignal): Promise<ReplayState> {
    for (let i = this.refs.length - 1; i >= 0; i--) {
      const ref = this.refs[i]!;
      if (!usable(ref) || chainOf(ref, this.refs) === null) continue;
      checkAbort(signal);
      try {
        const proj = await this.store.load(ref, this.codec, this.refs);
        // The state as records only when the replay will write the next checkpoint as a delta against it.
        const base = this.needsWrite(ref.count + this.every) ? { count: ref.count, id: ref.id, state: stateOf(proj) } : null;
        return { proj, snapshots: new Map(ref.snapshots.map((s) => [s.name, s])), base };
      } catch (err) {
        if (!isBazilError(err, ErrorCodes.BAD_CHECKPOINT)) throw err;
        const path = typeof err.data['path'] === 'string' ? err.data['path'] : ref.path;
        await this.store.remove(path);
        this.refs = this.refs.filter((r) => r.path !== path);
        i = this.refs.length;
      }
    }
    return { proj: new MemProjection(this.codec), snapshots: new Map(), base: null };
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
        if (plan.record && proj.count % this.every === 0n) await this.record(state);
      }
    } finally {
      events.return(undefined);
    }
  }

  /**
   * At a checkpoint position: writes the checkpoint if it is missing (or a
   * delta whose base is gone), as a delta against the previous one when the
   * replay holds that state, else whole; and keeps this state as the base
   * of the next one when that one will have to be written.
   */
  private async record(state: ReplayState): Promise<void> {
    const { proj } = state;
    const count = proj.count;
    if (!this.needsWrite(count)) {
      const here = this.refs.find((r) => r.count === count && chainOf(r, this.refs) !== null)!;
      if (this.needsWrite(count + this.every) && state.base?.count !== count) state.base = { count, id: here.id, state: stateOf(proj) };
      return;
    }
    for (const stale of this.refs.filter((r) => r.count === count)) await this.store.remove(stale.path);
    this.refs = this.refs.filter((r) => r.count !== count);
    const base = state.base;
    let bytes: CheckpointBytes;
    let next: StateRecords | null = null;
    if (!this.isFullPosition(count) && base !== null && base.count === count - this.every) {
      const delta = deltaBytes(proj, state.snapshots.values(), base, base.state);
      bytes = delta;
      next = delta.state;
    } else {
      bytes = checkpointBytes(proj, state.snapshots.values());
    }
    const ref = await this.store.writeBytes(proj, bytes, next === null ? null : { count: base!.count, id: base!.id });
    this.insertRef(ref);
    this.written++;
    if (next === null && this.needsWrite(count + this.every)) next = stateOf(proj);
    state.base = next === null ? null : { count, id: ref.id, state: next };
  }

  /** Whether the checkpoint at `count` is missing, or is a delta whose chain is broken. */
  private needsWrite(count: bigint): boolean {
    return !this.refs.some((r) => r.count === count && chainOf(r, this.refs) !== null);
  }

  /** The 1st, (fullEvery+1)th, … checkpoint is full; the others are deltas. */
  private isFullPosition(count: bigint): boolean {
    return (count / this.every - 1n) % this.fullEvery === 0n;
  }

  private insertRef(ref: CheckpointRef): void {
    this.refs.push(ref);
    this.refs.sort((a, b) => (a.count < b.count ? -1 : a.count > b.count ? 1 : 0));
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
