// A per-directory lock that keeps two processes from migrating (or creating)
// the same directory at once.
//
// The lock is a file created with O_EXCL holding the owner's pid, host and a
// random token. A lock whose owner is a dead process on this host is stale
// (the owner crashed) and is broken. Two processes breaking the same stale
// lock at the same instant could both proceed; that needs a crash followed by
// two simultaneous starts, and migrations are idempotent, so the lock is kept
// this simple rather than relying on advisory locks Node does not offer.

import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { link, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BazilError, ErrorCodes, ioError } from '../errors/index.js';

export const LOCK_FILE = 'FORMAT.lock';

/** An owner that has not finished writing its lock file yet gets this long (ms) before the file counts as stale. */
const UNREADABLE_LOCK_GRACE_MS = 10_000;

interface LockContent {
  pid: number;
  host: string;
  token: string;
  at: string;
  purpose: string;
}

export type ReleaseLock = () => Promise<void>;

/**
 * Takes the lock on `dir` (which must exist) or throws LOCKED naming the
 * process that holds it. Returns the function that releases it.
 */
export async function acquireDirLock(dir: string, purpose: string): Promise<ReleaseLock> {
  const path = join(dir, LOCK_FILE);
  const content: LockContent = {
    pid: process.pid,
    host: hostname(),
    token: randomBytes(8).toString('hex'),
    at: new Date().toISOString(),
    purpose,
  };
  // Each pass either takes the lock, throws, or removes one stale lock; a
  // third failure means locks keep reappearing, which only a live peer does.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    if (await tryCreate(path, content)) {
      return () => release(path, content.token);
    }
    await breakIfStale(dir, path);
  }
  throw new BazilError(ErrorCodes.LOCKED, `${dir} is locked by another process (${path})`, { dir, path });
}

async function tryCreate(path: string, content: LockContent): Promise<boolean> {
  // The lock appears whole or not at all: its content is written to a file
  // of our own, then hard-linked to the lock's name (link fails with EEXIST
  // like O_EXCL). A process killed while writing leaves only its own
  // temporary file, never an empty lock that others must wait out.
  const temp = `${path}.${content.token}`;
  try {
    await writeFile(temp, `${JSON.stringify(content)}\n`, { encoding: 'utf8', mode: 0o644, flag: 'wx' });
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw ioError('write', temp, err);
  }
  try {
    await link(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw ioError('create', path, err);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Removes the lock at `path` if its owner is gone; throws LOCKED if it is alive. */
async function breakIfStale(dir: string, path: string): Promise<void> {
  let owner: LockContent | null = null;
  try {
    owner = parseLock(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // released meanwhile
    throw ioError('read', path, err);
  }
  if (owner === null) {
    // Unreadable: either its owner is still writing it, or it crashed doing so.
    const age = await stat(path).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age < UNREADABLE_LOCK_GRACE_MS) {
      throw new BazilError(ErrorCodes.LOCKED, `${dir} is being locked by another process`, { dir, path });
    }
  } else if (owner.host !== hostname()) {
    throw new BazilError(
      ErrorCodes.LOCKED,
      `${dir} is locked by process ${owner.pid} on host ${owner.host} (${owner.purpose}, since ${owner.at}); ` +
        `if no Bazil runs there any more, remove ${path}`,
      { dir, path, pid: owner.pid, host: owner.host },
    );
  } else if (isAlive(owner.pid)) {
    throw new BazilError(
      ErrorCodes.LOCKED,
      `${dir} is locked by process ${owner.pid} (${owner.purpose}, since ${owner.at}); ` +
        `wait for it to finish, or remove ${path} if that process is not Bazil`,
      { dir, path, pid: owner.pid },
    );
  }
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw ioError('remove', path, err);
  });
}

function parseLock(text: string): LockContent | null {
  try {
    const v = JSON.parse(text) as Partial<LockContent>;
    if (Number.isSafeInteger(v.pid) && typeof v.host === 'string' && typeof v.token === 'string') {
      return {
        pid: v.pid as number,
        host: v.host,
        token: v.token,
        at: typeof v.at === 'string' ? v.at : '?',
        purpose: typeof v.purpose === 'string' ? v.purpose : '?',
      };
    }
  } catch {
    // Falls through: a half-written lock file is not JSON yet.
  }
  return null;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes the lock if it is still ours (a peer may have broken it as stale). */
async function release(path: string, token: string): Promise<void> {
  let owner: LockContent | null;
  try {
    owner = parseLock(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError('read', path, err);
  }
  if (owner?.token !== token) return;
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw ioError('remove', path, err);
  });
}
