// Shared helpers of the content-storage tests: keys, data and stores.

import { createCipheriv, createHash } from 'node:crypto';
import type { ArenaSet } from '../../arena/arena-set.js';
import { deriveVolumeKeys, type VolumeKeys } from '../../src/crypto/volume-keys.js';
import { ContentStore, type ContentStoreOptions } from '../../src/cas/content-store.js';
import { openSet, withTempDir } from '../arena/helpers.js';

export { SLOW, withTempDir } from '../arena/helpers.js';

export const MiB = 1024 * 1024;

/** The keys of a test volume named `name`. */
export function keysOf(name: string): VolumeKeys {
  const secret = createHash('sha256').update(`secret ${name}`).digest();
  const volumeId = createHash('sha256').update(`volume ${name}`).digest();
  return deriveVolumeKeys(secret, volumeId);
}

/** `length` pseudo-random bytes, a function of `seed` (an AES-CTR keystream: fast for many MiB). */
export function randomData(length: number, seed = 0): Buffer {
  const key = createHash('sha256').update(`data ${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

/** Small chunks, so that a few hundred KiB make many chunks and manifest trees stay cheap. */
export const SMALL_CHUNKS = { minSize: 256, avgSize: 1024, maxSize: 4096 };

/** Runs `fn` with an arena set and a content store in a fresh temporary directory. */
export async function withStore<T>(
  fn: (store: ContentStore, arenas: ArenaSet, dir: string) => Promise<T>,
  options: Partial<ContentStoreOptions> = {},
): Promise<T> {
  return withTempDir(async (dir) => {
    const arenas = await openSet(dir);
    const store = new ContentStore(arenas, { keys: keysOf('a'), sealWorkers: 0, ...options });
    try {
      return await fn(store, arenas, dir);
    } finally {
      await store.close();
      await arenas.close();
    }
  });
}

/** Splits `data` at the given cut points (any order, duplicates allowed). */
export function splitAt(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.min(data.length, Math.max(0, c))))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    parts.push(data.subarray(from, p));
    from = p;
  }
  parts.push(data.subarray(from));
  return parts;
}
