// A volume's log over its arena set: the local writer's appends, checked
// ingest of other writers' events, reads per writer and in merge order, and
// fsck.
//
// Each writer's events are the arena stream of kind `log` and that writer:
// arena sequence number = event seq, record key = event id, record type 1
// (docs/volume.md, "Events"). The log keeps, per writer, the tip of its
// chain (last seq, id and clock) in memory: appends need it for `prev`,
// `deps` and the clock, and checks of incoming events for continuity.

import type { ArenaSet } from '../../arena/arena-set.js';
import type { SequencedRecord } from '../../arena/active-arena.js';
import { BazilError, ErrorCodes, isBazilError, type ErrorCode } from '../../errors/index.js';
import { compareCausal, mergeCausal } from './causal-merge.js';
import { decodeEnvelope, encodeEventOpened, openBody, parseEnvelope, ZERO_ID, VOLUME_ID_LENGTH, type Envelope, type LogEvent } from './codec.js';
import type { EventBody } from './event.js';
import { checkDrift, now, type Hlc } from './hlc.js';
import type { Signer } from './signing.js';
import { VersionVector } from './version-vector.js';

export const LOG_KIND = 'log';
export const EVENT_RECORD_TYPE = 1;
/** How far ahead of this machine's clock an incoming event's clock may be. */
export const DEFAULT_MAX_DRIFT_MS = 24 * 60 * 60 * 1000;

export interface LogStoreOptions {
  /** The volume's arena set, opened with the signer's writer id. The log does not close it. */
  arenas: ArenaSet;
  volume: Uint8Array;
  /** Ke, from deriveVolumeKeys. */
  eventKey: Uint8Array;
  signer: Signer;
}

export interface IncomingCheck {
  /** The events not yet held, in merge order (so in seq order per writer): store them in this order. */
  fresh: Envelope[];
  /** Events already held, which need nothing. */
  duplicates: number;
  /** The version vector once `fresh` is stored. */
  vector: VersionVector;
}

export interface IngestResult {
  /** The events stored, in merge order. */
  added: Envelope[];
  /** Events already held, left alone. */
  duplicates: number;
}

export interface LogProblem {
  code: ErrorCode;
  message: string;
  /** Hex writer id. */
  writer: string;
  seq: string | null;
}

/**
 * The local writer's latest appends kept in memory, so the projection's
 * catch-up right after a commit neither reads them back from the arena nor
 * decrypts them again. A batch flush appends its queued files' events all
 * at once (up to 4096 files, a few events each), and they are projected
 * after it: a window smaller than that made the catch-up read and decrypt
 * them again. A few KiB each at most (a large file's root manifest is
 * read from its node objects, not held here).
 */
const RECENT_EVENTS = 8192;
/** And at most this many bytes of stored events (held about four times over: the stored form, its parts, the opened body). */
const RECENT_BYTES = 8 * 1024 * 1024;

type Report = (code: ErrorCode, message: string, writer: string, seq: bigint | null) => void;

interface Tip {
  seq: bigint;
  id: Buffer;
  hlc: Hlc;
}

export class LogStore {
  private readonly tips = new Map<string, Tip>();
  private vector = VersionVector.EMPTY;
  private maxHlc: Hlc = 0n;
  private readonly volume: Buffer;
  private readonly writerHex: string;
  private streamChecked = false;
  /** The local writer's last appended events, consecutive, ending at its tip (empty when unknown). */
  private recent: Envelope[] = [];
  private recentBytes = 0;
  /** The opened form of events in `recent`, handed out once by open() (the projector's), then opened the usual way. */
  private readonly opened = new WeakMap<Envelope, LogEvent>();

  private constructor(private readonly arenas: ArenaSet, volume: Uint8Array, private readonly eventKey: Uint8Array, private readonly signer: Signer) {
    this.volume = Buffer.from(volume);
    this.writerHex = signer.writer.toString('hex');
  }

  /** Reads each writer's chain tip from the arena set. */
  static open(options: LogStoreOptions): LogStore {
    if (!(options.volume instanceof Uint8Array) || options.volume.length !== VOLUME_ID_LENGTH) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, `a volume id is ${VOLUME_ID_LENGTH} bytes`);
    }
    const log = new LogStore(options.arenas, options.volume, options.eventKey, options.signer);
    if (options.arenas.nextSeq(LOG_KIND) !== options.arenas.nextSeq(LOG_KIND, log.writer)) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, "the arena set was opened with a writer id other than the signer's", { writer: log.writerHex });
    }
    log.refresh();
    return log;
  }

  get writer(): Buffer {
    return this.signer.writer;
  }

  /** Re-reads every writer's tip, after records reached the arena set other than through this log (ArenaSet.adopt). */
  refresh(): void {
    this.tips.clear();
    this.recent = [];
    this.recentBytes = 0;
    this.maxHlc = 0n;
    const pairs: [Buffer, bigint][] = [];
    for (const w of this.arenas.writers(LOG_KIND)) {
      const last = this.lastEnvelope(w);
      if (last === undefined) continue;
      this.tips.set(w.toString('hex'), { seq: last.seq, id: last.id, hlc: last.hlc });
      if (last.hlc > this.maxHlc) this.maxHlc = last.hlc;
      pairs.push([w, last.seq]);
    }
    this.vector = VersionVector.from(pairs);
  }

  /** A writer's last event, read through the arena set's stream end. */
  private lastEnvelope(writer: Buffer): Envelope | undefined {
    const next = this.arenas.nextSeq(LOG_KIND, writer);
    if (next === 1n) return undefined;
    const r = this.arenas.recordAt(LOG_KIND, writer, next - 1n);
    if (r === undefined) {
      throw new BazilError(ErrorCodes.CORRUPT_EVENT, `the last event (${next - 1n}) of writer ${writer.toString('hex')} is not readable`, { writer: writer.toString('hex'), seq: (next - 1n).toString() });
    }
    return this.checkRecord(r, writer);
  }

  /** The events this log holds, as a version vector. */
  versionVector(): VersionVector {
    return this.vector;
  }

  /**
   * Appends an event of the local writer: next seq, a clock after every
   * event seen, prev = its previous event, deps = everything seen of the
   * other writers. Durable after sync().
   */
  append(body: EventBody, options: { wallMs: number }): LogEvent {
    const seq = this.arenas.nextSeq(LOG_KIND);
    const tip = this.tips.get(this.writerHex);
    if (seq !== (tip?.seq ?? 0n) + 1n) {
      throw new BazilError(ErrorCodes.INTERNAL, `the log's own stream is at seq ${seq - 1n} but the log expected ${tip?.seq ?? 0n}`);
    }
    const hlc = now(this.maxHlc, options.wallMs);
    const deps = this.vector.without(this.writer);
    const { envelope: env, event } = encodeEventOpened({ volume: this.volume, seq, hlc, prev: tip?.id ?? ZERO_ID, deps, body }, this.signer, this.eventKey);
    const stored = this.arenas.append(LOG_KIND, EVENT_RECORD_TYPE, env.id, env.bytes);
    if (stored !== seq) throw new BazilError(ErrorCodes.INTERNAL, `the arena stored event ${seq} as seq ${stored}`);
    if (!this.streamChecked) {
      // A fresh arena set cannot tell at open whose stream it appends to; the first record can.
      const landed = this.arenas.recordAt(LOG_KIND, this.writer, seq);
      if (landed === undefined || !env.id.equals(landed.key)) throw new BazilError(ErrorCodes.BAD_ARGUMENT, "the arena set was opened with a writer id other than the signer's", { writer: this.writerHex });
      this.streamChecked = true;
    }
    this.tips.set(this.writerHex, { seq, id: env.id, hlc });
    this.maxHlc = hlc;
    this.vector = this.vector.with(this.writer, seq);
    if (this.recent.length >= RECENT_EVENTS || this.recentBytes >= RECENT_BYTES) this.trimRecent();
    this.recent.push(env);
    this.recentBytes += env.bytes.length;
    this.opened.set(env, event);
    return { volume: env.volume, writer: env.writer, seq, hlc, prev: env.prev, deps, id: env.id, body };
  }

  /** Drops the older half of `recent` (by count and by bytes). */
  private trimRecent(): void {
    let drop = 0;
    while (drop < this.recent.length && (this.recent.length - drop > RECENT_EVENTS / 2 || this.recentBytes > RECENT_BYTES / 2)) {
      this.recentBytes -= this.recent[drop]!.bytes.length;
      drop++;
    }
    this.recent.splice(0, drop);
  }

  /** Hands appended events to the file system: they survive this process dying, not a power cut. */
  flush(): void {
    this.arenas.flush();
  }

  /** Makes every appended event durable: the commit point (one group fsync). */
  sync(): Promise<void> {
    return this.arenas.sync();
  }

  /**
   * Checks events from other holders of the volume before they are stored,
   * all or nothing: each signature, the volume, the clock (no further ahead
   * of `wallMs` than `maxDriftMs`), each writer's chain continuing from what
   * this log holds (a gap is LOG_GAP, a wrong prev or a clock that does not
   * rise is BROKEN_CHAIN, a second event for a seq already held is CONFLICT),
   * every dependency held or in the batch (else LOG_GAP) and each event's
   * clock after its dependencies' (else BROKEN_CHAIN), so that the merge
   * order puts every stored event after all it depends on. Events already
   * held are counted as duplicates and otherwise ignored.
   */
  verifyIncoming(events: readonly Uint8Array[], options: { wallMs: number; maxDriftMs?: number }): IncomingCheck {
    const maxDrift = options.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
    const byWriter = new Map<string, Envelope[]>();
    for (const bytes of events) {
      const env = decodeEnvelope(bytes);
      if (!env.volume.equals(this.volume)) {
        throw new BazilError(ErrorCodes.WRONG_VOLUME, `event ${env.seq} of writer ${env.writer.toString('hex')} belongs to volume ${env.volume.toString('hex')}`, describe(env));
      }
      checkDrift(env.hlc, options.wallMs, maxDrift);
      const w = env.writer.toString('hex');
      let list = byWriter.get(w);
      if (!list) byWriter.set(w, (list = []));
      list.push(env);
    }
    const fresh: Envelope[] = [];
    let duplicates = 0;
    let vector = this.vector;
    for (const [w, list] of byWriter) {
      list.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
      const held = this.tips.get(w);
      const accepted: Envelope[] = [];
      let last: Tip | undefined = held;
      for (const env of list) {
        if (last !== undefined && env.seq <= last.seq) {
          const same = env.seq <= (held?.seq ?? 0n) ? this.arenas.has(env.id) : accepted.some((a) => a.id.equals(env.id));
          if (!same) {
            throw new BazilError(ErrorCodes.CONFLICT, `writer ${w} signed two different events with seq ${env.seq}`, describe(env));
          }
          duplicates++;
          continue;
        }
        const expected = (last?.seq ?? 0n) + 1n;
        if (env.seq !== expected) {
          throw new BazilError(ErrorCodes.LOG_GAP, `event ${env.seq} of writer ${w} arrived before event ${expected}`, { ...describe(env), expected: expected.toString() });
        }
        if (!env.prev.equals(last?.id ?? ZERO_ID)) {
          throw new BazilError(ErrorCodes.BROKEN_CHAIN, `event ${env.seq} of writer ${w} does not link to its predecessor`, describe(env));
        }
        if (last !== undefined && env.hlc <= last.hlc) {
          throw new BazilError(ErrorCodes.BROKEN_CHAIN, `event ${env.seq} of writer ${w} has a clock no later than its predecessor's`, describe(env));
        }
        accepted.push(env);
        last = { seq: env.seq, id: env.id, hlc: env.hlc };
      }
      if (last !== undefined) vector = vector.with(Buffer.from(w, 'hex'), last.seq);
      fresh.push(...accepted);
    }
    const clocks = new Map(fresh.map((e) => [`${e.writer.toString('hex')}:${e.seq}`, e.hlc]));
    for (const env of fresh) {
      if (!env.deps.isCoveredBy(vector)) {
        throw new BazilError(ErrorCodes.LOG_GAP, `event ${env.seq} of writer ${env.writer.toString('hex')} depends on events this log does not hold`, describe(env));
      }
      // A writer's clocks rise along its chain, so its latest dependency on each writer is the one to beat.
      for (const [dw, ds] of env.deps.pairs()) {
        if (env.hlc <= this.hlcOf(dw, ds, clocks)) {
          throw new BazilError(ErrorCodes.BROKEN_CHAIN, `event ${env.seq} of writer ${env.writer.toString('hex')} has a clock no later than an event it depends on`, describe(env));
        }
      }
    }
    fresh.sort(compareCausal);
    return { fresh, duplicates, vector };
  }

  /**
   * The clock of event `seq` of `writer`: from `clocks` (keyed "writer
   * hex:seq", holding the batch and earlier look-ups), a tip, or the arena.
   */
  private hlcOf(writer: Buffer, seq: bigint, clocks: Map<string, Hlc>): Hlc {
    const w = writer.toString('hex');
    const known = clocks.get(`${w}:${seq}`);
    if (known !== undefined) return known;
    const tip = this.tips.get(w);
    if (tip !== undefined && tip.seq === seq) return tip.hlc;
    const r = this.arenas.recordAt(LOG_KIND, writer, seq);
    if (r === undefined) {
      throw new BazilError(ErrorCodes.CORRUPT_EVENT, `event ${seq} of writer ${w} is not readable`, { writer: w, seq: seq.toString() });
    }
    const hlc = this.checkRecord(r, writer).hlc;
    clocks.set(`${w}:${seq}`, hlc);
    return hlc;
  }

  /**
   * Stores events from other holders of the volume after verifyIncoming
   * accepts the whole batch (nothing of a refused batch is stored), each at
   * its writer's seq. Durable after sync().
   */
  ingest(events: readonly Uint8Array[], options: { wallMs: number; maxDriftMs?: number }): IngestResult {
    const check = this.verifyIncoming(events, options);
    for (const env of check.fresh) {
      this.arenas.appendAt(LOG_KIND, env.writer, env.seq, EVENT_RECORD_TYPE, env.id, env.bytes);
      this.tips.set(env.writer.toString('hex'), { seq: env.seq, id: env.id, hlc: env.hlc });
      if (env.hlc > this.maxHlc) this.maxHlc = env.hlc;
      this.vector = this.vector.with(env.writer, env.seq);
    }
    return { added: check.fresh, duplicates: check.duplicates };
  }

  /**
   * A writer's events from `fromSeq` on, parsed but not re-verified: local
   * arenas hold only events verified on arrival, under record checksums.
   */
  *read(writer: Uint8Array, fromSeq = 1n): Generator<Envelope> {
    const w = Buffer.from(writer.buffer, writer.byteOffset, writer.byteLength);
    const recent = this.recentFrom(w, fromSeq);
    if (recent !== null) {
      yield* recent;
      return;
    }
    for (const r of this.arenas.records(LOG_KIND, w, fromSeq)) yield this.checkRecord(r, w);
  }

  /** Every event not covered by `from`, all writers merged in (hlc, writer, seq) order. */
  merged(from: VersionVector = VersionVector.EMPTY): Generator<Envelope> {
    return mergeCausal(this.arenas.writers(LOG_KIND).map((w) => this.read(w, from.get(w) + 1n)));
  }

  /**
   * The local writer's events from `fromSeq` to its tip when all are in
   * `recent` (what the arena holds, as appended); null otherwise.
   */
  private recentFrom(writer: Buffer, fromSeq: bigint): Envelope[] | null {
    const first = this.recent[0];
    if (first === undefined || fromSeq < first.seq || !writer.equals(this.writer)) return null;
    const last = this.recent[this.recent.length - 1]!;
    if (last.seq !== this.arenas.nextSeq(LOG_KIND) - 1n) return null;
    return this.recent.slice(Number(fromSeq - first.seq));
  }

  /** An event with its body decrypted and validated. */
  open(envelope: Envelope): LogEvent {
    const appended = this.opened.get(envelope);
    if (appended !== undefined) {
      // Once only: whoever opens it may keep (and change) what it gets.
      this.opened.delete(envelope);
      return appended;
    }
    return openBody(envelope, this.eventKey);
  }

  /**
   * fsck of the log: every record parses, its signature verifies, it
   * belongs to this volume and to the stream holding it, every chain is
   * gapless with each prev linking and each clock rising, every body
   * decrypts and validates, and in merge order every event comes after all
   * it depends on. Returns every problem found (empty when sound).
   */
  verifyAll(): LogProblem[] {
    const problems: LogProblem[] = [];
    const report: Report = (code, message, writer, seq) => {
      problems.push({ code, message, writer, seq: seq === null ? null : seq.toString() });
    };
    const lastSeqs = new Map<string, bigint>();
    const streams = this.arenas.writers(LOG_KIND).map((w) => this.verifiedStream(w, report, lastSeqs));
    let seen = VersionVector.EMPTY;
    const outOfOrder: Envelope[] = [];
    for (const env of mergeCausal(streams)) {
      if (!env.deps.isCoveredBy(seen)) outOfOrder.push(env);
      seen = seen.with(env.writer, env.seq);
    }
    // Only once every stream is read is it known whether a dependency is absent or merely sorts later.
    for (const env of outOfOrder) {
      const w = env.writer.toString('hex');
      const missing = env.deps.pairs().find(([dw, ds]) => ds > (lastSeqs.get(dw.toString('hex')) ?? 0n));
      if (missing) report(ErrorCodes.LOG_GAP, `depends on event ${missing[1]} of writer ${missing[0].toString('hex')}, which this log does not hold`, w, env.seq);
      else report(ErrorCodes.BROKEN_CHAIN, 'sorts before events it depends on (its clock is not after theirs)', w, env.seq);
    }
    return problems;
  }

  /** One writer's events that pass every check of their own; failures go to `report`, the last seq to `lastSeqs`. */
  private *verifiedStream(writer: Buffer, report: Report, lastSeqs: Map<string, bigint>): Generator<Envelope> {
    const w = writer.toString('hex');
    const end = this.arenas.nextSeq(LOG_KIND, writer);
    let expected = 1n;
    let prev: Buffer | null = ZERO_ID;
    let lastHlc = -1n;
    let records = this.arenas.records(LOG_KIND, writer);
    for (;;) {
      let r: SequencedRecord;
      try {
        const next = records.next();
        if (next.done) return;
        r = next.value;
      } catch (err) {
        if (!isBazilError(err)) throw err;
        report(err.code, err.message, w, expected);
        // A record that fails its checksum ends the arena's iterator; go on after it.
        prev = null;
        expected++;
        if (expected >= end) return;
        records = this.arenas.records(LOG_KIND, writer, expected);
        continue;
      }
      if (r.seq !== expected) report(ErrorCodes.LOG_GAP, `events ${expected}..${r.seq - 1n} are missing`, w, expected);
      expected = r.seq + 1n;
      lastSeqs.set(w, r.seq);
      let env: Envelope;
      try {
        env = this.checkRecord(r, writer, true);
        openBody(env, this.eventKey);
      } catch (err) {
        if (!isBazilError(err)) throw err;
        report(err.code, err.message, w, r.seq);
        // The chain is checked again from the next event that verifies.
        prev = null;
        continue;
      }
      if (prev !== null && !env.prev.equals(prev)) report(ErrorCodes.BROKEN_CHAIN, 'prev does not name the previous event', w, env.seq);
      if (env.hlc <= lastHlc) report(ErrorCodes.BROKEN_CHAIN, "clock is not after the previous event's", w, env.seq);
      prev = env.id;
      lastHlc = env.hlc;
      yield env;
    }
  }

  /** Parses (and with `verify`, signature-checks) a stored record, and checks it is where it claims to be. */
  private checkRecord(r: SequencedRecord, writer: Buffer, verify = false): Envelope {
    const where = { writer: writer.toString('hex'), seq: r.seq.toString() };
    if (r.type !== EVENT_RECORD_TYPE) throw new BazilError(ErrorCodes.CORRUPT_EVENT, `log record ${r.seq} has type ${r.type}, not ${EVENT_RECORD_TYPE}`, where);
    const env = verify ? decodeEnvelope(r.payload) : parseEnvelope(r.payload);
    if (!env.volume.equals(this.volume)) throw new BazilError(ErrorCodes.WRONG_VOLUME, `log record ${r.seq} holds an event of volume ${env.volume.toString('hex')}`, where);
    if (!env.writer.equals(writer) || env.seq !== r.seq) {
      throw new BazilError(ErrorCodes.CORRUPT_EVENT, `log record ${r.seq} holds event ${env.seq} of writer ${env.writer.toString('hex')}`, where);
    }
    if (!env.id.equals(r.key)) throw new BazilError(ErrorCodes.CORRUPT_EVENT, `log record ${r.seq} is keyed by another event's id`, where);
    return env;
  }
}

function describe(env: Envelope): { writer: string; seq: string } {
  return { writer: env.writer.toString('hex'), seq: env.seq.toString() };
}
