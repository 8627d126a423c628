// The migration runner: brings a directory Bazil owns up to the format
// version this build writes, one numbered migration at a time.
//
// Versions and ids (docs/migrations.md): a format's version 1 is the layout
// a directory has right after creation by the first release of that format.
// Migration `id` N upgrades a directory from version N to version N + 1, so a
// format with M migrations is at version M + 1, and a new directory is
// stamped at that latest version directly (nothing to migrate).
//
// Each migration is recorded in the directory's FORMAT.json as soon as it
// succeeds, so a run that fails or is killed resumes at the migration that
// did not finish. That migration then runs again over whatever it had already
// done, which is why every migration must be idempotent.

import { mkdir, readdir } from 'node:fs/promises';
import { BazilError, ErrorCodes, ioError } from '../errors/index.js';
import { acquireDirLock, LOCK_FILE } from './dir-lock.js';
import {
  FORMAT_FILE,
  isFormatTempFile,
  readFormatRecord,
  removeStaleTempFiles,
  writeFormatRecord,
  type FormatRecord,
} from './format-record.js';

export interface Migration {
  /** 1, 2, 3, ...: migration N upgrades version N to N + 1. */
  id: number;
  /** Short kebab-case name, recorded in FORMAT.json (e.g. "split-index"). */
  name: string;
  /** One sentence for the user, shown while it runs. */
  description: string;
  /**
   * Does the upgrade in place. Must be idempotent: after a crash it runs
   * again over a directory it may have partly or wholly upgraded already.
   * Writes follow the usual rule (temp file, fsync, rename, fsync dir).
   */
  up(dir: string, log: (msg: string) => void): Promise<void>;
}

export interface MigrateOptions {
  /** Receives the progress messages; defaults to stderr, because a silent migration looks like a hang. */
  log?: (msg: string) => void;
  /** Stamps a missing or empty directory as a new one at the latest version. */
  create?: boolean;
}

export interface MigrateResult {
  /** The version found; 0 when the directory was created by this call. */
  from: number;
  /** The version the directory is at now (always the latest). */
  to: number;
  /** Ids of the migrations this call ran, in order. */
  applied: number[];
}

const FORMAT_NAME = /^[a-z0-9][a-z0-9-]*$/;

/** The version a directory of this format is at once every migration has run. */
export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.length + 1;
}

/** Throws BAD_ARGUMENT unless ids run 1, 2, 3, ... in order and names are unique. */
export function validateMigrations(format: string, migrations: readonly Migration[]): void {
  const bad = (why: string): BazilError =>
    new BazilError(ErrorCodes.BAD_ARGUMENT, `invalid migration list for format '${format}': ${why}`, { format });
  if (!FORMAT_NAME.test(format)) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `invalid format name '${format}' (use lowercase letters, digits and -)`, {
      format,
    });
  }
  const names = new Set<string>();
  migrations.forEach((m, index) => {
    if (m.id !== index + 1) {
      throw bad(`ids must run 1, 2, 3, ... in order with no gaps or repeats; position ${index + 1} has id ${m.id}`);
    }
    if (typeof m.name !== 'string' || !FORMAT_NAME.test(m.name)) {
      throw bad(`migration ${m.id} needs a kebab-case name, got '${String(m.name)}'`);
    }
    if (names.has(m.name)) throw bad(`the name '${m.name}' is used twice`);
    names.add(m.name);
    if (typeof m.description !== 'string' || m.description.trim() === '') {
      throw bad(`migration ${m.id} (${m.name}) needs a description`);
    }
    if (typeof m.up !== 'function') throw bad(`migration ${m.id} (${m.name}) has no up()`);
  });
}

function defaultLog(msg: string): void {
  process.stderr.write(`bazil: ${msg}\n`);
}

/**
 * Opens `dir` as a directory of `format`: creates its record (with
 * `create`), or checks it and runs the pending migrations in id order.
 *
 * Throws NOT_FOUND (no record and no `create`), FORMAT_MISMATCH (another
 * format, or files without a record), UNSUPPORTED_FORMAT (written by a newer
 * Bazil), CORRUPT_METADATA (unreadable record), LOCKED (another process is
 * migrating it) or MIGRATION_FAILED (the record stays at the last version
 * that completed; the next call resumes there).
 */
export async function migrate(
  dir: string,
  format: string,
  migrations: readonly Migration[],
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  validateMigrations(format, migrations);
  const latest = latestVersion(migrations);
  const log = options.log ?? defaultLog;

  // The common case, an up-to-date directory, needs no lock and no write:
  // the record is replaced by rename, so an unlocked read sees a whole one.
  const found = await readFormatRecord(dir);
  if (found !== null) {
    checkRecord(dir, format, latest, found);
    if (found.version === latest) return { from: latest, to: latest, applied: [] };
  } else if (options.create !== true) {
    throw new BazilError(ErrorCodes.NOT_FOUND, `${dir} is not a Bazil ${format}: it has no ${FORMAT_FILE}`, {
      dir,
      format,
    });
  } else {
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw ioError('create', dir, err);
    }
  }

  const release = await acquireDirLock(dir, found === null ? `creating ${format}` : `migrating ${format}`);
  try {
    await removeStaleTempFiles(dir);
    // Another process may have created or migrated it while we waited.
    const record = await readFormatRecord(dir);
    if (record === null) return await create(dir, format, latest, options);
    checkRecord(dir, format, latest, record);
    return await runPending(dir, migrations, latest, record, log);
  } finally {
    await release();
  }
}

async function create(dir: string, format: string, latest: number, options: MigrateOptions): Promise<MigrateResult> {
  if (options.create !== true) {
    throw new BazilError(ErrorCodes.NOT_FOUND, `${dir} is not a Bazil ${format}: it has no ${FORMAT_FILE}`, {
      dir,
      format,
    });
  }
  // Stamping a directory that already holds data would declare that data to
  // be in the latest layout, whatever it really is, so only an empty one is
  // adopted.
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw ioError('list', dir, err);
  }
  const others = names.filter((n) => n !== LOCK_FILE && !isFormatTempFile(n));
  if (others.length > 0) {
    throw new BazilError(
      ErrorCodes.FORMAT_MISMATCH,
      `${dir} holds files but no ${FORMAT_FILE}, so it is not a Bazil ${format}; refusing to create one over it`,
      { dir, format, example: others[0] },
    );
  }
  await writeFormatRecord(dir, { format, version: latest, applied: [] });
  return { from: 0, to: latest, applied: [] };
}

function checkRecord(dir: string, format: string, latest: number, record: FormatRecord): void {
  if (record.format !== format) {
    throw new BazilError(
      ErrorCodes.FORMAT_MISMATCH,
      `${dir} holds a Bazil ${record.format}, not a ${format}`,
      { dir, expected: format, found: record.format },
    );
  }
  if (record.version > latest) {
    throw new BazilError(
      ErrorCodes.UNSUPPORTED_FORMAT,
      `${dir} is at ${format} version ${record.version}, written by a newer Bazil; ` +
        `this one reads up to version ${latest}. Upgrade Bazil to open it.`,
      { dir, format, version: record.version, supported: latest },
    );
  }
}

async function runPending(
  dir: string,
  migrations: readonly Migration[],
  latest: number,
  start: FormatRecord,
  log: (msg: string) => void,
): Promise<MigrateResult> {
  let record = start;
  const applied: number[] = [];
  for (let version = start.version; version < latest; version += 1) {
    const m = migrations[version - 1] as Migration;
    log(`migrating ${dir} from version ${version} to ${version + 1}: ${m.description}`);
    try {
      await m.up(dir, log);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new BazilError(
        ErrorCodes.MIGRATION_FAILED,
        `migration ${m.id} (${m.name}) of ${dir} failed: ${why}. ` +
          `${dir} stays at version ${version}; the next open retries from this migration.`,
        { dir, format: record.format, id: m.id, name: m.name, version },
        err,
      );
    }
    record = {
      ...record,
      version: version + 1,
      applied: [...record.applied, { id: m.id, name: m.name, at: new Date().toISOString() }],
    };
    await writeFormatRecord(dir, record);
    applied.push(m.id);
  }
  return { from: start.version, to: latest, applied };
}
