// The set of punched slots of a sealed arena, kept beside it in
// `<identity>.dead`. The arena itself is never rewritten, so which records
// were deleted has to live elsewhere; the sidecar is replaced atomically
// (temp, fsync, rename, fsync of the directory) *before* the holes are
// punched, so a record is never zeros while still claimed live.
//
// Layout: "BZDEAD01" | slot count u64 | dead count u64 | bitmap (bit s of
// byte s>>3 = slot s) | XXH3-64 of all before it.

import { BazilError, ErrorCodes } from '../errors/index.js';
import { checksumInto, checksumMatches } from './checksum.js';
import type { FileSystem } from './file-system.js';
import { dirOf } from './active-arena.js';

const MAGIC = Buffer.from('BZDEAD01', 'latin1');

export class DeadSet {
  private constructor(private bits: Uint8Array, private deadCount: number, readonly slotCount: number) {}

  static empty(n: number): DeadSet {
    return new DeadSet(new Uint8Array((n + 7) >>> 3), 0, n);
  }

  static load(fs: FileSystem, path: string, n: number): DeadSet {
    if (!fs.exists(path)) return DeadSet.empty(n);
    const file = fs.open(path, 'r');
    let b: Buffer;
    try {
      const size = file.size();
      b = Buffer.alloc(size);
      file.read(b, 0, size, 0);
    } finally {
      file.close();
    }
    const bitmapLength = (n + 7) >>> 3;
    const expected = 24 + bitmapLength + 8;
    if (b.length !== expected || !b.subarray(0, 8).equals(MAGIC) || b.readBigUInt64LE(8) !== BigInt(n) ||
        !checksumMatches(b, 0, expected - 8, expected - 8)) {
      throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: deleted-record list is damaged`, { path, offset: 0 });
    }
    const bits = new Uint8Array(b.subarray(24, 24 + bitmapLength));
    let count = 0;
    for (const byte of bits) count += popcount8(byte);
    if (BigInt(count) !== b.readBigUInt64LE(16)) {
      throw new BazilError(ErrorCodes.CORRUPT_ARENA, `${path}: deleted-record count disagrees with its bitmap`, { path, offset: 16 });
    }
    return new DeadSet(bits, count, n);
  }

  get count(): number {
    return this.deadCount;
  }

  has(slot: number): boolean {
    return (this.bits[slot >>> 3] & (1 << (slot & 7))) !== 0;
  }

  /** Adds slots and persists the set atomically; returns the slots that were newly added. */
  async addAndPersist(fs: FileSystem, path: string, slots: Iterable<number>): Promise<number[]> {
    const next = new Uint8Array(this.bits);
    const added: number[] = [];
    for (const s of slots) {
      const mask = 1 << (s & 7);
      if ((next[s >>> 3] & mask) === 0) {
        next[s >>> 3] |= mask;
        added.push(s);
      }
    }
    if (added.length === 0) return added;
    const count = this.deadCount + added.length;
    const b = Buffer.alloc(24 + next.length + 8);
    MAGIC.copy(b, 0);
    b.writeBigUInt64LE(BigInt(this.slotCount), 8);
    b.writeBigUInt64LE(BigInt(count), 16);
    b.set(next, 24);
    checksumInto(b, 0, b.length - 8, b, b.length - 8);
    await writeFileDurably(fs, path, b);
    this.bits = next;
    this.deadCount = count;
    return added;
  }
}

/** temp → write → fsync → rename → fsync(dir): the file is either old or new after a crash. */
export async function writeFileDurably(fs: FileSystem, path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  if (fs.exists(tmp)) fs.unlink(tmp);
  const f = fs.open(tmp, 'create');
  try {
    f.write(bytes, 0, bytes.length, 0);
    await f.sync();
  } finally {
    f.close();
  }
  fs.rename(tmp, path);
  await fs.syncDir(dirOf(path));
}

function popcount8(x: number): number {
  x = x - ((x >>> 1) & 0x55);
  x = (x & 0x33) + ((x >>> 2) & 0x33);
  return (x + (x >>> 4)) & 0x0f;
}
