// Projection schema 2 → 3: names in keys become keyed hashes and values are
// sealed with the volume's projection key (docs/projection.md,
// "Encryption"), so no file name, symlink target or xattr is left in the
// clear under the home.
//
// Not in place: LevelDB keeps overwritten and deleted records in its older
// files until a compaction happens to rewrite them, so rewriting records in
// place would leave the plaintext on disk for an unknown time. The records
// are copied, sealed, into a fresh LevelDB in a subdirectory, which then
// replaces the old files (deleted). Not a replay of the log either: the
// copy needs no log, keeps the derived tables (aggregates settled by
// migration 1 stay settled) and costs one pass over the projection.
//
// Killed at any point, it resumes; the stage is the subdirectory's name:
//   sealing.building  being written: discarded, the copy starts again from
//                     the old files, which are still whole;
//   sealing.ready     complete and synced: the old LevelDB files are deleted
//                     (again, if a kill came in between), then it is renamed;
//   sealing.moving    the old files are gone: its files are moved up one by
//                     one, then it is removed.
// After the last stage a LevelDB holding the key check value is already
// sealed: a run that finds one (killed before the runner recorded version
// 3) has nothing left to do.

import { access, mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { BazilError, ErrorCodes, ioError } from '../../errors/index.js';
import { syncDirectory } from '../durable-file.js';
import type { Migration } from '../runner.js';
import type { ProjectionCipher } from '../../src/projection/cipher.js';
import { SealingCodec } from '../../src/projection/record-codec.js';
import { KEY_CHECK_KEY } from '../../src/projection/schema.js';
import { SealedLevel, type RecordOp } from '../../src/projection/sealed-level.js';

/** Records per LevelDB batch: bounds memory on large projections. */
const BATCH_ROWS = 10_000;
const BUILDING = 'sealing.building';
const READY = 'sealing.ready';
const MOVING = 'sealing.moving';
/** The files LevelDB writes in its directory (db/filename.cc); nothing else of the projection's directory is touched. */
const LEVELDB_FILE = /^(CURRENT|LOCK|LOG|LOG\.old|MANIFEST-\d+|\d+\.(log|ldb|sst|dbtmp))$/;

type RawDb = ClassicLevel<Buffer, Buffer>;

export function encryptedNamesMigration(cipher: ProjectionCipher): Migration {
  return {
    id: 2,
    name: 'encrypted-names',
    description: 'seals the projection: names hashed, values encrypted with the volume key, in a fresh LevelDB that replaces the old one',
    async up(dir, log) {
      if (await exists(join(dir, MOVING))) return moveUp(dir);
      if (!(await exists(join(dir, READY)))) {
        await rm(join(dir, BUILDING), { recursive: true, force: true }).catch((err: unknown) => { throw ioError('remove', join(dir, BUILDING), err); });
        if (!(await exists(join(dir, 'CURRENT')))) return;
        const copied = await sealedCopy(dir, cipher);
        if (copied === null) return;
        await rename(join(dir, BUILDING), join(dir, READY)).catch((err: unknown) => { throw ioError('rename', join(dir, BUILDING), err); });
        await syncDirectory(dir);
        log(`projection ${dir}: ${copied} records sealed`);
      }
      for (const name of await list(dir)) {
        if (LEVELDB_FILE.test(name)) await unlink(join(dir, name)).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw ioError('remove', join(dir, name), err); });
      }
      await syncDirectory(dir);
      await rename(join(dir, READY), join(dir, MOVING)).catch((err: unknown) => { throw ioError('rename', join(dir, READY), err); });
      await syncDirectory(dir);
      await moveUp(dir);
    },
  };
}

/** Copies the plaintext LevelDB in `dir` into `dir/sealing.building`, sealed; the records copied, or null when it was sealed already. */
async function sealedCopy(dir: string, cipher: ProjectionCipher): Promise<number | null> {
  const old: RawDb = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
  await openDb(old, dir);
  try {
    if ((await old.get(KEY_CHECK_KEY)) !== undefined) return null;
    const target = join(dir, BUILDING);
    await mkdir(target, { mode: 0o700 }).catch((err: unknown) => { throw ioError('create', target, err); });
    const fresh: RawDb = new ClassicLevel<Buffer, Buffer>(target, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await openDb(fresh, target);
    try {
      const sealed = new SealedLevel(fresh, new SealingCodec(cipher));
      let ops: RecordOp[] = [];
      let count = 0;
      for await (const [key, value] of old.iterator()) {
        ops.push({ type: 'put', key, value });
        count++;
        if (ops.length >= BATCH_ROWS) {
          await sealed.batch(ops);
          ops = [];
        }
      }
      await sealed.batch(ops);
      // Unsynced writes above (LevelDB's default) are made durable by this synced one, before the stage is renamed.
      await fresh.batch([{ type: 'put', key: KEY_CHECK_KEY, value: cipher.keyCheck() }], { sync: true });
      return count;
    } finally {
      await fresh.close();
    }
  } finally {
    await old.close();
  }
}

/** Moves the sealed LevelDB's files from `dir/sealing.moving` into `dir`, then removes it; each step is safe to repeat. */
async function moveUp(dir: string): Promise<void> {
  const from = join(dir, MOVING);
  for (const name of await list(from)) {
    await rename(join(from, name), join(dir, name)).catch((err: unknown) => { throw ioError('rename', join(from, name), err); });
  }
  await syncDirectory(dir);
  await rm(from, { recursive: true, force: true }).catch((err: unknown) => { throw ioError('remove', from, err); });
  await syncDirectory(dir);
}

async function openDb(db: RawDb, dir: string): Promise<void> {
  try {
    await db.open();
  } catch (err) {
    throw new BazilError(ErrorCodes.IO, `cannot open the projection at ${dir} to seal it`, { path: dir }, err);
  }
}

async function list(dir: string): Promise<string[]> {
  return readdir(dir).catch((err: unknown) => { throw ioError('list', dir, err); });
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}
