// The process warnings the volume layer raises: what a user should learn
// (the CLI shows them on stderr) about damage or recovery that does not stop
// the volume from opening. Their codes are stable, like error codes.

/** The projection was damaged, missing or empty and was rebuilt from the log (projection-open.ts). */
export const PROJECTION_REBUILT_WARNING = 'BAZIL_PROJECTION_REBUILT';
/** An arena's open cut a torn tail, set damaged records aside (`.cut-<offset>`) or moved an orphan aside. */
export const ARENA_RECOVERY_WARNING = 'BAZIL_ARENA_RECOVERY';

export function warn(code: string, message: string): void {
  process.emitWarning(message, { code });
}
/** A deferred sync of metadata events failed (Volume.deferMetadataDurability); the next commit fails too. */
export const DEFERRED_SYNC_WARNING = 'BAZIL_DEFERRED_SYNC_FAILED';
