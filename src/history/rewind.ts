// The live projection's rewind source (projection/projector.ts): the
// volume's history checkpoints. When an event arrives late and sorts
// before events already applied, the projector asks for the newest
// checkpoint that ends before it and is still a prefix of the log's merge
// order, loads its state (a full checkpoint and the deltas after it, each
// checked against its name) and replays only the events after it. A file
// of the chain that fails its check is deleted and an older checkpoint
// tried, as for the past states History builds.

import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { compareCausal, type CausallyOrdered } from '../log/causal-merge.js';
import type { LogStore } from '../log/stream.js';
import type { RewindPoint, RewindSource } from '../projection/projector.js';
import { CheckpointStore, chainOf, sortedRecords } from './checkpoints.js';
import { isMergePrefix } from './merge-prefix.js';

/** A RewindSource over the checkpoints in `<volumeDir>/checkpoints/`. */
export function checkpointRewinder(volumeDir: string, log: LogStore): RewindSource {
  const store = CheckpointStore.forVolume(volumeDir);
  return {
    async before(late: CausallyOrdered): Promise<RewindPoint | null> {
      let refs = await store.list();
      for (let i = refs.length - 1; i >= 0; i--) {
        const ref = refs[i]!;
        if (compareCausal(ref.position, late) >= 0 || chainOf(ref, refs) === null || !isMergePrefix(log, ref)) continue;
        try {
          const state = await store.loadState(ref, refs);
          return { count: ref.count, records: sortedRecords(state) };
        } catch (err) {
          if (!isBazilError(err, ErrorCodes.BAD_CHECKPOINT)) throw err;
          const path = typeof err.data['path'] === 'string' ? err.data['path'] : ref.path;
          await store.remove(path);
          refs = refs.filter((r) => r.path !== path);
          i = refs.length;
        }
      }
      return null;
    },
  };
}
