// Opening a volume's projection when it may be damaged or gone. The
// projection is derived from the log (DESIGN.md invariant 1), so a
// projection LevelDB cannot open, whose records do not decode, or that was
// deleted is not a reason to refuse the volume: it is dropped and replayed
// from the log, with a warning on stderr (process warning
// BAZIL_PROJECTION_REBUILT) so the user learns that something under the
// home was damaged. Errors of the log itself are not the projection's and
// are passed on: replaying would only meet them again.

import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { checkpointRewinder } from '../history/rewind.js';
import type { LogStore } from '../log/stream.js';
import type { ProjectionCipher } from '../projection/cipher.js';
import { ProjectionStore, Projector } from '../projection/index.js';
import { PROJECTION_REBUILT_WARNING, warn } from './warnings.js';

export interface OpenedProjection {
  store: ProjectionStore;
  projector: Projector;
}

/**
/**
 * Opens the projection at `dir` (in the volume's directory, sealed with
 * `cipher`) and rolls it forward from `log`, rebuilding it from scratch if
 * it is damaged or missing. A late event rewinds it to the volume's
 * history checkpoints.
 */
export async function openProjection(dir: string, log: LogStore, volumeName: string, cipher: ProjectionCipher): Promise<OpenedProjection> {
  let store: ProjectionStore | undefined;
  const rewinder = checkpointRewinder(dirname(dir), log);
  try {
    store = await ProjectionStore.open(dir, cipher);
    const projector = new Projector(store, log, undefined, rewinder);
    const empty = store.position() === null;
    const { applied } = await projector.catchUp();
    // A new volume has no projection until its first open, when its log holds
    // only the create-volume event; an empty projection of a longer log was
    // deleted (or LevelDB lost its CURRENT file and started afresh).
    if (empty && applied > 1) warn(PROJECTION_REBUILT_WARNING, `the projection of volume '${volumeName}' was missing or empty; rebuilt it from the log (${applied} events)`);
    return { store, projector };
  } catch (err) {
    await store?.close().catch(() => undefined);
    if (!isProjectionDamage(err, dir)) throw err;
    const why = err instanceof Error ? err.message : String(err);
    await rm(dir, { recursive: true, force: true }).catch((rmErr: unknown) => {
      throw new BazilError(ErrorCodes.IO, `cannot remove the damaged projection at ${dir}`, { path: dir }, rmErr);
    });
    const fresh = await ProjectionStore.open(dir, cipher);
    try {
      const projector = new Projector(fresh, log, undefined, rewinder);
      const events = await projector.rebuild();
      warn(PROJECTION_REBUILT_WARNING, `the projection of volume '${volumeName}' was damaged (${why}); rebuilt it from the log (${events} events)`);
      return { store: fresh, projector };
    } catch (rebuildErr) {
      await fresh.close().catch(() => undefined);
      throw rebuildErr;
    }
  }
}

/**
 * Whether `err` comes from the projection's own files: LevelDB failing to
 * open them (not a lock held by another process), a record or format record
 * that does not decode, a schema migration that failed on them, files
 * without a format record, or LevelDB's raw errors on a read (a damaged
 * table). A projection written by a newer Bazil (UNSUPPORTED_FORMAT) is not
 * damage: it is left alone rather than downgraded.
 */
function isProjectionDamage(err: unknown, dir: string): boolean {
  if (!(err instanceof BazilError)) return true;
  if (err.code === ErrorCodes.CORRUPT_METADATA) return true;
  const ours = err.data['path'] === dir || err.data['dir'] === dir;
  return ours && (err.code === ErrorCodes.IO || err.code === ErrorCodes.MIGRATION_FAILED || err.code === ErrorCodes.FORMAT_MISMATCH);
}
