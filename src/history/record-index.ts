// A full checkpoint's state kept as the one buffer it was read into, with
// an index of where each record starts: loading a checkpoint then costs one
// pass over the lengths, not an object, a map entry and two buffer views
// per record (at a million events that was most of a view's start, in
// allocation and garbage collection), and a record is sliced out only when
// something reads it. Records are found by binary search on their stored
// keys, which the state holds in key order (checked here).
//
// Each record can be taken once (`take`): it is then gone from the index,
// as it moved into the in-memory projection's own maps.

/** Makes the error for a body that is not a well-formed sorted state. */
export type BadState = (why: string) => Error;

/** The value length that marks a removed key in a delta; never in a full state. */
const REMOVED = 0xffffffff;

export class RecordIndex {
  /** Where each record's key length is, in key order. */
  private readonly at: Uint32Array;
  /** 1 once the record was taken. */
  private readonly gone: Uint8Array;
  readonly size: number;

  private constructor(private readonly body: Buffer, at: Uint32Array) {
    this.at = at;
    this.size = at.length;
    this.gone = new Uint8Array(at.length);
  }

  /** Indexes a state (u32 BE length ‖ key, u32 BE length ‖ value, …) whose keys are strictly increasing. */
  static scan(body: Buffer, bad: BadState): RecordIndex {
    let n = 0;
    for (let p = 0; p < body.length; n++) p = skipRecord(body, p, bad);
    const at = new Uint32Array(n);
    let prevStart = -1;
    let prevEnd = -1;
    for (let i = 0, p = 0; i < n; i++) {
      at[i] = p;
      const ks = p + 4;
      const ke = ks + body.readUInt32BE(p);
      if (prevStart >= 0 && body.compare(body, prevStart, prevEnd, ks, ke) <= 0) throw bad('its records are not in key order');
      prevStart = ks;
      prevEnd = ke;
      p = skipRecord(body, p, bad);
    }
    return new RecordIndex(body, at);
  }

  /** The first byte of record `i`'s key (its table tag). */
  tagAt(i: number): number {
    return this.body[this.at[i]! + 4]!;
  }

  keyLengthAt(i: number): number {
    return this.body.readUInt32BE(this.at[i]!);
  }

  /** Bytes [from, to) of record `i`'s key as a latin1 string (the form the projection's maps are keyed by). */
  keyString(i: number, from: number, to?: number): string {
    const ks = this.at[i]! + 4;
    const ke = ks + this.body.readUInt32BE(this.at[i]!);
    return this.body.toString('latin1', ks + from, to === undefined ? ke : ks + to);
  }

  /** Record `i` as (key, value) views of the body. */
  record(i: number): [Buffer, Buffer] {
    const p = this.at[i]!;
    const ke = p + 4 + this.body.readUInt32BE(p);
    const ve = ke + 4 + this.body.readUInt32BE(ke);
    return [this.body.subarray(p + 4, ke), this.body.subarray(ke + 4, ve)];
  }

  isGone(i: number): boolean {
    return this.gone[i] === 1;
  }

  /** Record `i`, marked gone; undefined when it was taken already. */
  take(i: number): [Buffer, Buffer] | undefined {
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
    const ks = this.at[i]! + 4;
    return this.body.compare(key, 0, key.length, ks, ks + this.body.readUInt32BE(this.at[i]!));
  }

  private hasPrefix(i: number, prefix: Buffer): boolean {
    const ks = this.at[i]! + 4;
    const len = this.body.readUInt32BE(this.at[i]!);
    return len >= prefix.length && this.body.compare(prefix, 0, prefix.length, ks, ks + prefix.length) === 0;
  }
}

/** Where the record at `p` ends, checking that it is whole and has a value. */
function skipRecord(body: Buffer, p: number, bad: BadState): number {
  if (p + 4 > body.length) throw bad('its state is truncated');
  const ke = p + 4 + body.readUInt32BE(p);
  if (ke + 4 > body.length) throw bad('its state is truncated');
  const vlen = body.readUInt32BE(ke);
  if (vlen === REMOVED) throw bad('a full checkpoint holds a removed key');
  const ve = ke + 4 + vlen;
  if (ve > body.length) throw bad('its state is truncated');
  return ve;
}
