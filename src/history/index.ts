// The public surface of a volume's history (docs/history.md): points in
// time, past states as VolumeReaders, checkpoints, diff, restore, the log
// newest first.

import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { Volume } from '../volume/volume.js';
import { DEFAULT_CHECKPOINT_EVERY, History } from './history.js';

export { History, DEFAULT_CHECKPOINT_EVERY, DEFAULT_FULL_EVERY, type AsOf, type CheckpointFinding, type HistorySource, type HistoryOptions } from './history.js';
export { CheckpointStore, CHECKPOINTS_DIR, type CheckpointRef, type SnapshotInfo } from './checkpoints.js';
export { MemProjection } from './mem-projection.js';
export { checkpointRewinder } from './rewind.js';
export { parseWhen, describePoint, checkSnapshotName, type Point } from './when.js';
export { diffTrees, walkTree, type DiffResult, type TreeNode } from './diff.js';
export { restorePath, type RestoreResult } from './restore.js';
export { newestFirst, concerns, summarize, type LogEntry } from './log-walk.js';

/** `BAZIL_CHECKPOINT_EVERY` overrides the events between checkpoints (tests and benchmarks use small values). */
export function checkpointEveryFromEnv(env: NodeJS.ProcessEnv = process.env): bigint {
  const raw = env.BAZIL_CHECKPOINT_EVERY;
  if (raw === undefined || raw === '') return DEFAULT_CHECKPOINT_EVERY;
  if (!/^[1-9]\d{0,15}$/.test(raw)) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `BAZIL_CHECKPOINT_EVERY must be a positive integer, got ${JSON.stringify(raw)}`);
  return BigInt(raw);
}

/** The history of an open volume, with the checkpoints the log has grown past taken first. */
export async function openHistory(volume: Volume, options: { every?: bigint; signal?: AbortSignal } = {}): Promise<History> {
  const h = await History.open(volume.historySource(), { every: options.every ?? checkpointEveryFromEnv(), signal: options.signal });
  await h.update({ signal: options.signal });
  return h;
}
