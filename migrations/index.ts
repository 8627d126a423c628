// The registries of migrations, one per on-disk format, and the runner that
// applies them (docs/migrations.md).
//
// Adding a migration to a format: write migrations/<format>/NNNN-<name>.ts
// exporting one `Migration` whose id is the next number, and append it to the
// format's list below. Never edit or remove a released migration.

import type { Migration } from './runner.js';

export { latestVersion, migrate, validateMigrations } from './runner.js';
export type { Migration, MigrateOptions, MigrateResult } from './runner.js';
export { FORMAT_FILE, readFormatRecord } from './format-record.js';
export type { AppliedMigration, FormatRecord } from './format-record.js';

/** The format name recorded in an arena set's FORMAT.json. */
export const ARENA_SET_FORMAT = 'bazil-arena-set';

/** Arena-set upgrades; none yet, so an arena set is at version 1 (its layout at creation). */
export const arenaSetMigrations: Migration[] = [];

import { ArenaSet, type ArenaSetOptions } from '../arena/arena-set.js';
import { migrate } from './runner.js';

/**
 * Opens an arena set the way every caller should: its directory's format
 * record is checked and any pending migration applied first. The arena
 * engine itself stays free of the migration framework (arena/ stands alone).
 */
export async function openArenaSet(dir: string, options: ArenaSetOptions): Promise<ArenaSet> {
  await migrate(dir, ARENA_SET_FORMAT, arenaSetMigrations, { create: true, log: options.log });
  return ArenaSet.open(dir, options);
}
