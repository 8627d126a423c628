// Small files that must survive a crash whole (format records, peer and
// volume metadata, secrets): written to a temp file, fsynced, renamed over
// the target, and the directory fsynced, so a reader sees the old contents
// or the new, never a torn mix. The temp file is created with the final
// mode, so a key never sits on disk readable by others, not even for an
// instant.

import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BazilError, ErrorCodes, ioError } from '../errors/index.js';

/** What a temp file's name holds between the target's name and its random suffix. */
export const TEMP_MARK = '.tmp-';

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

/** Makes a rename or create in `dir` durable. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw ioError('fsync', dir, err);
  }
}

/**
 * The parsed JSON of a metadata file; undefined when the file does not
 * exist; BAZIL_CORRUPT_METADATA when it is not JSON. The caller checks the
 * shape.
 */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError('read', path, err);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new BazilError(ErrorCodes.CORRUPT_METADATA, `${path} is not valid JSON`, { path }, err);
  }
}
