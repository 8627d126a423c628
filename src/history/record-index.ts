// A checkpoint's records kept in the buffers they were read into, with an
// index of where each record starts: loading a chain then costs one pass
// over the lengths, not an object, a map entry and two buffer views per
// record (at a million events that was most of a view's start, in
// allocation and garbage collection), and a record is sliced out only when
// something reads it. Records are found by binary search on their stored
// keys, which a checkpoint holds in key order (checked here).
//
// Two uses: a full checkpoint's state (`scan`), and the changes of a chain
// of deltas merged into one sorted index (`merge`: the newest change of
// each key wins, and a change may remove its key).
//
// Each record can be taken once (`take`): it is then gone from the index,
// as it moved into the in-memory projection's own maps.

/** Makes the error for a body that is not a well-formed sorted state; `body`: which one. */
export type BadState = (why: string, body: number) => Error;

/** The value length that marks a removed key in a delta; never in a full state. */
const REMOVED = 0xffffffff;

interface Sorted {
  /** Which body each record is in (null: all in the first). */
  src: Uint32Array | null;
  /** Where each record's key length is in its body, in key order. */
  at: Uint32Array;
}

export class RecordIndex {
  private readonly src: Uint32Array | null;
  private readonly at: Uint32Array;
  /** 1 once the record was taken. */
  private readonly gone: Uint8Array;
  readonly size: number;

  private constructor(private readonly bodies: readonly Buffer[], sorted: Sorted) {
    this.src = sorted.src;
    this.at = sorted.at;
    this.size = sorted.at.length;
    this.gone = new Uint8Array(this.size);
  }

  /** Indexes a full state (u32 BE length ‖ key, u32 BE length ‖ value, …) whose keys are strictly increasing. */
  static scan(body: Buffer, bad: BadState): RecordIndex {
    return new RecordIndex([body], { src: null, at: scanBody(body, false, (why) => bad(why, 0)) });
  }

  /** Indexes the changes of deltas, oldest first (each sorted; a value length of FFFFFFFF removes the key), as one sorted set where the newest change of a key wins. */
  static merge(bodies: readonly Buffer[], bad: BadState): RecordIndex {
    let runs: Sorted[] = bodies.map((b, i) => {
      const at = scanBody(b, true, (why) => bad(why, i));
      return { src: new Uint32Array(at.length).fill(i), at };
    });
    if (runs.length === 0) return new RecordIndex(bodies, { src: new Uint32Array(0), at: new Uint32Array(0) });
    // Pairwise rounds, neighbours together, so a newer run always merges as the right-hand one.
    while (runs.length > 1) {
      const next: Sorted[] = [];
      for (let i = 0; i < runs.length; i += 2) next.push(i + 1 < runs.length ? mergeRuns(bodies, runs[i]!, runs[i + 1]!) : runs[i]!);
      runs = next;
    }
    return new RecordIndex(bodies, runs[0]!);
  }

  /** The first byte of record `i`'s key (its table tag). */
  tagAt(i: number): number {
    return this.body(i)[this.at[i]! + 4]!;
  }

  keyLengthAt(i: number): number {
    return this.body(i).readUInt32BE(this.at[i]!);
  }

  /** Bytes [from, to) of record `i`'s key as a latin1 string (the form the projection's maps are keyed by). */
  keyString(i: number, from: number, to?: number): string {
    const body = this.body(i);
    const ks = this.at[i]! + 4;
    const ke = ks + body.readUInt32BE(this.at[i]!);
    return body.toString('latin1', ks + from, to === undefined ? ke : ks + to);
  }

  /** Record `i` as (key, value) views of its body; a null value for a removed key. */
  record(i: number): [Buffer, Buffer | null] {
    const body = this.body(i);
    const p = this.at[i]!;
    const ke = p + 4 + body.readUInt32BE(p);
    const vlen = body.readUInt32BE(ke);
    return [body.subarray(p + 4, ke), vlen === REMOVED ? null : body.subarray(ke + 4, ke + 4 + vlen)];
  }

  isGone(i: number): boolean {
    return this.gone[i] === 1;
  }

  /** Record `i`, marked gone; undefined when it was taken already. */
  take(i: number): [Buffer, Buffer | null] | undefined {
    if (this.gone[i] === 1) return undefined;
    this.gone[i] = 1;
    return this.record(i);
  }

  /** The index of the record whose key is `key`, or -1. */
  find(key: Buffer): number {
    const i = this.lowerBound(key);
    return i < this.size && this.compareKey(i, key) === 0 ? i : -1;
  }

  /** The indexes of the records whose keys start with `prefix`, as [from, to). */
  range(prefix: Buffer): [number, number] {
    const from = this.lowerBound(prefix);
    let to = from;
    while (to < this.size && this.hasPrefix(to, prefix)) to++;
    return [from, to];
  }

  /** Record `i`'s key against record `j`'s of `other`, as Buffer.compare orders them. */
  compareWith(i: number, other: RecordIndex, j: number): number {
    const a = this.body(i);
    const b = other.body(j);
    const as = this.at[i]! + 4;
    const bs = other.at[j]! + 4;
    return compareBytes(a, as, as + a.readUInt32BE(as - 4), b, bs, bs + b.readUInt32BE(bs - 4));
  }

  private body(i: number): Buffer {
    return this.bodies[this.src === null ? 0 : this.src[i]!]!;
  }

  /** The first index whose key is not below `key`. */
  private lowerBound(key: Buffer): number {
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compareKey(mid, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Record `i`'s key against `key`, as Buffer.compare orders them. */
  private compareKey(i: number, key: Buffer): number {
    const body = this.body(i);
    const ks = this.at[i]! + 4;
    return compareBytes(body, ks, ks + body.readUInt32BE(this.at[i]!), key, 0, key.length);
  }

  private hasPrefix(i: number, prefix: Buffer): boolean {
    const body = this.body(i);
    const ks = this.at[i]! + 4;
    const len = body.readUInt32BE(this.at[i]!);
    return len >= prefix.length && compareBytes(body, ks, ks + prefix.length, prefix, 0, prefix.length) === 0;
  }
}

/** Where each record of `body` starts, checking that each is whole and the keys strictly increase. */
function scanBody(body: Buffer, removals: boolean, bad: (why: string) => Error): Uint32Array {
  let n = 0;
  for (let p = 0; p < body.length; n++) p = skipRecord(body, p, removals, bad);
  const at = new Uint32Array(n);
  let prevStart = -1;
  let prevEnd = -1;
  for (let i = 0, p = 0; i < n; i++) {
    at[i] = p;
    const ks = p + 4;
    const ke = ks + body.readUInt32BE(p);
    if (prevStart >= 0 && compareBytes(body, ks, ke, body, prevStart, prevEnd) <= 0) throw bad('its records are not in key order');
    prevStart = ks;
    prevEnd = ke;
    p = skipRecord(body, p, removals, bad);
  }
  return at;
}

/** Where the record at `p` ends, checking that it is whole (and has a value, unless `removals`). */
function skipRecord(body: Buffer, p: number, removals: boolean, bad: (why: string) => Error): number {
  if (p + 4 > body.length) throw bad('its state is truncated');
  const ke = p + 4 + body.readUInt32BE(p);
  if (ke + 4 > body.length) throw bad('its state is truncated');
  const vlen = body.readUInt32BE(ke);
  if (vlen === REMOVED) {
    if (!removals) throw bad('a full checkpoint holds a removed key');
    return ke + 4;
  }
  const ve = ke + 4 + vlen;
  if (ve > body.length) throw bad('its state is truncated');
  return ve;
}

/** Two sorted runs as one; on a key in both, `newer`'s record wins. */
function mergeRuns(bodies: readonly Buffer[], older: Sorted, newer: Sorted): Sorted {
  const n = older.at.length + newer.at.length;
  const src = new Uint32Array(n);
  const at = new Uint32Array(n);
  let i = 0;
  let j = 0;
  let k = 0;
  const keyCmp = (): number => {
    const a = bodies[older.src![i]!]!;
    const b = bodies[newer.src![j]!]!;
    const as = older.at[i]! + 4;
    const bs = newer.at[j]! + 4;
    return compareBytes(a, as, as + a.readUInt32BE(as - 4), b, bs, bs + b.readUInt32BE(bs - 4));
  };
  while (i < older.at.length && j < newer.at.length) {
    const c = keyCmp();
    if (c < 0) {
      src[k] = older.src![i]!;
      at[k++] = older.at[i++]!;
    } else {
      if (c === 0) i++;
      src[k] = newer.src![j]!;
      at[k++] = newer.at[j++]!;
    }
  }
  for (; i < older.at.length; i++, k++) {
    src[k] = older.src![i]!;
    at[k] = older.at[i]!;
  }
  for (; j < newer.at.length; j++, k++) {
    src[k] = newer.src![j]!;
    at[k] = newer.at[j]!;
  }
  return { src: src.subarray(0, k), at: at.subarray(0, k) };
}

/**
 * a[as, ae) against b[bs, be) in byte order, as Buffer.compare orders them.
 * In JS rather than Buffer#compare: keys are short and differ early (random
 * ids), and the native call with its argument checks cost more than the
 * loop, tens of times per lookup.
 */
function compareBytes(a: Buffer, as: number, ae: number, b: Buffer, bs: number, be: number): number {
  const n = Math.min(ae - as, be - bs);
  for (let k = 0; k < n; k++) {
    const d = a[as + k]! - b[bs + k]!;
    if (d !== 0) return d;
  }
  return (ae - as) - (be - bs);
}
