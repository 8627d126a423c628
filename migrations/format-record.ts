// The format record: FORMAT.json at the top of a directory Bazil owns, saying
// which format the directory holds and at which version.
//
// It is the one file the migration runner trusts to decide what to run, so it
// is replaced atomically (temp file, fsync, rename, fsync of the directory):
// after a crash it holds either the old record or the new one, never a mix.

import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BazilError, ErrorCodes, ioError } from '../errors/index.js';
import { TEMP_MARK, readJsonFile, syncDirectory, writeFileAtomic } from './durable-file.js';

export const FORMAT_FILE = 'FORMAT.json';
const TEMP_PREFIX = `${FORMAT_FILE}${TEMP_MARK}`;

export interface AppliedMigration {
  id: number;
  name: string;
  /** When the migration finished, as an ISO 8601 time. */
  at: string;
}

export interface FormatRecord {
  format: string;
  version: number;
  /** Migrations run on this directory, oldest first (none for a directory created at the latest version). */
  applied: AppliedMigration[];
}

/** Reads `dir`'s format record; null when the directory has none. */
export async function readFormatRecord(dir: string): Promise<FormatRecord | null> {
  const path = join(dir, FORMAT_FILE);
  const parsed = await readJsonFile(path);
  if (parsed === undefined) return null;
  const problem = shapeProblem(parsed);
  if (problem !== null) {
    throw new BazilError(ErrorCodes.CORRUPT_METADATA, `${path} is not a valid format record: ${problem}`, { path });
  }
  return parsed as FormatRecord;
}

function shapeProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  if (typeof r.format !== 'string' || r.format === '') return '"format" must be a non-empty string';
  if (!Number.isSafeInteger(r.version) || (r.version as number) < 1) return '"version" must be an integer ≥ 1';
  if (!Array.isArray(r.applied)) return '"applied" must be an array';
  for (const a of r.applied as unknown[]) {
    const e = a as Record<string, unknown> | null;
    if (
      typeof e !== 'object' ||
      e === null ||
      !Number.isSafeInteger(e.id) ||
      typeof e.name !== 'string' ||
      typeof e.at !== 'string'
    ) {
      return 'each "applied" entry must be {"id": integer, "name": string, "at": string}';
    }
  }
  return null;
}

/** Replaces `dir`'s format record atomically and durably. */
export async function writeFormatRecord(dir: string, record: FormatRecord): Promise<void> {
  await writeFileAtomic(join(dir, FORMAT_FILE), `${JSON.stringify(record, null, 2)}\n`, 0o644);
}

export { syncDirectory };

/** True for the temp files writeFormatRecord creates (left behind only by a crash). */
export function isFormatTempFile(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/**
 * Deletes temp files a crashed writer left behind. Only call it while holding
 * the directory lock, when no other writer can be mid-write.
 */
export async function removeStaleTempFiles(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw ioError('list', dir, err);
  }
  for (const name of names.filter(isFormatTempFile)) {
    await unlink(join(dir, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw ioError('remove', join(dir, name), err);
    });
  }
}
