// A deterministic "mixed" dataset for ingest benchmarks: files of log-normal
// sizes plus a few large ones, spread over a small directory tree, with about
// half the bytes random and half duplicates of earlier content.
//
// Random content is an AES-256-CTR keystream keyed from (seed, file number),
// so a file's bytes can be regenerated instead of re-read when it is copied.
// Duplicates come in three flavours, chosen in turn:
//   - whole-file copy of an earlier random file;
//   - shifted copy: 1..4096 fresh random bytes, then the earlier file;
//   - spliced copy: the earlier file with 1..64 fresh bytes inserted at a
//     random point in its middle.
// The fresh bytes of shifted/spliced copies are counted as random. Files are
// written random/duplicate in turn so that the two halves stay balanced.

import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const MIB = 1024 * 1024;
const CHUNK = 4 * MIB;

export interface DatasetStats {
  files: number;
  dirs: number;
  bytes: number;
  randomBytes: number;
  duplicateBytes: number;
  largeFiles: number;
  wholeCopies: number;
  shiftedCopies: number;
  splicedCopies: number;
}

/** A small deterministic PRNG (xorshift128+ on BigInt would be slow; sfc32 is enough). */
class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: string) {
    const h = createHash('sha256').update(`rng:${seed}`).digest();
    this.a = h.readUInt32LE(0);
    this.b = h.readUInt32LE(4);
    this.c = h.readUInt32LE(8);
    this.d = h.readUInt32LE(12);
    for (let i = 0; i < 16; i++) this.next();
  }
  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

/** A keystream for stream `id`: successive calls to take() continue it. */
class Stream {
  private readonly cipher;
  private zeros: Buffer = Buffer.alloc(0);
  constructor(seed: string, id: string) {
    const key = createHash('sha256').update(`data:${seed}:${id}`).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }
  take(n: number): Buffer {
    if (this.zeros.length < n) this.zeros = Buffer.alloc(n);
    return this.cipher.update(this.zeros.subarray(0, n));
  }
}

interface RandomFile {
  id: number;
  size: number;
}

function writeAll(fd: number, b: Buffer): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off);
}

/** Writes `size` bytes of random file `id`'s content, in chunks. */
function writeRandomContent(fd: number, seed: string, id: number, size: number, insertAt = -1, insert?: Buffer): void {
  const s = new Stream(seed, `file${id}`);
  let done = 0;
  while (done < size) {
    let n = Math.min(CHUNK, size - done);
    if (insert && insertAt >= done && insertAt < done + n) n = insertAt - done;
    if (n > 0) {
      writeAll(fd, s.take(n));
      done += n;
    }
    if (insert && done === insertAt) {
      writeAll(fd, insert);
      insert = undefined;
    }
  }
}

/**
 * Generates about `totalBytes` into `dir` (created). Sizes: log-normal with a
 * median of 32 KiB (sigma 2, capped at 16 MiB), plus four large random files
 * of totalBytes/32 each.
 */
export function generateDataset(dir: string, totalBytes: number, seed: string): DatasetStats {
  const rng = new Rng(seed);
  const stats: DatasetStats = {
    files: 0, dirs: 0, bytes: 0, randomBytes: 0, duplicateBytes: 0, largeFiles: 0, wholeCopies: 0, shiftedCopies: 0, splicedCopies: 0,
  };
  mkdirSync(dir, { recursive: true });
  // A two-level tree: 8 top directories with 6 subdirectories each.
  const dirs: string[] = [];
  for (let i = 0; i < 8; i++) {
    for (let j = 0; j < 6; j++) {
      const d = join(dir, `d${i}`, `s${j}`);
      mkdirSync(d, { recursive: true });
      dirs.push(d);
    }
  }
  stats.dirs = 8 + dirs.length;
  const largeSize = Math.max(MIB, Math.floor(totalBytes / 32));
  let largeLeft = 4;
  const randoms: RandomFile[] = [];
  let nextId = 0;
  let flavour = 0;
  const place = (): string => {
    const d = dirs[rng.int(0, dirs.length - 1)]!;
    return join(d, `f${String(stats.files).padStart(6, '0')}.bin`);
  };
  while (stats.bytes < totalBytes) {
    const path = place();
    const fd = openSync(path, 'w');
    try {
      if (randoms.length === 0 || stats.randomBytes <= stats.duplicateBytes) {
        // A random file: a large one now and then, else log-normal.
        let size: number;
        if (largeLeft > 0 && rng.next() < 0.02) {
          size = largeSize;
          largeLeft--;
          stats.largeFiles++;
        } else {
          size = Math.min(16 * MIB, Math.floor(Math.exp(Math.log(32 * 1024) + 2 * rng.normal())));
        }
        const id = nextId++;
        writeRandomContent(fd, seed, id, size);
        randoms.push({ id, size });
        stats.randomBytes += size;
        stats.bytes += size;
      } else {
        const src = randoms[rng.int(0, randoms.length - 1)]!;
        const kind = flavour++ % 3;
        if (kind === 0 || src.size < 2) {
          writeRandomContent(fd, seed, src.id, src.size);
          stats.wholeCopies++;
          stats.duplicateBytes += src.size;
          stats.bytes += src.size;
        } else if (kind === 1) {
          const prefix = new Stream(seed, `prefix${stats.files}`).take(rng.int(1, 4096));
          writeAll(fd, prefix);
          writeRandomContent(fd, seed, src.id, src.size);
          stats.shiftedCopies++;
          stats.randomBytes += prefix.length;
          stats.duplicateBytes += src.size;
          stats.bytes += prefix.length + src.size;
        } else {
          const insert = new Stream(seed, `splice${stats.files}`).take(rng.int(1, 64));
          const at = rng.int(1, src.size - 1);
          writeRandomContent(fd, seed, src.id, src.size, at, insert);
          stats.splicedCopies++;
          stats.randomBytes += insert.length;
          stats.duplicateBytes += src.size;
          stats.bytes += insert.length + src.size;
        }
      }
    } finally {
      closeSync(fd);
    }
    stats.files++;
  }
  return stats;
}
