// Bit-level building blocks for the arena's succinct structures: a bit
// writer, fixed-width reads, select, level-ordered unary codes and
// Elias-Fano.
//
// Bit vectors are arrays of 32-bit words, bit i living in word i >>> 5 at
// position i & 31 (least significant first), so a serialized vector is simply
// its words in little-endian order. Everything works in 32-bit integer
// arithmetic because that is what V8 keeps unboxed on hot paths.

export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** Index of the lowest set bit; `x` must not be zero. */
export function ctz32(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** Reads `width` (0..31) bits starting at bit `pos`. */
export function readBits(words: Uint32Array, pos: number, width: number): number {
  const w = pos >>> 5;
  const shift = pos & 31;
  let v = words[w]! >>> shift;
  // Only touch the next word when the value straddles it: the last value of
  // a vector never does, so reads stay inside exactly-sized (mapped) views.
  if (shift + width > 32) v |= words[w + 1]! << (32 - shift);
  return v & ((1 << width) - 1);
}

/**
 * readBits without a branch, for hot paths: it always reads the word after
 * the value, so `words` must extend at least one word past the last value.
 */
export function readBitsPadded(words: Uint32Array, pos: number, width: number): number {
  const w = pos >>> 5;
  const shift = pos & 31;
  // Shifting by 1 and then by 31 - shift stays below 32 even when shift is 0.
  const v = (words[w]! >>> shift) | ((words[w + 1]! << 1) << (31 - shift));
  return v & ((1 << width) - 1);
}

/** The longest bit vector whose positions fit the int32 arithmetic of hot paths. */
export const MAX_BITS = 2 ** 31 - 64;

export function wordsFor(bits: number): number {
  return Math.ceil(bits / 32);
}

/** Appends bits to a growable word array; unwritten bits stay zero. */
export class BitWriter {
  private words: Uint32Array;
  private length = 0;

  constructor(expectedBits = 1024) {
    this.words = new Uint32Array(Math.max(2, wordsFor(expectedBits) + 1));
  }

  get bitLength(): number {
    return this.length;
  }

  /** Appends the low `width` (0..31) bits of `value`. */
  write(value: number, width: number): void {
    if (width === 0) return;
    this.reserve(width);
    const v = value & ((1 << width) - 1);
    const w = this.length >>> 5;
    const shift = this.length & 31;
    this.words[w]! |= v << shift;
    if (shift + width > 32) this.words[w + 1]! |= v >>> (32 - shift);
    this.length += width;
  }

  /** Appends `zeros` zero bits and then a one: a unary code. */
  writeUnary(zeros: number): void {
    this.reserve(zeros + 1);
    this.length += zeros;
    this.words[this.length >>> 5]! |= 1 << (this.length & 31);
    this.length += 1;
  }

  /** The written bits, in exactly `wordsFor(bitLength)` words. */
  finish(): Uint32Array {
    return this.words.slice(0, wordsFor(this.length));
  }

  private reserve(bits: number): void {
    const need = wordsFor(this.length + bits) + 1;
    if (need <= this.words.length) return;
    const grown = new Uint32Array(Math.max(need, this.words.length * 2));
    grown.set(this.words);
    this.words = grown;
  }
}

const SAMPLE_SHIFT = 5;
const SAMPLE_MASK = (1 << SAMPLE_SHIFT) - 1;

/**
 * Select over a bit vector: the position of the j-th one. For every 32nd
 * one it keeps the position just past the one before it, rebuilt from the
 * vector when loaded (one pass of popcounts), so the samples cost memory,
 * about one bit per one, but never file space.
 */
export class SelectIndex {
  private readonly words: Uint32Array;
  private readonly starts: Uint32Array;

  private constructor(words: Uint32Array, starts: Uint32Array) {
    this.words = words;
    this.starts = starts;
  }

  /**
   * Indexes `words`, which must hold exactly `ones` set bits, the last of
   * them at `bitLength - 1` (vectors are written tight). Returns undefined
   * when they do not, which is how loaders detect damage: every answer the
   * index then gives stays inside the vector.
   */
  static build(words: Uint32Array, bitLength: number, ones: number): SelectIndex | undefined {
    if (wordsFor(bitLength) !== words.length || ones > bitLength) return undefined;
    if (ones === 0) return bitLength === 0 ? new SelectIndex(words, new Uint32Array(0)) : undefined;
    // starts[k] is just past the (32k - 1)-th one (0 for k = 0).
    const starts = new Uint32Array(((ones - 1) >>> SAMPLE_SHIFT) + 1);
    let seen = 0;
    let last = -1;
    for (let w = 0; w < words.length; w++) {
      let word = words[w]!;
      if (word === 0) continue;
      const c = popcount32(word);
      if (seen + c > ones) return undefined;
      // Only a word holding the (32k - 1)-th one for some k needs a
      // bit-by-bit walk.
      const next = ((seen + SAMPLE_MASK + 1) & ~SAMPLE_MASK) - 1;
      if (next < seen + c) {
        for (let k = seen; word !== 0; k++) {
          const at = w * 32 + ctz32(word);
          if (((k + 1) & SAMPLE_MASK) === 0 && k + 1 < ones) starts[(k + 1) >>> SAMPLE_SHIFT] = at + 1;
          word &= word - 1;
        }
      }
      seen += c;
      last = w * 32 + 31 - Math.clz32(words[w]!);
    }
    if (seen !== ones || last !== bitLength - 1) return undefined;
    return new SelectIndex(words, starts);
  }

  /** Position of the j-th one (0-based); j must be below the count of ones. */
  select(j: number): number {
    const words = this.words;
    const p = this.starts[j >>> SAMPLE_SHIFT]!;
    let rank = (j & SAMPLE_MASK) + 1;
    let w = p >>> 5;
    let word = words[w]! & (-1 << (p & 31));
    let c = popcount32(word);
    while (c < rank) {
      rank -= c;
      word = words[++w]!;
      c = popcount32(word);
    }
    return w * 32 + selectInWord(word, rank - 1);
  }
}

const POPCOUNT8 = new Uint8Array(256);
// SELECT8[byte * 8 + r]: position of the r-th (0-based) set bit of byte.
const SELECT8 = new Uint8Array(256 * 8);
for (let b = 0; b < 256; b++) {
  let r = 0;
  for (let bit = 0; bit < 8; bit++) {
    if ((b >>> bit) & 1) SELECT8[b * 8 + r++] = bit;
  }
  POPCOUNT8[b] = r;
}

/**
 * Position of the r-th (0-based) set bit of x, which has more than r set
 * bits. Branch-free: which half, then which byte, is chosen with masks,
 * because the choice is unpredictable and a mispredicted branch costs more
 * than the whole computation.
 */
function selectInWord(x: number, r: number): number {
  const low16 = POPCOUNT8[x & 0xff]! + POPCOUNT8[(x >>> 8) & 0xff]!;
  let upper = (low16 - r - 1) >> 31; // -1 when the bit is in the upper half
  r -= low16 & upper;
  let pos = 16 & upper;
  x >>>= pos;
  const low8 = POPCOUNT8[x & 0xff]!;
  upper = (low8 - r - 1) >> 31;
  r -= low8 & upper;
  const shift = 8 & upper;
  x >>>= shift;
  pos += shift;
  return pos + SELECT8[((x & 0xff) << 3) | r]!;
}

/**
 * Decodes `count` unary codes (each a run of zeros closed by a one) from a
 * vector written tight: exactly `count` ones, the last of them at
 * `bitLength - 1`. Returns undefined when the vector is anything else.
 */
export function decodeUnary(words: Uint32Array, bitLength: number, count: number): Uint32Array | undefined {
  if (wordsFor(bitLength) !== words.length || count > bitLength) return undefined;
  const values = new Uint32Array(count);
  let k = 0;
  let last = -1;
  for (let w = 0; w < words.length; w++) {
    for (let word = words[w]!; word !== 0; word &= word - 1) {
      if (k === count) return undefined;
      const pos = w * 32 + ctz32(word);
      values[k++] = pos - last - 1;
      last = pos;
    }
  }
  return k === count && last === bitLength - 1 ? values : undefined;
}

/**
 * Small non-negative integers held as unary codes transposed by level, for
 * reading in memory: level 0 has one bit per value, set when the value is at
 * least 1; level k has one bit for each value of at least k, in order, set
 * when it is at least k + 1. That is exactly as many bits as plain unary
 * codes, but a value is read with one rank per level instead of a select,
 * and most values stop at level 0.
 */
export class UnaryLevels {
  private constructor(
    // Word w of the levels at [2w], the count of ones before it at [2w + 1]:
    // one cache line serves both.
    private readonly ranked: Uint32Array,
    private readonly levelStart: Int32Array,
    private readonly levelRank: Int32Array,
  ) {}

  /**
   * Takes over `values` (it is overwritten). Positions are int32, so the
   * codes (value + 1 bits each) may take at most MAX_BITS; callers check.
   */
  static fromValues(values: Uint32Array): UnaryLevels {
    let bitLength = 0;
    for (let i = 0; i < values.length; i++) bitLength += values[i]! + 1;
    const words = wordsFor(bitLength);
    const ranked = new Uint32Array(2 * words + 2);
    const starts: number[] = [];
    let level = values;
    let pos = 0;
    for (let k = 0; level.length > 0; k++) {
      starts.push(pos);
      let next = 0;
      for (let i = 0; i < level.length; i++, pos++) {
        if (level[i]! > k) {
          ranked[2 * (pos >>> 5)]! |= 1 << (pos & 31);
          level[next++] = level[i]!;
        }
      }
      level = level.subarray(0, next);
    }
    let ones = 0;
    for (let w = 0; w < words; w++) {
      ranked[2 * w + 1] = ones;
      ones += popcount32(ranked[2 * w]!);
    }
    const rankAt = (p: number): number =>
      ranked[2 * (p >>> 5) + 1]! + popcount32(ranked[2 * (p >>> 5)]! & ((1 << (p & 31)) - 1));
    return new UnaryLevels(ranked, Int32Array.from(starts), Int32Array.from(starts, rankAt));
  }

  get(i: number): number {
    const ranked = this.ranked;
    for (let value = 0; ; value++) {
      const pos = this.levelStart[value]! + i;
      const w = pos >>> 5;
      const bit = 1 << (pos & 31);
      const word = ranked[2 * w]!;
      if ((word & bit) === 0) return value;
      i = ranked[2 * w + 1]! + popcount32(word & (bit - 1)) - this.levelRank[value]!;
    }
  }
}

/** The parts of an Elias-Fano sequence, as stored. */
export interface EliasFanoParts {
  lowWidth: number;
  lows: Uint32Array;
  highBits: number;
  highs: Uint32Array;
}

/**
 * Elias-Fano coding of a non-decreasing sequence below `universe`: each value
 * keeps its low bits verbatim and its high part in unary, about
 * 2 + log2(universe / count) bits per value.
 */
export function encodeEliasFano(values: ArrayLike<number>, count: number, universe: number): EliasFanoParts {
  // floor(log2(universe / count)) in integers, so every engine agrees.
  let lowWidth = 0;
  while (count > 0 && lowWidth < 31 && count * 2 ** (lowWidth + 1) <= universe) lowWidth++;
  const lows = new BitWriter(count * lowWidth);
  const highs = new BitWriter(count * 2 + 64);
  let prevHigh = 0;
  for (let j = 0; j < count; j++) {
    const v = values[j]!;
    lows.write(v, lowWidth);
    const high = Math.floor(v / 2 ** lowWidth);
    highs.writeUnary(high - prevHigh);
    prevHigh = high;
  }
  return { lowWidth, lows: lows.finish(), highBits: highs.bitLength, highs: highs.finish() };
}

export class EliasFano {
  private constructor(
    private readonly lowWidth: number,
    private readonly lows: Uint32Array,
    private readonly highs: SelectIndex,
  ) {}

  /** Returns undefined when the parts are inconsistent with `count`. */
  static load(parts: EliasFanoParts, count: number): EliasFano | undefined {
    if (parts.lowWidth > 31 || parts.lows.length !== wordsFor(count * parts.lowWidth)) return undefined;
    const highs = SelectIndex.build(parts.highs, parts.highBits, count);
    return highs === undefined ? undefined : new EliasFano(parts.lowWidth, parts.lows, highs);
  }

  get(j: number): number {
    const high = this.highs.select(j) - j;
    return high * 2 ** this.lowWidth + readBits(this.lows, j * this.lowWidth, this.lowWidth);
  }
}
