// Shared helpers of the arena tests: temporary directories, keys and payloads.

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArenaSet, type ArenaSetOptions } from '../../arena/arena-set.js';
import { nodeFileSystem } from '../../arena/node-fs.js';

/** Full sizes run with BAZIL_SLOW=1; the default suite runs the same tests smaller. */
export const SLOW = process.env.BAZIL_SLOW === '1';

export const WRITER = createHash('sha256').update('test writer').digest();

export function keyOf(i: number, salt = ''): Buffer {
  return createHash('sha256').update(`${salt}key ${i}`).digest();
}

/** A deterministic payload of `len` bytes for record `i`. */
export function payloadOf(i: number, len = 100): Buffer {
  const b = Buffer.alloc(len);
  let x = (i * 2654435761) >>> 0 || 1;
  for (let j = 0; j < len; j++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[j] = x & 0xff;
  }
  return b;
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'bazil-test-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function openSet(dir: string, options: Partial<ArenaSetOptions> = {}): Promise<ArenaSet> {
  return ArenaSet.open(dir, { fs: nodeFileSystem, writer: WRITER, ...options });
}
