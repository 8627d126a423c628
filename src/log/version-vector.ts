// Version vectors: for each writer, the highest sequence number seen.
//
// A writer's events form a gapless chain, so "seen up to seq n" stands for
// all of its events 1..n, and one number per writer describes a whole
// prefix of the log. Vectors are immutable values; a writer at 0 is simply
// absent, so every vector has one canonical form: [writer, seq] pairs
// sorted by writer bytes, seq >= 1.

import { BazilError, ErrorCodes, type ErrorCode } from '../../errors/index.js';
import { decodeCanonical, encodeCanonical, type DecodedValue, type EncodableValue } from './canonical-cbor.js';

export const WRITER_LENGTH = 32;
const MAX_SEQ = (1n << 64n) - 1n;

export type VectorOrder = 'before' | 'after' | 'equal' | 'concurrent';

export class VersionVector {
  static readonly EMPTY = new VersionVector(new Map());

  /** Hex writer id → seq (>= 1). Lowercase hex of equal-length ids sorts as the bytes do. */
  private constructor(private readonly seqs: ReadonlyMap<string, bigint>) {}

  /** A vector from pairs; zeros are dropped, and a writer named twice keeps its highest seq. */
  static from(pairs: Iterable<readonly [Uint8Array, bigint]>): VersionVector {
    const m = new Map<string, bigint>();
    for (const [writer, seq] of pairs) {
      checkWriter(writer);
      checkSeq(seq);
      if (seq === 0n) continue;
      const h = hex(writer);
      const old = m.get(h);
      if (old === undefined || seq > old) m.set(h, seq);
    }
    return new VersionVector(m);
  }

  get size(): number {
    return this.seqs.size;
  }

  /** The highest seq of `writer` seen, 0 when none. */
  get(writer: Uint8Array): bigint {
    return this.seqs.get(hex(writer)) ?? 0n;
  }

  /** Whether event `seq` of `writer` is covered. */
  includes(writer: Uint8Array, seq: bigint): boolean {
    return seq <= this.get(writer);
  }

  /** This vector with `writer` raised to at least `seq`. */
  with(writer: Uint8Array, seq: bigint): VersionVector {
    checkWriter(writer);
    checkSeq(seq);
    const h = hex(writer);
    if (seq <= (this.seqs.get(h) ?? 0n)) return this;
    const m = new Map(this.seqs);
    m.set(h, seq);
    return new VersionVector(m);
  }

  /** This vector without `writer`. */
  without(writer: Uint8Array): VersionVector {
    const h = hex(writer);
    if (!this.seqs.has(h)) return this;
    const m = new Map(this.seqs);
    m.delete(h);
    return new VersionVector(m);
  }

  /** The pointwise maximum: everything either has seen. */
  merge(other: VersionVector): VersionVector {
    const m = new Map(this.seqs);
    for (const [h, s] of other.seqs) if (s > (m.get(h) ?? 0n)) m.set(h, s);
    return new VersionVector(m);
  }

  /** How this vector relates to `other` in the happened-before order. */
  compare(other: VersionVector): VectorOrder {
    let less = false;
    let greater = false;
    for (const [h, s] of this.seqs) {
      const o = other.seqs.get(h) ?? 0n;
      if (s > o) greater = true;
      else if (s < o) less = true;
    }
    for (const [h, o] of other.seqs) if (!this.seqs.has(h) && o > 0n) less = true;
    if (less && greater) return 'concurrent';
    if (less) return 'before';
    if (greater) return 'after';
    return 'equal';
  }

  equals(other: VersionVector): boolean {
    return this.compare(other) === 'equal';
  }

  /** Whether every event this vector covers is covered by `other`. */
  isCoveredBy(other: VersionVector): boolean {
    const order = this.compare(other);
    return order === 'before' || order === 'equal';
  }

  /** The canonical pairs, sorted by writer. */
  pairs(): [Buffer, bigint][] {
    return [...this.seqs.keys()].sort().map((h) => [Buffer.from(h, 'hex'), this.seqs.get(h)!]);
  }

  toCbor(): EncodableValue {
    return this.pairs();
  }

  /** Canonical CBOR: an array of [writer(32 bytes), seq] pairs sorted by writer. */
  encode(): Buffer {
    return encodeCanonical(this.toCbor());
  }

  /**
   * Reads the canonical pair array, refusing anything else (unsorted or
   * repeated writers, zero seqs, wrong sizes) with `code`.
   */
  static fromCbor(value: DecodedValue, code: ErrorCode = ErrorCodes.CORRUPT_EVENT): VersionVector {
    if (!Array.isArray(value)) throw new BazilError(code, 'a version vector is an array of [writer, seq] pairs');
    const m = new Map<string, bigint>();
    let last = '';
    for (const pair of value) {
      if (!Array.isArray(pair) || pair.length !== 2) throw new BazilError(code, 'a version vector entry is a [writer, seq] pair');
      const [w, s] = pair;
      if (!Buffer.isBuffer(w) || w.length !== WRITER_LENGTH) throw new BazilError(code, `a version vector writer is ${WRITER_LENGTH} bytes`);
      if ((typeof s !== 'number' && typeof s !== 'bigint') || BigInt(s) < 1n) throw new BazilError(code, 'a version vector seq is an integer >= 1');
      const h = w.toString('hex');
      if (h <= last) throw new BazilError(code, 'version vector writers must be sorted and distinct');
      last = h;
      m.set(h, BigInt(s));
    }
    return new VersionVector(m);
  }

  static decode(bytes: Uint8Array, code: ErrorCode = ErrorCodes.CORRUPT_EVENT): VersionVector {
    return VersionVector.fromCbor(decodeCanonical(bytes, code), code);
  }

  /** Hex writer → decimal seq, for `--json` and messages. */
  toJSON(): Record<string, string> {
    return Object.fromEntries(this.pairs().map(([w, s]) => [w.toString('hex'), s.toString()]));
  }
}

function hex(writer: Uint8Array): string {
  return Buffer.from(writer.buffer, writer.byteOffset, writer.byteLength).toString('hex');
}

function checkWriter(writer: Uint8Array): void {
  if (!(writer instanceof Uint8Array) || writer.length !== WRITER_LENGTH) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `a writer id is ${WRITER_LENGTH} bytes`);
  }
}

function checkSeq(seq: bigint): void {
  if (typeof seq !== 'bigint' || seq < 0n || seq > MAX_SEQ) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `a sequence number is a bigint in 0..2^64-1, got ${String(seq)}`);
  }
}
