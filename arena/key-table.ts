// An in-memory multimap from 32-byte keys to u32 values, in typed arrays.
//
// It indexes active arenas (key → record ordinal) and backs the locator
// (key → arena number). It stores no keys, only two 32-bit hashes of each,
// so a match is a candidate the caller confirms against the stored record;
// different keys with equal hashes simply yield several candidates. A
// JavaScript Map keyed by hex strings would cost ~10× the memory and a
// string allocation per probe.

const EMPTY = 0;
// Per slot: home hash, check hash, value, aux (the locator keeps the
// record's ordinal there, so a hit needs no perfect-hash evaluation).
const WORDS = 4;

let lastH1 = 0;
let lastH2 = 0;

/**
 * Hashes the 32-byte key at `key[off]` into lastH1/lastH2 with a seeded
 * multiply-xorshift mix of all eight words, so structured keys (counters,
 * shared prefixes) spread as well as random ones.
 */
export function hashKey(key: Uint8Array, off: number, seed: number): void {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x85ebca6b + seed;
  for (let i = 0; i < 32; i += 8) {
    const o = off + i;
    const w0 = key[o] | (key[o + 1] << 8) | (key[o + 2] << 16) | (key[o + 3] << 24);
    const w1 = key[o + 4] | (key[o + 5] << 8) | (key[o + 6] << 16) | (key[o + 7] << 24);
    a = Math.imul(a ^ w0, 0xcc9e2d51);
    a = (a << 15) | (a >>> 17);
    b = Math.imul(b ^ w1, 0x1b873593);
    b = (b << 13) | (b >>> 19);
    a = (a + b) | 0;
    b = (b + Math.imul(a, 5) + 0xe6546b64) | 0;
  }
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  a = Math.imul(a, 0xc2b2ae35);
  a ^= a >>> 16;
  b ^= b >>> 15;
  b = Math.imul(b, 0x2c1b3c6d);
  b ^= b >>> 12;
  b = Math.imul(b, 0x297a2d39);
  b ^= b >>> 15;
  lastH1 = a >>> 0;
  lastH2 = (b >>> 0) || 1;
}

export function keyHash1(): number {
  return lastH1;
}

export function keyHash2(): number {
  return lastH2;
}

export class KeyTable {
  private slots: Uint32Array;
  private mask: number;
  private used = 0;
  /** The aux word of the candidate next() returned last. */
  aux = 0;
  // The probe cursor of the lookup in progress (lookups are synchronous).
  private cursor = 0;
  private curH1 = 0;
  private curH2 = 0;

  constructor(expected = 16, private readonly seed = 0x5eed) {
    let cap = 16;
    while (cap * 0.75 < expected) cap *= 2;
    this.slots = new Uint32Array(cap * WORDS);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.used;
  }

  /** Bytes of memory the table holds. */
  get byteLength(): number {
    return this.slots.byteLength;
  }

  insert(key: Uint8Array, off: number, value: number, aux = 0): void {
    if ((this.used + 1) > (this.mask + 1) * 0.75) this.resize((this.mask + 1) * 2);
    hashKey(key, off, this.seed);
    this.place(lastH1, lastH2, value >>> 0, aux >>> 0);
    this.used++;
  }

  /** Inserts the key of the lookup started last, without hashing it again. */
  insertStarted(value: number, aux = 0): void {
    if ((this.used + 1) > (this.mask + 1) * 0.75) this.resize((this.mask + 1) * 2);
    this.place(this.curH1, this.curH2, value >>> 0, aux >>> 0);
    this.used++;
  }

  /** Makes room for `expected` entries in one step, sparing the doublings. */
  reserve(expected: number): void {
    let cap = this.mask + 1;
    while (cap * 0.75 < expected) cap *= 2;
    if (cap > this.mask + 1) this.resize(cap);
  }

  private place(h1: number, h2: number, value: number, aux: number): void {
    const s = this.slots;
    let i = h1 & this.mask;
    while (s[i * WORDS + 1] !== EMPTY) i = (i + 1) & this.mask;
    s[i * WORDS] = h1;
    s[i * WORDS + 1] = h2;
    s[i * WORDS + 2] = value;
    s[i * WORDS + 3] = aux;
  }

  private resize(capacity: number): void {
    const old = this.slots;
    this.slots = new Uint32Array(capacity * WORDS);
    this.mask = capacity - 1;
    for (let i = 0; i < old.length; i += WORDS) {
      if (old[i + 1] !== EMPTY) this.place(old[i], old[i + 1], old[i + 2], old[i + 3]);
    }
  }

  /** Starts a lookup; call next() until it returns -1. */
  start(key: Uint8Array, off: number): void {
    hashKey(key, off, this.seed);
    this.curH1 = lastH1;
    this.curH2 = lastH2;
    this.cursor = lastH1 & this.mask;
  }

  /** The next candidate value of the lookup started last, or -1. */
  next(): number {
    const s = this.slots;
    for (;;) {
      const i = this.cursor;
      const h2 = s[i * WORDS + 1];
      if (h2 === EMPTY) return -1;
      this.cursor = (i + 1) & this.mask;
      if (h2 === this.curH2 && s[i * WORDS] === this.curH1) {
        this.aux = s[i * WORDS + 3];
        return s[i * WORDS + 2];
      }
    }
  }

  /** Removes one entry of `key` holding `value`; returns whether it existed. */
  remove(key: Uint8Array, off: number, value: number): boolean {
    hashKey(key, off, this.seed);
    const s = this.slots;
    let i = lastH1 & this.mask;
    for (;;) {
      const h2 = s[i * WORDS + 1];
      if (h2 === EMPTY) return false;
      if (h2 === lastH2 && s[i * WORDS] === lastH1 && s[i * WORDS + 2] === value >>> 0) break;
      i = (i + 1) & this.mask;
    }
    // Backward-shift deletion keeps probe chains unbroken without tombstones.
    let hole = i;
    let j = (i + 1) & this.mask;
    while (s[j * WORDS + 1] !== EMPTY) {
      const home = s[j * WORDS] & this.mask;
      const dist = (j - home) & this.mask;
      const holeDist = (j - hole) & this.mask;
      if (dist >= holeDist) {
        s[hole * WORDS] = s[j * WORDS];
        s[hole * WORDS + 1] = s[j * WORDS + 1];
        s[hole * WORDS + 2] = s[j * WORDS + 2];
        s[hole * WORDS + 3] = s[j * WORDS + 3];
        hole = j;
      }
      j = (j + 1) & this.mask;
    }
    s[hole * WORDS] = 0;
    s[hole * WORDS + 1] = EMPTY;
    s[hole * WORDS + 2] = 0;
    s[hole * WORDS + 3] = 0;
    this.used--;
    return true;
  }
}
