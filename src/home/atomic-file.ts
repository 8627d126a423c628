// The home's durable small files: the atomic write shared with the format
// records, and the clean-up of what a crash left half-written.

import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ioError } from '../../errors/index.js';
import { TEMP_MARK, writeFileAtomic } from '../../migrations/durable-file.js';

export { writeFileAtomic };

/**
 * Deletes temp files a crashed writeFileAtomic left in `dir` (they may hold
 * key material). Only call it while holding the home lock, when no other
 * writer can be mid-write.
 */
export async function removeTempFiles(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw ioError('list', dir, err);
  }
  for (const name of names) {
    if (!name.includes(TEMP_MARK) || name.startsWith('FORMAT.json')) continue;
    await unlink(join(dir, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw ioError('remove', join(dir, name), err);
    });
  }
}
