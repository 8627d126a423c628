// The projection store's format and its migrations (docs/migrations.md).
//
// Projections written before the store had a format record (schema version
// 1, the volumes issue's layout) hold LevelDB files and no FORMAT.json. Every
// build that writes a later schema writes the record before LevelDB creates
// anything, so a LevelDB directory without a record can only be version 1:
// it is stamped as such, then migrated in place like any other.

import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { FORMAT_FILE, migrate, readFormatRecord, type Migration } from '../../migrations/index.js';
import { writeFormatRecord } from '../../migrations/format-record.js';
import { aggregatesMigration } from '../../migrations/projection/0001-aggregates.js';
import { encryptedNamesMigration } from '../../migrations/projection/0002-encrypted-names.js';
import type { ProjectionCipher } from './cipher.js';

/** The format name recorded in a projection's FORMAT.json. */
export const PROJECTION_FORMAT = 'bazil-projection';

/**
 * Projection upgrades, oldest first: version 2 adds back-links and subtree
 * aggregates; version 3 hashes names and seals values with the volume's
 * projection key, which is why the list is built for one volume's cipher.
 */
export function projectionMigrations(cipher: ProjectionCipher): Migration[] {
  return [aggregatesMigration, encryptedNamesMigration(cipher)];
}

/** LevelDB's file naming the live manifest: present in every LevelDB directory. */
const LEVELDB_MARK = 'CURRENT';

/** Brings the projection directory `dir` to the latest schema (or creates it there), before LevelDB opens it. */
export async function prepareProjectionDir(dir: string, cipher: ProjectionCipher, log?: (msg: string) => void): Promise<void> {
  if ((await readFormatRecord(dir)) === null && (await exists(join(dir, LEVELDB_MARK)))) {
    await writeFormatRecord(dir, { format: PROJECTION_FORMAT, version: 1, applied: [] });
  }
  await migrate(dir, PROJECTION_FORMAT, projectionMigrations(cipher), { create: true, log });
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

export { FORMAT_FILE };
