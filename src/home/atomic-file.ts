// Small files that must survive a crash whole: written to a temp file,
// fsynced, renamed over the target, and the directory fsynced, so a reader
// sees the old contents or the new, never a torn mix. Secrets go through here
// too, so the temp file is created with the final mode: a key never sits on
// disk readable by others, not even for an instant.

import { randomBytes } from 'node:crypto';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ioError } from '../../errors/index.js';
import { syncDirectory } from '../../migrations/format-record.js';

const TEMP_MARK = '.tmp-';

/** Replaces `path` with `data` atomically and durably; a new file gets `mode` (less the umask). */
export async function writeFileAtomic(path: string, data: Uint8Array | string, mode: number): Promise<void> {
  const temp = join(dirname(path), `${basename(path)}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw ioError('write', path, err);
  }
  await syncDirectory(dirname(path));
}

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
