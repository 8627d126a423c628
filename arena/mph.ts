// Minimal perfect hash for sealed-arena indexes: a PTHash-family function.
//
// Keys are hashed to 64 bits; the first 32 pick a bucket through a skewed
// (cubic) distribution, so a few buckets are large and most are small. Each
// bucket gets a pilot: the smallest number whose hash, mixed with the other
// 32 bits of each key in the bucket, sends every key to a free slot of a
// table 1% larger than the key count. Buckets are placed largest first, while
// the table is still empty. Slots past the key count are then remapped onto
// the holes left below it, which makes the function minimal.
//
// Pilots are roughly geometric, with a mean that grows as the table fills, so
// they are stored as Rice codes whose low-bit width is chosen per region of
// buckets: low bits in a fixed-width array, high parts as unary codes in a
// bit vector, which the loader rearranges into levels that lookups read with
// ranks (UnaryLevels). The remap is Elias-Fano coded. The byte layout is
// documented in docs/arena.md and must never change for version 1: sealed
// arenas written with it are read forever (test/fixtures/arena-v1).

import { BazilError, ErrorCodes } from '../errors/index.js';
import {
  BitWriter,
  EliasFano,
  MAX_BITS,
  UnaryLevels,
  decodeUnary,
  encodeEliasFano,
  readBitsPadded,
  wordsFor,
} from './bits.js';

export interface MphBuildOptions {
  /** First hash seed to try; a failed attempt moves on to the next one. Default 0. */
  seed?: number;
  /** Average keys per bucket: higher is smaller and slower to build. Default 4. */
  lambda?: number;
  /** Keys per table slot: higher is smaller, slower to build and remaps less. Default 0.99. */
  alpha?: number;
}

const MAGIC = 0x484d5a42; // "BZMH" read as a little-endian u32
const VERSION = 1;
const HEADER_BYTES = 40;

// Share of the hash range spread linearly over the buckets; the rest follows
// the cubic. It bounds the largest bucket near lambda / EPS keys, which keeps
// small tables buildable, and costs nothing measurable in space.
const EPS = 1 / 8;
// A pilot this large means the bucket cannot be placed: its keys share their
// slot hash (a duplicate key or a 64-bit collision). Real pilots stay below
// a few thousand; the bound also caps Rice low widths at 20 bits.
const MAX_PILOT = 1 << 20;
const MAX_ATTEMPTS = 16;
// Bounds the keys a loader accepts per bucket, and so the count a header may
// claim for the bits it carries.
const MAX_LAMBDA = 16;
// Lookups hash every byte of a key, so a damaged length field must not be
// able to turn each lookup into a scan of gigabytes.
const MAX_KEY_LENGTH = 0xffff;
// Rice widths are chosen per region: up to 64 regions follow the drift of
// pilot sizes across the bucket range closely enough, and regions of at
// least 64 buckets keep the width table negligible for small key counts.
// Both are the builder's choice: readers take the region size from the
// header.
const REGIONS_LOG2 = 6;
const MIN_REGION_LOG2 = 6;
const MAX_WIDTH = 20;

const TWO_POW_M32 = 2 ** -32;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function pilotHash(pilot: number): number {
  return fmix32(pilot ^ 0x6a09e667);
}

// Pilot hashes for the pilots nearly every search stays within.
const PILOT_TABLE_SIZE = 1 << 16;
let pilotTable: Int32Array | undefined;
function pilotHashes(): Int32Array {
  if (pilotTable === undefined) {
    pilotTable = new Int32Array(PILOT_TABLE_SIZE);
    for (let p = 0; p < PILOT_TABLE_SIZE; p++) pilotTable[p] = pilotHash(p);
  }
  return pilotTable;
}

// hashKey writes its two halves here, so lookups allocate nothing.
const hashOut = new Int32Array(2);

/**
 * Hashes all bytes of a key into hashOut: [0] picks the bucket, [1] the slot.
 * Two multiply-xorshift lanes over little-endian 32-bit words; a key that
 * differs from another in a single word always differs in both lanes, so
 * counters and other structured keys spread like random ones.
 */
function hashKey(key: Uint8Array, off: number, len: number, seedA: number, seedB: number): void {
  let a = seedA;
  let b = seedB;
  const end = off + len;
  let p = off;
  // Two words a step: the same sequence as one at a time, with fewer loop
  // branches on the 32-byte keys that dominate.
  for (const pairEnd = off + (len & ~7); p < pairEnd; p += 8) {
    const w = key[p]! | (key[p + 1]! << 8) | (key[p + 2]! << 16) | (key[p + 3]! << 24);
    const v = key[p + 4]! | (key[p + 5]! << 8) | (key[p + 6]! << 16) | (key[p + 7]! << 24);
    a = Math.imul(a ^ w, 0x9e3779b1);
    b = Math.imul(b ^ w, 0x7feb352d);
    a ^= a >>> 15;
    b ^= b >>> 13;
    a = Math.imul(a ^ v, 0x9e3779b1);
    b = Math.imul(b ^ v, 0x7feb352d);
    a ^= a >>> 15;
    b ^= b >>> 13;
  }
  if (end - p >= 4) {
    const w = key[p]! | (key[p + 1]! << 8) | (key[p + 2]! << 16) | (key[p + 3]! << 24);
    a = Math.imul(a ^ w, 0x9e3779b1);
    b = Math.imul(b ^ w, 0x7feb352d);
    a ^= a >>> 15;
    b ^= b >>> 13;
    p += 4;
  }
  if (p < end) {
    let w = 0;
    for (let s = 0; p < end; p++, s += 8) w |= key[p]! << s;
    a = Math.imul(a ^ w, 0x9e3779b1);
    b = Math.imul(b ^ w, 0x7feb352d);
  }
  a = fmix32(a ^ len);
  hashOut[0] = a;
  hashOut[1] = fmix32(b ^ a);
}

function seedLanes(seed: number): [number, number] {
  return [fmix32(seed ^ 0x243f6a88), fmix32(Math.imul(seed, 0x3c6ef372) ^ 0x13198a2e)];
}

/** Maps a bucket hash to a bucket: a cubic skew blended with a linear share. */
function bucketOf(h: number, c1: number, c2: number, m: number): number {
  const x = (h >>> 0) * TWO_POW_M32;
  const b = Math.floor(x * (x * (1 + x) * c1 + c2));
  return b < m ? b : m - 1;
}

function bucketConstants(m: number): [number, number] {
  return [(m * (1 - EPS)) / 2, m * EPS];
}

/** Slot in [0, tableSize) of a key with slot hash `h` in a bucket whose pilot hashes to `ph`. */
function slotOf(h: number, ph: number, scale: number): number {
  return Math.floor((Math.imul(h ^ ph, 0x2545f491) >>> 0) * scale);
}

interface Layout {
  count: number;
  keyLength: number;
  seed: number;
  tableSize: number;
  buckets: number;
  regionShift: number;
  widths: Uint8Array;
  pilotLows: Uint32Array;
  pilotHighs: Uint32Array;
  pilotHighBits: number;
  remapLowWidth: number;
  remapLows: Uint32Array;
  remapHighs: Uint32Array;
  remapHighBits: number;
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

type Header = Omit<Layout, 'widths' | 'pilotLows' | 'pilotHighs' | 'remapLows' | 'remapHighs'>;

/** Section sizes implied by a header; the low bits also need the region widths. */
function sectionSizes(l: Header, widths: Uint8Array | undefined) {
  const regions = l.buckets === 0 ? 0 : ((l.buckets - 1) >>> l.regionShift) + 1;
  let lowBits = 0;
  if (widths !== undefined) {
    const regionSize = 2 ** l.regionShift;
    for (let r = 0; r < regions; r++) {
      const len = Math.min(regionSize, l.buckets - r * regionSize);
      lowBits += len * widths[r]!;
    }
  }
  return {
    regions,
    lowBits,
    regionBytes: pad4(regions),
    pilotLowWords: wordsFor(lowBits),
    pilotHighWords: wordsFor(l.pilotHighBits),
    remapLowWords: wordsFor((l.tableSize - l.count) * l.remapLowWidth),
    remapHighWords: wordsFor(l.remapHighBits),
  };
}

function serializeLayout(l: Layout): Uint8Array {
  const s = sectionSizes(l, l.widths);
  const total =
    HEADER_BYTES + s.regionBytes + 4 * (s.pilotLowWords + s.pilotHighWords + s.remapLowWords + s.remapHighWords);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint8(4, VERSION);
  dv.setUint8(5, l.regionShift);
  dv.setUint8(6, l.remapLowWidth);
  dv.setUint32(8, total, true);
  dv.setUint32(12, l.count, true);
  dv.setUint32(16, l.keyLength, true);
  dv.setUint32(20, l.seed, true);
  dv.setUint32(24, l.tableSize, true);
  dv.setUint32(28, l.buckets, true);
  dv.setUint32(32, l.pilotHighBits, true);
  dv.setUint32(36, l.remapHighBits, true);
  let at = HEADER_BYTES;
  out.set(l.widths, at);
  at += s.regionBytes;
  for (const words of [l.pilotLows, l.pilotHighs, l.remapLows, l.remapHighs]) {
    for (let i = 0; i < words.length; i++, at += 4) dv.setUint32(at, words[i]!, true);
  }
  return out;
}

function corrupt(message: string, data: Record<string, number> = {}): BazilError {
  return new BazilError(ErrorCodes.CORRUPT_ARENA, `perfect hash index: ${message}`, data);
}

/** Whether the bits of `words` past the first `bits` are all zero, as written. */
function paddingIsZero(words: Uint32Array, bits: number): boolean {
  return bits % 32 === 0 || words[words.length - 1]! >>> (bits % 32) === 0;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Words of a section: a view when aligned on a little-endian host, else a copy. */
function wordsAt(bytes: Uint8Array, at: number, count: number): Uint32Array {
  const start = bytes.byteOffset + at;
  if (LITTLE_ENDIAN && start % 4 === 0) return new Uint32Array(bytes.buffer, start, count);
  const dv = new DataView(bytes.buffer, start, count * 4);
  const words = new Uint32Array(count);
  for (let i = 0; i < count; i++) words[i] = dv.getUint32(i * 4, true);
  return words;
}

export class Mph {
  readonly count: number;
  private readonly bytes: Uint8Array;
  private readonly keyLength: number;
  private readonly seedA: number;
  private readonly seedB: number;
  private readonly buckets: number;
  private readonly c1: number;
  private readonly c2: number;
  private readonly scale: number;
  private readonly regionShift: number;
  private readonly regionMask: number;
  private readonly widths: Uint8Array;
  private readonly lowBase: Int32Array;
  private readonly pilotLows: Uint32Array;
  private readonly pilotHighs: UnaryLevels;
  private readonly remap: EliasFano;

  private constructor(
    bytes: Uint8Array,
    l: Header,
    pilots: { widths: Uint8Array; lowBase: Int32Array; paddedLows: Uint32Array; highs: UnaryLevels },
    remap: EliasFano,
  ) {
    this.bytes = bytes;
    this.count = l.count;
    this.keyLength = l.keyLength;
    [this.seedA, this.seedB] = seedLanes(l.seed);
    this.buckets = l.buckets;
    [this.c1, this.c2] = bucketConstants(l.buckets);
    this.scale = l.tableSize * TWO_POW_M32;
    this.regionShift = l.regionShift;
    this.regionMask = 2 ** l.regionShift - 1;
    this.widths = pilots.widths;
    this.lowBase = pilots.lowBase;
    this.pilotLows = pilots.paddedLows;
    this.pilotHighs = pilots.highs;
    this.remap = remap;
  }

  static build(keys: Uint8Array, count: number, keyLength: number, options: MphBuildOptions = {}): Mph {
    if (!Number.isSafeInteger(count) || count < 0 || count > 0x7fffffff) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'count must be an integer in [0, 2^31)', { count });
    }
    if (!Number.isSafeInteger(keyLength) || keyLength < 0 || keyLength > MAX_KEY_LENGTH) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, `keyLength must be an integer in [0, ${MAX_KEY_LENGTH}]`, {
        keyLength,
      });
    }
    if (keys.length < count * keyLength) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'keys holds fewer than count * keyLength bytes', {
        bytes: keys.length,
        count,
        keyLength,
      });
    }
    const seed = options.seed ?? 0;
    const lambda = options.lambda ?? 4;
    const alpha = options.alpha ?? 0.99;
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'seed must be a u32', { seed });
    }
    if (!(lambda >= 1 && lambda <= MAX_LAMBDA)) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, `lambda must be in [1, ${MAX_LAMBDA}]`, { lambda });
    }
    if (!(alpha >= 0.5 && alpha <= 1)) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'alpha must be in [0.5, 1]', { alpha });
    }
    const layout =
      count === 0 ? emptyLayout(keyLength, seed) : new Builder(keys, count, keyLength, lambda, alpha).run(seed);
    return Mph.deserialize(serializeLayout(layout));
  }

  /** Slot in [0, count) of the key at key[offset, offset + keyLength). */
  lookup(key: Uint8Array, offset = 0): number {
    const n = this.count;
    if (n === 0) return 0;
    hashKey(key, offset, this.keyLength, this.seedA, this.seedB);
    const bucket = bucketOf(hashOut[0]!, this.c1, this.c2, this.buckets);
    const r = bucket >>> this.regionShift;
    const width = this.widths[r]!;
    const lo = readBitsPadded(this.pilotLows, this.lowBase[r]! + (bucket & this.regionMask) * width, width);
    const hi = this.pilotHighs.get(bucket);
    const slot = slotOf(hashOut[1]!, pilotHash((hi << width) | lo), this.scale);
    return slot < n ? slot : this.remap.get(slot - n);
  }

  /** Serialized bits per key, remap and header included (0 when empty). */
  bitsPerKey(): number {
    return this.count === 0 ? 0 : (this.bytes.length * 8) / this.count;
  }

  serialize(): Uint8Array {
    return this.bytes.slice();
  }

  static deserialize(bytes: Uint8Array): Mph {
    if (bytes.length < 5) throw corrupt('truncated header', { bytes: bytes.length });
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (dv.getUint32(0, true) !== MAGIC) throw corrupt('bad magic');
    const version = dv.getUint8(4);
    if (version !== VERSION) {
      throw new BazilError(ErrorCodes.UNSUPPORTED_FORMAT, `perfect hash index version ${version} is not supported`, {
        version,
      });
    }
    if (bytes.length < HEADER_BYTES) throw corrupt('truncated header', { bytes: bytes.length });
    const total = dv.getUint32(8, true);
    if (total !== bytes.length) throw corrupt('length does not match header', { bytes: bytes.length, header: total });
    if (dv.getUint8(7) !== 0) throw corrupt('reserved byte set');
    const head: Header = {
      regionShift: dv.getUint8(5),
      remapLowWidth: dv.getUint8(6),
      count: dv.getUint32(12, true),
      keyLength: dv.getUint32(16, true),
      seed: dv.getUint32(20, true),
      tableSize: dv.getUint32(24, true),
      buckets: dv.getUint32(28, true),
      pilotHighBits: dv.getUint32(32, true),
      remapHighBits: dv.getUint32(36, true),
    };
    const { count, tableSize, buckets } = head;
    if (count > 0x7fffffff) throw corrupt('count out of range', { count });
    if (tableSize < count || tableSize - count > count) throw corrupt('table size out of range', { count, tableSize });
    if (buckets > count || buckets < Math.ceil(count / MAX_LAMBDA)) {
      throw corrupt('bucket count out of range', { buckets });
    }
    if (head.regionShift > 30 || head.remapLowWidth > 31 || head.keyLength > MAX_KEY_LENGTH) {
      throw corrupt('field out of range');
    }
    let s = sectionSizes(head, undefined);
    if (HEADER_BYTES + s.regionBytes > bytes.length) throw corrupt('truncated region table');
    const widths = bytes.slice(HEADER_BYTES, HEADER_BYTES + s.regions);
    const lowBase = new Int32Array(s.regions);
    const regionSize = 2 ** head.regionShift;
    let lowBits = 0;
    for (let r = 0; r < s.regions; r++) {
      if (widths[r]! > MAX_WIDTH) throw corrupt('pilot width out of range', { region: r });
      lowBase[r] = lowBits;
      lowBits += Math.min(regionSize, buckets - r * regionSize) * widths[r]!;
    }
    if (lowBits > MAX_BITS || head.pilotHighBits > MAX_BITS) throw corrupt('pilot bits out of range');
    for (let p = HEADER_BYTES + s.regions; p < HEADER_BYTES + s.regionBytes; p++) {
      if (bytes[p] !== 0) throw corrupt('padding not zero');
    }
    s = sectionSizes(head, widths);
    const expected =
      HEADER_BYTES + s.regionBytes + 4 * (s.pilotLowWords + s.pilotHighWords + s.remapLowWords + s.remapHighWords);
    if (expected !== bytes.length) {
      throw corrupt('section sizes do not match length', { bytes: bytes.length, expected });
    }
    const lowsAt = HEADER_BYTES + s.regionBytes;
    let at = lowsAt;
    const take = (words: number): Uint32Array => {
      const view = wordsAt(bytes, at, words);
      at += words * 4;
      return view;
    };
    const pilotLows = take(s.pilotLowWords);
    const pilotHighs = take(s.pilotHighWords);
    const remapLows = take(s.remapLowWords);
    const remapHighs = take(s.remapHighWords);
    const remapCount = tableSize - count;
    if (!paddingIsZero(pilotLows, s.lowBits) || !paddingIsZero(remapLows, remapCount * head.remapLowWidth)) {
      throw corrupt('padding bits set');
    }
    const his = decodeUnary(pilotHighs, head.pilotHighBits, buckets);
    if (his === undefined) throw corrupt('pilot high bits inconsistent');
    const remap = EliasFano.load(
      { lowWidth: head.remapLowWidth, lows: remapLows, highBits: head.remapHighBits, highs: remapHighs },
      remapCount,
    );
    if (remap === undefined) throw corrupt('remap inconsistent');
    for (let j = 0; j < remapCount; j++) {
      if (remap.get(j) >= count) throw corrupt('remap target out of range', { entry: j });
    }
    // Lookups read one word past each low part; the high parts follow the
    // low ones, so that word is always inside `bytes`.
    const paddedLows = buckets === 0 ? new Uint32Array(1) : wordsAt(bytes, lowsAt, s.pilotLowWords + 1);
    const pilots = { widths, lowBase, paddedLows, highs: UnaryLevels.fromValues(his) };
    return new Mph(bytes, head, pilots, remap);
  }
}

function emptyLayout(keyLength: number, seed: number): Layout {
  const none = new Uint32Array(0);
  return {
    count: 0,
    keyLength,
    seed,
    tableSize: 0,
    buckets: 0,
    regionShift: 0,
    widths: new Uint8Array(0),
    pilotLows: none,
    pilotHighs: none,
    pilotHighBits: 0,
    remapLowWidth: 0,
    remapLows: none,
    remapHighs: none,
    remapHighBits: 0,
  };
}

/** One construction: scratch arrays sized once, reused across seed attempts. */
class Builder {
  private readonly tableSize: number;
  private readonly buckets: number;
  private readonly hashA: Int32Array;
  private readonly hashB: Int32Array;
  private readonly bucketStart: Uint32Array;
  private readonly members: Int32Array;
  private readonly memberKey: Uint32Array;
  private readonly order: Uint32Array;
  private readonly pilots: Uint32Array;
  private readonly taken: Int32Array;

  constructor(
    private readonly keys: Uint8Array,
    private readonly count: number,
    private readonly keyLength: number,
    lambda: number,
    alpha: number,
  ) {
    this.buckets = Math.max(1, Math.ceil(count / lambda));
    this.tableSize = Math.min(2 * count, Math.max(count, Math.ceil(count / alpha)));
    this.hashA = new Int32Array(count);
    this.hashB = new Int32Array(count);
    this.bucketStart = new Uint32Array(this.buckets + 1);
    this.members = new Int32Array(count);
    this.memberKey = new Uint32Array(count);
    this.order = new Uint32Array(this.buckets);
    this.pilots = new Uint32Array(this.buckets);
    this.taken = new Int32Array(wordsFor(this.tableSize));
  }

  run(firstSeed: number): Layout {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const seed = (firstSeed + attempt) >>> 0;
      this.hashAll(seed);
      const maxSize = this.groupByBucket();
      const failed = this.placeAll(maxSize);
      if (failed < 0) return this.encode(seed);
      this.rejectDuplicates(failed);
    }
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `no perfect hash found in ${MAX_ATTEMPTS} seeds`, {
      count: this.count,
      seed: firstSeed,
    });
  }

  private hashAll(seed: number): void {
    const [sa, sb] = seedLanes(seed);
    const { keys, keyLength, hashA, hashB } = this;
    for (let i = 0; i < this.count; i++) {
      hashKey(keys, i * keyLength, keyLength, sa, sb);
      hashA[i] = hashOut[0]!;
      hashB[i] = hashOut[1]!;
    }
  }

  /** Counting-sorts keys by bucket, then buckets by decreasing size; returns the largest size. */
  private groupByBucket(): number {
    const { count, buckets: m, hashA, hashB, bucketStart, members, memberKey, order } = this;
    const [c1, c2] = bucketConstants(m);
    bucketStart.fill(0);
    const bucketOfKey = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const b = bucketOf(hashA[i]!, c1, c2, m);
      bucketOfKey[i] = b;
      bucketStart[b + 1]!++;
    }
    let maxSize = 0;
    for (let b = 0; b < m; b++) {
      if (bucketStart[b + 1]! > maxSize) maxSize = bucketStart[b + 1]!;
      bucketStart[b + 1]! += bucketStart[b]!;
    }
    const fill = bucketStart.slice(0, m);
    for (let i = 0; i < count; i++) {
      const at = fill[bucketOfKey[i]!]!++;
      members[at] = hashB[i]!;
      memberKey[at] = i;
    }
    const bySize = new Uint32Array(maxSize + 2);
    for (let b = 0; b < m; b++) bySize[maxSize - (bucketStart[b + 1]! - bucketStart[b]!) + 1]!++;
    for (let s = 1; s <= maxSize + 1; s++) bySize[s]! += bySize[s - 1]!;
    for (let b = 0; b < m; b++) order[bySize[maxSize - (bucketStart[b + 1]! - bucketStart[b]!)]!++] = b;
    return maxSize;
  }

  /** Finds every pilot; returns -1, or the first bucket that cannot be placed. */
  private placeAll(maxSize: number): number {
    const { order, bucketStart, members, pilots, taken } = this;
    const table = pilotHashes();
    const scale = this.tableSize * TWO_POW_M32;
    const placed = new Int32Array(maxSize);
    taken.fill(0);
    pilots.fill(0);
    for (let k = 0; k < order.length; k++) {
      const b = order[k]!;
      const start = bucketStart[b]!;
      const end = bucketStart[b + 1]!;
      if (start === end) break;
      if (end - start === 1) {
        // Most trials are spent here, on singleton buckets late in the fill.
        const h = members[start]!;
        let p = 0;
        for (; p < MAX_PILOT; p++) {
          const slot = slotOf(h, p < PILOT_TABLE_SIZE ? table[p]! : pilotHash(p), scale);
          if ((taken[slot >>> 5]! & (1 << slot)) === 0) {
            taken[slot >>> 5]! |= 1 << slot;
            break;
          }
        }
        if (p === MAX_PILOT) return b;
        pilots[b] = p;
        continue;
      }
      let p = 0;
      for (; p < MAX_PILOT; p++) {
        const ph = p < PILOT_TABLE_SIZE ? table[p]! : pilotHash(p);
        let j = start;
        for (; j < end; j++) {
          const slot = slotOf(members[j]!, ph, scale);
          const bit = 1 << slot;
          if ((taken[slot >>> 5]! & bit) !== 0) break;
          taken[slot >>> 5]! |= bit;
          placed[j - start] = slot;
        }
        if (j === end) break;
        for (let t = start; t < j; t++) {
          const slot = placed[t - start]!;
          taken[slot >>> 5]! &= ~(1 << slot);
        }
      }
      if (p === MAX_PILOT) return b;
      pilots[b] = p;
    }
    return -1;
  }

  /** A bucket no pilot can place holds two keys with one slot hash: equal keys, or a hash collision. */
  private rejectDuplicates(bucket: number): void {
    const { members, memberKey, keys, keyLength } = this;
    const start = this.bucketStart[bucket]!;
    const end = this.bucketStart[bucket + 1]!;
    for (let i = start; i < end; i++) {
      for (let j = i + 1; j < end; j++) {
        if (members[i] !== members[j]) continue;
        const a = memberKey[i]! * keyLength;
        const b = memberKey[j]! * keyLength;
        let k = 0;
        while (k < keyLength && keys[a + k] === keys[b + k]) k++;
        if (k === keyLength) {
          throw new BazilError(ErrorCodes.DUPLICATE_KEY, 'duplicate key in perfect hash build', {
            first: Math.min(memberKey[i]!, memberKey[j]!),
            second: Math.max(memberKey[i]!, memberKey[j]!),
          });
        }
      }
    }
  }

  private encode(seed: number): Layout {
    const { buckets: m, pilots, count, tableSize } = this;
    const regionShift = Math.max(MIN_REGION_LOG2, 32 - Math.clz32(m - 1) - REGIONS_LOG2);
    const regionSize = 2 ** regionShift;
    const regions = ((m - 1) >>> regionShift) + 1;
    const widths = new Uint8Array(regions);
    const cost = new Float64Array(MAX_WIDTH + 1);
    for (let r = 0; r < regions; r++) {
      // A Rice code of width w costs w + 1 + (pilot >> w) bits. The cheapest
      // w leaves half the pilots with a high part, so lookups would mostly
      // walk the unary levels; one bit more (about 0.07 bits per key) halves
      // that and saves a sixth of the lookup time. The cheapest w never
      // exceeds the bit length of the largest pilot.
      const start = r * regionSize;
      const end = Math.min(m, start + regionSize);
      let max = 0;
      for (let b = start; b < end; b++) max |= pilots[b]!;
      const top = 32 - Math.clz32(max);
      cost.fill(0);
      for (let b = start; b < end; b++) {
        const p = pilots[b]!;
        for (let w = 0; w <= top; w++) cost[w]! += (p >>> w) + w;
      }
      let best = 0;
      for (let w = 1; w <= top; w++) if (cost[w]! < cost[best]!) best = w;
      widths[r] = Math.min(best + 1, MAX_WIDTH);
    }
    const lows = new BitWriter(m * 8);
    const highs = new BitWriter(m * 2);
    for (let b = 0; b < m; b++) {
      const width = widths[b >>> regionShift]!;
      lows.write(pilots[b]!, width);
      highs.writeUnary(pilots[b]! >>> width);
    }
    if (lows.bitLength > MAX_BITS || highs.bitLength > MAX_BITS) {
      throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'too many keys for one perfect hash index', { count });
    }
    const remap = encodeEliasFano(this.remapTargets(), tableSize - count, count);
    return {
      count,
      keyLength: this.keyLength,
      seed,
      tableSize,
      buckets: m,
      regionShift,
      widths,
      pilotLows: lows.finish(),
      pilotHighs: highs.finish(),
      pilotHighBits: highs.bitLength,
      remapLowWidth: remap.lowWidth,
      remapLows: remap.lows,
      remapHighs: remap.highs,
      remapHighBits: remap.highBits,
    };
  }

  /**
   * For each slot at or past count, the hole below count its key moves to.
   * Holes are handed out in increasing order and unused slots repeat the
   * previous target, so the sequence is non-decreasing, as Elias-Fano needs.
   */
  private remapTargets(): Uint32Array {
    const { taken, count, tableSize } = this;
    const isTaken = (slot: number): boolean => (taken[slot >>> 5]! & (1 << slot)) !== 0;
    const targets = new Uint32Array(tableSize - count);
    let hole = 0;
    let last = 0;
    for (let slot = count; slot < tableSize; slot++) {
      if (isTaken(slot)) {
        while (isTaken(hole)) hole++;
        last = hole++;
      }
      targets[slot - count] = last;
    }
    return targets;
  }
}
